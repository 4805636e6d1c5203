"""In-process costs for `paymember bench service`: the app without a server, and the engine.

The app is called directly as an ASGI callable with the same raw requests the
generators send (no server, no sockets), so its CPU time per request is our
layer plus the engine; `Engine.submit` on the same payments is the engine alone.
Both are measured in this process with getrusage, best of a few repeats.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any

from loadtests.client import NOTIFY_TRANSACTION

REPEATS = 3


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _asgi_calls(requests: list[bytes]) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    calls = []
    for req in requests:
        head, body = req.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")[1:]
        calls.append(([(k.lower(), v) for k, v in (ln.split(b": ", 1) for ln in lines)], body))
    return calls


def app_cost_us(requests: list[bytes], env: dict[str, str], program: str, verify: str,
                allow_plaintext: bool) -> float:
    """CPU microseconds per request of a fresh one-shard app (signatures `verify`: "hmac" or
    "off") answering `requests` (raw HTTP notifications) in this process, best of REPEATS.
    Raises AssertionError if any request was not answered 200."""
    from core import Engine, check_invariants, load_program, shard_of
    from loadtests.app import Service
    from loadtests.settings import Settings, shard_config

    calls = _asgi_calls(requests)

    async def drive(app: Service) -> None:
        async def send(message: dict[str, Any]) -> None:
            return None

        for headers, body in calls:
            msg = {"type": "http.request", "body": body, "more_body": False}

            async def receive(msg: dict[str, Any] = msg) -> dict[str, Any]:
                return msg

            await app({"type": "http", "method": "POST", "path": NOTIFY_TRANSACTION,
                       "query_string": b"", "headers": headers}, receive, send)

    best = float("inf")
    for _ in range(REPEATS):
        # Each repeat gets a fresh engine and a fresh nonce cache: every request is new.
        config = shard_config(Settings(programs=(program,), env=env, verify=verify,
                                       allow_plaintext=allow_plaintext), 0)
        app = Service(config, Engine([load_program(program)]), None, shard_of=shard_of,
                      check_invariants=check_invariants)
        c0 = _cpu_s()
        asyncio.run(drive(app))
        best = min(best, (_cpu_s() - c0) * 1e6 / len(calls))
        answered = app.metrics.requests.get(("notify_transaction", 200))
        assert answered == len(calls), f"{answered} of {len(calls)} answered 200"
    return best


def engine_cost_us(datas: list[dict[str, Any]], program: str) -> float:
    """CPU microseconds per payment of `Engine.submit` on the decrypted payments `datas`
    in this process (a fresh engine each repeat), best of REPEATS."""
    from core import Engine, load_program

    best = float("inf")
    for _ in range(REPEATS):
        eng = Engine([load_program(program)])
        submit: Callable[[str, Any], Any] = eng.submit
        c0 = _cpu_s()
        for d in datas:
            submit("payment", d)
        best = min(best, (_cpu_s() - c0) * 1e6 / len(datas))
    return best

