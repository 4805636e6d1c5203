"""Locust users and load shape for the scenario's mix; loaded by locustfiles only.

Locust (gevent) must be imported before anything else: import this module only
from a locustfile, never from the service, the runner or the tests.
"""



import json
import os
import random
import time
from typing import ClassVar

from locust import LoadTestShape, User, task
from locust.contrib.fasthttp import FastHttpSession

from loadtests import env
from loadtests.locust_common import make_notifier, record_run, send
from loadtests.mix import MixDriver
from loadtests.pacing import Pacer
from loadtests.population import brands_of, slice_of
from loadtests.results import ProcessResults
from loadtests.scenario import scenario_from_env

SCENARIO = scenario_from_env(os.environ)
URLS: list[str] = json.loads(os.environ[env.URLS])
OUT = os.environ[env.OUT]
PROCESSES = max(1, int(os.environ.get(env.PROCESSES, "1")))
BRANDS = brands_of(SCENARIO.programs)
RESULTS = ProcessResults()
STATE: dict[str, float] = {"start_s": 0.0}
IDLE_S = 1.0  # sleep between checks once the stages are over
USERS_MAX = max(s.users for s in SCENARIO.stages) if SCENARIO.stages else 1
# A change of the user count costs a master-worker round trip, and the shape is
# polled once a second (its worker's own period), so a new count lands up to a
# second late; the worker's 0.1-0.25 s stall on each change is gone (see
# locust_patch). When every stage is open loop, the count never has to change:
# all USERS_MAX users run throughout and each stage's rate is shared among them,
# so stage changes take effect on the users' next send.
FIXED_USERS = bool(SCENARIO.stages) and all(s.rate_per_s > 0 for s in SCENARIO.stages)


record_run(RESULTS, STATE, OUT)


def current_rate(now_s: float) -> float | None:
    """Return the per-user offered rate of the stage running at `now_s` (0: closed loop).

    None after the last stage: nothing more is offered while the users are stopped.
    """
    found = SCENARIO.stage_at(now_s - (STATE["start_s"] or now_s))
    if found is None:
        return None
    stage = found[1]
    return stage.rate_per_s / (USERS_MAX if FIXED_USERS else stage.users)


class MixUser(User):
    """Sends the scenario's mix at its stage's rate, to the shard owning each openid."""

    _free: ClassVar[list[MixDriver]] = []
    _slots: ClassVar[list[int]] = [0]

    def on_start(self) -> None:
        """Take a free driver (a member slice with its books) or make a new one."""
        self.sessions = [FastHttpSession(url, self.environment.events.request, self,
                                         concurrency=1) for url in URLS]
        if self._free:
            self.driver = self._free.pop()
        else:
            local = self._slots[0]
            self._slots[0] += 1
            worker = max(0, getattr(self.environment.runner, "worker_index", 0))
            slot = local * PROCESSES + worker
            members = slice_of(slot, USERS_MAX + PROCESSES, SCENARIO.members)
            if not members:
                members = range(slot, slot + 1)  # more users than members: one each
            self.driver = MixDriver(SCENARIO, BRANDS[slot % len(BRANDS)], make_notifier(),
                                    members, len(URLS), RESULTS.books, random.Random(slot))
        self.pacer = Pacer(time.time())

    def on_stop(self) -> None:
        """Give the driver back, so that a later user continues its member slice."""
        self._free.append(self.driver)

    def wait_time(self) -> float:
        """Sleep until the next intended send of this user's schedule."""
        now = time.time()
        rate = current_rate(now)
        return IDLE_S if rate is None else self.pacer.advance(now, rate)

    @task
    def next_request(self) -> None:
        """Draw the next request of the mix and send it."""
        now = time.time()
        intended = self.pacer.due(now)
        send(self, self.sessions, self.driver.next(now), intended, self.driver.answered,
             RESULTS)


class StagesShape(LoadTestShape):
    """Users per stage as the scenario says; stops after the last stage."""

    def tick(self) -> tuple[int, float] | None:
        """Return (users, spawn rate) of the stage now running, or None at the end."""
        found = SCENARIO.stage_at(self.get_run_time())
        if found is None:
            return None
        users = USERS_MAX if FIXED_USERS else found[1].users
        return users, float(max(users, 10))
