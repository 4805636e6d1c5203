"""The points ledger: every balance change as one entry, stored as integer rows.

Entries live interleaved in one `array('q')` (six integers a row: one `extend` per
entry on the hot path); numpy copies of the columns serve the invariant checker
and queries. A cause is an integer: the low 3 bits name the kind of input, the
rest indexes that kind's table of ids.
"""

from __future__ import annotations

from array import array

import numpy as np

# Cause tags (low 3 bits of a cause).
CAUSE_PAYMENT = 0
CAUSE_REFUND = 1
CAUSE_EVENT = 2
CAUSE_OTHER = 3  # bindings, enrollments, spends, expiry: described in `notes`

FIELDS = ("kind", "bucket", "account", "points", "time_s", "cause")
WIDTH = len(FIELDS)


class Ledger:
    """Append-only rows of (kind, bucket, account, points, time_s, cause)."""

    __slots__ = ("notes", "rows")

    def __init__(self) -> None:
        self.rows = array("q")
        # Descriptions of CAUSE_OTHER causes, each as the parts of its text (joined only
        # when asked for: most are never read); a str in snapshots from before.
        self.notes: list[tuple[str, ...] | str] = []

    def __len__(self) -> int:
        return len(self.rows) // WIDTH

    def add(self, kind: int, bucket: int, account: int, points: int, time_s: int,
            cause: int) -> None:
        """Append one entry."""
        self.rows.extend((kind, bucket, account, points, time_s, cause))

    def row(self, seq: int) -> tuple[int, ...]:
        """Entry number `seq` as (kind, bucket, account, points, time_s, cause)."""
        return tuple(self.rows[seq * WIDTH:(seq + 1) * WIDTH])

    def note(self, *parts: str) -> int:
        """Register a description for a CAUSE_OTHER input, the concatenation of `parts`;
        returns its cause number."""
        notes = self.notes
        notes.append(parts)
        return (len(notes) - 1) << 3 | CAUSE_OTHER

    def note_text(self, idx: int) -> str:
        """The text of note number `idx`."""
        n = self.notes[idx]
        return n if type(n) is str else "".join(n)

    def views(self) -> dict[str, np.ndarray]:
        """Numpy copies of the columns (copies, so the rows stay growable)."""
        table = np.array(self.rows, dtype=np.int64).reshape(-1, WIDTH)
        return {name: table[:, k].copy() for k, name in enumerate(FIELDS)}

    def rows_of(self, accounts: set[int]) -> list[int]:
        """Sequence numbers of the entries of `accounts`, in order."""
        acc = np.array(self.rows, dtype=np.int64).reshape(-1, WIDTH)[:, 2]
        mask = np.isin(acc, np.fromiter(accounts, dtype=np.int64))
        return np.nonzero(mask)[0].tolist()
