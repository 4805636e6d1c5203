"""The invariant checker: the engine's state checked from outside, against its ledger.

Run after every test, simulation and load test. Returns the violations found
(an empty list means every invariant holds); it never changes state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.payments import P_ACCT, P_PENDING, P_POINTS, P_REFUNDED, P_REVERSED, P_TOTAL, PF
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
    balances (see _check_lots).
    """
    out: list[str] = []
    acc = eng.acc
    n = len(acc)
    led = eng.ledger.views()
    cols = {Bucket.AVAILABLE: acc.view("avail").copy(),
            Bucket.PENDING: acc.view("pend").copy(),
            Bucket.SHADOW: acc.view("shad").copy(),
            Bucket.SHADOW_PENDING: acc.view("shad_pend").copy()}
    for bucket, bal in cols.items():
        sums = np.zeros(n, dtype=np.int64)
        sel = led["bucket"] == bucket
        np.add.at(sums, led["account"][sel], led["points"][sel])
        bad = np.nonzero(sums != bal)[0]
        for a in bad[:limit]:
            out.append(f"account {a} {bucket.name.lower()}: balance {bal[a]} != ledger {sums[a]}")
    issued = int(led["points"][np.isin(led["kind"], _ISSUING)].sum())
    if issued != eng.scalars[1]:
        out.append(f"points issued {eng.scalars[1]} != ledger {issued}")
    for kinds in _MOVES:
        total = int(led["points"][np.isin(led["kind"], kinds)].sum())
        if total:
            names = "/".join(k.name.lower() for k in kinds)
            out.append(f"{names} entries do not conserve points (sum {total})")
    n_pays = len(eng.pays) // PF
    numbers = np.fromiter(eng.pay_index.values(), dtype=np.int64, count=len(eng.pay_index))
    if len(eng.pay_index) != n_pays or not np.array_equal(numbers, np.arange(n_pays)):
        out.append("a transaction_id was applied twice or a payment record has no id")
    root = acc.view("root").copy()
    merged = root != np.arange(n)
    for bucket, bal in cols.items():
        if (bal[merged] != 0).any():
            out.append(f"a merged account still holds {bucket.name.lower()} points")
        if bucket != Bucket.AVAILABLE and (bal < 0).any():
            out.append(f"negative {bucket.name.lower()} balance")
    prog = acc.view("prog").astype(np.int64)
    member = acc.view("member").astype(bool)
    for pi, p in enumerate(eng.programs):
        if not p.allow_negative and (cols[Bucket.AVAILABLE][prog == pi] < 0).any():
            out.append(f"negative available balance in program {p.id!r}")
    if (cols[Bucket.AVAILABLE][~member] != 0).any() or (cols[Bucket.PENDING][~member] != 0).any():
        out.append("a shadow account holds member points")
    if (cols[Bucket.SHADOW][member] != 0).any() or (cols[Bucket.SHADOW_PENDING][member] != 0).any():
        out.append("a member account still holds shadow points")
    pays = np.array(eng.pays, dtype=np.int64).reshape(-1, PF)
    points, reversed_, refunded = pays[:, P_POINTS], pays[:, P_REVERSED], pays[:, P_REFUNDED]
    total, pending = pays[:, P_TOTAL], pays[:, P_PENDING]
    if ((reversed_ < 0) | (reversed_ > points) | (refunded < 0) | (refunded > total)).any():
        out.append("a payment's refunds or reversals are out of bounds")
    if ((pending < 0) | (pending > points - reversed_)).any():
        out.append("a payment's pending points are out of bounds")
    if len(points):
        owner = acc.roots(pays[:, P_ACCT])
        pend_sum = np.zeros(n, dtype=np.int64)
        np.add.at(pend_sum, owner, pending)
        if (pend_sum != cols[Bucket.PENDING] + cols[Bucket.SHADOW_PENDING]).any():
            out.append("pending balances differ from the payments' pending points")
    out += _check_lots(eng, cols[Bucket.AVAILABLE], cols[Bucket.SHADOW], member, merged, limit)
    return out[:limit]


def _check_lots(eng: Engine, avail: np.ndarray, shad: np.ndarray, member: np.ndarray,
                merged: np.ndarray, limit: int) -> list[str]:
    """Lots match balances: sum(lots) == max(0, balance) for every surviving shadow account
    and every member of a program whose points expire; no lots anywhere else; each
    account's lots hold positive points on strictly increasing days."""
    out: list[str] = []
    acc = eng.acc
    n = len(acc)
    sums = np.zeros(n, dtype=np.int64)
    who, days, pts = acc.lots.walk(n)
    np.add.at(sums, who, pts)
    same = who[1:] == who[:-1]
    bad = np.concatenate([who[pts <= 0], who[1:][same & (days[1:] <= days[:-1])]])
    for a in np.unique(bad)[:limit].tolist():
        out.append(f"account {a}: lots {acc.lots.items(a)} are not positive on increasing days")
    keeps = np.array([c.keep_member_lots for c in eng.rules], dtype=bool)
    has_lots = ~merged & (~member | keeps[acc.view("prog")])
    due = np.where(has_lots, np.maximum(0, np.where(member, avail, shad)), 0)
    for a in np.flatnonzero(sums != due)[:limit].tolist():
        out.append(f"account {a}: lots {sums[a]} != balance {due[a]}")
    return out[:limit]


def assert_invariants(eng: Engine) -> None:
    """Raise AssertionError listing the violations when any invariant fails."""
    bad = check_invariants(eng)
    assert not bad, "invariants violated:\n" + "\n".join(bad)
