"""`paymember serve` as a process: real HTTP, shards, graceful stop, start-up errors (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import shard_of
from loadtests import Aead, HmacSigner, Notifier, payment_data

KEY32 = "0123456789abcdef0123456789abcdef"
ENV = {**os.environ, "PAYMEMBER_HMAC_KEY": "k" * 32, "PAYMEMBER_APIV3_KEY": KEY32}
PROGRAM = "scenarios/load_program.toml"
APPID, STORE = "wxload00000000001", "1900000001"


def serve(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "paymember", "serve", *args],
                            env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    shards = getattr(request, "param", 1)
    urls_file = tmp_path / "urls.json"
    proc = serve("--port", "0", "--shards", str(shards), "--program", PROGRAM,
                 "--urls-file", str(urls_file))
    try:
        for _ in range(300):  # up to 30 s
            if urls_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the service exited early"
        urls = json.loads(urls_file.read_text())["urls"]
        for _ in range(300):
            try:
                urllib.request.urlopen(urls[-1] + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield urls
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, (out, err)


def post(url: str, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def openid_on(shard: int, shards: int) -> str:
    return next(o for i in range(1000) if shard_of(o := f"oServerTest{i:017d}", shards) == shard)


def test_serves_a_signed_payment_over_http_and_stops_cleanly(running: list[str]) -> None:
    """Over real HTTP a signed payment is acknowledged; SIGTERM stops the service with 0."""
    c = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    body = c.payment(payment_data("TS1", APPID, STORE, openid_on(0, 1), 1000, int(time.time())))
    assert post(running[0], "/v3/notify/transaction", body, c.notify_headers(body)) == \
        (200, {"code": "SUCCESS"})
    with urllib.request.urlopen(running[0] + "/metrics", timeout=5) as r:
        assert b'code="applied"} 1' in r.read()


@pytest.mark.parametrize("running", [2], indirect=True)
def test_two_shards_each_own_their_openids(running: list[str]) -> None:
    """With --shards 2 each shard answers on its own port and accepts only its own openids."""
    assert len(running) == 2
    c = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    for shard, url in enumerate(running):
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            assert json.loads(r.read())["shard"] == shard
        mine = c.payment(payment_data(f"TM{shard}", APPID, STORE, openid_on(shard, 2), 100,
                                      int(time.time())))
        assert post(url, "/v3/notify/transaction", mine, c.notify_headers(mine))[0] == 200
        theirs = c.payment(payment_data(f"TO{shard}", APPID, STORE, openid_on(1 - shard, 2),
                                        100, int(time.time())))
        assert post(url, "/v3/notify/transaction", theirs, c.notify_headers(theirs))[0] == 421


def test_port_in_use_is_exit_2() -> None:
    """Starting on a port that is taken exits 2 saying so."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = serve("--port", str(port), "--program", PROGRAM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "in use" in err


def test_missing_key_is_exit_2() -> None:
    """Starting without the HMAC key exits 2 naming the variable."""
    env = {k: v for k, v in ENV.items() if k != "PAYMEMBER_HMAC_KEY"}
    proc = serve("--port", "0", "--program", PROGRAM, env=env)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "PAYMEMBER_HMAC_KEY" in err


def test_bad_journal_dir_is_exit_2(tmp_path: Path) -> None:
    """Starting with a journal directory that cannot be made exits 2."""
    (tmp_path / "f").write_text("")
    proc = serve("--port", "0", "--program", PROGRAM, "--journal", str(tmp_path / "f" / "j"))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "journal" in err


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    urls_file = tmp_path / "urls.json"
    urls_file.unlink(missing_ok=True)
    proc = serve("--port", "0", "--program", PROGRAM, "--urls-file", str(urls_file), *extra)
    for _ in range(300):
        if urls_file.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate(timeout=5)
    url = json.loads(urls_file.read_text())["urls"][0]
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, url


def _payments_held(url: str, c: Notifier) -> int:
    req = urllib.request.Request(url + "/v1/admin/state",
                                 headers=dict(c.api_headers("GET", "/v1/admin/state")))
    with urllib.request.urlopen(req, timeout=10) as r:
        state = json.loads(r.read())
    assert state["invariants_ok"]
    return state["stats"]["payments"]


def test_journaled_service_survives_sigkill(tmp_path: Path) -> None:
    """With --journal, every acknowledged payment is there after a SIGKILL and restart,
    once; a redelivery after the restart is still a duplicate."""
    journal = str(tmp_path / "journal")
    c = Notifier(HmacSigner(b"k" * 32), Aead(KEY32.encode()))
    now = int(time.time())
    bodies = [c.payment(payment_data(f"TJ{k}", APPID, STORE, openid_on(0, 1), 100 + k, now))
              for k in range(20)]
    proc, url = _start(tmp_path, "--journal", journal)
    try:
        for b in bodies:
            assert post(url, "/v3/notify/transaction", b, c.notify_headers(b))[0] == 200
    finally:
        proc.kill()
        proc.communicate(timeout=20)
    proc, url = _start(tmp_path, "--journal", journal)
    try:
        assert _payments_held(url, c) == 20
        again = bodies[3]
        assert post(url, "/v3/notify/transaction", again, c.notify_headers(again))[0] == 200
        assert _payments_held(url, c) == 20
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
