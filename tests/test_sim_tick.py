"""sim._tick: the model's compiled kernels against the numpy forms they replace."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import _tick
from sim.feed import apply_order

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


@given(st.lists(st.lists(st.integers(0, 9), max_size=30), max_size=6))
def test_merge_runs_is_a_stable_argsort_of_the_runs_end_to_end(runs: list[list[int]]) -> None:
    rng = np.random.default_rng(len(runs))
    ticks = [np.sort(np.array(r, np.int64)) for r in runs]
    rows = [rng.integers(0, 10**9, len(t)) for t in ticks]
    att = [rng.integers(-1, 18, len(t)).astype(np.int8) for t in ticks]
    due = [rng.random(len(t)) for t in ticks]

    def joined(cols: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate([*cols, np.zeros(0, dtype)])

    order = joined(ticks, np.int64).argsort(kind="stable")
    got = _tick.merge_runs(ticks, rows, att, due)
    want = [joined(ticks, np.int64), joined(rows, np.int64), joined(att, np.int8),
             joined(due, np.float64)]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and np.array_equal(g, w[order])


def test_merge_runs_refuses_unsorted_or_ragged_runs() -> None:
    one = [np.array([2, 1]), np.array([5, 6]), np.zeros(2, np.int8), np.zeros(2)]
    with pytest.raises(ValueError, match="not sorted"):
        _tick.merge_runs(*([c] for c in one))
    with pytest.raises(ValueError, match="different lengths"):
        _tick.merge_runs([np.array([1, 2])], [np.array([5])], [one[2]], [one[3]])
    with pytest.raises(ValueError, match="one list"):
        _tick.merge_runs([one[0]], [], [], [])


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
