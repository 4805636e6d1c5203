"""The invariant checker catches corrupted state (it must be able to fail)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core import Engine, load_program
from core.bench import DEFAULT_PROGRAM, START_S, _prepare
from core.invariants import check_invariants
from core.types import Bucket, Entry
from core.workload import payment_stream

PROGRAM = load_program(DEFAULT_PROGRAM)


def _day(day: int, seed: int) -> list:
    """300 payments on `day` after START_S, with transaction ids of their own."""
    wl = payment_stream(PROGRAM, np.random.default_rng(seed), 300, 300, START_S + day * 86_400)
    return [replace(p, transaction_id=f"d{day}-{p.transaction_id}") for p in wl.payments]


def _engine() -> Engine:
    """Shoppers with several lots each (payments on many days, pending points unlocked)."""
    wl = payment_stream(PROGRAM, np.random.default_rng(1), 300, 900, START_S)
    eng = Engine([PROGRAM])
    _prepare(wl, PROGRAM)(eng)
    for day in range(0, 40, 8):
        for p in _day(day, day):
            eng.pay(p)
        eng.advance(START_S + (day + 8) * 86_400)
    for p in _day(49, 99):
        eng.pay(p)  # left pending
    return eng


def _account_with_lots(eng: Engine, at_least: int) -> int:
    who, _, _ = eng.acc.lots.walk(len(eng.acc))
    counts = np.bincount(who)
    return int(np.flatnonzero(counts >= at_least)[0])


def test_clean_engine_passes_and_walk_matches_items() -> None:
    eng = _engine()
    assert check_invariants(eng) == []
    who, days, pts = eng.acc.lots.walk(len(eng.acc))
    for a in np.unique(who)[:50].tolist():
        assert list(zip(days[who == a].tolist(), pts[who == a].tolist(),
                        strict=True)) == eng.acc.lots.items(a)


def test_lots_out_of_order_or_off_balance_are_caught() -> None:
    eng = _engine()
    lots = eng.acc.lots
    a = _account_with_lots(eng, 2)
    newest = lots.tail[a]
    oldest = lots.nxt[newest]
    day = lots.day[oldest]
    lots.day[oldest] = lots.day[newest] + 1
    assert any(f"account {a}: lots" in v and "increasing" in v for v in check_invariants(eng))
    lots.day[oldest] = day
    lots.pts[oldest] += 1
    assert any(f"account {a}: lots" in v and "!= balance" in v for v in check_invariants(eng))
    lots.pts[oldest] -= 1
    assert check_invariants(eng) == []


def test_pending_points_off_their_payments_are_caught() -> None:
    eng = _engine()
    a = int(np.flatnonzero(eng.acc.view("shad_pend"))[0])
    eng.acc.shad_pend[a] += 1
    # keep the ledger agreeing (a PENDING entry of that bucket), so only this check fails
    eng.ledger.rows.extend((int(Entry.PENDING), int(Bucket.SHADOW_PENDING), a, 1, START_S, 0))
    eng.scalars[1] += 1
    found = check_invariants(eng)
    assert any("pending balances differ" in v for v in found), found
