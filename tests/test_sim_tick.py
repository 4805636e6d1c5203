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
