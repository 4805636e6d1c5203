"""`paymember bench service`: the service against a trivial endpoint, same server, same generator.

Single notifications are measured with wrk (closed loop, `--connections`),
each request a distinct signed and encrypted payment notification prepared
beforehand; the reference is the trivial app (loadtests/trivial.py) on the same
uvicorn configuration, given the same requests. The batch endpoint is measured
with a sequential Python client, as events per second of wall time and per
second of the service's CPU time, beside the engine's own in-process rate.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import orjson

from loadtests import keys, procs
from loadtests.aead import Aead
from loadtests.client import EVENTS_BATCH, NOTIFY_TRANSACTION, Notifier
from loadtests.payloads import payment_data
from loadtests.population import brands_of, openid_of
from loadtests.runner import run_keys
from loadtests.signing import HmacSigner

PROGRAM = "scenarios/load_program.toml"
WRK_LUA = r"""
local reqs, i = {}, 0
init = function(args)
  local f = io.open(args[1], "rb"); local data = f:read("*a"); f:close()
  for r in string.gmatch(data, "([^%z]+)") do reqs[#reqs + 1] = r end
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
"""
BATCH_EVENTS = 10_000
BATCH_ROUNDS = 10
ROUNDS = 2


def ensure_wrk() -> str | None:
    """Return the path of wrk, installing it with apt-get when missing and possible."""
    found = shutil.which("wrk")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       capture_output=True, timeout=600)
        found = shutil.which("wrk")
    return found


def notifications(n: int, notifier: Notifier, host: str, seed: str) -> bytes:
    """Return `n` distinct raw HTTP requests of payment notifications, NUL-separated."""
    brand = brands_of((PROGRAM,))[0]
    now = int(time.time())
    out = []
    for i in range(n):
        body = notifier.payment(payment_data(f"B{seed}{i:012d}", brand.appid, brand.mchids[0],
                                             openid_of(i % 100_000), 1000 + i % 500, now))
        head = "".join(f"{k}: {v}\r\n" for k, v in notifier.notify_headers(body).items())
        out.append(f"POST {NOTIFY_TRANSACTION} HTTP/1.1\r\nHost: {host}\r\n{head}"
                   f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return b"\0".join(out)


def wrk(url: str, requests_file: Path, lua: Path, duration_s: float, connections: int,
        threads: int, pid: int | None = None) -> dict[str, float]:
    """Run wrk against `url` replaying `requests_file`; return requests/s, non-2xx, latency
    and, given the server's `pid`, its CPU microseconds per request."""
    cmd = [ensure_wrk() or "wrk", "-t", str(threads), "-c", str(connections),
           "-d", f"{max(1, int(duration_s))}s", "--latency", "-s", str(lua), url, "--",
           str(requests_file)]
    cpu0 = procs.cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 120).stdout
    cpu = procs.cpu_seconds(pid) - cpu0 if pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    lat = {p: _ms(m.group(1)) for p, m in
           ((p, re.search(rf"\s{p}%\s+([\d.]+\w+)", out)) for p in ("50", "90", "99")) if m}
    return {"rps": rps, "requests": total, "non2xx": int(bad.group(1)) if bad else 0,
            "p50_ms": lat.get("50", 0.0), "p99_ms": lat.get("99", 0.0),
            "cpu_us": cpu * 1e6 / max(total, 1)}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return 0.0
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def post_batches(url: str, bodies: list[tuple[bytes, dict[str, str]]], pid: int
                 ) -> tuple[float, float, int]:
    """POST each batch in turn; return (wall seconds, service CPU seconds, failed batches)."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    failed = 0
    cpu0, t0 = procs.cpu_seconds(pid), time.perf_counter()
    for body, headers in bodies:
        conn.request("POST", EVENTS_BATCH, body, headers)
        r = conn.getresponse()
        doc = r.read()
        if r.status != 200 or orjson.loads(doc).get("rejected"):
            failed += 1
    wall, cpu = time.perf_counter() - t0, procs.cpu_seconds(pid) - cpu0
    conn.close()
    return wall, cpu, failed


def batch_bodies(notifier: Notifier, seed: str) -> list[tuple[bytes, dict[str, str]]]:
    """Return BATCH_ROUNDS signed batch requests of BATCH_EVENTS distinct payments each."""
    brand = brands_of((PROGRAM,))[0]
    now = int(time.time())
    out = []
    for r in range(BATCH_ROUNDS):
        events = [{"kind": "payment", "data": payment_data(
            f"E{seed}{r:03d}{i:08d}", brand.appid, brand.mchids[0], openid_of(i % 50_000),
            1000 + i % 700, now)} for i in range(BATCH_EVENTS)]
        body = orjson.dumps({"events": events})
        out.append((body, notifier.api_headers("POST", EVENTS_BATCH, body)))
    return out


def engine_rate() -> float:
    """Return payments/s of `Engine.submit` in this process on the batch's events (the ceiling)."""
    from core import Engine, load_program

    eng = Engine([load_program(PROGRAM)])
    brand = brands_of((PROGRAM,))[0]
    now = int(time.time())
    data = [payment_data(f"I{i:012d}", brand.appid, brand.mchids[0], openid_of(i % 50_000),
                         1000 + i % 700, now) for i in range(50_000)]
    t0 = time.perf_counter()
    for d in data:
        eng.submit("payment", d)
    return len(data) / (time.perf_counter() - t0)


