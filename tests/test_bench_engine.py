"""Benchmarks of the engine's payment paths (opt-in: `make bench-pytest`).

Each stores payments/s in `extra_info` beside a reference measured in the same
process (a minimal dict-update loop over the same payments), and the ratio.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from core import Engine, Payment, check_invariants, from_payments, load_program
from core.bench import DEFAULT_PROGRAM, START_S
from core.payment_block import from_columns as block_from_columns
from core.workload import payment_stream

pytestmark = pytest.mark.benchmark
PROGRAM = load_program(DEFAULT_PROGRAM)
N = 200_000


def _payments() -> list[Payment]:
    return payment_stream(PROGRAM, np.random.default_rng(7), 100_000, N, START_S).payments


def _reference_s(pays: list[Payment]) -> float:
    bal: dict[str, int] = {}
    get = bal.get
    t0 = time.perf_counter()
    for p in pays:
        bal[p.openid] = get(p.openid, 0) + p.total_fen // 100
    return time.perf_counter() - t0


def _record(benchmark: Any, pays: list[Payment]) -> None:
    best = benchmark.stats.stats.min
    ref = min(_reference_s(pays) for _ in range(3))
    benchmark.extra_info.update(payments_per_s=round(N / best), reference_per_s=round(N / ref),
                                vs_reference=round(ref / best, 3))


def test_bench_per_event_path(benchmark: Any) -> None:
    """Per-event path: `Engine.pay` over 200k payments into a fresh engine each round."""
    pays = _payments()

    def setup() -> tuple[tuple[Engine], dict]:
        return (Engine([PROGRAM]),), {}

    def run(eng: Engine) -> None:
        pay = eng.pay
        for p in pays:
            pay(p)

    benchmark.pedantic(run, setup=setup, rounds=3)
    _record(benchmark, pays)


def test_bench_batch_path(benchmark: Any) -> None:
    """Batch path: `Engine.pay_block` in blocks of 10k into a fresh engine each round."""
    pays = _payments()
    cols = from_payments(pays)
    parts = [block_from_columns(cols.slice(k, k + 10_000)) for k in range(0, N, 10_000)]
    last: list[Engine] = []

    def setup() -> tuple[tuple[Engine], dict]:
        eng = Engine([PROGRAM])
        last[:] = [eng]
        return (eng,), {}

    def run(eng: Engine) -> None:
        for part in parts:
            eng.pay_block(part)

    benchmark.pedantic(run, setup=setup, rounds=3)
    _record(benchmark, pays)
    assert not check_invariants(last[0])


def test_bench_dict_path(benchmark: Any) -> None:
    """Dict path: `Engine.submit("payment", resource)` over 50k decrypted resources."""
    from core.bench import to_dict
    pays = _payments()[:50_000]
    dicts = [to_dict(p) for p in pays]

    def setup() -> tuple[tuple[Engine], dict]:
        return (Engine([PROGRAM]),), {}

    def run(eng: Engine) -> None:
        submit = eng.submit
        for d in dicts:
            submit("payment", d)

    benchmark.pedantic(run, setup=setup, rounds=3)
    benchmark.extra_info.update(payments_per_s=round(len(dicts) / benchmark.stats.stats.min))
