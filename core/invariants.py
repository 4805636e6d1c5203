"""The invariant checker: the engine's state checked from outside, against its ledger.

Run after every test, simulation and load test. Returns the violations found
(an empty list means every invariant holds); it never changes state.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import numpy as np

from core import _check
from core.payments import PF
from core.types import Bucket, Entry

if TYPE_CHECKING:
    from core.engine import Engine

# Entry kinds that only move points between balances: each group sums to zero.
_ISSUING = (Entry.EARN, Entry.PENDING, Entry.BONUS)
_MOVES = ((Entry.UNLOCK,), (Entry.MERGE_OUT, Entry.MERGE_IN), (Entry.CONVERT,))


def check_invariants(eng: Engine, limit: int = 20) -> list[str]:
    """Check `eng`; return up to `limit` human-readable violations ([] when all hold).

    Checked: every balance equals the sum of its ledger entries; no transaction_id
    applied twice; unlocks, merges and conversions conserve points; no negative
    balance a rule forbids; merged accounts are empty; per-payment refund and
    reversal bounds; pending points match the payments they came from; lots match
    balances (see _check_lots). The passes over the ledger, the payments and the lots
    run compiled over the engine's arrays in place (core/_check.pyx).
    """
    out: list[str] = []
    acc = eng.acc
    n = len(acc)
    # One pair of columns holds a member's available and pending points and a shadow
    # account's shadow points (core.accounts): read as the four balances, a member's
    # shadow balances are 0, as are a shadow account's member balances, so a ledger that
    # gives an account points of the other kind shows as a difference below.
    cols = {Bucket.AVAILABLE: acc.balance_column("avail"),
            Bucket.PENDING: acc.balance_column("pend"),
            Bucket.SHADOW: acc.balance_column("shad"),
            Bucket.SHADOW_PENDING: acc.balance_column("shad_pend")}
    sums, by_kind = _check.ledger_sums(_int64(eng.ledger.rows), n)
    for bucket, bal in cols.items():
        bad = np.flatnonzero(sums[:, bucket] != bal)
        for a in bad[:limit].tolist():
            out.append(f"account {a} {bucket.name.lower()}: balance {bal[a]} != "
                       f"ledger {sums[a, bucket]}")
    issued = int(by_kind[list(_ISSUING)].sum())
    if issued != eng.scalars[1]:
        out.append(f"points issued {eng.scalars[1]} != ledger {issued}")
    for kinds in _MOVES:
        total = int(by_kind[list(kinds)].sum())
        if total:
            names = "/".join(k.name.lower() for k in kinds)
            out.append(f"{names} entries do not conserve points (sum {total})")
    n_pays = len(eng.pays) // PF
    if len(eng.pay_index) != n_pays or not _numbered(eng.pay_index, n_pays):
        out.append("a transaction_id was applied twice or a payment record has no id")
    root = acc.view("root")
    merged = root != np.arange(n)
    for bucket, bal in cols.items():
        if bal[merged].any():
            out.append(f"a merged account still holds {bucket.name.lower()} points")
        if bucket != Bucket.AVAILABLE and (bal < 0).any():
            out.append(f"negative {bucket.name.lower()} balance")
    prog = acc.view("prog")
    member = acc.view("member").astype(bool)
    for pi, p in enumerate(eng.programs):
        if not p.allow_negative and (cols[Bucket.AVAILABLE][prog == pi] < 0).any():
            out.append(f"negative available balance in program {p.id!r}")
    bounds, pending_bad, pend_sum = _check.pay_sums(
        np.frombuffer(eng.pays, dtype=np.int32), _int64(eng.pays_wide), root, n)
    if bounds:
        out.append("a payment's refunds or reversals are out of bounds")
    if pending_bad:
        out.append("a payment's pending points are out of bounds")
    pend = np.add(cols[Bucket.PENDING], cols[Bucket.SHADOW_PENDING], dtype=np.int64)  # exact
    if n_pays and (pend_sum != pend).any():
        out.append("pending balances differ from the payments' pending points")
    out += _check_lots(eng, cols[Bucket.AVAILABLE], cols[Bucket.SHADOW], member, merged, prog,
                       limit)
    return out[:limit]


def _int64(col: array | np.ndarray) -> np.ndarray:
    """An integer column as int64 numbers: in place when it is 64-bit, else a copy."""
    v = np.frombuffer(col, dtype=col.typecode) if isinstance(col, array) else col
    return v if v.dtype == np.int64 else v.astype(np.int64)


def _numbered(index: object, n: int) -> bool:
    """The transaction_id index maps its keys to 0..n-1 in insertion order: true by
    construction for an index that stores no values (its values are the insertion
    numbers); else its values are compared."""
    layout = getattr(index, "layout", None)
    if layout is not None and not layout()["values"]:
        return True
    values = index.values()  # type: ignore[attr-defined]
    numbers = np.fromiter(values, dtype=np.int64, count=len(values))
    return np.array_equal(numbers, np.arange(n))


def _check_lots(eng: Engine, avail: np.ndarray, shad: np.ndarray, member: np.ndarray,
                merged: np.ndarray, prog: np.ndarray, limit: int) -> list[str]:
    """Lots match balances: sum(lots) == max(0, balance) for every surviving shadow account
    and every member of a program whose points expire; no lots anywhere else; each
    account's lots hold positive points on strictly increasing days."""
    out: list[str] = []
    lots = eng.acc.lots
    n = len(eng.acc)
    sums, bad, broken = _check.lot_sums(np.frombuffer(lots.tail.column(n), dtype=np.int64),
                                        _int64(lots.nxt),
                                        np.frombuffer(lots.day, dtype=np.int32),
                                        _int64(lots.pts), n)
    for a in broken[:limit]:
        out.append(f"account {a}: its list of lots is broken")
    for a in bad[:limit]:
        out.append(f"account {a}: lots {lots.items(a)} are not positive on increasing days")
    keeps = np.array([c.keep_member_lots for c in eng.rules], dtype=bool)
    has_lots = ~merged & (~member | keeps[prog])
    due = np.where(has_lots, np.maximum(0, np.where(member, avail, shad)), 0)
    for a in np.flatnonzero(sums != due)[:limit].tolist():
        out.append(f"account {a}: lots {sums[a]} != balance {due[a]}")
    return out[:limit]


def assert_invariants(eng: Engine) -> None:
    """Raise AssertionError listing the violations when any invariant fails."""
    bad = check_invariants(eng)
    assert not bad, "invariants violated:\n" + "\n".join(bad)