def run_bench(duration_s: float, connections: int, threads: int) -> int:
    """Measure and print the figures with their same-run references; returns the exit code."""
    if ensure_wrk() is None:
        print("paymember bench service: wrk is not installed (apt-get install wrk)",
              file=sys.stderr)
        return 2
    env = run_keys(dict(os.environ))
    k = keys.load_keys(env)
    assert k.hmac_key is not None and k.apiv3_key is not None
    notifier = Notifier(HmacSigner(k.hmac_key), Aead(k.apiv3_key))
    with tempfile.TemporaryDirectory(prefix="paymember-bench-") as tmp:
        d = Path(tmp)
        lua = d / "replay.lua"
        lua.write_text(WRK_LUA)
        ref = procs.start([procs.python(), "-m", "loadtests.trivial", "--urls-file",
                           str(d / "ref.json")], d / "ref.log", env)
        svc = procs.start([procs.python(), "-m", "paymember", "serve", "--port", "0",
                           "--program", PROGRAM, "--urls-file", str(d / "svc.json")],
                          d / "svc.log", env)
        try:
            ref_url = procs.wait_for_urls(ref, d / "ref.json", d / "ref.log")[0]
            svc_url = procs.wait_for_urls(svc, d / "svc.json", d / "svc.log")[0]
            warm = d / "warm.bin"
            warm.write_bytes(notifications(2000, notifier, "127.0.0.1", "W"))
            wrk(ref_url, warm, lua, 1, connections, threads)  # warm-up
            # Alternate reference and service runs, ROUNDS each, and keep each
            # one's best: the machine is shared, and noise only ever slows a run.
            refs, svcs = [], []
            for rnd in range(ROUNDS):
                refs.append(wrk(ref_url, warm, lua, duration_s, connections, threads))
                n = int(refs[-1]["rps"] * duration_s * 1.2) + 1000
                reqs = d / "reqs.bin"
                reqs.write_bytes(notifications(n, notifier, "127.0.0.1", f"S{rnd}"))
                svcs.append(wrk(svc_url, reqs, lua, duration_s, connections, threads))
                if svcs[-1]["requests"] > n:
                    print(f"warning: wrk sent {svcs[-1]['requests']} > {n} prepared requests; "
                          "the excess were replays (401)")
            r_ref = max(refs, key=lambda r: r["rps"])
            r_svc = max(svcs, key=lambda r: r["rps"])
            bodies = batch_bodies(notifier, "X")
            b_ref = post_batches(ref_url, bodies, ref.pid)
            b_svc = post_batches(svc_url, bodies, svc.pid)
        finally:
            procs.stop(ref)
            procs.stop(svc)
    eng = engine_rate()
    events = BATCH_EVENTS * BATCH_ROUNDS
    ratio = r_svc["rps"] / r_ref["rps"]
    print(f"single notifications (wrk, {connections} connections, {threads} thread(s), "
          f"{duration_s:g} s, 1 shard):")
    print(f"  trivial endpoint : {r_ref['rps']:10.0f} req/s  p50 {r_ref['p50_ms']:.2f} ms"
          f"  p99 {r_ref['p99_ms']:.2f} ms  non-2xx {r_ref['non2xx']}")
    print(f"  /v3/notify/txn   : {r_svc['rps']:10.0f} req/s  p50 {r_svc['p50_ms']:.2f} ms"
          f"  p99 {r_svc['p99_ms']:.2f} ms  non-2xx {r_svc['non2xx']}")
    print(f"  ratio            : {ratio:.1%} of the trivial endpoint (target >= 90%); "
          f"best of {ROUNDS} alternating runs each")
    print(f"  runs (req/s)     : trivial {[round(r['rps']) for r in refs]}, "
          f"service {[round(r['rps']) for r in svcs]}")
    print(f"batch endpoint ({BATCH_ROUNDS} x {BATCH_EVENTS} payments, sequential client):")
    print(f"  trivial endpoint : {events / b_ref[0]:10.0f} events/s wall")
    print(f"  /v1/events:batch : {events / b_svc[0]:10.0f} events/s wall, "
          f"{events / max(b_svc[1], 1e-9):10.0f} events per service CPU-second, "
          f"failed batches {b_svc[2]}")
    print(f"  engine.submit    : {eng:10.0f} events/s in-process (the ceiling of this path; "
          "target 1,000,000/s per core)")
    return 0
