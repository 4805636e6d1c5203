"""The sparse account columns (core/_amap.pyx): `AccountMap` with removals and its switch
to a dense column (the lots' `tail`), `RootMap` (the accounts' `root`), and version 6
snapshots (dense root and tail) converted on loading."""

from __future__ import annotations

import copy
import pickle
from array import array
from typing import Any

import numpy as np
import pytest
from core._amap import AccountMap, RootMap
from hypothesis import given, settings
from hypothesis import strategies as st

from core import Binding, Engine, Program, check_invariants, state_codec
from tests import test_engine_inputs
from tests.helpers import APP, APP2, DAY, T0, oid, pay, program, uid
from tests.test_engine_inputs import PROGRAMS, _totals, feed, inputs, state

ops = st.lists(st.tuples(st.integers(0, 3000), st.integers(-3, 50)), max_size=400)


def _check_map(m: AccountMap, want: dict[int, int], top: int) -> None:
    assert len(m) == len(want)
    assert m.items() == sorted(want.items())
    assert [m.get(a) for a in range(top)] == [want.get(a, 0) for a in range(top)]
    assert list(np.frombuffer(m.column(top), dtype=np.int64)) == [want.get(a, 0)
                                                                 for a in range(top)]


@settings(max_examples=150, deadline=None)
@given(ops, st.sampled_from([-1, 3001, 6000]))
def test_account_map_sets_and_removes_as_a_dict(steps: list[tuple[int, int]], cap: int) -> None:
    """Any mix of numbers given (v > 0), overwritten and removed (v <= 0) reads as a dict
    does, whether the map stays sparse (no account count, or a large one) or turns dense;
    a pickled copy reads the same."""
    m = AccountMap()
    if cap >= 0:
        m.grow(cap)
    want: dict[int, int] = {}
    for a, v in steps:
        if v > 0:
            m[a] = v
            want[a] = v
        else:
            m.remove(a)
            want.pop(a, None)
    _check_map(m, want, 3005)
    back = pickle.loads(pickle.dumps(m))
    assert (back.dense, back.cap) == (m.dense, m.cap)
    _check_map(back, want, 3005)


def test_removal_keeps_every_other_key_reachable() -> None:
    """Backward-shift removal in a table full of collisions: after removing every other
    account, the rest are all found, and the table holds no dead slots."""
    m = AccountMap()
    for a in range(800):
        m.set(a, a + 1)
    for a in range(0, 800, 2):
        m.remove(a)
    assert all(m.get(a) == (a + 1) * (a % 2) for a in range(801))
    assert sum(1 for k in m.keys if k) == len(m) == 400
    m.remove(10_000)  # absent: nothing
    assert len(m) == 400


def test_a_map_told_its_accounts_turns_dense_once_that_is_smaller() -> None:
    """A table that would take more bytes than a column of the accounts becomes that
    column (for good): same numbers, 4 bytes an account; it grows with the accounts and
    widens to int64 for a number past int32."""
    m = AccountMap()
    m.grow(4000)
    for a in range(0, 4000, 5):  # 800 accounts: 1024 slots hold them
        m[a] = a + 1
    assert not m.dense and len(m.keys) == 1024
    for a in range(1, 100, 5):  # the 820th would double the table: 2048 slots, 16 KiB
        m[a] = 7
    assert m.dense and len(m.keys) == 0 and len(m.vals) == m.cap == 4000
    want = {a: a + 1 for a in range(0, 4000, 5)} | {a: 7 for a in range(1, 100, 5)}
    _check_map(m, want, 4000)
    m.grow(100)
    m[4050] = 2**40
    want[4050] = 2**40
    assert m.vals.typecode == "q" and len(m.vals) == m.cap == 4100
    m[5] = 0
    del want[5]
    _check_map(m, want, 4100)
    assert list(m)[:11] == [want.get(a, 0) for a in range(11)]
    with pytest.raises(IndexError):
        m[4100]
    assert m[-1] == 0 and m[-50] == 2**40


