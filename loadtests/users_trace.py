"""Locust users replaying a trace open-loop at its own timestamps; loaded by a locustfile only."""



import json
import os
import time
from collections.abc import Iterator

import orjson
from locust import User, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser

from loadtests import env
from loadtests.client import EVENTS_BATCH
from loadtests.locust_common import make_notifier, record_run, send
from loadtests.mix import Planned
from loadtests.results import ProcessResults
from loadtests.scenario import load_scenario
from loadtests.trace import TraceLine, owner_process, plan, read_trace

SCENARIO = load_scenario(os.environ[env.SCENARIO])
assert SCENARIO.trace is not None, "the scenario has no [load.trace]"
TRACE = SCENARIO.trace
URLS: list[str] = json.loads(os.environ[env.URLS])
OUT = os.environ[env.OUT]
PROCESSES = max(1, int(os.environ.get(env.PROCESSES, "1")))
RESULTS = ProcessResults()
STATE: dict = {"lines": None, "t0": None, "start_s": 0.0, "sent": set(), "acked": set()}


def _lines(worker: int) -> Iterator[TraceLine]:
    for line in read_trace(TRACE.file):
        if STATE["t0"] is None:
            STATE["t0"] = line.t
        if owner_process(line, PROCESSES) == worker:
            yield line


record_run(RESULTS, STATE, OUT)


def _answered(p: Planned, status: int, body: bytes) -> bool:
    books = RESULTS.books
    books.requests[p.kind] = books.requests.get(p.kind, 0) + 1
    ok = status == 200
    if ok and p.path == EVENTS_BATCH and orjson.loads(body).get("rejected"):
        ok = False
    if ok and p.kind in ("payment", "refund") and (p.kind, p.ref) not in STATE["acked"]:
        STATE["acked"].add((p.kind, p.ref))
        if p.kind == "payment":
            books.payments_acked += 1
        else:
            books.refunds_acked += 1
    if not ok:
        code = f"{p.kind}:{status}"
        books.errors[code] = books.errors.get(code, 0) + 1
    return ok


class TraceUser(User):
    """Takes the next line of this process's share of the trace and sends it at its time."""

    def on_start(self) -> None:
        """Open one session per shard and join the process's shared line iterator."""
        self.sessions = [FastHttpSession(u, self.environment.events.request, self,
                                         concurrency=1) for u in URLS]
        self.notifier = make_notifier()
        if STATE["lines"] is None:
            worker = max(0, getattr(self.environment.runner, "worker_index", 0))
            STATE["lines"] = _lines(worker)

    def wait_time(self) -> float:
        """No wait: each task sleeps until its line's intended time."""
        return 0.0

    @task
    def replay_next(self) -> None:
        """Send the next line at start + (t - t0) / speedup, timed from that moment."""
        line = next(STATE["lines"], None)
        if line is None:
            raise StopUser()
        intended = STATE["start_s"] + (line.t - STATE["t0"]) / TRACE.speedup
        delay = intended - time.time()
        if delay > 0:
            time.sleep(delay)
        if line.kind in ("payment", "refund") and (line.kind, line.identity()) not in \
                STATE["sent"]:
            STATE["sent"].add((line.kind, line.identity()))
            if line.kind == "payment":
                RESULTS.books.payments_sent += 1
            else:
                RESULTS.books.refunds_sent += 1
        send(self, self.sessions, plan(line, self.notifier, len(URLS)), intended, _answered,
             RESULTS)
