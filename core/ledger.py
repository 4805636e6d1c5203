"""The points ledger: every balance change as one entry, stored as integer columns.

Columns are `array.array`s (compact, fast scalar appends); numpy views of them
serve the invariant checker and queries. A cause is an integer: the low 3 bits
name the kind of input, the rest indexes that kind's table of ids.
"""

from __future__ import annotations

from array import array

import numpy as np

# Cause tags (low 3 bits of a cause).
CAUSE_PAYMENT = 0
CAUSE_REFUND = 1
CAUSE_EVENT = 2
CAUSE_OTHER = 3  # bindings, enrollments, spends, advance: described in `notes`


class Ledger:
    """Append-only columns: kind, bucket, account, points, time, cause."""

    __slots__ = ("account", "bucket", "cause", "kind", "notes", "points", "time_s")

    def __init__(self) -> None:
        self.kind = array("b")
        self.bucket = array("b")
        self.account = array("q")
        self.points = array("q")
        self.time_s = array("q")
        self.cause = array("q")
        self.notes: list[str] = []  # descriptions of CAUSE_OTHER causes

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, kind: int, bucket: int, account: int, points: int, time_s: int,
            cause: int) -> None:
        """Append one entry (the engine's hot paths inline this)."""
        self.kind.append(kind)
        self.bucket.append(bucket)
        self.account.append(account)
        self.points.append(points)
        self.time_s.append(time_s)
        self.cause.append(cause)

    def note(self, text: str) -> int:
        """Register a description for a CAUSE_OTHER input; returns its cause number."""
        self.notes.append(text)
        return (len(self.notes) - 1) << 3 | CAUSE_OTHER

    def views(self) -> dict[str, np.ndarray]:
        """Numpy copies of the columns (copies, so the arrays stay growable)."""
        return {
            "kind": np.array(self.kind, dtype=np.int8),
            "bucket": np.array(self.bucket, dtype=np.int8),
            "account": np.array(self.account, dtype=np.int64),
            "points": np.array(self.points, dtype=np.int64),
            "time_s": np.array(self.time_s, dtype=np.int64),
            "cause": np.array(self.cause, dtype=np.int64),
        }

    def rows_of(self, accounts: set[int]) -> list[int]:
        """Sequence numbers of the entries of `accounts`, in order."""
        acc = np.frombuffer(self.account, dtype=np.int64) if len(self.account) else None
        if acc is None:
            return []
        mask = np.isin(acc, np.fromiter(accounts, dtype=np.int64))
        seqs = np.nonzero(mask)[0].tolist()
        del acc, mask  # release the buffer export so the array can grow again
        return seqs