def test_a_dense_map_turns_sparse_again_when_the_accounts_outgrow_its_numbers() -> None:
    """Growing the accounts past four times a table of the numbers (a table taking half
    the column's bytes at most) makes the map a table again, with the same numbers; it
    turns dense again only once the table would outweigh the column."""
    m = AccountMap()
    m.grow(2000)
    for a in range(0, 2000, 2):
        m[a] = a + 3
    assert m.dense
    want = {a: a + 3 for a in range(0, 2000, 2)}
    m.grow(3000)  # 5000 accounts: a table of 2048 slots would take 16 KiB, the column 20
    assert m.dense and len(m.vals) == 5000
    m.grow(3192)  # 8192 accounts: the table takes half the column
    assert not m.dense and len(m.keys) == 2048 and m.cap == 8192
    _check_map(m, want, 8192)
    for a in range(1, 4553, 2):  # 3276 numbers: 4096 slots hold them, as many bytes as
        m[a] = 1                 # the column
        want[a] = 1
    assert not m.dense and len(m.keys) == 4096
    m[4553] = 1  # doubling to 8192 slots would outweigh the column
    want[4553] = 1
    assert m.dense and len(m.vals) == 8192
    _check_map(m, want, 8192)
    for a in list(want):
        m[a] = 0
    m.grow(1)
    assert not m.dense and len(m.keys) == 0 and len(m) == 0 and m.cap == 8193


def test_a_map_without_an_account_count_is_not_iterable() -> None:
    """union_no (no account count) refuses iteration instead of looping for ever."""
    with pytest.raises(TypeError, match="not iterable"):
        list(AccountMap())
    with pytest.raises(ValueError, match="not an AccountMap table"):
        AccountMap(array("i", [1]), array("i", [1]), 0, 5, True)


def test_root_map_reads_every_unmerged_account_as_itself() -> None:
    """RootMap: an account reads itself until it is given a root, and again once its root
    is itself; the bitmap covers the merged accounts only; a copy rebuilds it."""
    r = RootMap()
    assert r[0] == 0 and r[123_456] == 123_456 and r[:4] == [0, 1, 2, 3]
    assert (len(r), len(r.bits)) == (0, 0)
    r[7] = 0
    r[200] = 7
    r[3] = 2**33
    assert (r[7], r[200], r[3], r[8], r[199]) == (0, 7, 2**33, 8, 199)
    assert r.items() == [(3, 2**33), (7, 0), (200, 7)] and len(r.bits) == 4
    assert list(np.frombuffer(r.column(9), dtype=np.int64)) == [0, 1, 2, 2**33, 4, 5, 6, 0, 8]
    r[200] = 200
    assert r[200] == 200 and len(r) == 2
    back = state_codec.loads(state_codec.dumps({"r": r}))["r"]
    assert type(back) is RootMap and back.items() == r.items() and len(back.bits) == 1
    assert back[7] == 0 and back[3] == 2**33 and back[200] == 200
    with pytest.raises(ValueError, match="accounts >= 0"):
        r[4] = -1
    with pytest.raises(TypeError, match="not iterable"):
        list(r)


def _story_engine() -> Engine:
    """Members with lots, shadow accounts with lots, and merges (by bindings)."""
    eng = Engine([program(return_window_days=0, expiry="rolling", expiry_days=20)])
    for n in range(40):
        eng.pay(pay(n, n % 13, 1500 + 100 * n, T0 + n * 3600 * 7, app=APP if n % 3 else APP2))
    for who in range(0, 13, 2):
        eng.bind(Binding(APP, oid(who), uid(who % 5), T0 + 12 * DAY + who))
        eng.bind(Binding(APP2, oid(who), uid(who % 5), T0 + 12 * DAY + who + 1))
    for n in range(40, 60):
        eng.pay(pay(n, n % 13, 2500, T0 + 13 * DAY + n * 3600))
    return eng


def _as_version_6(eng: Engine) -> bytes:
    """`eng`'s snapshot as version 6 wrote it: `root` and the lots' `tail` dense int32
    columns of the accounts' capacity (the other parts as they are)."""
    state_ = {k: v for k, v in eng.__dict__.items() if k not in ("_kernel", "_inputs_kernel",
                                                                   "_txids")}
    acc = eng.acc
    old = dict(acc.__getstate__()[1])
    old["root"] = array("i", acc.root.column(acc.cap))
    lots = copy.copy(acc.lots)
    lots.tail = array("i", acc.lots.tail.column(acc.cap))
    old["lots"] = lots
    clone = type(acc).__new__(type(acc))
    clone.__setstate__((None, old))
    state_["acc"] = clone
    return state_codec.dumps(state_)


