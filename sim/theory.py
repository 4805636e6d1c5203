"""Queueing theory the models are validated against: Erlang C, Pollaczek-Khinchine, Little.

Formulas as in ../shared/DOMAIN.md; λ (`lam`) and μ (`mu`) are per second.
"""

from __future__ import annotations

import math


def erlang_c(c: int, a: float) -> float:
    """Return C(c, a), the probability an arrival waits in M/M/c with offered load `a` = λ/μ.

    Raises ValueError unless c >= 1 and 0 <= a < c (a stable queue).
    """
    if c < 1 or not 0 <= a < c:
        raise ValueError(f"need c >= 1 and 0 <= a < c, got c={c}, a={a}")
    # Sum a^k/k! by recurrence: no large factorials or powers.
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    top = term * a / c / (1 - a / c)
    return top / (total + top)


def mmc_wait_s(lam: float, mu: float, c: int) -> float:
    """Return the mean wait in queue W_q of M/M/c; raises ValueError when unstable."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_wait_tail(lam: float, mu: float, c: int, t_s: float) -> float:
    """Return P(W_q > t_s) of M/M/c; raises ValueError when unstable."""
    return erlang_c(c, lam / mu) * math.exp(-(c * mu - lam) * t_s)


def mg1_wait_s(lam: float, mean_s: float, second_moment_s2: float) -> float:
    """Return the M/G/1 mean wait W_q = λE[S²] / (2(1-ρ)); raises ValueError when unstable."""
    rho = lam * mean_s
    if not 0 <= rho < 1:
        raise ValueError(f"need 0 <= rho < 1, got {rho}")
    return lam * second_moment_s2 / (2 * (1 - rho))


def little_gap(mean_number: float, lam_per_s: float, mean_time_s: float) -> float:
    """Return the relative gap |L - λW| / max(L, λW) of Little's law (0 when both are 0)."""
    lw = lam_per_s * mean_time_s
    top = max(abs(mean_number), abs(lw))
    return 0.0 if top == 0 else abs(mean_number - lw) / top
