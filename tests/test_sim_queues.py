"""Queue recursions against queueing theory (Erlang C, Pollaczek-Khinchine) and each other."""

from __future__ import annotations

import numpy as np
import pytest

import sim.queues as queues
from sim import (
    BALKED,
    RENEGED,
    SERVED,
    Dist,
    QueueBank,
    erlang_c,
    mg1_wait_s,
    mmc_wait_s,
    mmc_wait_tail,
)

N = 200_000  # customers per validation run
BATCHES = 40  # batch means: waits are correlated, batches of 5,000 are nearly independent


def _poisson(rng: np.random.Generator, lam: float, n: int) -> np.ndarray:
    return np.cumsum(rng.exponential(1 / lam, n))


def _mean_and_se(x: np.ndarray) -> tuple[float, float]:
    # Drop the first batch (warm-up from an empty system), then batch means.
    b = x[: len(x) // BATCHES * BATCHES].reshape(BATCHES, -1)[1:].mean(axis=1)
    return float(b.mean()), float(b.std(ddof=1) / np.sqrt(len(b)))


@pytest.mark.parametrize(("lanes", "rho"), [(1, 0.5), (1, 0.8), (2, 0.7), (4, 0.8), (8, 0.6)])
def test_mmc_mean_wait_matches_erlang_c(lanes: int, rho: float) -> None:
    """M/M/c mean wait in queue agrees with C(c,a)/(cμ-λ) within 4 standard errors."""
    rng = np.random.default_rng(100 + lanes)
    mu = 1 / 30
    lam = rho * lanes * mu
    res = QueueBank(1, lanes).serve(np.zeros(N, np.int64), _poisson(rng, lam, N),
                                    rng.exponential(1 / mu, N))
    mean, se = _mean_and_se(res.wait_s)
    assert abs(mean - mmc_wait_s(lam, mu, lanes)) < 4 * se


@pytest.mark.parametrize("lanes", [1, 3])
def test_mmc_wait_tail_matches_formula(lanes: int) -> None:
    """M/M/c P(W_q > t) agrees with C(c,a)e^{-(cμ-λ)t} within 4 standard errors."""
    rng = np.random.default_rng(7 + lanes)
    mu, rho = 1 / 20, 0.75
    lam = rho * lanes * mu
    res = QueueBank(1, lanes).serve(np.zeros(N, np.int64), _poisson(rng, lam, N),
                                    rng.exponential(1 / mu, N))
    for t in (0.0, 20.0, 60.0):
        mean, se = _mean_and_se((res.wait_s > t).astype(float))
        assert abs(mean - mmc_wait_tail(lam, mu, lanes, t)) < 4 * se + 1e-9


@pytest.mark.parametrize("service", [Dist("deterministic", 30.0), Dist("lognormal", 30.0, 1.5),
                                     Dist("uniform", 30.0, low=10.0, high=50.0)])
def test_mg1_mean_wait_matches_pollaczek_khinchine(service: Dist) -> None:
    """M/G/1 mean wait agrees with λE[S²]/(2(1-ρ)) within 4 standard errors."""
    rng = np.random.default_rng(11)
    lam = 0.7 / service.mean
    res = QueueBank(1, 1).serve(np.zeros(N, np.int64), _poisson(rng, lam, N),
                                service.sample(rng, N))
    mean, se = _mean_and_se(res.wait_s)
    assert abs(mean - mg1_wait_s(lam, service.mean, service.second_moment())) < 4 * se


def test_many_stations_vector_path_matches_erlang_c() -> None:
    """The vectorised path (many stations at once) also agrees with Erlang C."""
    rng = np.random.default_rng(3)
    stations, per, lanes, mu, rho = 400, 1000, 2, 1 / 30, 0.7
    lam = rho * lanes * mu
    arrive = np.concatenate([_poisson(rng, lam, per) for _ in range(stations)])
    station = np.repeat(np.arange(stations), per)
    res = QueueBank(stations, lanes).serve(station, arrive, rng.exponential(1 / mu, len(arrive)))
    assert len(arrive) >= queues.VECTOR_MIN_WIDTH * per  # it took the vector path
    # Stations are independent: their mean waits (after warm-up) are the samples.
    w = res.wait_s.reshape(stations, per)[:, 100:].mean(axis=1)
    assert abs(w.mean() - mmc_wait_s(lam, mu, lanes)) < 4 * w.std(ddof=1) / np.sqrt(stations)


@pytest.mark.parametrize("balk", [0, 3])
def test_vector_and_scalar_paths_agree_exactly(balk: int, monkeypatch: pytest.MonkeyPatch,
                                               ) -> None:
    """Both implementations of the recursion give identical waits and outcomes."""
    rng = np.random.default_rng(5)
    n, stations = 30_000, 60
    station = rng.integers(0, stations, n)
    arrive = np.sort(rng.uniform(0, 7200, n))
    service, patience = rng.exponential(25, n), rng.exponential(90, n)
    fast = QueueBank(stations, 2, balk).serve(station, arrive, service, patience)
    monkeypatch.setattr(queues, "VECTOR_MIN_WIDTH", 10**9)
    slow = QueueBank(stations, 2, balk).serve(station, arrive, service, patience)
    assert np.array_equal(fast.outcome, slow.outcome)
    assert np.allclose(fast.wait_s, slow.wait_s, rtol=0, atol=1e-9)
    assert (fast.outcome == RENEGED).any() and ((fast.outcome == BALKED).any() or not balk)


def test_state_carries_across_calls() -> None:
    """Serving a day in two halves gives the same result as serving it at once."""
    rng = np.random.default_rng(9)
    n = 20_000
    station = rng.integers(0, 30, n)
    arrive = np.sort(rng.uniform(0, 3600, n))
    service, patience = rng.exponential(10, n), rng.exponential(60, n)
    whole = QueueBank(30, 2, 4).serve(station, arrive, service, patience)
    bank = QueueBank(30, 2, 4)
    half = n // 2
    a = bank.serve(station[:half], arrive[:half], service[:half], patience[:half])
    b = bank.serve(station[half:], arrive[half:], service[half:], patience[half:])
    assert np.array_equal(np.r_[a.outcome, b.outcome], whole.outcome)
    assert np.allclose(np.r_[a.wait_s, b.wait_s], whole.wait_s)


def test_balking_bounds_the_queue_and_reneging_bounds_the_wait() -> None:
    """The queue never holds more than `balk` customers; no wait exceeds its patience."""
    rng = np.random.default_rng(2)
    n, balk = 50_000, 5
    arrive = _poisson(rng, 1 / 5, n)
    patience = rng.exponential(120, n)
    res = QueueBank(1, 1, balk).serve(np.zeros(n, np.int64), arrive, rng.exponential(8, n),
                                      patience)
    joined = res.outcome != BALKED
    # Queue length over time: +1 on joining, -1 on leaving the queue (start or renege).
    t = np.r_[arrive[joined], (arrive + res.wait_s)[joined]]
    step = np.r_[np.ones(joined.sum()), -np.ones(joined.sum())]
    order = np.lexsort((step, t))  # leaving before joining at equal times
    assert np.cumsum(step[order]).max() <= balk
    assert (res.wait_s <= patience + 1e-9).all()
    assert (res.outcome == SERVED).sum() > 0.5 * n


def test_erlang_c_known_values() -> None:
    """C(1, ρ) = ρ, and C(2, 1) = 1/3; an unstable load raises ValueError."""
    assert erlang_c(1, 0.6) == pytest.approx(0.6)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        erlang_c(2, 2.0)
