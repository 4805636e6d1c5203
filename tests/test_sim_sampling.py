"""Batched draws and routing used by the model's hot path give the same numbers as the
plain per-group draws and core's `shard_of`."""

from __future__ import annotations

import numpy as np
import pytest

from sim.dists import Dist, GroupSampler

GROUPS = {
    "exponential": [Dist("exponential", 3600.0), Dist("exponential", 60.0), None],
    "lognormal": [Dist("lognormal", 3000.0, 0.8), Dist("lognormal", 20.0, 1.5), None],
    "uniform": [Dist("uniform", 5.0, low=1.0, high=9.0), Dist("uniform", 2.0, low=1.0, high=3.0),
                None],
    "deterministic": [Dist("deterministic", 5.0), Dist("deterministic", 7.0), None],
    "mixed": [Dist("exponential", 3.0), Dist("lognormal", 20.0, 0.5), None],
}


def _per_group(rng: np.random.Generator, dists: list[Dist | None], group: np.ndarray,
               ) -> np.ndarray:
    out = np.empty(len(group))
    for g in np.unique(group):
        m = group == g
        d = dists[g]
        assert d is not None
        out[m] = d.sample(rng, int(m.sum()))
    return out


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_group_sampler_draws_what_per_group_calls_draw(name: str) -> None:
    """GroupSampler gives the numbers of one Dist.sample call per group, groups ascending."""
    dists = GROUPS[name]
    sampler = GroupSampler(dists)
    for seed in range(50):
        group = np.random.default_rng(seed).integers(0, 2, seed % 17).astype(np.int8)
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        assert (sampler.sample(a, group) == _per_group(b, dists, group)).all()
        assert a.random() == b.random()  # the generators are left in the same state
