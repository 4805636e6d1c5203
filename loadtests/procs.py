"""Starting and stopping the processes of a run: the service and Locust, by their own ids."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from loadtests import limits


class RunError(Exception):
    """A process of the run failed to start or to answer; the message says which and why."""


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `cmd` in its own session with output to `log`; return the process."""
    with log.open("wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def stop(proc: subprocess.Popen, timeout_s: float = limits.SHUTDOWN_DRAIN_S + 5) -> int:
    """SIGTERM `proc` (it drains and stops its children), wait `timeout_s`, then SIGKILL its group.

    Returns the exit code. Only the leader gets SIGTERM: uvicorn treats a second
    signal as "exit now", so the shards must not get one from us and one from it.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def wait_for_urls(proc: subprocess.Popen, urls_file: Path, log: Path,
                  timeout_s: float = limits.STARTUP_WAIT_S) -> list[str]:
    """Wait until the service wrote `urls_file` and every shard answers /healthz; return URLs.

    Raises RunError (with the service's log) when it exits or does not answer in time.
    """
    deadline = time.monotonic() + timeout_s
    urls: list[str] = []
    while time.monotonic() < deadline:  # bounded in time
        if proc.poll() is not None:
            raise RunError(f"the service exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        if not urls and urls_file.exists():
            urls = json.loads(urls_file.read_text())["urls"]
        if urls and all(healthy(u) for u in urls):
            return urls
        time.sleep(0.1)
    raise RunError(f"the service did not answer within {timeout_s} s:\n{log.read_text()[-2000:]}")


def healthy(url: str) -> bool:
    """True when `url`/healthz answers 200."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """Return the CPU seconds of process `pid` and its children so far (0 if gone): the
    scheduler's nanosecond count of each thread where Linux gives it, else user+system
    time in clock ticks (10 ms steps, coarse for a run of a fraction of a second)."""
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for q in procs:
        ns = _scheduled_ns(q.pid)
        if ns is not None:
            total += ns / 1e9
            continue
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def _scheduled_ns(pid: int) -> int | None:
    """Nanoseconds on CPU of every thread of `pid` (/proc/PID/task/*/schedstat), or None."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended in between
    return total


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python() -> str:
    """Return the interpreter of this process (the project's venv)."""
    return sys.executable


class CpuSampler:
    """Samples the CPU seconds of process trees once a `period_s`, in a daemon thread."""

    def __init__(self, period_s: float = 0.5) -> None:
        import threading

        self.period_s = period_s
        self.trees: dict[str, list[int]] = {}
        self.samples: list[tuple[float, dict[str, float]]] = []  # (epoch s, name -> cpu s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        """Count process `pid` (and its children) under `name`."""
        self.trees.setdefault(name, []).append(pid)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (takes one last sample)."""
        self._stop.set()
        self._thread.join(self.period_s * 4 + 5)

    def _loop(self) -> None:
        while True:  # bounded by stop(); one sample a period
            self.samples.append((time.time(), {n: sum(cpu_seconds(p) for p in pids)
                                               for n, pids in list(self.trees.items())}))
            if self._stop.wait(self.period_s):
                self.samples.append((time.time(), {n: sum(cpu_seconds(p) for p in pids)
                                                   for n, pids in list(self.trees.items())}))
                return

    def cores(self, name: str, t0: float, t1: float) -> float:
        """Mean cores used by `name` between epoch seconds `t0` and `t1` (0 if unknown)."""
        inside = [(t, s.get(name, 0.0)) for t, s in self.samples if t0 <= t <= t1]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        return max(0.0, (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]))
