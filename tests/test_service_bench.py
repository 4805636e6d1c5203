"""The single-notification generators of `paymember bench service`, against a real service."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from loadtests import Aead, HmacSigner, Notifier, bench_gen, procs

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
    run = bench_gen.closed_loop(url, reqs, 8, 60.0, pid)
    assert (run.requests, run.non2xx, run.exhausted) == (300, 0, True)
    assert payments_in(url, notifier) == 300


@pytest.mark.skipif(bench_gen.find_wrk() is None, reason="wrk is not installed")
def test_wrk_replays_the_prepared_notifications(service: tuple[str, int],
                                                tmp_path: Path) -> None:
    """wrk replays distinct signed notifications; every one it sent was accepted."""
    url, pid = service
    notifier = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    reqs = bench_gen.notifications(40_000, notifier, PROGRAM, "127.0.0.1", "W")
    run = bench_gen.run_wrk(url, reqs, tmp_path, 1.0, 4, 1, pid)
    assert run.requests > 0 and not run.exhausted
    assert run.non2xx == 0
    # wrk counts answers; the few in flight when it stopped may have been applied too.
    assert run.requests <= payments_in(url, notifier) <= run.requests + 4
