"""Synthetic, seeded workloads for benchmarks and tests: shoppers and their payments.

Everything is drawn from a numpy Generator passed in, so a workload is a pure
function of its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.program import Program
from core.types import Payment

_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)


def random_ids(rng: np.random.Generator, n: int, prefix: str = "o", length: int = 28) -> list[str]:
    """`n` distinct-with-overwhelming-probability ids of `length` chars, starting `prefix`."""
    body = _ALPHABET[rng.integers(0, 64, size=(n, length - len(prefix)), dtype=np.uint8)]
    raw = body.view(f"S{length - len(prefix)}").ravel()
    return [prefix + s.decode() for s in raw.tolist()]


def baskets(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` basket totals in fen: lognormal around 20 yuan, at least 1 fen."""
    return np.maximum(1, rng.lognormal(np.log(2000), 0.8, size=n)).astype(np.int64)


@dataclass(slots=True)
class Workload:
    """Shoppers (openids of one app) and a time-ordered stream of payments over them."""

    appid: str
    openids: list[str]
    payments: list[Payment]
    member_count: int  # shoppers [0, member_count) are bound and enrolled before the stream


def payment_stream(program: Program, rng: np.random.Generator, members: int, events: int,
                   start_s: int, duplicate_share: float = 0.02,
                   foreign_share: float = 0.02, enrolled_share: float = 0.2) -> Workload:
    """Draw `events` payments (a `duplicate_share` of them redeliveries) by `members`
    shoppers of `program` over one day from `start_s`: lognormal baskets around 20 yuan,
    merchants across the program's channels, some in foreign currencies."""
    appid = program.appids[0]
    openids = random_ids(rng, members)
    mchids = list(program.merchants)
    who = rng.integers(0, members, size=events)
    mch = rng.integers(0, len(mchids), size=events)
    total = baskets(rng, events)
    times = start_s + np.sort(rng.integers(0, 86_400, size=events))
    fx = [c for c in program.fx] or [program.home_currency]
    foreign = rng.random(events) < foreign_share
    ccy = rng.integers(0, len(fx), size=events)
    dup = rng.random(events) < duplicate_share
    payments: list[Payment] = []
    home = program.home_currency
    w, m, t, tot, f, c, d = (who.tolist(), mch.tolist(), times.tolist(), total.tolist(),
                             foreign.tolist(), ccy.tolist(), dup.tolist())
    for i in range(events):
        if d[i] and payments:
            payments.append(payments[-1 - (i % min(len(payments), 50))])
            continue
        payments.append(Payment(f"4200{i:028d}", appid, mchids[m[i]], openids[w[i]], tot[i],
                                t[i], currency=fx[c[i]] if f[i] else home))
    return Workload(appid, openids, payments, int(members * enrolled_share))
