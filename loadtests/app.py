"""The ASGI application: routing, the notification endpoints, the internal API, applying.

A bare ASGI callable (no framework): routing is a dict lookup and every
answer is pre-encoded JSON. One `Service` owns one engine (one shard). The
parts live beside it: request authentication in auth.py, the notification's
envelope and resource in notify.py, batches in batch.py, read-only answers in
queries.py, ASGI messages in asgi.py, counters in metrics.py.

The common request (a valid notification, answered 200) is the one the
service must serve cheaply: it takes no per-request allocation beyond the
header dict and the parsed JSON, counts by kind with identity tests (a Code
hashes in Python), sends answers built once, and appends its latency to a
buffer bucketed in bulk. Anything unusual leaves that path through a
Rejection. The time spent in the handler itself (authentication, decoding,
the engine) is summed per route, so /metrics shows the HTTP server's share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter, thread_time
from typing import Any
from urllib.parse import unquote

import orjson

from core import Code
from loadtests import asgi, errors, limits
from loadtests.aead import Aead
from loadtests.asgi import (
    JSON,
    OK_BODY,
    OK_START,
    SUCCESS_BODY,
    TEXT,
    Headers,
    Receive,
    Scope,
    Send,
)
from loadtests.auth import Authenticator
from loadtests.batch import Tally, apply_events, check_owner, decode_columns, pay_record
from loadtests.body import Disconnected, body_limit, check_declared, loads, read_rest
from loadtests.errors import Rejection
from loadtests.metrics import Metrics, RouteLatency
from loadtests.notify import PAYMENT_EVENTS, PLAINTEXT, REFUND_EVENTS, ResourceReader
from loadtests.queries import member_answer, state_answer
from loadtests.types import EngineLike, Journal

log = logging.getLogger("paymember.service")

__all__ = ["PLAINTEXT", "SUCCESS_BODY", "Service", "ServiceConfig"]

Handler = Callable[[Scope, Headers, bytes], bytes]
_APPLIED, _DUPLICATE = Code.APPLIED, Code.DUPLICATE


class Route:
    """A POST route: its metric name, handler, body limit, its counters, and the clock its
    handler is timed with: CPU time for batches; wall time for single inputs, since a
    CPU clock costs over a microsecond a read here (wall time counts any preemption)."""

    __slots__ = ("clock", "handler", "latency", "limit", "name", "ok_key")

    def __init__(self, name: str, handler: Handler, limit: int, latency: RouteLatency,
                 clock: Callable[[], float] = perf_counter) -> None:
        self.name, self.handler, self.limit, self.latency = name, handler, limit, latency
        self.ok_key = (name, 200)
        self.clock = clock


@dataclass(slots=True)
class ServiceConfig:
    """How one shard authenticates and decodes: verifiers (None = off), APIv3 key, shard."""

    notify_auth: Authenticator
    api_auth: Authenticator
    aead: Aead | None
    allow_plaintext: bool = False
    programs: tuple[str, ...] = ()
    shard: int = 0
    shards: int = 1
    columns_payments_max: int = limits.COLUMNS_PAYMENTS_MAX
    columns_body_bytes_max: int = limits.COLUMNS_BODY_BYTES_MAX


class Service:
    """ASGI app serving one engine shard; `journal` (optional) is flushed before each 200."""

    def __init__(self, config: ServiceConfig, engine: EngineLike,
                 journal: Journal | None = None, shard_of: Callable[[str, int], int] | None = None,
                 check_invariants: Callable[[Any], list[str]] | None = None) -> None:
        self.config, self.engine, self.journal = config, engine, journal
        self.shard_of, self.check_invariants = shard_of, check_invariants
        self.metrics = Metrics(config.shard)
        self._sharded = config.shards > 1 and shard_of is not None
        self._resources = ResourceReader(config.aead, config.allow_plaintext)
        body_max = {"/v1/payments:columns": config.columns_body_bytes_max}
        self._post = {path: Route(name, handler, body_max.get(path) or body_limit(path),
                                  self.metrics.route(name), clock)
                      for path, name, handler, clock in (
            ("/v3/notify/transaction", "notify_transaction", self._notify_transaction,
             perf_counter),
            ("/v3/notify/refund", "notify_refund", self._notify_refund, perf_counter),
            ("/v1/events:batch", "events_batch", self._batch, thread_time),
            ("/v1/payments:columns", "payments_columns", self._columns, thread_time),
            ("/v1/bindings", "bindings", self._binding, perf_counter),
            ("/v1/enrollments", "enrollments", self._enrollment, perf_counter))}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (http or lifespan)."""
        t0 = perf_counter()
        if scope["type"] != "http":  # http is served here: one coroutine less a request
            if scope["type"] == "lifespan":
                await asgi.lifespan(receive, send, self._shutdown)
            return
        path, method = scope["path"], scope["method"]
        route = self._post.get(path) if method == "POST" else None
        name = "unknown"
        try:
            if route is not None:
                name, limit = route.name, route.limit
                headers = dict(scope["headers"])  # one pass over them, in C
                declared = headers.get(b"content-length")
                if declared is not None and not (declared.isdigit() and int(declared) <= limit):
                    check_declared(declared, limit)
                msg = await receive()  # the whole body, nearly always: read_body inlined
                body = msg.get("body", b"")
                if msg.get("more_body", False) or msg["type"] != "http.request" \
                        or len(body) > limit:
                    body = await read_rest(msg, receive, limit)
                latency, clock = route.latency, route.clock
                t1 = clock()
                try:
                    payload = route.handler(scope, headers, body)
                finally:
                    latency.handler_s += clock() - t1
                if payload is SUCCESS_BODY:
                    await send(OK_START)
                    await send(OK_BODY)
                    self.metrics.requests[route.ok_key] += 1
                    latency.add(perf_counter() - t0)
                    return
                status, headers_out = 200, JSON
            elif method == "GET":
                name, status, payload, headers_out = self._get(scope, path)
            elif path in self._post or path in ("/healthz", "/metrics"):
                raise Rejection(405, "method_not_allowed", f"{method} not allowed on {path}")
            else:
                raise Rejection(404, "not_found", f"no route {path}")
        except Rejection as r:
            self.metrics.reject(r.code)
            status, headers_out = r.status, JSON
            payload = orjson.dumps({"code": "FAIL", "message": r.message})
        except Disconnected:
            return
        except Exception:
            log.exception("internal error on %s %s", method, path)
            self.metrics.reject("internal_error")
            status, headers_out = 500, JSON
            payload = b'{"code":"FAIL","message":"internal error"}'
        await asgi.respond(send, status, payload, headers_out)
        self.metrics.observe(name, status, perf_counter() - t0)

    def _get(self, scope: Scope, path: str) -> tuple[str, int, bytes, list]:
        if path == "/healthz":
            return "healthz", 200, orjson.dumps(
                {"status": "ok", "shard": self.config.shard, "shards": self.config.shards}), JSON
        if path == "/metrics":
            return "metrics", 200, self.metrics.render().encode(), TEXT
        if path.startswith("/v1/members/"):
            self.config.api_auth.check(scope["headers"], b"", ("GET", path))
            return "members", 200, member_answer(
                self.engine, unquote(path[len("/v1/members/"):]), scope.get("query_string", b""),
                self.config.programs), JSON
        if path == "/v1/admin/state":
            self.config.api_auth.check(scope["headers"], b"", ("GET", path))
            return "admin_state", 200, state_answer(
                self.engine, self.check_invariants, self.config.shard, self.config.shards), JSON
        if path in self._post:
            raise Rejection(405, "method_not_allowed", f"GET not allowed on {path}")
        raise Rejection(404, "not_found", f"no route {path}")

    # --- notifications -------------------------------------------------------

    def _notify_transaction(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.notify_auth.check(headers, body)
        return self._apply("payment", self._resources.read(body, PAYMENT_EVENTS))

    def _notify_refund(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.notify_auth.check(headers, body)
        return self._apply("refund", self._resources.read(body, REFUND_EVENTS))

    # --- internal API ----------------------------------------------------------

    def _binding(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.api_auth.check(headers, body, ("POST", scope["path"]))
        return self._apply("binding", loads(body))

    def _enrollment(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.api_auth.check(headers, body, ("POST", scope["path"]))
        return self._apply("enrollment", loads(body))

    def _batch(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.api_auth.check(headers, body, ("POST", scope["path"]))
        events = loads(body).get("events")
        if not isinstance(events, list):
            raise errors.bad_type("events must be a list")
        if len(events) > limits.BATCH_EVENTS_MAX:
            raise errors.bad_value(f"at most {limits.BATCH_EVENTS_MAX} events a batch")
        tally = apply_events(self.engine, self.journal, events, self.metrics)
        if self.journal is not None:
            self.journal.flush()
        return tally.answer()

    def _columns(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        """Payments in core.payment_columns' compact binary form, applied as one batch
        and journaled as compact records (one group commit)."""
        self.config.api_auth.check(headers, body, ("POST", scope["path"]))
        block = decode_columns(body, self.config.columns_payments_max)
        if self._sharded:
            check_owner(block, self.config.shards, self.config.shard)
        tally = Tally()
        pay_record(self.engine, self.journal, body, block, tally, self.metrics)
        if self.journal is not None:
            self.journal.flush()
        return tally.answer()

    # --- applying ------------------------------------------------------------

    def _apply(self, kind: str, data: Any) -> bytes:
        if self._sharded:
            key = _owner_key(kind, data)
            assert self.shard_of is not None
            if key and self.shard_of(key, self.config.shards) != self.config.shard:
                raise Rejection(421, "wrong_shard", "this shard does not own that openid")
        out = self.engine.submit(kind, data)
        code = out[0]
        # Identity tests and counts by kind: a Code hashes and compares in Python.
        if code is _APPLIED:
            self.metrics.applied[kind] += 1
            if self.journal is not None:
                self.journal.append(kind, data)
                self.journal.flush()
            return SUCCESS_BODY
        if code is _DUPLICATE:
            self.metrics.duplicates[kind] += 1
            return SUCCESS_BODY
        self.metrics.events[kind, code] += 1
        if not out.ok:
            text = str(code)
            raise Rejection(422, text, f"{text}: {out.message}" if out.message else text)
        if self.journal is not None:
            self.journal.append(kind, data)
            self.journal.flush()
        return SUCCESS_BODY

    def _shutdown(self) -> None:
        # uvicorn has drained the requests in flight; make them durable.
        if self.journal is not None:
            self.journal.close()


def _owner_key(kind: str, data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    if kind == "payment":
        payer = data.get("payer")
        key = payer.get("openid") if isinstance(payer, dict) else None
    else:
        key = data.get("openid")
    return key if isinstance(key, str) else ""
