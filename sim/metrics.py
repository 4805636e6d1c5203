"""What a run measures, as it goes: queue waits, payments over time, engine load,
notification latency, retries, and samples of the engine's totals.

Counts over time are per-second histograms over the run's horizon, so that peak
rates and Little's law come from the same counts as the charts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.queues import BALKED, RENEGED, SERVED, Served
from sim.theory import little_gap

ENGINE_FLUSH_ROWS = 1 << 20  # engine records buffered before folding into counts


def sample_index(t_s: np.ndarray, horizon_s: int) -> np.ndarray:
    """Index of the first sampling instant (k + 0.5 s) at or after each time in `t_s`.

    Counting entries and exits this way gives the number present at every half-second
    instant; sampling between whole seconds keeps times that fall on whole seconds
    (ticks, retry offsets) from biasing the time average.
    """
    return np.clip(np.ceil(t_s - 0.5), 0, horizon_s).astype(np.int64)


@dataclass
class PlaceStats:
    """Per place type: waits of served customers, outcomes, and queue in/out per second."""

    name: str
    horizon_s: int
    waits: list[np.ndarray] = field(default_factory=list)
    served: int = 0
    balked: int = 0
    reneged: int = 0
    queue_time_s: float = 0.0  # total time joined customers spent queued
    joined: int = 0

    def __post_init__(self) -> None:
        self.q_in = np.zeros(self.horizon_s + 1, np.int64)
        self.q_out = np.zeros(self.horizon_s + 1, np.int64)

    def record(self, arrive_s: np.ndarray, res: Served) -> None:
        """Record customers that arrived at `arrive_s` and were served as `res` says."""
        ok = res.outcome == SERVED
        self.served += int(ok.sum())
        self.balked += int((res.outcome == BALKED).sum())
        self.reneged += int((res.outcome == RENEGED).sum())
        self.waits.append(res.wait_s[ok].astype(np.float32))
        joined = res.outcome != BALKED
        self.joined += int(joined.sum())
        h = self.horizon_s
        # Time queued counted within the horizon, as the per-second counts are.
        self.queue_time_s += float((np.minimum(res.start_s[joined], h)
                                    - np.minimum(arrive_s[joined], h)).sum())
        self.q_in += np.bincount(sample_index(arrive_s[joined], h), minlength=h + 1)
        self.q_out += np.bincount(sample_index(res.start_s[joined], h), minlength=h + 1)

    def wait_all(self) -> np.ndarray:
        """All waits of served customers, seconds."""
        return np.concatenate(self.waits) if self.waits else np.zeros(0, np.float32)


def time_average(q_in: np.ndarray, q_out: np.ndarray) -> float:
    """Mean number present over the horizon, sampled at each k + 0.5 s instant, from the
    entry and exit counts per sampling instant (see `sample_index`)."""
    present = np.cumsum(q_in) - np.cumsum(q_out)
    # The last slot holds what was clipped to the horizon's end: nobody is present then.
    return float(present[:-1].mean())


def percentiles(x: np.ndarray, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
    """Return {'mean', 'p50', ...} of `x` rounded to milliseconds (zeros when empty)."""
    if not len(x):
        return {"mean": 0.0, **{f"p{q:g}": 0.0 for q in qs}}
    v = np.percentile(x.astype(np.float64), qs)
    return {"mean": round(float(x.astype(np.float64).mean()), 3),
            **{f"p{q:g}": round(float(p), 3) for q, p in zip(qs, v, strict=True)}}


def little(q_in: np.ndarray, q_out: np.ndarray, total_time_s: float, count: int,
           horizon_s: int) -> dict[str, Any]:
    """Little's law on a run: L sampled over time against λ·W from per-customer times.

    `ok` when they agree within the sampling error, which has a hard bound: a customer's
    time counted in sampling instants differs from its true time by less than 1 s, so
    the totals differ by less than `count` seconds. (The error is often far smaller, about
    sqrt(count/6) s, but not when times fall on a lattice, e.g. deterministic service.)
    A customer lost or counted twice moves the totals by its whole time in the system.
    """
    lam = count / horizon_s
    w = total_time_s / count if count else 0.0
    L = time_average(q_in, q_out)
    gap_s = abs(L - lam * w) * horizon_s
    return {"L": round(L, 4), "lambda_per_s": round(lam, 6), "W_s": round(w, 4),
            "rel_gap": round(little_gap(L, lam, w), 5),
            "ok": bool(gap_s < count + 1e-6 * horizon_s)}


@dataclass
class Recorder:
    """Everything a run measures; filled by the model, read by the summary and charts."""

    horizon_s: int
    places: list[PlaceStats]
    capacity_per_s: float
    payments_per_s: np.ndarray = field(init=False)
    deliveries_per_min: np.ndarray = field(init=False)
    backlog_per_min: np.ndarray = field(init=False)
    attempts: np.ndarray = field(default_factory=lambda: np.zeros(18, np.int64))
    codes: np.ndarray = field(init=False)
    lost: int = 0
    abandoned: int = 0
    duplicates_sent: int = 0
    duplicates_delivered: int = 0
    backlog_max: int = 0
    engine_time_s: float = 0.0  # total time inputs spent in the engine (queue + service)
    engine_inputs: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    funnel: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from sim.feed import CODES

        h = self.horizon_s
        minutes = h // 60 + 1
        self.payments_per_s = np.zeros(h + 1, np.int64)
        self.deliveries_per_min = np.zeros(minutes, np.int64)
        self.backlog_per_min = np.zeros(minutes, np.int64)
        self.codes = np.zeros(len(CODES), np.int64)
        self.e_in = np.zeros(h + 1, np.int64)
        self.e_out = np.zeros(h + 1, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_n = 0

    def count(self, key: str, n: int = 1) -> None:
        """Add `n` to funnel counter `key`."""
        self.funnel[key] = self.funnel.get(key, 0) + n

    def payments(self, success_s: np.ndarray) -> None:
        """Count payments succeeding at `success_s`."""
        self.payments_per_s += np.bincount(np.minimum(success_s, self.horizon_s).astype(np.int64),
                                           minlength=self.horizon_s + 1)

    def engine(self, due_s: np.ndarray, done_s: np.ndarray) -> None:
        """Record inputs that reached the engine at `due_s` and completed at `done_s`."""
        self._pending.append((due_s, done_s))
        self._pending_n += len(due_s)
        if self._pending_n > ENGINE_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Fold the buffered engine records into the per-second counts."""
        if not self._pending:
            return
        due_s = np.concatenate([p[0] for p in self._pending])
        done_s = np.concatenate([p[1] for p in self._pending])
        self._pending.clear()
        self._pending_n = 0
        h = self.horizon_s
        due_i = np.minimum(due_s, h).astype(np.int64)
        self.deliveries_per_min += np.bincount(due_i // 60, minlength=len(self.deliveries_per_min))
        self.e_in += np.bincount(sample_index(due_s, h), minlength=h + 1)
        # Time in the engine counted within the horizon, as the per-second counts are.
        done_s = np.minimum(done_s, h)
        self.e_out += np.bincount(sample_index(done_s, h), minlength=h + 1)
        self.engine_time_s += float((done_s - np.minimum(due_s, h)).sum())
        self.engine_inputs += len(due_s)

    def backlog(self, now_s: float, n: int) -> None:
        """Record an engine backlog of `n` inputs at `now_s`."""
        m = min(int(now_s) // 60, len(self.backlog_per_min) - 1)
        if n > self.backlog_per_min[m]:
            self.backlog_per_min[m] = n
        self.backlog_max = max(self.backlog_max, n)
