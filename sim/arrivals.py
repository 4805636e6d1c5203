"""Shopper visits to a place type in one time block, as superposed Poisson arrivals.

Within a block each shopper of a segment visits as a Poisson process of the same
rate, except that members near their next tier visit (1 + tier_sensitivity) times
as often. The superposition is drawn exactly: a Poisson count at the segment's
maximal rate, a uniform shopper of the segment for each, kept with probability
rate/maximal rate (thinning), at uniform times in the block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.model import Model


def block_visits(m: Model, place: int, t0: float, t1: float,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (shopper, station, arrive_s) of visits to place type `place` in [t0, t1).

    Rates are those at `t0`: blocks never straddle an hour, so profiles are constant.
    """
    pop, rng, sc = m.pop, m.rng_arr, m.sc
    q = int(m.prog_of_place[place])
    parts = []
    for g in range(len(sc.segments)):
        rate = m.visit_rate(place, g, t0)
        if rate <= 0 or not pop.seg_size[g]:
            continue
        sens = float(m.tier_sens[g])
        k = int(rng.poisson(pop.seg_size[g] * rate * (1 + sens) * (t1 - t0)))
        who = pop.seg_lo[g] + rng.integers(0, pop.seg_size[g], k)
        if sens > 0:
            keep = rng.random(k) * (1 + sens) < 1 + sens * m.near_tier(q, who)
            who = who[keep]
        parts.append(who)
    shopper = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    n = len(shopper)
    arrive = rng.uniform(t0, t1, n)
    home_prob = np.array([g.home_prob for g in sc.segments])[pop.segment[shopper]]
    away = rng.random(n) >= home_prob
    station = np.where(away, rng.integers(0, sc.places[place].count, n),
                       pop.home[place][shopper]).astype(np.int32)
    return shopper, station, arrive
