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
from unittest import mock

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
from core.accounts import BALANCES, SIDES, Accounts, UnpairedBalances
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
          batch: bool = False, eng: Engine | None = None) -> tuple[Engine, list[Any]]:
    """A fresh engine (or `eng`) fed `items` (as tests.test_engine_inputs.feed; payments in
    one `pay_columns` call per run with `batch`); `wide`: its balance columns int64 from the
    start, as they were before they became int32."""
    eng = Engine([prog]) if eng is None else eng
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
    assert widened & {"bal", "bal_pend"}
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
    assert acc.bal.typecode == "i"  # a shadow account's pair holds its shadow points
    old = acc.bal
    eng.pay(_pay(1, 1, 2000, T0 + 1))  # 20 points: exactly I32
    assert acc.bal.typecode == "i" and acc.bal[0] == I32
    eng.pay(_pay(2, 1, 100, T0 + 2))  # one more
    assert acc.bal.typecode == "q" and acc.bal[0] == I32 + 1 and acc.bal is not old
    eng.pay(_pay(3, 1, 100, T0 + 3))
    acc.put("shad", 0, 0)
    assert acc.bal.typecode == "q" and acc.bal[0] == 0
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
        assert eng.acc.bal.typecode == "i"
        out = eng._refund_py(rf) if reference else eng.refund(rf)
        assert out.points == -(10**9)
        assert eng.acc.bal.typecode == "q" and eng.acc.bal[0] == -3 * 10**9
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


def _dumps_as(eng: Engine, fields: dict[str, Any]) -> bytes:
    """`eng`'s snapshot with its accounts pickled as `fields` (an older layout)."""
    state_ = {k: v for k, v in eng.__dict__.items() if k not in ("_kernel", "_inputs_kernel",
                                                                   "_txids")}
    with mock.patch.object(Accounts, "__getstate__", lambda self: (None, fields)):
        return state_codec.dumps(state_)


def _two_pairs(acc: Accounts, fields: dict[str, Any], typecode: str | None) -> None:
    """Replace the balance pair in `fields` (acc's pickled columns) by the columns before
    version 7: avail and pend of members, shad and shad_pend of shadow accounts, each of
    `typecode`, or (None) int32 where every value fits, else int64."""
    for name, (col, kind) in SIDES.items():
        v = [x if (m != 0) == kind else 0 for x, m in zip(getattr(acc, col), acc.member,
                                                          strict=True)]
        fields[name] = array(typecode or ("i" if max(map(abs, v), default=0) <= I32 else "q"),
                             v)
    del fields["bal"], fields["bal_pend"]


def _as_version_5(eng: Engine) -> bytes:
    """`eng`'s snapshot as version 5 wrote it: int64 balances (two pairs) and roots, int32
    visits, visit counts not kept below 2 * visit_slots."""
    acc = eng.acc
    old = dict(acc.__getstate__()[1])
    old["qual"] = array("q", acc.qual)
    _two_pairs(acc, old, "q")
    old["root"] = array("q", acc.root.column(acc.cap))  # dense before version 7, as tail
    old["lots"] = copy.copy(acc.lots)
    old["lots"].tail = array("i", acc.lots.tail.column(acc.cap))
    old["prog"] = array("h", acc.prog)
    old["union_no"] = array("i", acc.union_no[:len(acc.prog)])
    old["visit_ring"] = array("i", acc.visit_ring)
    old["visit_n"] = array("i", [n + 6 * acc.visit_slots if n >= acc.visit_slots else n
                                 for n in acc.visit_n])
    return _dumps_as(eng, old)


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


@pytest.mark.parametrize("prog", BIG)
def test_a_version_6_snapshot_loads_as_one_pair_and_goes_on_alike(prog: Program) -> None:
    """A version 6 snapshot (avail/pend of members, shad/shad_pend of shadow accounts,
    each int32 until a value did not fit) loads as the one pair bal/bal_pend, int64 only
    where a value does not fit int32, and goes on as the engine it was taken from."""
    items = _story()
    for cut in (4, 10, len(items)):  # shadow accounts only, a member, merged and widened
        live, _ = _feed(prog, items[:cut])
        old = dict(live.acc.__getstate__()[1])
        _two_pairs(live.acc, old, None)
        back = Engine.from_snapshot(_dumps_as(live, old))
        for name in ("bal", "bal_pend"):
            col = getattr(back.acc, name)
            assert list(col) == list(getattr(live.acc, name))
            assert col.typecode == ("i" if max(map(abs, col), default=0) <= I32 else "q")
        for name in SIDES:
            assert [back.acc.balance(name, a) for a in range(len(back.acc))] == list(old[name])[
                :len(back.acc)]
        assert state(back) == state(live) and check_invariants(back) == []
        rest, _ = _feed(prog, items[cut:], eng=back)
        want, _ = _feed(prog, items)
        assert state(rest) == state(want) and check_invariants(rest) == []


@pytest.mark.parametrize(("name", "a", "message"), [
    ("avail", 0, "account 0 is a shadow account with avail 7"),
    ("pend", 2, "account 2 is a shadow account with pend 7"),
    ("shad", 1, "account 1 is a member with shad 7"),
    ("shad_pend", 1, "account 1 is a member with shad_pend 7"),
])
def test_a_version_6_snapshot_breaking_the_pair_is_refused(name: str, a: int,
                                                          message: str) -> None:
    """A version 6 snapshot in which a shadow account holds member points, or a member
    shadow points, cannot be held by one pair: refused with a clear error."""
    eng = Engine([BIG[0]])
    for n in range(3):
        eng.pay(_pay(n, n + 1, 10**6, T0 + n))  # shadow accounts 0..2
    eng.enroll(Enrollment("quickmart", T0 + 10, appid=APP, openid=oid(2)))  # 1 a member
    assert list(eng.acc.member[:3]) == [0, 1, 0]
    old = dict(eng.acc.__getstate__()[1])
    _two_pairs(eng.acc, old, None)
    old[name][a] = 7
    with pytest.raises(UnpairedBalances, match=f"version 7: {message};"):
        Engine.from_snapshot(_dumps_as(eng, old))
    old[name][a] = 0
    assert check_invariants(Engine.from_snapshot(_dumps_as(eng, old))) == []


def test_the_pair_reads_by_name_and_refuses_the_other_kind() -> None:
    """A member's pair reads as its available and pending points, a shadow account's as
    its shadow points; writing a balance of the other kind is refused, nothing changed."""
    eng, _ = _feed(BIG[0], _story()[:10])  # account 0 a member, 1 a shadow account
    acc = eng.acc
    assert (acc.member[0], acc.member[1]) == (1, 0)
    for name, (col, kind) in SIDES.items():
        column = acc.balance_column(name)
        for a in (0, 1):
            want = getattr(acc, col)[a] if acc.member[a] == kind else 0
            assert acc.balance(name, a) == column[a] == want
        assert acc.balance_totals()[name] == int(column.sum())
    before = state(eng)
    for name, a in (("avail", 1), ("pend", 1), ("shad", 0), ("shad_pend", 0)):
        who = "a member" if acc.member[a] else "a shadow account"
        with pytest.raises(ValueError, match=f"account {a} is {who}: it holds no {name} "):
            acc.add(name, a, 1)
        with pytest.raises(ValueError, match=f"account {a} is {who}"):
            acc.put(name, a, 0)
    assert state(eng) == before
