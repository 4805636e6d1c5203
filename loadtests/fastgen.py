"""A cheap open-loop generator for the knee and the tail: `python -m loadtests.fastgen`.

Locust spends ~0.5-1 ms of CPU a request in its own machinery, so on a small
machine it, not the service, is the limit. This generator does the same
measurement with almost nothing per request: before the first stage it builds
every request of the run from the scenario's mix (loadtests/fastplan.py: payments
signed and encrypted, redeliveries on the retry schedule re-signed, refunds,
bindings, enrollments, balance queries, batches), then sends them on the stages'
schedule over keep-alive connections (asyncio on uvloop, responses read with
httptools' parser: no hand-written HTTP parsing), and times each from its intended
send into our HdrHistograms (coordinated-omission corrected), written like a
Locust process's part file so that the runner's summary and report are the same.

Each of `--of` processes takes an equal share of the rate and a disjoint slice of
the members.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import deque
from urllib.parse import urlparse

import httptools
import uvloop

from loadtests import env, limits
from loadtests.client import Notifier
from loadtests.fastplan import Item, MixPlan, RunBooks
from loadtests.keys import load_keys
from loadtests.results import ProcessResults
from loadtests.scenario import Scenario, scenario_from_env

CONNECTIONS_PER_SHARD = 32  # per process: in flight at most, per shard
DRAIN_S = 5.0  # after a stage's last send, how long answers may still come
SIGNED_AHEAD_S_MAX = limits.TIMESTAMP_WINDOW_S - 60  # the whole run is signed before it starts
REQUESTS_MAX = 1_000_000  # built ahead, per process (~1.3 KB each)


class Conn(asyncio.Protocol):
    """One keep-alive connection: sends a raw request, resolves a future with the status;
    the answer's body is kept in `body` until the next request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Feed the parser; a complete answer resolves the waiting request."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish(0)

    def on_body(self, body: bytes) -> None:
        """httptools callback: a piece of the answer's body."""
        self.body += body

    def on_message_complete(self) -> None:
        """httptools callback: one whole answer was read."""
        self._finish(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the request in flight."""
        self.lost = True
        self._finish(0)

    def _finish(self, status: int) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(status)

    async def request(self, raw: bytes) -> int:
        """Send `raw` and return the answer's status (0 when the connection failed)."""
        assert self.transport is not None and self.waiter is None
        self.body = b""
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def run_stage(rate_per_s: float, requests: list[Item], pools: list[list[Conn]],
                    results: ProcessResults, books: RunBooks, t0: float) -> None:
    """Send `requests` open-loop at `rate_per_s` from epoch `t0` (the stage's start on the
    scenario's clock); record each from its intended time."""
    loop = asyncio.get_running_loop()
    idle = [deque(pool) for pool in pools]
    waiting: list[deque[tuple[float, Item]]] = [deque() for _ in pools]
    rec = results.recorder
    pending: set[asyncio.Task] = set()

    async def one(shard: int, conn: Conn, intended: float, item: Item) -> None:
        while True:  # bounded: each round sends one queued request or ends
            sent = time.time()
            status = await conn.request(item.raw)
            done = time.time()
            rec.record(intended, sent, done, books.answered(item, status, conn.body),
                       item.planned.events)
            if conn.lost or not waiting[shard]:
                break
            intended, item = waiting[shard].popleft()
        if not conn.lost:
            idle[shard].append(conn)

    wall0 = loop.time() - (time.time() - t0)
    for k, item in enumerate(requests):
        intended = t0 + k / rate_per_s
        delay = (wall0 + k / rate_per_s) - loop.time()
        if delay > 0.0002:
            await asyncio.sleep(delay)
        rec.offered(intended)
        books.sent(item)
        shard = item.planned.shard
        if idle[shard]:
            task = loop.create_task(one(shard, idle[shard].popleft(), intended, item))
            pending.add(task)
            task.add_done_callback(pending.discard)
        else:  # every connection busy: it waits, and the wait counts as latency
            waiting[shard].append((intended, item))
    if pending:
        await asyncio.wait(set(pending), timeout=DRAIN_S)
    for q in waiting:  # never sent before the drain ended: not sent at all
        for _, item in q:
            books.sent(item, -1)
        q.clear()


async def main_async(scenario: Scenario, urls: list[str], part: int, parts: int,
                     out_dir: str) -> None:
    """Run every stage of `scenario` against `urls` as process `part` of `parts`."""
    keys = load_keys()
    notifier = Notifier(None, None)
    if keys.hmac_key and keys.apiv3_key:
        from loadtests.aead import Aead
        from loadtests.signing import HmacSigner

        notifier = Notifier(HmacSigner(keys.hmac_key), Aead(keys.apiv3_key))
    loop = asyncio.get_running_loop()
    hosts = [urlparse(u).netloc for u in urls]
    pools: list[list[Conn]] = []
    for u in urls:
        p = urlparse(u)
        pool = []
        for _ in range(CONNECTIONS_PER_SHARD):
            _, conn = await loop.create_connection(Conn, p.hostname, p.port)
            pool.append(conn)
        pools.append(pool)
    results = ProcessResults()
    plan = MixPlan(scenario, part, parts, notifier, len(urls), hosts, random.Random(part))
    # Every request of every stage is built (signed, encrypted) before the first is
    # sent, so that building costs nothing during the run; signatures stay fresh
    # because the whole run lasts less than the timestamp window. The plan's clock
    # starts now: only the gaps between its times matter (retries, settling).
    counts = [max(1, int(s.rate_per_s / parts * s.duration_s)) for s in scenario.stages]
    if scenario.duration_s > SIGNED_AHEAD_S_MAX or sum(counts) > REQUESTS_MAX:
        raise SystemExit(f"fastgen: at most {SIGNED_AHEAD_S_MAX} s and {REQUESTS_MAX} "
                         "requests a process (signed ahead of time)")
    plan_t0 = time.time()
    offsets = [sum(s.duration_s for s in scenario.stages[:i]) for i in range(len(counts))]
    built = [plan.build(n, plan_t0 + offsets[i], scenario.stages[i].rate_per_s / parts)
             for i, n in enumerate(counts)]
    books = RunBooks(results.books)
    results.start_s = start = time.time()
    for i, stage in enumerate(scenario.stages):
        begin = start + offsets[i]
        if begin > time.time():
            await asyncio.sleep(begin - time.time())
        await run_stage(stage.rate_per_s / parts, built[i], pools, results, books, begin)
        built[i] = []
    for pool in pools:
        for c in pool:
            if c.transport is not None:
                c.transport.close()
    results.write(out_dir)


def main() -> None:
    """Entry point: the runner passes the scenario, URLs and output through the environment."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--part", type=int, required=True)
    ap.add_argument("--of", type=int, required=True)
    args = ap.parse_args()
    scenario = scenario_from_env(os.environ)
    urls: list[str] = json.loads(os.environ[env.URLS])
    uvloop.run(main_async(scenario, urls, args.part, args.of, os.environ[env.OUT]))


if __name__ == "__main__":
    main()

