"""Random-variable specifications read from scenarios: service times, baskets, delays.

A `Dist` is data (a kind and two parameters); sampling takes the numpy Generator
passed in, so every draw is replayable from the run's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.config import Section, non_negative, one_of

DIST_KINDS = ("deterministic", "exponential", "lognormal", "uniform")


@dataclass(frozen=True, slots=True)
class Dist:
    """A non-negative distribution: `kind` with `mean` and `cv` (or `low`/`high` for uniform)."""

    kind: str
    mean: float
    cv: float = 1.0  # coefficient of variation, for lognormal
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values as float64 using `rng`."""
        if self.kind == "deterministic":
            return np.full(n, self.mean)
        if self.kind == "exponential":
            return rng.exponential(self.mean, n)
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high, n)
        sigma2 = math.log1p(self.cv * self.cv)
        mu = math.log(self.mean) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), n)

    def second_moment(self) -> float:
        """Return E[X²], as the Pollaczek-Khinchine formula needs it."""
        if self.kind == "deterministic":
            return self.mean**2
        if self.kind == "exponential":
            return 2 * self.mean**2
        if self.kind == "uniform":
            return (self.low**2 + self.low * self.high + self.high**2) / 3
        return self.mean**2 * (1 + self.cv**2)


def exponential(mean: float) -> Dist:
    """Return an exponential Dist with `mean`."""
    return Dist("exponential", mean)


class GroupSampler:
    """Draws from one of several Dists per value (a segment's basket, a delay, ...)."""

    def __init__(self, dists: list[Dist | None] | tuple[Dist | None, ...]) -> None:
        """Sample `dists[g]` for group g; None marks a group that is never drawn for."""
        self.dists = tuple(dists)
        kinds = {d.kind for d in dists if d is not None}
        self.kind = kinds.pop() if len(kinds) == 1 else None
        # Elementwise parameters of the shared kind (see `sample`).
        self.a = np.zeros(len(dists))
        self.b = np.zeros(len(dists))
        for i, d in enumerate(dists):
            if d is None:
                continue
            if d.kind == "lognormal":
                sigma2 = math.log1p(d.cv * d.cv)
                self.a[i], self.b[i] = math.log(d.mean) - sigma2 / 2, math.sqrt(sigma2)
            elif d.kind == "uniform":
                self.a[i], self.b[i] = d.low, d.high
            else:
                self.a[i] = d.mean

    def sample(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """Draw a value for each entry of `group` (ints) from `dists[group[i]]`.

        The numbers are those of drawing each present group's values with `Dist.sample`,
        groups in ascending order and entries in position order: when the groups share a
        kind this is one numpy call with elementwise parameters, which consumes the
        generator exactly as the separate calls do. Raises IndexError on a bad group.
        """
        n = len(group)
        out = np.empty(n)
        if not n:
            return out
        kind = self.kind
        if kind == "deterministic":
            out[:] = self.a[group]
            return out
        if kind is not None:
            order = group.argsort(kind="stable")
            g = group[order]
            if kind == "exponential":
                # numpy's exponential(scale) is scale times a standard exponential draw.
                out[order] = rng.standard_exponential(n) * self.a[g]
            elif kind == "lognormal":
                out[order] = rng.lognormal(self.a[g], self.b[g])
            else:
                out[order] = rng.uniform(self.a[g], self.b[g])
            return out
        for i in np.flatnonzero(np.bincount(group, minlength=len(self.dists))).tolist():
            m = group == i
            out[m] = self.dists[i].sample(rng, int(np.count_nonzero(m)))  # type: ignore[union-attr]
        return out


def read_dist(s: Section, key: str, default: Dist | None = None) -> Dist:
    """Read table `key` of `s` as a Dist (`default` when absent); raises ConfigError.

    Forms: {dist="exponential", mean=M}, {dist="deterministic", mean=M},
    {dist="lognormal", mean=M, cv=C}, {dist="uniform", low=A, high=B}.
    """
    if not s.has(key):
        if default is None:
            raise s.error(key, "required table is missing")
        s.table(key)
        return default
    t = s.table(key)
    kind = t.get("dist", str, check=one_of(*DIST_KINDS))
    if kind == "uniform":
        low = t.get("low", float, check=non_negative)
        high = t.get("high", float, check=non_negative)
        if high <= low:
            raise t.error("high", "must be > low")
        d = Dist(kind, (low + high) / 2, low=low, high=high)
    else:
        mean = t.get("mean", float, check=non_negative if kind == "deterministic" else _pos)
        cv = t.get("cv", float, 1.0, check=non_negative) if kind == "lognormal" else 1.0
        if kind == "lognormal" and cv <= 0:
            raise t.error("cv", "must be > 0 (use deterministic for no variation)")
        d = Dist(kind, mean, cv)
    t.done()
    return d


def _pos(v: float) -> str | None:
    return None if v > 0 else "must be > 0"
