"""A shopper population as numpy columns: segment, home stations, and what the model
has learned of each shopper from the engine (membership, points, held coupons).

Shoppers are numbered so that each segment is one contiguous range, which lets
arrivals pick a shopper of a segment with one integer draw.
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Scenario
from sim.tables import records

_FLAGS = ("member", "joining", "paid", "offered", "invited", "bound", "mini_bound")
_KNOWN = np.dtype({"names": ["points", "coupon", *_FLAGS],
                   "formats": [np.int64, np.int64, *(np.bool_ for _ in _FLAGS)],
                   "offsets": [0, 8, *range(16, 16 + len(_FLAGS))], "itemsize": 32})


class Population:
    """Columns for `scenario.shoppers` shoppers; every draw uses the `rng` passed in."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        """Split shoppers into segments by share and draw home stations per place type."""
        n = scenario.shoppers
        shares = np.array([g.share for g in scenario.segments])
        sizes = np.floor(shares * n).astype(np.int64)
        # Largest remainder: sizes sum to n exactly.
        rest = n - int(sizes.sum())
        sizes[np.argsort(-(shares * n - sizes), kind="stable")[:rest]] += 1
        self.n = n
        self.seg_lo = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        self.seg_size = sizes
        self.segment = np.repeat(np.arange(len(sizes), dtype=np.int8), sizes)
        self.home = [rng.integers(0, p.count, n, dtype=np.int32) for p in scenario.places]
        k = len(scenario.programs)
        # What the model knows of each (program, shopper): views of one (program, shopper)
        # array of records, so that a shopper's reaction to an answer reads one cache line.
        rec = records((k, n), _KNOWN)
        self.points = rec["points"]  # points the engine reported (all buckets)
        self.coupon = rec["coupon"]  # held coupon row, -1 = none
        self.coupon.fill(-1)
        self.member = rec["member"]
        self.joining = rec["joining"]  # enrollment sent, outcome not yet known
        self.paid = rec["paid"]
        self.offered = rec["offered"]
        self.invited = rec["invited"]
        self.bound = rec["bound"]  # a binding of the pay openid was sent
        self.mini_bound = rec["mini_bound"]  # ... of the mini-program openid

    def segment_of(self, shopper: np.ndarray) -> np.ndarray:
        """Return the segment index of each shopper in `shopper`."""
        return self.segment[shopper]
