"""sim._tick.plan: a tick's application plan, as apply_order and sorting by kind make it."""

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
    grouped, counts, runs = _tick.plan(np.argsort(shopper, kind="stable"), shopper, kind, KINDS)
    assert (grouped.tolist(), counts, runs) == _plan(shopper, kind)


def test_plan_of_a_large_tick_and_bad_kinds() -> None:
    rng = np.random.default_rng(5)
    shopper = rng.integers(0, 400, 5000)
    kind = rng.integers(0, KINDS, 5000).astype(np.int8)
    grouped, counts, runs = _tick.plan(np.argsort(shopper, kind="stable"), shopper, kind, KINDS)
    assert (grouped.tolist(), counts, runs) == _plan(shopper, kind)
    with pytest.raises(ValueError, match="kind 6"):
        _tick.plan(np.arange(2), np.arange(2), np.array([0, 6], np.int8), KINDS)


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
