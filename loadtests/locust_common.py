"""What the Locust users share: the notifier from the environment, and sending with timing.

Imported only from modules that Locust loads (after `import locust`).
"""

# ruff: noqa: I001 - locust is imported first (gevent monkey-patching), out of sort order.
import locust  # noqa: F401

import os
import time
from collections.abc import Callable

from locust import User, events
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests import env
from loadtests.aead import Aead
from loadtests.client import Notifier
from loadtests.keys import load_keys
from loadtests.locust_patch import cache_default_args
from loadtests.mix import Planned
from loadtests.results import ProcessResults
from loadtests.signing import HmacSigner

cache_default_args()  # every process Locust starts imports this module
Answered = Callable[[Planned, int, bytes], bool]


def record_run(results: ProcessResults, state: dict, out: str) -> None:
    """Stamp the start time into `results` and `state["start_s"]` when the test starts, and
    write this process's results to `out` when it quits (workers and local runs only)."""

    @events.test_start.add_listener
    def _on_test_start(environment: Environment, **_: object) -> None:
        state["start_s"] = results.start_s = time.time()

    @events.quitting.add_listener
    def _on_quitting(environment: Environment, **_: object) -> None:
        if not isinstance(environment.runner, MasterRunner):
            results.write(out)


def make_notifier() -> Notifier:
    """Return a Notifier with the keys from the environment (unsigned when verification is off)."""
    keys = load_keys()
    signed = os.environ.get(env.SIGNED, "1") != "0"
    signer = HmacSigner(keys.hmac_key) if signed and keys.hmac_key else None
    return Notifier(signer, Aead(keys.apiv3_key) if keys.apiv3_key else None)


def send(user: User, sessions: list[FastHttpSession], p: Planned, intended_s: float,
         answered: Answered, results: ProcessResults) -> None:
    """Send `p` to its shard, record its latency from `intended_s`, and book the answer."""
    results.recorder.offered(intended_s)
    sent = time.time()
    with sessions[p.shard].request(p.method, p.path, data=p.body, headers=p.headers,
                                   name=p.kind, catch_response=True) as resp:
        done = time.time()
        status = resp.status_code or 0
        ok = answered(p, status, resp.content or b"")
        if ok:
            resp.success()
        else:
            resp.failure(f"{p.kind}: HTTP {status}")
    results.recorder.record(intended_s, sent, done, ok, p.events)
