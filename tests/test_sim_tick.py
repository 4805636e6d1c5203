"""sim._tick: the model's compiled kernels against the numpy forms they replace."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import _calendar, _tick
from sim.feed import apply_order
from sim.tables import Calendar

KINDS = 6


def _plan(shopper: np.ndarray, kind: np.ndarray) -> tuple[list[int], list[int], list[tuple]]:
    """The plan by its numpy definition (as sim.feed.prepare made it before)."""
    n = len(shopper)
    order = apply_order(shopper, kind)
    ordered = kind[order]
    counts = np.bincount(ordered, minlength=KINDS).tolist()
    grouped = order[np.argsort(ordered, kind="stable")]
    bounds = [0, *(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist(), n] if n else [0]
    done = [0] * KINDS
    runs = []
    for lo, hi in pairwise(bounds):
        kd = int(ordered[lo])
        runs.append((kd, done[kd], done[kd] + hi - lo))
        done[kd] += hi - lo
    return grouped.tolist(), counts, runs


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, KINDS - 1)), max_size=60))
def test_plan_is_apply_order_then_by_kind(rows: list[tuple[int, int]]) -> None:
    shopper = np.array([r[0] for r in rows], np.int64)
    kind = np.array([r[1] for r in rows], np.int8)
    grouped, counts, runs = _tick.plan(shopper, kind, KINDS)
    assert (grouped.tolist(), counts, runs) == _plan(shopper, kind)


def test_plan_of_a_large_tick_and_bad_kinds() -> None:
    rng = np.random.default_rng(5)
    shopper = rng.integers(0, 400, 5000)
    kind = rng.integers(0, KINDS, 5000).astype(np.int8)
    grouped, counts, runs = _tick.plan(shopper, kind, KINDS)
    assert (grouped.tolist(), counts, runs) == _plan(shopper, kind)
    with pytest.raises(ValueError, match="kind 6"):
        _tick.plan(np.arange(2), np.array([0, 6], np.int8), KINDS)
    with pytest.raises(ValueError, match="3 shoppers but 2 kinds"):
        _tick.plan(np.arange(3), np.array([0, 1], np.int8), KINDS)


def _complete(shard: np.ndarray, due: np.ndarray, free: np.ndarray, s: float) -> np.ndarray:
    """Completion times by the Lindley recursion in closed form, per shard, in numpy."""
    done = np.empty(len(due))
    for j in range(len(free)):
        idx = (shard == j).nonzero()[0]
        if not len(idx):
            continue
        a = due[idx]
        k = np.arange(len(a))
        c = (k + 1) * s + np.maximum(np.maximum.accumulate(a - k * s), free[j])
        done[idx] = c
        free[j] = c[-1]
    return done


@pytest.mark.parametrize("workers", [1, 3])
def test_complete_is_the_lindley_recursion_to_the_bit(workers: int) -> None:
    rng = np.random.default_rng(workers)
    free, want_free = np.full(workers, 5.0), np.full(workers, 5.0)
    for _ in range(20):  # ticks, carrying each shard's state over
        due = np.sort(rng.uniform(0, 1, rng.integers(0, 300))) + _ * 1.0
        shard = rng.integers(0, workers, len(due)).astype(np.int16)
        got = _tick.complete(shard, due, free, 4e-3)
        assert got.tobytes() == _complete(shard, due, want_free, 4e-3).tobytes()
        assert free.tobytes() == want_free.tobytes()
    with pytest.raises(ValueError, match="shard 3"):
        _tick.complete(np.array([3], np.int16), np.zeros(1), free, 1.0)


def test_react_known_is_the_numpy_updates() -> None:
    """Points (add.at of applied earnings), enrollments, coupons and the applied payments,
    as sim.platform's numpy form computed them; a row outside the population is refused."""
    rng = np.random.default_rng(11)
    progs, shoppers, rows_n, n = 2, 50, 400, 300
    shopper_of = rng.integers(0, shoppers, rows_n)
    prog_of = rng.integers(0, progs, rows_n).astype(np.int8)
    rows = rng.integers(0, rows_n, n)
    kind = rng.integers(0, KINDS, n).astype(np.int8)
    code = rng.integers(0, 4, n).astype(np.int16)
    pts = rng.integers(-3, 4, n)
    applied, duplicate, pay, enroll, coupon = 0, 1, 0, 4, 5
    tables = [np.zeros(progs * shoppers, np.int64), np.zeros(progs * shoppers, bool),
              np.ones(progs * shoppers, bool), np.full(progs * shoppers, -1, np.int64)]
    points, member, joining, held = (t.copy() for t in tables)
    got = _tick.react_known(rows, kind, code, pts, shopper_of, prog_of, shoppers, points,
                            member.view(np.uint8), joining.view(np.uint8), held, applied,
                            duplicate, pay, enroll, coupon)
    w_points, w_member, w_joining, w_held = (t.copy() for t in tables)
    key = prog_of[rows].astype(np.int64) * shoppers + shopper_of[rows]
    ok = code == applied
    np.add.at(w_points, key[ok & (pts != 0)], pts[ok & (pts != 0)])
    enrolled = (kind == enroll) & (ok | (code == duplicate))
    w_member[key[enrolled]], w_joining[key[enrolled]] = True, False
    w_held[key[(kind == coupon) & ok]] = rows[(kind == coupon) & ok]
    at = ((kind == pay) & ok).nonzero()[0]
    assert [a.tolist() for a in got[:4]] == [at.tolist(), shopper_of[rows][at].tolist(),
                                             prog_of[rows][at].tolist(), key[at].tolist()]
    assert got[4:] == (int(enrolled.sum()), int((enrolled & ok).sum()))
    for a, b in ((points, w_points), (member, w_member), (joining, w_joining), (held, w_held)):
        assert (a == b).all()
    before = points.copy()
    with pytest.raises(IndexError):
        _tick.react_known(rows, kind, code, pts, shopper_of, prog_of, shoppers * 2,
                          points, member.view(np.uint8), joining.view(np.uint8), held,
                          applied, duplicate, pay, enroll, coupon)
    assert (points == before).all()


