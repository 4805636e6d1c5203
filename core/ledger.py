"""The points ledger: every balance change as one entry, stored as packed rows.

An entry is 24 bytes, three int64 words of one `array('q')` (ROW: points int64, the
cause's number uint32, account int32, time int32 seconds from payments.TIME_BASE_S,
kind, bucket and the cause's tag one byte each; core/_rows.pxd LRow is the same layout
for the compiled writers). An entry whose account, cause number or time does not fit
is refused with OverflowError before anything is appended: accounts below 2**31, cause
numbers below 2**32 (ids of one kind; payment numbers stop there anyway) and times of
2000..2100 (limits) always fit. Numpy copies of the columns serve the invariant checker
and queries. A cause is an integer: the low 3 bits name the kind of input, the rest
indexes that kind's table of ids.
"""

from __future__ import annotations

import struct
from array import array

import numpy as np

from core.payments import TIME_BASE_S

# Cause tags (low 3 bits of a cause).
CAUSE_PAYMENT = 0
CAUSE_REFUND = 1
CAUSE_EVENT = 2
CAUSE_OTHER = 3  # bindings, enrollments, spends, expiry: described in `notes`

FIELDS = ("kind", "bucket", "account", "points", "time_s", "cause")
ROW = struct.Struct("<qIiiBBBx")
ROW_DTYPE = np.dtype([("points", "<i8"), ("idx", "<u4"), ("account", "<i4"), ("time", "<i4"),
                      ("kind", "u1"), ("bucket", "u1"), ("tag", "u1"), ("pad", "u1")])
WORDS = ROW.size // 8  # int64 words of `rows` an entry
assert ROW.size == ROW_DTYPE.itemsize == 24


class Ledger:
    """Append-only entries of (kind, bucket, account, points, time_s, cause)."""

    __slots__ = ("notes", "rows")

    def __init__(self) -> None:
        self.rows = array("q")
        # Descriptions of CAUSE_OTHER causes, each as the parts of its text (joined only
        # when asked for: most are never read); a str in snapshots from before.
        self.notes: list[tuple[str, ...] | str] = []

    def __len__(self) -> int:
        return len(self.rows) // WORDS

    def add(self, kind: int, bucket: int, account: int, points: int, time_s: int,
            cause: int) -> None:
        """Append one entry; OverflowError (nothing appended) when a field does not fit."""
        try:
            if account < 0:
                raise struct.error("negative account")
            b = ROW.pack(points, cause >> 3, account, time_s - TIME_BASE_S, kind, bucket,
                         cause & 7)
        except struct.error:
            raise OverflowError(
                f"a ledger entry holds an account below 2**31, a cause number below 2**35 "
                f"and a time of 2000..2100: not {account}, {cause}, {time_s}") from None
        self.rows.frombytes(b)

    def row(self, seq: int) -> tuple[int, ...]:
        """Entry number `seq` as (kind, bucket, account, points, time_s, cause)."""
        if not 0 <= seq < len(self):
            raise IndexError(f"no ledger entry {seq}")
        points, idx, account, t, kind, bucket, tag = ROW.unpack(
            self.rows[seq * WORDS:(seq + 1) * WORDS].tobytes())
        return kind, bucket, account, points, t + TIME_BASE_S, idx << 3 | tag

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
        """The columns as int64 arrays (copies, so the rows stay growable)."""
        t = np.frombuffer(self.rows, dtype=ROW_DTYPE)
        out = {"kind": t["kind"].astype(np.int64), "bucket": t["bucket"].astype(np.int64),
               "account": t["account"].astype(np.int64), "points": t["points"].copy(),
               "time_s": t["time"].astype(np.int64) + TIME_BASE_S,
               "cause": t["idx"].astype(np.int64) << 3 | t["tag"]}
        del t
        return out

    def rows_of(self, accounts: set[int]) -> list[int]:
        """Sequence numbers of the entries of `accounts`, in order."""
        acc = np.frombuffer(self.rows, dtype=ROW_DTYPE)["account"]
        mask = np.isin(acc, np.fromiter(accounts, dtype=np.int64))
        del acc
        return np.nonzero(mask)[0].tolist()


def rows_from_int64(old: array) -> array:
    """Entries of `old`, six int64 a row as snapshots of version 4 hold them, as `rows`;
    OverflowError when one does not fit."""
    t = np.frombuffer(old, dtype=np.int64).reshape(-1, len(FIELDS))
    kind, bucket, account, points, time_s, cause = (t[:, k] for k in range(len(FIELDS)))
    rel = time_s - TIME_BASE_S
    if not (((account >= 0) & (account < 2**31) & (rel >= -2**31) & (rel < 2**31)
             & (cause >= 0) & (cause < 2**35) & (kind >= 0) & (kind < 256)
             & (bucket >= 0) & (bucket < 256)).all()):
        raise OverflowError("a ledger entry of the snapshot does not fit the packed rows")
    out = np.zeros(len(t), dtype=ROW_DTYPE)
    out["points"], out["idx"], out["account"], out["time"] = points, cause >> 3, account, rel
    out["kind"], out["bucket"], out["tag"] = kind, bucket, cause & 7
    rows = array("q")
    rows.frombytes(out.tobytes())
    return rows
