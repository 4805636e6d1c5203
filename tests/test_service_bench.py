"""The single-notification generators of `paymember bench service`, against a real service."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from loadtests import Aead, HmacSigner, Notifier, bench_batch, bench_gen, procs

KEY32 = "0123456789abcdef0123456789abcdef"
ENV = {**os.environ, "PAYMEMBER_HMAC_KEY": "k" * 32, "PAYMEMBER_APIV3_KEY": KEY32}
PROGRAM = "scenarios/load_program.toml"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, int]]:
    proc = procs.start([procs.python(), "-m", "paymember", "serve", "--port", "0",
                        "--program", PROGRAM, "--urls-file", str(tmp_path / "urls.json")],
                       tmp_path / "serve.log", ENV)
    try:
        yield procs.wait_for_urls(proc, tmp_path / "urls.json", tmp_path / "serve.log")[0], \
            proc.pid
    finally:
        procs.stop(proc)


def payments_in(url: str, notifier: Notifier) -> int:
    path = "/v1/admin/state"
    req = urllib.request.Request(url + path, headers=notifier.api_headers("GET", path))
    with urllib.request.urlopen(req, timeout=10) as r:
        return orjson.loads(r.read())["stats"]["payments"]


def test_closed_loop_sends_each_signed_notification_once(service: tuple[str, int]) -> None:
    """Our generator sends every prepared notification once; the service applies them all."""
    url, pid = service
    notifier = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    reqs = bench_gen.notifications(300, notifier, PROGRAM, "127.0.0.1", "T")
    before = bench_gen.handler_time(url, "notify_transaction")
    run = bench_gen.closed_loop(url, reqs, 8, 60.0, pid)
    assert (run.requests, run.non2xx, run.exhausted) == (300, 0, True)
    assert payments_in(url, notifier) == 300
    seconds, answered = bench_gen.handler_time(url, "notify_transaction")
    assert before == (0.0, 0) and answered == 300 and seconds > 0
    assert run.server_cores > 0 and run.generator_cores > 0


def test_a_run_names_its_limit() -> None:
    """A busy server limits a run; else a busy generator (per thread); else the machine."""
    def run(server: float, gen: float) -> bench_gen.Run:
        return bench_gen.Run(1.0, 1, 0, 0.0, 0.0, 0.0, server_cores=server,
                             generator_cores=gen)

    assert run(0.95, 0.95).limit() == "server"
    assert run(0.5, 0.95).limit() == "generator"
    assert run(0.5, 0.95).limit(generator_threads=2) == "machine"
    assert run(0.5, 1.9).limit(generator_threads=2) == "generator"
    assert run(0.5, 0.5).limit() == "machine"


def test_columns_split_times_every_step_of_the_handler() -> None:
    """The in-process split of the columnar handler runs each step on signed bodies."""
    notifier = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    cols = bench_batch.columns(bench_batch.payments(PROGRAM, "S", 300, 1_700_000_000))
    split = bench_batch.columns_split_us(PROGRAM, bench_batch.columns_requests(notifier, cols),
                                         ENV)
    assert set(split) == {"auth", "decode", "engine", "count"}
    assert all(0 < us < 1e6 for us in split.values())


def test_wrk_replays_the_prepared_notifications(service: tuple[str, int],
                                                tmp_path: Path) -> None:
    """wrk (installed with apt-get when missing) replays distinct signed notifications;
    every one it sent was accepted."""
    bench_gen.ensure_wrk()
    url, pid = service
    notifier = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    reqs = bench_gen.notifications(40_000, notifier, PROGRAM, "127.0.0.1", "W")
    run = bench_gen.run_wrk(url, reqs, tmp_path, 1.0, 4, 1, pid)
    assert run.requests > 0 and not run.exhausted
    assert run.non2xx == 0
    # wrk counts answers; the few in flight when it stopped may have been applied too.
    assert run.requests <= payments_in(url, notifier) <= run.requests + 4


def test_the_verdict_is_judged_on_server_cpu_not_on_noisy_req_rates(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A reference run slowed by the neighbours (not server-bound) makes a req/s ratio over
    100%; the verdict goes by server CPU per request and does not count that ratio."""
    from loadtests.bench import CONFIGS, TRIVIAL, print_verdict

    def run(rps: float, cpu_us: float, server_cores: float) -> bench_gen.Run:
        return bench_gen.Run(rps, int(rps), 0, 1.0, 2.0, cpu_us, server_cores=server_cores,
                             generator_cores=0.3)

    runs = {("wrk", TRIVIAL): [run(9000.0, 50.0, 0.45), run(7000.0, 55.0, 0.4)]}
    for c in CONFIGS:
        runs["wrk", c.label] = [run(10000.0, 125.0, 0.95)]
    ratios: dict[tuple[str, str], float] = {}  # none counted: the reference was not bound
    print_verdict(runs, ratios, ["wrk"])
    out = capsys.readouterr().out
    assert "by server CPU: not met (best: 40.0%" in out
    assert "no pair of runs was server-bound" in out
    runs["wrk", CONFIGS[2].label] = [run(10000.0, 52.0, 0.95)]
    print_verdict(runs, {("wrk", CONFIGS[2].label): 0.93}, ["wrk"])
    out = capsys.readouterr().out
    assert "by server CPU: met (best: 96.2%" in out and "server-bound pairs: best 93.0%" in out
