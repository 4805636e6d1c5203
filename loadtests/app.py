"""The ASGI application: notification endpoints, the internal API, health and metrics.

A bare ASGI callable (no framework): routing is a dict lookup and every
answer is pre-encoded JSON, so the cost per request is the engine's plus a
few microseconds. One `Service` owns one engine (one shard).

The common request (a valid notification, answered 200) is the one the
service must serve cheaply: it takes no per-request allocation beyond the
header dict and the parsed JSON, counts with one dict update and appends its
latency to a buffer bucketed in bulk (metrics.py). Anything unusual leaves that
path through a Rejection and is handled as before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, NoReturn
from urllib.parse import parse_qs, unquote

import orjson

from loadtests import errors, limits
from loadtests.aead import ALGORITHM, Aead, DecryptError
from loadtests.auth import Authenticator
from loadtests.batch import Tally, apply_events, check_owner, decode_columns, pay_columns
from loadtests.body import Disconnected, body_limit, check_declared, loads, read_rest
from loadtests.errors import Rejection
from loadtests.metrics import Metrics, RouteLatency
from loadtests.types import EngineLike, Journal

log = logging.getLogger("paymember.service")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = dict[bytes, bytes]

SUCCESS_BODY = b'{"code":"SUCCESS"}'
_JSON = [(b"content-type", b"application/json")]
# The answer to nearly every request, built once (uvicorn only reads these messages).
_OK_START = {"type": "http.response.start", "status": 200,
             "headers": [*_JSON, (b"content-length", b"%d" % len(SUCCESS_BODY))]}
_OK_BODY = {"type": "http.response.body", "body": SUCCESS_BODY}
_TEXT = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
PAYMENT_EVENTS = frozenset({"TRANSACTION.SUCCESS"})
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
PLAINTEXT = "NONE"  # resource.algorithm of a plaintext resource, when configured
Handler = Callable[[Scope, "Headers", bytes], bytes]


class Route:
    """A POST route: its metric name, handler, body limit, and its counters."""

    __slots__ = ("handler", "latency", "limit", "name", "ok_key")

    def __init__(self, name: str, handler: Handler, limit: int, latency: RouteLatency) -> None:
        self.name, self.handler, self.limit, self.latency = name, handler, limit, latency
        self.ok_key = (name, 200)


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


class Service:
    """ASGI app serving one engine shard; `journal` (optional) is flushed before each 200."""

    def __init__(self, config: ServiceConfig, engine: EngineLike,
                 journal: Journal | None = None, shard_of: Callable[[str, int], int] | None = None,
                 check_invariants: Callable[[Any], list[str]] | None = None) -> None:
        self.config, self.engine, self.journal = config, engine, journal
        self.shard_of, self.check_invariants = shard_of, check_invariants
        self.metrics = Metrics(config.shard)
        self._sharded = config.shards > 1 and shard_of is not None
        self._post = {path: Route(name, handler, body_limit(path), self.metrics.route(name))
                      for path, name, handler in (
            ("/v3/notify/transaction", "notify_transaction", self._notify_transaction),
            ("/v3/notify/refund", "notify_refund", self._notify_refund),
            ("/v1/events:batch", "events_batch", self._batch),
            ("/v1/payments:columns", "payments_columns", self._columns),
            ("/v1/bindings", "bindings", self._binding),
            ("/v1/enrollments", "enrollments", self._enrollment))}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (http or lifespan)."""
        t0 = perf_counter()
        if scope["type"] != "http":  # http is served here: one coroutine less a request
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
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
                payload = route.handler(scope, headers, body)
                if payload is SUCCESS_BODY:
                    await send(_OK_START)
                    await send(_OK_BODY)
                    self.metrics.requests[route.ok_key] += 1
                    route.latency.add(perf_counter() - t0)
                    return
                status, headers_out = 200, _JSON
            elif method == "GET":
                name, status, payload, headers_out = self._get(scope, path)
            elif path in self._post or path in ("/healthz", "/metrics"):
                raise Rejection(405, "method_not_allowed", f"{method} not allowed on {path}")
            else:
                raise Rejection(404, "not_found", f"no route {path}")
        except Rejection as r:
            self.metrics.reject(r.code)
            status, headers_out = r.status, _JSON
            payload = orjson.dumps({"code": "FAIL", "message": r.message})
        except Disconnected:
            return
        except Exception:
            log.exception("internal error on %s %s", method, path)
            self.metrics.reject("internal_error")
            status, headers_out = 500, _JSON
            payload = b'{"code":"FAIL","message":"internal error"}'
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers_out, (b"content-length", b"%d" % len(payload))]})
        await send({"type": "http.response.body", "body": payload})
        self.metrics.observe(name, status, perf_counter() - t0)

    def _get(self, scope: Scope, path: str) -> tuple[str, int, bytes, list]:
        if path == "/healthz":
            return "healthz", 200, orjson.dumps(
                {"status": "ok", "shard": self.config.shard, "shards": self.config.shards}), _JSON
        if path == "/metrics":
            return "metrics", 200, self.metrics.render().encode(), _TEXT
        if path.startswith("/v1/members/"):
            self.config.api_auth.check(scope["headers"], b"", ("GET", path))
            return "members", 200, self._member(unquote(path[len("/v1/members/"):]),
                                                scope.get("query_string", b"")), _JSON
        if path == "/v1/admin/state":
            self.config.api_auth.check(scope["headers"], b"", ("GET", path))
            return "admin_state", 200, self._state(), _JSON
        if path in self._post:
            raise Rejection(405, "method_not_allowed", f"GET not allowed on {path}")
        raise Rejection(404, "not_found", f"no route {path}")

    # --- notifications -------------------------------------------------------

    def _notify_transaction(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.notify_auth.check(headers, body)
        return self._apply("payment", self._resource(body, PAYMENT_EVENTS))

    def _notify_refund(self, scope: Scope, headers: Headers, body: bytes) -> bytes:
        self.config.notify_auth.check(headers, body)
        return self._apply("refund", self._resource(body, REFUND_EVENTS))

    def _resource(self, body: bytes, event_types: frozenset[str]) -> dict:
        env = loads(body)
        event_type, res = env.get("event_type"), env.get("resource")
        # orjson makes exact types, so `type(x) is str` is the isinstance check here.
        if not (type(event_type) is str and event_type in event_types
                and type(env.get("id")) is str and type(res) is dict):
            _envelope_fault(env, event_types)
        algorithm = res.get("algorithm")
        if algorithm == ALGORITHM:
            ct, nonce, ad = res.get("ciphertext"), res.get("nonce"), res.get("associated_data", "")
            if not (type(ct) is str and type(nonce) is str and type(ad) is str):
                raise errors.bad_type("resource ciphertext, nonce, associated_data must be strings")
            aead = self.config.aead
            if aead is None:
                raise Rejection(400, "no_apiv3_key",
                                "encrypted resource but no APIv3 key configured")
            try:
                plain = aead.decrypt(ct, nonce, ad)
            except DecryptError as e:
                raise Rejection(400, "decrypt_failed", str(e)) from None
            return loads(plain)
        if algorithm == PLAINTEXT and self.config.allow_plaintext:
            data = res.get("plaintext")
            if type(data) is not dict:
                raise errors.bad_type("resource.plaintext must be an object")
            return data
        raise errors.bad_value(f"resource.algorithm must be {ALGORITHM}")

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
        cols = decode_columns(body)
        if self.config.shards > 1 and self.shard_of is not None:
            shard_of, shards, me = self.shard_of, self.config.shards, self.config.shard
            check_owner(cols, lambda openid: shard_of(openid, shards) == me)
        tally = Tally()
        pay_columns(self.engine, self.journal, cols, tally, self.metrics)
        if self.journal is not None:
            self.journal.flush()
        return tally.answer()

    def _member(self, unionid: str, query: bytes) -> bytes:
        if not unionid or len(unionid) > 64:
            raise errors.bad_value("unionid must be 1..64 characters")
        wanted = parse_qs(query.decode("latin-1")).get("program")
        programs = tuple(wanted) if wanted else self.config.programs
        found = {}
        for pid in programs:
            bal = self.engine.balance(pid, unionid=unionid)
            if bal is not None:
                found[pid] = {"available": bal.available, "pending": bal.pending,
                              "shadow": bal.shadow, "shadow_pending": bal.shadow_pending,
                              "tier": bal.tier, "member": bal.member,
                              "qualifying": bal.qualifying}
        if not found:
            raise Rejection(404, "unknown_member", "no such member")
        return orjson.dumps({"code": "SUCCESS", "unionid": unionid, "programs": found})

    def _state(self) -> bytes:
        violations = self.check_invariants(self.engine) if self.check_invariants else []
        return orjson.dumps({"code": "SUCCESS", "shard": self.config.shard,
                             "shards": self.config.shards, "stats": self.engine.stats(),
                             "invariant_violations": violations[:100],
                             "invariants_ok": not violations})

    # --- applying ------------------------------------------------------------

    def _apply(self, kind: str, data: Any) -> bytes:
        if self._sharded:
            key = _owner_key(kind, data)
            assert self.shard_of is not None
            if key and self.shard_of(key, self.config.shards) != self.config.shard:
                raise Rejection(421, "wrong_shard", "this shard does not own that openid")
        out = self.engine.submit(kind, data)
        self.metrics.events[kind, out.code] += 1
        if not out.ok:
            code = str(out.code)
            raise Rejection(422, code, f"{code}: {out.message}" if out.message else code)
        if self.journal is not None and out.code != "duplicate":
            self.journal.append(kind, data)
            self.journal.flush()
        return SUCCESS_BODY

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                # uvicorn has drained the requests in flight; make them durable.
                if self.journal is not None:
                    self.journal.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _envelope_fault(env: dict, event_types: frozenset[str]) -> NoReturn:
    """Raise the rejection naming what is wrong with notification envelope `env`."""
    event_type = env.get("event_type")
    if not isinstance(event_type, str):
        raise errors.bad_type("event_type must be a string")
    if event_type not in event_types:
        raise errors.bad_value(f"unexpected event_type {event_type[:40]!r}")
    if not isinstance(env.get("id"), str):
        raise errors.bad_type("id must be a string")
    raise errors.bad_type("resource must be an object")


def _owner_key(kind: str, data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    if kind == "payment":
        payer = data.get("payer")
        key = payer.get("openid") if isinstance(payer, dict) else None
    else:
        key = data.get("openid")
    return key if isinstance(key, str) else ""
