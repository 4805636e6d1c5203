"""Balance columns of int32 widened for good to int64 when a value does not fit
(core.accounts): the results equal an engine whose columns were int64 all along, by the
compiled paths, their Python reference and the batch entry points; visit counts kept
modulo 2 * visit_slots; snapshots of version 5 converted on loading."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from array import array
from typing import Any

import pytest
from core._amap import AccountMap
from hypothesis import given, settings
from hypothesis import strategies as st

from core import (
    Binding,
    Engagement,
    Engine,
    Enrollment,
    Payment,
    Program,
    Refund,
    check_invariants,
    limits,
    state_codec,
)
from core.accounts import BALANCES
from core.payment_columns import from_payments
from tests.helpers import APP, APP2, DAY, MINI, STORE, T0, oid, program, uid
from tests.test_engine_inputs import _REFERENCE, state

I32 = 2**31 - 1
_COMPILED = {Binding: "bind", Engagement: "engage", Enrollment: "enroll", Refund: "refund"}
BIG = [  # points_per_unit 1000: a payment of 10^6 yuan earns 10^9 points
    program(points_per_unit=1000, max_points_per_payment=0, tiers=program().tiers[:1]),
    program(points_per_unit=1000, max_points_per_payment=0, return_window_days=0,
            allow_negative=True,
            tier_basis="spend", expiry="rolling", expiry_days=20, welcome_bonus=0),
    program(points_per_unit=1000, max_points_per_payment=0, return_window_days=0,
            expiry="none", friend_min_visits=3,
            friend_days=30),
]


def _feed(prog: Program, items: list[Any], *, reference: bool = False, wide: bool = False,
          batch: bool = False) -> tuple[Engine, list[Any]]:
    """A fresh engine fed `items` (as tests.test_engine_inputs.feed; payments in one
    `pay_columns` call per run with `batch`); `wide`: its balance columns int64 from the
    start, as they were before they became int32."""
    eng = Engine([prog])
    eng.compiled_lots = not reference
    if wide:
        for name in BALANCES:
            eng.acc.widen(name)
    methods: dict[type, Any] = {int: eng.advance, Payment: eng.pay}
    for kind, name in _REFERENCE.items():
        methods[kind] = getattr(eng, name if reference else _COMPILED[kind])
    outs: list[Any] = []
    for key, group in itertools.groupby(items, key=lambda x: type(x) is Payment and batch):
        run = list(group)
        if key:  # a run of payments, in one batch
            outs += eng.pay_columns(from_payments(run))
        else:
            outs += [methods[type(x)](x) for x in run]
    return eng, outs


def _pay(n: int, who: int, total: int, t: int, app: str = APP) -> Payment:
    return Payment(f"42{n:030d}", app, MINI if app == APP2 else STORE, oid(who), total, t)


def _story() -> list[Any]:
    """Shadow points past 2**31 converted on enrolling, members' points past it, a merge
    of two large balances, refunds taking them back, the clock unlocking pending points
    and expiring lots."""
    m = 10**8  # 10^6 yuan: 10^9 points
    items: list[Any] = [_pay(n, 1, m, T0 + n) for n in range(3)]  # shadow 3 * 10^9
    items += [_pay(10 + n, 2, m, T0 + 60 + n, APP2) for n in range(2)]
    items += [Engagement("e1", APP, oid(1), "follow", T0 + 100),
              Enrollment("quickmart", T0 + 200, appid=APP, openid=oid(1))]
    items += [_pay(20 + n, 1, m, T0 + 300 + n) for n in range(3)]  # a member: 6 * 10^9
    items += [Refund("rf1", f"42{21:030d}", STORE, m, m, T0 + 400),
              Binding(APP, oid(1), uid(1), T0 + 500),
              Binding(APP2, oid(2), uid(1), T0 + 600),  # merges 2 * 10^9 into 1's
              Refund("rf2", f"42{10:030d}", MINI, m // 2, m, T0 + 700),
              T0 + 9 * DAY, _pay(30, 1, 2 * m, T0 + 9 * DAY + 5),
              Refund("rf3", f"42{0:030d}", STORE, m, m, T0 + 9 * DAY + 9),
              T0 + 40 * DAY]
    return items


@pytest.mark.parametrize("prog", BIG)
def test_balances_past_int32_widen_and_equal_int64_columns(prog: Program) -> None:
    """Balances pushed past 2**31 - 1 by payments, conversions, merges and unlocks widen
    their columns to int64, and every result equals an engine whose columns were int64
    from the start, compiled, reference or batch."""
    items = _story()
    mid, _ = _feed(prog, items[:10])  # after the member's three payments
    assert max(max(getattr(mid.acc, n)) for n in BALANCES) > I32
    narrow, outs = _feed(prog, items)
    assert check_invariants(narrow) == []
    widened = {n for n in BALANCES if getattr(narrow.acc, n).typecode == "q"}
    assert widened & {"avail", "shad", "pend", "shad_pend"}
    want = state(narrow)
    for kw in ({"wide": True}, {"reference": True}, {"batch": True},
               {"reference": True, "wide": True}):
        eng, outs2 = _feed(prog, items, **kw)
        assert outs2 == outs, kw
        assert state(eng) == want, kw


def test_a_column_widens_exactly_past_int32_and_stays_wide() -> None:
    """A balance of 2**31 - 1 keeps the column int32; one more point widens it for good,
    and the compiled kernels write to the new column."""
    eng = Engine([program(return_window_days=0)])
    eng.pay(_pay(0, 1, 2000, T0))  # account 0, shadow 20 points
    acc = eng.acc
    acc.put("shad", 0, I32 - 20)
    assert acc.shad.typecode == "i"
    old = acc.shad
    eng.pay(_pay(1, 1, 2000, T0 + 1))  # 20 points: exactly I32
    assert acc.shad.typecode == "i" and acc.shad[0] == I32
    eng.pay(_pay(2, 1, 100, T0 + 2))  # one more
    assert acc.shad.typecode == "q" and acc.shad[0] == I32 + 1 and acc.shad is not old
    eng.pay(_pay(3, 1, 100, T0 + 3))
    acc.put("shad", 0, 0)
    assert acc.shad.typecode == "q" and acc.shad[0] == 0
    with pytest.raises(OverflowError):
        acc.put("shad", 0, 2**63)


def test_negative_balances_widen_below_int32() -> None:
    """An allow_negative member whose refunds take more than it holds goes below -2**31,
    exactly, by the compiled refund and its Python reference alike."""
    prog = BIG[1]
    items: list[Any] = [_pay(0, 1, 10**8, T0),
                        Enrollment("quickmart", T0 + 10, appid=APP, openid=oid(1))]
    rf = Refund("rf0", f"42{0:030d}", STORE, 10**8, 10**8, T0 + 20)
    engines = []
    for reference in (False, True):
        eng, _ = _feed(prog, items, reference=reference)
        eng.acc.put("avail", 0, -2 * 10**9)  # as if spent: the refund takes 10^9 more
        assert eng.acc.avail.typecode == "i"
        out = eng._refund_py(rf) if reference else eng.refund(rf)
        assert out.points == -(10**9)
        assert eng.acc.avail.typecode == "q" and eng.acc.avail[0] == -3 * 10**9
        engines.append(eng)
    assert state(engines[0]) == state(engines[1])


def test_visit_counts_stay_below_twice_the_slots_and_invite_alike() -> None:
    """A shadow shopper's visits are counted modulo 2 * visit_slots (a byte) and the
    invitation comes exactly when the k-th latest visit is within friend_days."""
    prog = dataclasses.replace(BIG[2], points_per_unit=1)
    eng = Engine([prog])
    k = eng.acc.visit_slots
    invited_at = None
    for n in range(40):
        o = eng.pay(_pay(n, 1, 500, T0 + n * 20 * DAY))  # visits 20 days apart
        assert eng.acc.visit_n[0] == (n + 1 if n + 1 < 2 * k else k + (n + 1) % k)
        if o.friend_invite and invited_at is None:
            invited_at = n
    assert eng.acc.visit_days(0) == [(T0 + 8 * 3600 + n * 20 * DAY) // DAY
                                    for n in range(40 - k, 40)]
    assert invited_at is None  # 3 visits within 30 days never happen 20 days apart
    # 790 days: the 3rd latest visit is 30 days back (760), then 10 (780): invited
    late = [eng.pay(_pay(n, 1, 500, T0 + 790 * DAY + n)).friend_invite for n in range(40, 43)]
    assert late == [False, True, False]


def _as_version_5(eng: Engine) -> bytes:
    """`eng`'s snapshot as version 5 wrote it: int64 balances and roots, int32 visits,
    visit counts not kept below 2 * visit_slots."""
    state_ = {k: v for k, v in eng.__dict__.items() if k not in ("_kernel", "_inputs_kernel",
                                                                   "_txids")}
    acc = eng.acc
    old = dict(acc.__getstate__()[1])
    for name in BALANCES:
        old[name] = array("q", getattr(acc, name))
    old["root"] = array("q", acc.root.column(acc.cap))  # dense before version 7, as tail
    old["lots"] = copy.copy(acc.lots)
    old["lots"].tail = array("i", acc.lots.tail.column(acc.cap))
    old["prog"] = array("h", acc.prog)
    old["union_no"] = array("i", acc.union_no[:len(acc.prog)])
    old["visit_ring"] = array("i", acc.visit_ring)
    old["visit_n"] = array("i", [n + 6 * acc.visit_slots if n >= acc.visit_slots else n
                                 for n in acc.visit_n])
    clone = type(acc).__new__(type(acc))
    clone.__setstate__((None, old))
    state_["acc"] = clone
    return state_codec.dumps(state_)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 10**8), st.integers(0, 40)),
                min_size=1, max_size=30))
def test_a_version_5_snapshot_loads_narrow_and_goes_on_alike(rows: list[tuple]) -> None:
    """A version 5 snapshot (int64 balances, int32 visits, int16 programs, a dense
    union_no) loads with int32 balances where they fit, uint16 visit days, visit counts
    below 2 * visit_slots, int8 programs and a sparse union_no, and goes on as the engine
    it was taken from."""
    prog = BIG[2]
    live = Engine([prog])
    for n, (who, total, day) in enumerate(rows):
        live.pay(_pay(n, who, total, T0 + day * DAY + n))
        if who % 3 == 1:
            live.bind(Binding(APP, oid(who), uid(who % 2), T0 + day * DAY + n))
    back = Engine.from_snapshot(_as_version_5(live))
    assert back.acc.union_no.items() == live.acc.union_no.items()
    acc = back.acc
    assert (acc.visit_ring.typecode, acc.visit_n.typecode, acc.prog.typecode) == ("H", "B", "b")
    assert max(acc.visit_n, default=0) < 2 * acc.visit_slots
    assert acc.root.items() == live.acc.root.items()
    for name in BALANCES:
        col = getattr(acc, name)
        assert list(col) == list(getattr(live.acc, name))
        assert col.typecode == ("i" if max(map(abs, col), default=0) <= I32 else "q")
    assert state(back) == state(live)
    for eng in (live, back):
        for n, (who, total, day) in enumerate(rows):
            eng.pay(_pay(100 + n, who, total, T0 + (day + 41) * DAY + n))
        eng.advance(T0 + 90 * DAY)
    assert state(back) == state(live) and check_invariants(back) == []


def test_a_version_5_snapshot_with_a_visit_day_out_of_range_is_refused() -> None:
    """A remembered visit day beyond uint16 is a clear error, not a wrapped day."""
    eng = Engine([BIG[2]])
    eng.pay(_pay(0, 1, 500, T0))
    eng.acc.visit_n = array("i", eng.acc.visit_n)
    eng.acc.visit_ring = array("i", [70_000] * len(eng.acc.visit_ring))
    with pytest.raises(ValueError, match="visit day"):
        Engine.from_snapshot(state_codec.dumps(
            {k: v for k, v in eng.__dict__.items() if k not in ("_kernel", "_inputs_kernel",
                                                                   "_txids")}))


def test_friend_programs_beyond_a_byte_of_visits_are_refused() -> None:
    """friend_min_visits above FRIEND_VISITS_MAX, and more programs than an int8 column
    numbers, are refused when the engine is built."""
    with pytest.raises(ValueError, match="friend_min_visits"):
        Engine([program(friend_min_visits=limits.FRIEND_VISITS_MAX + 1)])
    many = [program(id=f"p{k}", appids=(f"wxapp{k:016d}",), merchants={f"19{k:08d}": "store"})
            for k in range(limits.PROGRAMS_MAX + 1)]
    with pytest.raises(ValueError, match="at most 64"):
        Engine(many)


def test_a_wide_engine_snapshot_round_trip_keeps_its_widths() -> None:
    """A snapshot of widened columns loads them int64, with the same values."""
    eng, _ = _feed(BIG[0], _story())
    back = Engine.from_snapshot(eng.snapshot())
    for name in (*BALANCES, "visit_ring", "visit_n"):
        a, b = getattr(eng.acc, name), getattr(back.acc, name)
        assert (a.typecode, list(a)) == (b.typecode, list(b))
    assert eng.acc.root.items() == back.acc.root.items() != []
    back.pay(_pay(99, 1, 10**8, T0 + 41 * DAY))
    eng.pay(_pay(99, 1, 10**8, T0 + 41 * DAY))
    assert state(back) == state(eng)


def test_account_map_is_a_sparse_column() -> None:
    """AccountMap reads 0 for accounts without a number, keeps the numbers it is given
    through growth, widening to int64 and a snapshot, and refuses what it cannot hold."""
    m = AccountMap()
    assert (m.get(5), len(m), m.keys.itemsize * len(m.keys)) == (0, 0, 0)
    want = {a: (a % 97) + 1 for a in range(0, 30_000, 7)}
    for a, v in want.items():
        m.set(a, v)
    m.set(14, 99)
    want[14] = 99
    assert len(m) == len(want) and m.items() == sorted(want.items())
    assert all(m.get(a) == want.get(a, 0) for a in range(30_010))
    assert m[:20] == [want.get(a, 0) for a in range(20)] and m[7] == want[7]
    assert len(m) * 5 <= len(m.keys) * 4 and m.keys.typecode == "i"
    m.set(2**40, 2**35)  # an account and a number past int32
    assert m.keys.typecode == m.vals.typecode == "q"
    assert m.get(2**40) == 2**35 and m.get(7) == want[7]
    back = state_codec.loads(state_codec.dumps({"m": m}))["m"]
    assert back.items() == m.items() and back.get(2**40) == 2**35
    with pytest.raises(ValueError, match="account"):
        m.set(-1, 3)
    with pytest.raises(ValueError, match="number"):
        m.set(3, 0)
    with pytest.raises(ValueError, match="not an AccountMap table"):
        AccountMap(array("i", [0] * 3), array("i", [0] * 3), 0)
    with pytest.raises(ValueError, match="needs an end"):
        m[:]
