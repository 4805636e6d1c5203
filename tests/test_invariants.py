"""The invariant checker catches corrupted state (it must be able to fail)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core import Engine, load_program, payments
from core.accounts import SIDES
from core.bench import DEFAULT_PROGRAM, START_S, _prepare
from core.invariants import check_invariants
from core.payments import P_PENDING, P_POINTS, P_REFUNDED, P_REVERSED, P_TOTAL, PF
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
    a = int(np.flatnonzero(eng.acc.balance_column("shad_pend"))[0])
    eng.acc.bal_pend[a] += 1  # a shadow account's pair holds its shadow pending points
    # keep the ledger agreeing (a PENDING entry of that bucket), so only this check fails
    eng.ledger.add(int(Entry.PENDING), int(Bucket.SHADOW_PENDING), a, 1, START_S, 0)
    eng.scalars[1] += 1
    found = check_invariants(eng)
    assert any("pending balances differ" in v for v in found), found


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _corruptions(eng: Engine) -> list[tuple[str, object]]:
    """(the message a check must give, a change of `eng` that breaks only what it checks
    or more), one for each check of check_invariants."""
    acc = eng.acc
    member = acc.view("member").astype(bool)
    bal = acc.view("bal")
    m = _first(member & (bal > 0))
    s = _first(~member & (bal > 0))
    pays = payments.table(eng.pays, eng.pays_wide)
    i = _first(pays[:, P_POINTS] > 0)
    del member, bal, pays
    b = acc.balance

    def cell(name: str, a: int, value: int) -> object:
        # the pair column holding balance `name` of `a` (core.accounts SIDES)
        return lambda: getattr(acc, SIDES[name][0]).__setitem__(a, value)

    def kind(a: int, member: int) -> object:
        return lambda: acc.member.__setitem__(a, member)

    def entry(kind: Entry, bucket: Bucket, a: int, pts: int) -> object:
        return lambda: eng.ledger.add(int(kind), int(bucket), a, pts, START_S, 0)

    def merge(src: int, dst: int) -> object:
        return lambda: acc.root.__setitem__(src, dst)

    return [
        (f"account {m} available: balance {b('avail', m) + 1} != ledger {b('avail', m)}",
         cell("avail", m, b("avail", m) + 1)),
        (f"account {s} shadow: balance {b('shad', s) - 1} != ledger {b('shad', s)}",
         cell("shad", s, b("shad", s) - 1)),
        (f"points issued {eng.scalars[1] + 1} != ledger {eng.scalars[1]}",
         lambda: eng.scalars.__setitem__(1, eng.scalars[1] + 1)),
        ("unlock entries do not conserve points (sum 5)",
         entry(Entry.UNLOCK, Bucket.AVAILABLE, m, 5)),
        ("merge_out/merge_in entries do not conserve points (sum -3)",
         entry(Entry.MERGE_OUT, Bucket.AVAILABLE, m, -3)),
        ("convert entries do not conserve points (sum 2)",
         entry(Entry.CONVERT, Bucket.SHADOW, s, 2)),
        ("a transaction_id was applied twice or a payment record has no id",
         lambda: eng.pays.extend(eng.pays[:PF])),
        ("a merged account still holds available points", merge(m, s)),
        ("a merged account still holds shadow points", merge(s, m)),
        ("negative pending balance", cell("pend", m, -1)),
        ("negative shadow_pending balance", cell("shad_pend", s, -1)),
        (f"negative available balance in program {PROGRAM.id!r}", cell("avail", m, -1)),
        # One pair holds either kind's points: a shadow account with member points, or a
        # member with shadow points, is the ledger's points of one kind read as the other's.
        (f"account {s} available: balance {b('shad', s)} != ledger 0", kind(s, 1)),
        (f"account {s} shadow: balance 0 != ledger {b('shad', s)}", kind(s, 1)),
        (f"account {m} shadow: balance {b('avail', m)} != ledger 0", kind(m, 0)),
        (f"account {m} available: balance 0 != ledger {b('avail', m)}", kind(m, 0)),
        (f"account {s} available: balance 0 != ledger 1",
         entry(Entry.MOVE_IN, Bucket.AVAILABLE, s, 1)),
        (f"account {m} shadow_pending: balance 0 != ledger 1",
         entry(Entry.MOVE_IN, Bucket.SHADOW_PENDING, m, 1)),
        ("a payment's refunds or reversals are out of bounds",
         cell_pay(eng, i, P_REVERSED, field(eng, i, P_POINTS) + 1)),
        ("a payment's refunds or reversals are out of bounds",
         cell_pay(eng, i, P_REFUNDED, -1)),
        ("a payment's refunds or reversals are out of bounds",
         cell_pay(eng, i, P_REFUNDED, field(eng, i, P_TOTAL) + 1)),
        ("a payment's pending points are out of bounds", cell_pay(eng, i, P_PENDING, -1)),
        ("pending balances differ from the payments' pending points",
         cell_pay(eng, i, P_PENDING, field(eng, i, P_PENDING) + 1)),
    ]


def field(eng: Engine, i: int, f: int) -> int:
    return payments.get(eng.pays, eng.pays_wide, i, f)


def cell_pay(eng: Engine, i: int, f: int, value: int) -> object:
    return lambda: payments.put(eng.pays, eng.pays_wide, i, f, value)


def test_every_check_catches_its_violation() -> None:
    eng = _engine()
    cases = _corruptions(eng)
    for k, (message, _) in enumerate(cases):
        eng = _engine()
        assert check_invariants(eng) == []
        _, corrupt = _corruptions(eng)[k]
        corrupt()  # type: ignore[operator]
        found = check_invariants(eng)
        assert message in found, (message, found)


def test_a_broken_list_of_lots_is_caught() -> None:
    eng = _engine()
    lots = eng.acc.lots
    a = _account_with_lots(eng, 2)
    lots.nxt[lots.nxt[lots.tail[a]]] = len(lots.pts) + 5  # points outside the pool
    assert f"account {a}: its list of lots is broken" in check_invariants(eng)
    eng = _engine()
    lots = eng.acc.lots
    a = _account_with_lots(eng, 2)
    oldest = lots.nxt[lots.tail[a]]
    lots.nxt[oldest] = oldest  # a loop that never comes back to the newest lot
    assert f"account {a}: its list of lots is broken" in check_invariants(eng)
