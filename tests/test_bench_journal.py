"""Benchmarks of durability: journal append, replay and snapshots (opt-in: `make bench-pytest`).

Each stores events/s (or MB/s) in `extra_info`, with a ratio against a reference
run in the same process: replay against reading and checksumming the same bytes,
appends against a bare list append of the same payments.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import Engine, Payment, limits, load_program
from core.journal import Journal
from core.journal_format import list_segments
from core.payment_columns import from_payments
from core.recovery import apply_to_engine, replay
from core.snapshot import read_snapshot, write_snapshot
from core.workload import payment_stream

pytestmark = pytest.mark.benchmark
ROOT = Path(__file__).resolve().parents[1]
PROGRAM = load_program(ROOT / "scenarios/programs/convenience.toml")
START_S = 1_780_000_000
REPLAY_PAYMENTS = 500_000


def payments(n: int, members: int = 100_000) -> list[Payment]:
    """`n` seeded payments over `members` shoppers."""
    return payment_stream(PROGRAM, np.random.default_rng(1), members, n, START_S).payments


def append_groups(j: Journal, pays: list[Payment], group: int) -> None:
    """Append `pays` one by one to `j`, committing after every `group`."""
    for k in range(0, len(pays), group):
        for p in pays[k:k + group]:
            j.append_payment(p)
        j.commit()


def journal_of(directory: Path, pays: list[Payment], group: int = 1000) -> int:
    """Journal `pays` in groups of `group` (per-event appends); returns the bytes written."""
    with Journal.open(directory, "off") as j:
        append_groups(j, pays, group)
    return sum(p.stat().st_size for _, p in list_segments(directory))


def reference_read(directory: Path) -> float:
    """Seconds to read and crc32 the journal's bytes: the floor under replay."""
    t0 = time.perf_counter()
    for _, path in list_segments(directory):
        zlib.crc32(path.read_bytes())
    return time.perf_counter() - t0


def rate(benchmark: Any, n: int) -> float:
    """Events per second of the benchmark's fastest round over `n` events."""
    return n / benchmark.stats.stats.min


def test_bench_append_per_event(benchmark: Any, tmp_path: Path) -> None:
    """append_payment one by one, commit every 1000 (fsync off): payments/s."""
    pays = payments(100_000)
    j = Journal.open(tmp_path, "off")

    def run() -> None:
        append_groups(j, pays, 1000)

    benchmark.pedantic(run, rounds=3, iterations=1)
    j.close()
    t0 = time.perf_counter()
    sink: list[Payment] = []
    for p in pays:
        sink.append(p)
    ref = time.perf_counter() - t0
    benchmark.extra_info["payments_per_s"] = round(rate(benchmark, len(pays)))
    benchmark.extra_info["vs_list_append"] = round(ref / benchmark.stats.stats.min, 4)


def test_bench_append_columns(benchmark: Any, tmp_path: Path) -> None:
    """append_payments of 4096-payment columns, commit each (fsync off): payments/s."""
    cols = from_payments(payments(4096))
    j = Journal.open(tmp_path, "off")

    def run() -> None:
        for _ in range(25):
            j.append_payments(cols)
            j.commit()

    benchmark.pedantic(run, rounds=3, iterations=1)
    j.close()
    benchmark.extra_info["payments_per_s"] = round(rate(benchmark, 25 * 4096))


def test_bench_commit_always(benchmark: Any, tmp_path: Path) -> None:
    """Group commits of 100 payments under fsync "always": commits/s and payments/s."""
    pays = payments(10_000)
    j = Journal.open(tmp_path, "always")

    def run() -> None:
        append_groups(j, pays, 100)

    benchmark.pedantic(run, rounds=3, iterations=1)
    j.close()
    benchmark.extra_info["payments_per_s"] = round(rate(benchmark, len(pays)))
    benchmark.extra_info["commits_per_s"] = round(rate(benchmark, len(pays) // 100))


def test_bench_replay_decode(benchmark: Any, tmp_path: Path) -> None:
    """Replay: read, verify and decode to columns (the journal's share): payments/s."""
    size = journal_of(tmp_path, payments(REPLAY_PAYMENTS))
    benchmark.pedantic(lambda: replay(tmp_path, 0, lambda rec: rec.payments()),
                       rounds=3, iterations=1)
    ref = min(reference_read(tmp_path) for _ in range(3))
    benchmark.extra_info["payments_per_s"] = round(rate(benchmark, REPLAY_PAYMENTS))
    benchmark.extra_info["bytes_per_payment"] = round(size / REPLAY_PAYMENTS, 1)
    benchmark.extra_info["vs_read_and_crc"] = round(ref / benchmark.stats.stats.min, 3)


def test_bench_replay_into_engine(benchmark: Any, tmp_path: Path) -> None:
    """Replay into a fresh Engine through apply_to_engine, payments records merged as
    recovery merges them: payments/s end to end."""
    n = 200_000
    journal_of(tmp_path, payments(n))

    def run() -> None:
        eng = Engine([PROGRAM])
        replay(tmp_path, 0, lambda rec: apply_to_engine(eng, rec),
               merge_payments=limits.JOURNAL_REPLAY_RUN_PAYMENTS_MAX)

    benchmark.pedantic(run, rounds=2, iterations=1)
    benchmark.extra_info["payments_per_s"] = round(rate(benchmark, n))


def test_bench_snapshot_write(benchmark: Any, tmp_path: Path) -> None:
    """Write a 256 MB snapshot (temp file, fsync, rename, fsync dir): MB/s."""
    body = os.urandom(256 * 1024 * 1024)
    benchmark.pedantic(lambda: write_snapshot(tmp_path, 1, body), rounds=3, iterations=1)
    benchmark.extra_info["mb_per_s"] = round(rate(benchmark, 256))


def test_bench_snapshot_read(benchmark: Any, tmp_path: Path) -> None:
    """Read and verify a 256 MB snapshot (the restart's first step): MB/s."""
    path = write_snapshot(tmp_path, 1, os.urandom(256 * 1024 * 1024))
    benchmark.pedantic(lambda: read_snapshot(path), rounds=3, iterations=1)
    benchmark.extra_info["mb_per_s"] = round(rate(benchmark, 256))


def test_bench_engine_snapshot_restart(benchmark: Any, tmp_path: Path) -> None:
    """Engine.snapshot -> file -> Engine.from_snapshot for 200k members: seconds and bytes."""
    eng = Engine([PROGRAM])
    for p in payments(400_000, members=200_000):
        eng.pay(p)

    def run() -> None:
        path = write_snapshot(tmp_path, 1, eng.snapshot())
        Engine.from_snapshot(read_snapshot(path).body)

    benchmark.pedantic(run, rounds=2, iterations=1)
    benchmark.extra_info["snapshot_bytes"] = (tmp_path / "00000000000000000001.snapshot"
                                              ).stat().st_size
    benchmark.extra_info["members"] = len(eng.acc)
