"""The batch half of `paymember bench service`: JSON batches and columnar bodies.

Each is posted by a sequential client per shard (one request in flight a shard) and
measured as events per second of wall time and per second of the service's CPU time
(every shard process's); the engine's own in-process rates on the same kind of
payments, by CPU clock, are printed beside them as the ceilings of each path. Columnar
bodies are measured at several sizes on one shard, and at the largest on two shards
(the client routes each payment with `core.shard_of`, as the service's clients do).
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any
from urllib.parse import urlparse

import numpy as np
import orjson

from core import PaymentColumns, from_payments
from core.feed import parse
from core.payment_columns import count_of
from core.routing import shards_of
from core.sharded_wire import take
from loadtests import bench_gen, procs
from loadtests.client import EVENTS_BATCH, PAYMENTS_COLUMNS, Notifier
from loadtests.limits import COLUMNS_PAYMENTS_MAX
from loadtests.payloads import payment_data
from loadtests.population import brands_of, openid_of

JSON_EVENTS = 10_000  # events a JSON batch
JSON_ROUNDS = 10
COLUMNS_PAYMENTS = 262_144  # payments posted at each columnar body size, a round
COLUMNS_ROUNDS = 2
COLUMNS_SIZES = tuple(s for s in (4096, 16_384, 65_535) if s <= COLUMNS_PAYMENTS_MAX)
MEMBERS = 50_000
REPEATS = 3

Request = tuple[str, bytes, dict[str, str]]


def payments(program: str, prefix: str, n: int, now_s: int) -> list[dict[str, Any]]:
    """`n` distinct payments of the program's first brand, over MEMBERS members."""
    brand = brands_of((program,))[0]
    return [payment_data(f"{prefix}{i:010d}", brand.appid, brand.mchids[i % 2],
                         openid_of(i % MEMBERS), 1000 + i % 700, now_s) for i in range(n)]


def columns(datas: list[dict[str, Any]]) -> PaymentColumns:
    """The payments `datas` as columns."""
    return from_payments([parse("payment", d) for d in datas])


def json_requests(notifier: Notifier, datas: list[dict[str, Any]]) -> list[Request]:
    """Signed JSON batches of JSON_EVENTS payments each."""
    out = []
    for i in range(0, len(datas), JSON_EVENTS):
        body = orjson.dumps({"events": [{"kind": "payment", "data": d}
                                        for d in datas[i:i + JSON_EVENTS]]})
        out.append((EVENTS_BATCH, body, notifier.api_headers("POST", EVENTS_BATCH, body)))
    return out


def columns_requests(notifier: Notifier, cols: PaymentColumns,
                     size: int = COLUMNS_PAYMENTS_MAX) -> list[Request]:
    """Signed columnar bodies of `size` payments each (the last may hold fewer)."""
    out = []
    for i in range(0, len(cols), size):
        body, headers = notifier.columns(cols.slice(i, i + size))
        out.append((PAYMENTS_COLUMNS, body, headers))
    return out


def shard_requests(notifier: Notifier, cols: PaymentColumns, shards: int,
                   size: int) -> list[list[Request]]:
    """Per shard, signed columnar bodies of `size` payments of the openids it owns."""
    sh = shards_of(cols.openid, shards)
    return [columns_requests(notifier, take(cols, np.flatnonzero(sh == i)), size)
            for i in range(shards)]


def post_all(url: str, requests: list[Request], pid: int,
             route: str | None = None) -> dict[str, float]:
    """POST each request in turn; return wall and service CPU seconds, events applied,
    requests that failed (not 200, or a rejection listed) and, for the service's `route`
    (its metric name), the seconds spent in its handler."""
    return post_sharded([url], [requests], pid, route)


def post_sharded(urls: list[str], requests: list[list[Request]], pid: int,
                 route: str | None = None) -> dict[str, float]:
    """POST `requests[i]` in turn to `urls[i]`, all shards at once (a thread each); return
    what `post_all` returns, summed over the shards (CPU: `pid` and its children)."""
    h0 = [bench_gen.handler_time(u, route)[0] if route else 0.0 for u in urls]
    results: list[tuple[int, int]] = [(0, 0)] * len(urls)

    def post(i: int) -> None:
        u = urlparse(urls[i])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        failed = applied = 0
        for path, body, headers in requests[i]:
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            doc = orjson.loads(r.read())
            if r.status != 200 or doc.get("rejected"):
                failed += 1
            applied += doc.get("results", {}).get("applied", 0)
        conn.close()
        results[i] = (failed, applied)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(urls))]
    cpu0, t0 = procs.cpu_seconds(pid), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, procs.cpu_seconds(pid) - cpu0
    handler_s = sum(bench_gen.handler_time(u, route)[0] - h for u, h in zip(urls, h0,
                                                                              strict=True)) \
        if route else 0.0
    return {"wall_s": wall, "cpu_s": cpu, "applied": sum(a for _, a in results),
            "failed": sum(f for f, _ in results), "handler_s": handler_s,
            "events": sum(count_of(b) for reqs in requests for _, b, _ in reqs),
            "requests": sum(map(len, requests))}


