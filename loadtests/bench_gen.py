"""The two load generators of `paymember bench service`, and the requests they replay.

Both are closed loop (each connection sends its next request when the answer to
the last one arrived) and replay requests prepared beforehand, each sent once:
distinct signed notifications with their own nonce and transaction id, since the
service refuses a replayed nonce.

- `closed_loop`: ours, in this process: asyncio on uvloop, the fast generator's
  keep-alive connections (answers read with httptools' parser).
- `run_wrk`: wrk (from apt) with a Lua script that hands out the prepared
  requests in turn; wrk cannot sign cheaply, so it too replays pre-signed requests.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import resource
import shutil
import subprocess
import time
import urllib.request
from array import array
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import uvloop

from core.peers import ensure_program
from loadtests import procs
from loadtests.client import NOTIFY_TRANSACTION, Notifier
from loadtests.fastgen import Conn
from loadtests.payloads import payment_data
from loadtests.population import brands_of, openid_of

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
MEMBERS = 100_000  # payers of the prepared notifications
BUSY_CORES = 0.9  # a process this busy per thread is the limit of a closed-loop run


@dataclass(slots=True)
class Run:
    """One measured run: answers/s, answers, non-2xx answers, latency and server CPU."""

    rps: float
    requests: int
    non2xx: int
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU microseconds per answered request
    exhausted: bool = False  # the prepared requests ran out before the run's end
    server_cores: float = 0.0  # server CPU seconds per second of the run
    generator_cores: float = 0.0  # the generator's CPU seconds per second of the run

    def limit(self, generator_threads: int = 1) -> str:
        """Which side limited the run: "server" (a core busy), "generator" (its threads
        busy while the server was not), or "machine" (neither: they share its cores)."""
        if self.server_cores >= BUSY_CORES:
            return "server"
        if self.generator_cores >= BUSY_CORES * generator_threads:
            return "generator"
        return "machine"


def notifications(n: int, notifier: Notifier, program: str, host: str, seed: str) -> list[bytes]:
    """Return `n` distinct raw HTTP requests of payment notifications built by `notifier`
    (signed or not, encrypted or plaintext, as it is configured) for the program's brand."""
    brand = brands_of((program,))[0]
    now = int(time.time())
    out = []
    for i in range(n):
        body = notifier.payment(payment_data(f"B{seed}{i:012d}", brand.appid, brand.mchids[0],
                                             openid_of(i % MEMBERS), 1000 + i % 500, now))
        head = "".join(f"{k}: {v}\r\n" for k, v in notifier.notify_headers(body).items())
        out.append(f"POST {NOTIFY_TRANSACTION} HTTP/1.1\r\nHost: {host}\r\n{head}"
                   f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


def closed_loop(url: str, requests: list[bytes], connections: int, duration_s: float,
                pid: int, cycle: bool = False) -> Run:
    """Send `requests` over `connections` keep-alive connections to `url` for at most
    `duration_s`, each once (or over and over, `cycle`); `pid` is the server's, whose CPU
    time is measured."""
    return uvloop.run(_closed_loop(url, requests, connections, duration_s, pid, cycle))


async def _closed_loop(url: str, requests: list[bytes], connections: int, duration_s: float,
                       pid: int, cycle: bool) -> Run:
    loop = asyncio.get_running_loop()
    u = urlparse(url)
    conns = [(await loop.create_connection(Conn, u.hostname, u.port))[1]
             for _ in range(connections)]
    todo = itertools.cycle(requests) if cycle else iter(requests)
    latency_s = array("d")
    bad = 0
    cpu0, t0, own0 = procs.cpu_seconds(pid), time.perf_counter(), _own_cpu_s()
    deadline = t0 + duration_s

    async def worker(conn: Conn) -> None:
        nonlocal bad
        for raw in todo:  # bounded by the prepared requests and by the deadline
            sent = time.perf_counter()
            status = await conn.request(raw)
            done = time.perf_counter()
            latency_s.append(done - sent)
            bad += status != 200
            if conn.lost or done >= deadline:
                return

    await asyncio.gather(*(worker(c) for c in conns))
    wall, cpu = time.perf_counter() - t0, procs.cpu_seconds(pid) - cpu0
    own = _own_cpu_s() - own0
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    n = len(latency_s)
    p50, p99 = (np.percentile(np.frombuffer(latency_s), (50, 99)) * 1000).tolist() if n \
        else (0.0, 0.0)
    return Run(n / wall, n, bad, p50, p99, cpu * 1e6 / max(n, 1),
               exhausted=wall < duration_s * 0.99, server_cores=cpu / wall,
               generator_cores=own / wall)


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def handler_time(url: str, route: str) -> tuple[float, int]:
    """Return (seconds spent in the service's handler, requests answered 200) of `route`
    so far, from the service's /metrics at `url`."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    seconds, answered = 0.0, 0
    for line in text.splitlines():
        if f'route="{route}"' not in line:
            continue
        if line.startswith("paymember_handler_seconds_total{"):
            seconds = float(line.split()[-1])
        elif line.startswith("paymember_requests_total{") and 'status="200"' in line:
            answered = int(line.split()[-1])
    return seconds, answered


def find_wrk() -> str | None:
    """Return the path of wrk, or None when it is not installed (apt-get install wrk)."""
    return shutil.which("wrk")


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first when it is missing (as the
    Redis peer does redis-server). Raises RuntimeError when it cannot be installed."""
    return ensure_program("wrk", "wrk")


def run_wrk(url: str, requests: list[bytes], workdir: Path, duration_s: float,
            connections: int, threads: int, pid: int, cycle: bool = False) -> Run:
    """Replay `requests` against `url` with wrk for `duration_s` (whole seconds, at least
    1; wrk starts again from the first when they run out, which only `cycle` expects);
    `pid` is the server's. Raises FileNotFoundError when wrk is not installed."""
    wrk = find_wrk()
    if wrk is None:
        raise FileNotFoundError("wrk")
    lua, data = workdir / "replay.lua", workdir / "requests.bin"
    lua.write_text(WRK_LUA)
    data.write_bytes(b"\0".join(requests))
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d",
           f"{max(1, round(duration_s))}s", "--latency", "-s", str(lua), url, "--", str(data)]
    cpu0, t0, gen0 = procs.cpu_seconds(pid), time.perf_counter(), _children_cpu_s()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 120,
                         check=True).stdout
    cpu, wall = procs.cpu_seconds(pid) - cpu0, time.perf_counter() - t0
    gen = _children_cpu_s() - gen0  # wrk has been waited for: it is counted here
    total = int(_find(r"(\d+) requests in", out))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Run(float(_find(r"Requests/sec:\s+([\d.]+)", out)), total,
               int(bad.group(1)) if bad else 0, _ms(_find(r"\s50%\s+([\d.]+\w+)", out)),
               _ms(_find(r"\s99%\s+([\d.]+\w+)", out)), cpu * 1e6 / max(total, 1),
               exhausted=not cycle and total > len(requests), server_cores=cpu / wall,
               generator_cores=gen / wall)


def _find(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return m.group(1)


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return 0.0
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
