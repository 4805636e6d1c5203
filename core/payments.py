"""Payment records: PF fields a payment at the P_* offsets, by payment number.

A record is PF int32 in `Engine.pays` (36 bytes a payment), its time stored as seconds
from TIME_BASE_S. A payment whose account, amounts or points do not fit an int32 (a
payment above 21.4 million yuan, say) keeps its PF values as int64 in `Engine.pays_wide`
instead, the time as it is, and its narrow record says where: P_PROG holds -1 - the wide
record's number, every other field 0. Only a record's refunded, reversed and pending
values change after its payment, each within 0..total or 0..points, so a record stays
narrow or wide for good. The compiled side of this layout is core/_rows.pxd.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

from core import limits

# P_BASIS: the earning basis in home fen (payer_total converted); P_REVERSED: points
# due back so far (the floor of the refunded share); P_PENDING: of its points, those
# still pending in the return window.
P_ACCT, P_PROG, P_TIME, P_TOTAL, P_BASIS, P_POINTS, P_REFUNDED, P_REVERSED, P_PENDING = range(9)
PF = 9
FIELDS = ("account", "program", "time_s", "total_fen", "basis_fen", "points", "refunded_fen",
          "reversed_points", "pending_points")
assert len(FIELDS) == PF
# A narrow record's time is time_s - TIME_BASE_S: every time the engine takes fits an int32.
TIME_BASE_S = limits.TIME_S_MIN + 2**31
assert limits.TIME_S_MIN - TIME_BASE_S >= -2**31 and limits.TIME_S_MAX - TIME_BASE_S < 2**31
_LO, _HI = -2**31, 2**31 - 1


def new_records() -> tuple[array, array]:
    """Empty (pays, pays_wide)."""
    return array("i"), array("q")


def count(pays: array) -> int:
    """The number of payment records."""
    return len(pays) // PF


def _wide_at(pays: array, i: int) -> int:
    """The start of payment `i`'s values in pays_wide, or -1 when its record is narrow."""
    w = pays[i * PF + P_PROG]
    return (-1 - w) * PF if w < 0 else -1


def get(pays: array, wide: array, i: int, field: int) -> int:
    """Field `field` of payment `i`."""
    w = _wide_at(pays, i)
    if w >= 0:
        return wide[w + field]
    v = pays[i * PF + field]
    return v + TIME_BASE_S if field == P_TIME else v


def put(pays: array, wide: array, i: int, field: int, value: int) -> None:
    """Set the refunded, reversed or pending value (`field`) of payment `i`."""
    assert field in (P_REFUNDED, P_REVERSED, P_PENDING)
    w = _wide_at(pays, i)
    if w >= 0:
        wide[w + field] = value
    else:
        pays[i * PF + field] = value


def record(pays: array, wide: array, i: int) -> list[int]:
    """Payment `i`'s PF values, the time as it is."""
    w = _wide_at(pays, i)
    if w >= 0:
        return wide[w:w + PF].tolist()
    rec = pays[i * PF:(i + 1) * PF].tolist()
    rec[P_TIME] += TIME_BASE_S
    return rec


def append(pays: array, wide: array, values: Sequence[int]) -> None:
    """Append a record of PF values (the time as it is): narrow when they all fit."""
    assert len(values) == PF
    rec = list(values)
    rec[P_TIME] -= TIME_BASE_S
    if rec[P_PROG] >= 0 and all(_LO <= v <= _HI for v in rec):
        pays.extend(rec)
        return
    wide.extend(values)
    pays.extend((0, -(len(wide) // PF), 0, 0, 0, 0, 0, 0, 0))  # -1 - its number


def table(pays: array, wide: array) -> np.ndarray:
    """Every record as an (n, PF) int64 array (a copy), times as they are."""
    t = np.frombuffer(pays, dtype=np.int32).reshape(-1, PF).astype(np.int64)
    t[:, P_TIME] += TIME_BASE_S
    held = np.flatnonzero(t[:, P_PROG] < 0)
    if held.size:
        t[held] = np.frombuffer(wide, dtype=np.int64).reshape(-1, PF)[-1 - t[held, P_PROG]]
    return t


def from_int64(old: array) -> tuple[array, array]:
    """(pays, pays_wide) holding the records of `old`, PF int64 a payment (snapshots of
    version 4)."""
    t = np.frombuffer(old, dtype=np.int64).reshape(-1, PF).copy()
    t[:, P_TIME] -= TIME_BASE_S
    fits = ((t >= _LO) & (t <= _HI)).all(axis=1) & (t[:, P_PROG] >= 0)
    narrow = np.where(fits[:, None], t, 0).astype(np.int32)
    out = np.flatnonzero(~fits)
    narrow[out, P_PROG] = -1 - np.arange(out.size)
    wide_t = t[out]
    wide_t[:, P_TIME] += TIME_BASE_S
    pays, wide = new_records()
    pays.frombytes(narrow.tobytes())
    wide.frombytes(wide_t.tobytes())
    return pays, wide