def columns_split_us(program: str, requests: list[Request], env: dict[str, str]
                     ) -> dict[str, float]:
    """Microseconds per payment, in this process, of each step of the columnar handler on
    `requests`: the signature check, decoding, the engine (a fresh one) and counting the
    outcomes with the answer, by CPU clock (neighbours do not count). Best of REPEATS."""
    from core import Engine, load_program
    from loadtests.batch import Tally, count_outcomes, decode_columns, engine_pay
    from loadtests.metrics import Metrics
    from loadtests.settings import Settings, shard_config

    n = sum(count_of(body) for _, body, _ in requests)
    heads = [{k.lower().encode(): v.encode() for k, v in h.items()} for _, _, h in requests]
    best = dict.fromkeys(("auth", "decode", "engine", "count"), float("inf"))
    for _ in range(REPEATS):
        auth = shard_config(Settings(programs=(program,), env=env), 0).api_auth
        t0 = time.thread_time()
        for (path, body, _), h in zip(requests, heads, strict=True):
            auth.check(h, body, ("POST", path))
        t1 = time.thread_time()
        cols = [decode_columns(body) for _, body, _ in requests]
        t2 = time.thread_time()
        engine = Engine([load_program(program)])
        outcomes = [engine_pay(engine, c) for c in cols]
        t3 = time.thread_time()
        metrics = Metrics()
        for o in outcomes:
            tally = Tally()
            count_outcomes(o, tally, metrics)
            tally.answer()
        t4 = time.thread_time()
        for key, dt in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            best[key] = min(best[key], dt * 1e6 / n)
    return best


def engine_rates(program: str, now_s: int) -> dict[str, float]:
    """Payments per CPU-second in this process: `Engine.submit` per dict, and
    `Engine.pay_block` on ready blocks of COLUMNS_PAYMENTS_MAX (the ceilings of the JSON
    and the columnar paths)."""
    from core import Engine, block_of, load_program

    datas = payments(program, "I", 50_000, now_s)
    eng = Engine([load_program(program)])
    t0 = time.thread_time()
    for d in datas:
        eng.submit("payment", d)
    submit = len(datas) / (time.thread_time() - t0)
    cols = columns(payments(program, "K", 200_000, now_s))
    blocks = [block_of(cols.slice(i, i + COLUMNS_PAYMENTS_MAX))
              for i in range(0, len(cols), COLUMNS_PAYMENTS_MAX)]
    eng = Engine([load_program(program)])
    t0 = time.thread_time()
    for block in blocks:
        eng.pay_block(block)
    return {"submit": submit, "pay_block": len(cols) / (time.thread_time() - t0)}


def print_batch(ref: dict[str, float], js: dict[str, float],
                cols: dict[tuple[int, int], dict[str, float]],
                split: dict[int, dict[str, float]], eng: dict[str, float]) -> None:
    """Print the batch figures (columnar ones by (shards, payments a body)), and where a
    columnar payment's service CPU goes."""
    json_events = JSON_EVENTS * JSON_ROUNDS
    print("batch endpoints (a sequential client a shard, journal off):")
    print(f"  trivial endpoint     : {json_events / ref['wall_s']:10.0f} events/s wall "
          f"(the JSON batches, read and answered)")
    print(f"  /v1/events:batch     : {json_events / js['wall_s']:10.0f} events/s wall, "
          f"{json_events / max(js['cpu_s'], 1e-9):10.0f} per service CPU-second "
          f"({JSON_ROUNDS} x {JSON_EVENTS} payments; failed requests {js['failed']:.0f})")
    print(f"  columnar bodies ({COLUMNS_PAYMENTS} payments a run, best of {COLUMNS_ROUNDS} "
          "runs by service CPU; the trivial endpoint reads the same bodies once: the HTTP "
          "floor):")
    for (shards, size), c in cols.items():
        what = f"{shards} shard{'s' if shards > 1 else ' '}" if shards else "trivial "
        applied = f"; applied {c['applied']:.0f}" if shards else ""
        print(f"    {what}, {size:6d} a body: "
              f"{c['events'] / c['wall_s']:10.0f} events/s wall, "
              f"{c['events'] / max(c['cpu_s'], 1e-9):10.0f} per service CPU-second "
              f"({c['requests']:.0f} bodies; failed requests {c['failed']:.0f}{applied})")
    print(f"  engine, in-process   : submit {eng['submit']:10.0f}, pay_block "
          f"{eng['pay_block']:10.0f} per CPU-second (the ceilings; target 1,000,000 "
          "events/s per core)")
    print("  us per payment: service CPU = handler (timed in the server) + HTTP (the body's "
          "receipt: kernel, uvicorn, httptools, our ASGI glue); 1,000,000 events/s per core "
          "= 1.000 us")
    for (shards, size), c in cols.items():
        if not shards:
            continue
        cpu, handler = c["cpu_s"] * 1e6 / c["events"], c["handler_s"] * 1e6 / c["events"]
        floor = cols.get((0, size))
        http_floor = f" (trivial endpoint: {floor['cpu_s'] * 1e6 / floor['events']:.3f})" \
            if floor else ""
        print(f"    {shards} shard{'s' if shards > 1 else ' '}, {size:6d} a body: {cpu:.3f} = "
              f"handler {handler:.3f} + HTTP {cpu - handler:.3f}{http_floor}")
        steps = split.get(size) if shards == 1 else None
        if steps:
            print(f"      the handler's steps in-process, same bodies: signature "
                  f"{steps['auth']:.3f}, decode {steps['decode']:.3f}, engine "
                  f"{steps['engine']:.3f}, counting + answer {steps['count']:.3f}; sum "
                  f"{sum(steps.values()):.3f}")