def test_a_version_6_snapshot_loads_sparse_and_goes_on_alike() -> None:
    """A version 6 snapshot (dense root and tail) loads with a RootMap and an AccountMap
    holding the same roots and lots, and goes on as the engine it was taken from."""
    live = _story_engine()
    assert len(live.acc.root) and len(live.acc.lots.tail)  # merges and lots to convert
    data = _as_version_6(live)
    back = Engine.from_snapshot(data)
    assert type(back.acc.root) is RootMap and type(back.acc.lots.tail) is AccountMap
    assert back.acc.root.items() == live.acc.root.items()
    assert back.acc.lots.tail.items() == live.acc.lots.tail.items()
    assert back.acc.lots.tail.cap == live.acc.cap
    assert state(back) == state(live)
    for eng in (live, back):
        for n in range(60, 90):
            eng.pay(pay(n, n % 17, 3000, T0 + 20 * DAY + n * 60))
        eng.bind(Binding(APP, oid(1), uid(2), T0 + 21 * DAY))
        eng.advance(T0 + 60 * DAY)
    assert state(back) == state(live) and check_invariants(back) == []


def test_a_version_6_snapshot_whose_accounts_mostly_hold_lots_loads_a_dense_tail() -> None:
    """Most accounts holding lots: the tail loads as a dense column, and goes on alike."""
    live = Engine([program(return_window_days=0, expiry="rolling", expiry_days=20)])
    for n in range(1100):  # 1,100 shoppers with shadow lots, room for 4,096 accounts
        live.pay(pay(n, n, 1500, T0 + n * 60))
    assert live.acc.cap == 4096 and len(live.acc.lots.tail) == 1100
    back = Engine.from_snapshot(_as_version_6(live))
    assert back.acc.lots.tail.dense and back.acc.lots.tail.items() == live.acc.lots.tail.items()
    assert state(back) == state(live)
    for eng in (live, back):
        for n in range(1100, 1400):
            eng.pay(pay(n, n % 1300, 2000, T0 + DAY + n * 60))
    assert state(back) == state(live) and check_invariants(back) == []


def test_a_version_6_snapshot_with_a_root_out_of_range_is_refused() -> None:
    """A dense root naming no account is a clear error."""
    eng = _story_engine()
    acc = eng.acc
    bad: dict[str, Any] = {k: v for k, v in eng.__dict__.items()
                           if k not in ("_kernel", "_inputs_kernel", "_txids")}
    root = acc.root.column(acc.cap)
    root[1] = acc.cap + 5
    acc.root = array("q", root)
    acc.lots.tail = array("i", acc.lots.tail.column(acc.cap))
    with pytest.raises(ValueError, match="root outside the accounts"):
        Engine.from_snapshot(state_codec.dumps(bad))


def _dense_tail_engine(programs: list[Program]) -> Engine:
    """An engine whose lots' tail is a dense column from the start (room for 4,096
    accounts made ahead, as the first account would)."""
    eng = Engine(programs)
    eng.acc._grow()
    cap = eng.acc.cap
    eng.acc.lots.tail = AccountMap(array("i"), array("i", bytes(4 * cap)), 0, cap, True)
    return eng


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PROGRAMS), st.integers(0, 60).flatmap(
    lambda m: st.tuples(*(inputs(n) for n in range(m)))))
def test_a_dense_tail_gives_what_a_sparse_one_does(prog: Program, items: tuple) -> None:
    """The compiled inputs over a dense tail (the column a busy engine's tail becomes)
    give the outcomes and state the Python reference gives over a sparse one."""
    items = _totals(list(items))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(test_engine_inputs, "Engine", _dense_tail_engine)
        fast, fast_outs = feed(prog, items, reference=False)
    ref, ref_outs = feed(prog, items, reference=True)
    assert fast.acc.lots.tail.dense and not ref.acc.lots.tail.dense
    assert fast_outs == ref_outs
    assert state(fast) == state(ref)
    assert not check_invariants(fast)