class _Filed:
    """The calendar by its definition: every delivery filed, with its filing number; a
    tick's are those due in it or before, sorted stably by due time (ties: filing order)."""

    def __init__(self, tick_s: float) -> None:
        self.tick_s, self.floor_tick, self.clamped = tick_s, 0, 0
        self.rows: list[int] = []
        self.att: list[int] = []
        self.due: list[float] = []

    def add(self, rows: np.ndarray, attempt: np.ndarray | int, due: np.ndarray) -> None:
        floor_s = self.floor_tick * self.tick_s
        self.clamped += int(np.count_nonzero(due < floor_s))
        self.rows += rows.tolist()
        self.att += (np.broadcast_to(attempt, len(rows))).tolist()
        self.due += np.maximum(due, floor_s).tolist()

    def pop(self, tick: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, att, due = (np.array(self.rows, np.int64), np.array(self.att, np.int8),
                          np.array(self.due, np.float64))
        now = np.floor(due / self.tick_s).astype(np.int64) <= tick
        order = due[now].argsort(kind="stable")
        self.rows, self.att, self.due = rows[~now].tolist(), att[~now].tolist(), \
            due[~now].tolist()
        return rows[now][order], att[now][order], due[now][order]


_BATCH = st.tuples(st.lists(st.integers(0, 40), max_size=80),  # due times, in quarter ticks
                   st.booleans(),  # attempts one per row (else one for all)
                   st.integers(0, 3))  # ticks to pop after it (0: none)


@given(st.lists(_BATCH, max_size=25), st.integers(0, 2**31))
def test_calendar_is_a_stable_sort_by_due_of_the_ticks_filed(batches: list[tuple],
                                                              seed: int) -> None:
    rng = np.random.default_rng(seed)
    cal, want = Calendar(2.5), _Filed(2.5)
    k = 0
    for quarters, each, pops in batches:
        due = np.array(quarters, np.float64) * 0.625 + 2.5 * k  # ties, and some past ticks
        due -= 2.5 * (rng.random(len(due)) < 0.2)
        rows = rng.integers(0, 10**9, len(due))
        att = rng.integers(0, 18, len(due)).astype(np.int8) if each else int(rng.integers(18))
        cal.add(rows, att, due)
        want.add(rows, att, due)
        for _ in range(pops):
            got, ref = cal.pop(k), want.pop(k)
            for g, w in zip(got, ref, strict=True):
                assert g.dtype == w.dtype and np.array_equal(g, w)
            k += 1
            cal.floor_tick = want.floor_tick = k
        assert cal.clamped == want.clamped and cal.size == len(want.rows)
    got, ref = cal.pop(10**6), want.pop(10**6)
    assert all(np.array_equal(g, w) for g, w in zip(got, ref, strict=True))
    assert cal.size == 0


@pytest.mark.parametrize("spread", [1e-3, 1.0, 50.0])
def test_calendar_sorts_large_ticks_like_numpy(spread: float) -> None:
    """Thousands of deliveries a tick, near-sorted to shuffled (insertion blocks, then
    several merge passes, the in-order shortcut)."""
    rng = np.random.default_rng(int(spread * 1000))
    cal, want = Calendar(10.0), _Filed(10.0)
    for b in range(40):
        n = int(rng.integers(1, 400))
        due = np.sort(rng.random(n) * 30) + rng.random(n) * spread
        due = np.round(due, 1)  # ties
        rows = np.arange(b * 1000, b * 1000 + n)
        cal.add(rows, b % 3, due)
        want.add(rows, b % 3, due)
    for k in range(12):
        got, ref = cal.pop(k), want.pop(k)
        assert all(np.array_equal(g, w) for g, w in zip(got, ref, strict=True))


def test_calendar_refuses_bad_deliveries_filing_nothing() -> None:
    cal = Calendar(10.0)
    cal.add(np.array([7]), 0, np.array([5.0]))
    bad = [(np.array([1, 2]), np.zeros(1, np.int8), np.array([1.0, 2.0]), "2 rows but 1"),
           (np.array([1, 2]), 0, np.array([1.0]), "2 rows but 1 due"),
           (np.array([1, 2]), 0, np.array([1.0, np.nan]), "due time nan"),
           (np.array([1]), 0, np.array([10.0 * (_calendar.MAX_TICK + 1)]), "outside ticks")]
    for rows, att, due, match in bad:
        with pytest.raises(ValueError, match=match):
            cal.add(rows, att, due)
    assert cal.size == 1
    assert [c.tolist() for c in cal.pop(0)] == [[7], [0], [5.0]]
    with pytest.raises(ValueError, match="positive"):
        _calendar.Buckets(0.0)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), max_size=60))
def test_by_station_is_lexsort_with_ranks(customers: list[tuple[int, int]]) -> None:
    station = np.array([c[0] for c in customers], np.int64)
    arrive = np.array([c[1] for c in customers], np.float64)  # ties: input order
    order, rank, steps = _tick.by_station(station, arrive.argsort(kind="stable"), 6)
    want = np.lexsort((arrive, station))
    assert np.array_equal(order, want)
    st_sorted = station[want]
    assert rank.tolist() == [int((st_sorted[:j] == st_sorted[j]).sum()) for j in range(len(want))]
    assert steps == (int(np.bincount(station).max()) if len(station) else 0)


def test_by_station_refuses_bad_stations() -> None:
    with pytest.raises(ValueError, match="station 6"):
        _tick.by_station(np.array([6]), np.array([0]), 6)
    with pytest.raises(ValueError, match="positions"):
        _tick.by_station(np.array([1, 2]), np.array([0]), 6)
