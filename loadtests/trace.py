"""The trace format the replayer reads, and turning its lines into requests.

A trace is JSON lines, one delivery a line, in non-decreasing time, as
`paymember simulate --trace` (sim/trace.py) writes it:

    {"t_s": 1773092395.765, "attempt": 0, "kind": "payment", "data": {...}}

- `t_s`: when the delivery is due, epoch seconds (float). Replay keeps the gaps
  between lines, divided by the speed-up; the first line is sent at once.
- `attempt`: the simulator's delivery number (0 first, 1..15 retries, 16 a
  spontaneous duplicate, 17 an input that is no platform notification). Ignored:
  a redelivery is simply the same input again, later.
- `kind`: "payment" and "refund" become signed, encrypted notifications
  (/v3/notify/transaction, /v3/notify/refund); "binding" and "enrollment" go to
  /v1/bindings and /v1/enrollments; any other kind of `Engine.submit`
  ("event", "spend", "coupon", "advance") goes to /v1/events:batch as one event.
- `data`: exactly what `Engine.submit(kind, data)` takes (docs/ENGINE_API.md).

Routing needs no key: a line goes to the shard of its data's `payer.openid` or
`openid`; a refund to its payment's, an input naming only a unionid to the
openid bound to it, both found in the trace. The older form is still read: `t`
for `t_s`, and an optional `key` (the routing openid) that wins when present.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core import shard_of
from loadtests import client as paths
from loadtests import limits
from loadtests.client import Notifier
from loadtests.mix import Planned


class TraceError(ValueError):
    """A trace line is not valid; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One delivery of a trace: when, what kind, the input's data, and its routing key."""

    t: float
    kind: str
    data: Any
    key: str

    def identity(self) -> str:
        """Return what identifies the input across redeliveries (transaction or refund id)."""
        d = self.data if isinstance(self.data, dict) else {}
        return str(d.get("refund_id") or d.get("transaction_id") or d.get("event_id")
                   or self.key)


def read_trace(path: str | Path) -> Iterator[TraceLine]:
    """Yield the lines of the trace at `path`; raises TraceError on a bad or unordered line.

    Lines without a `key` are routed by their data's openid; a refund by its payment's
    openid and an enrollment or coupon by the openid bound to its unionid, both found in
    the trace itself (what `paymember simulate --trace` writes carries no key).
    """
    owners: Owners | None = None
    for _, t, kind, data, key in _lines(path):
        if not key and kind in ("refund", "enrollment", "coupon", "spend"):
            if owners is None:
                owners = Owners.of(path)
            key = owners.key_of(kind, data)
        yield TraceLine(t, kind, data, key)


def _lines(path: str | Path) -> Iterator[tuple[int, float, str, Any, str]]:
    last = float("-inf")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n > limits.TRACE_LINES_MAX:
                raise TraceError(f"{path}: more than {limits.TRACE_LINES_MAX} lines")
            if len(raw) > limits.TRACE_LINE_BYTES_MAX:
                raise TraceError(f"{path}:{n}: line longer than {limits.TRACE_LINE_BYTES_MAX}")
            if not raw.strip():
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise TraceError(f"{path}:{n}: not JSON ({e})") from None
            if not isinstance(doc, dict):
                raise TraceError(f"{path}:{n}: not a JSON object")
            # `t_s` (and an `attempt` count) is what sim/trace.py writes.
            t, kind = doc.get("t", doc.get("t_s")), doc.get("kind")
            if not isinstance(t, int | float) or isinstance(t, bool) or not isinstance(kind, str):
                raise TraceError(f"{path}:{n}: needs a number `t` (or `t_s`) and a string `kind`")
            if t < last:
                raise TraceError(f"{path}:{n}: t goes backwards ({t} < {last})")
            last = float(t)
            data = doc.get("data")
            key = doc.get("key") or _key_of(data)
            yield n, float(t), kind, data, key if isinstance(key, str) else ""


class Owners:
    """Who owns what a line names without an openid: payments and unionids, by openid."""

    def __init__(self) -> None:
        self.payment: dict[str, str] = {}  # transaction_id -> payer openid
        self.person: dict[str, str] = {}  # unionid -> an openid bound to it

    @classmethod
    def of(cls, path: str | Path) -> Owners:
        """Read the whole trace at `path` once and index its payments and bindings."""
        out = cls()
        for _, _, kind, data, key in _lines(path):
            if not isinstance(data, dict) or not key:
                continue
            if kind == "payment" and isinstance(data.get("transaction_id"), str):
                out.payment.setdefault(data["transaction_id"], key)
            elif kind == "binding" and isinstance(data.get("unionid"), str):
                out.person.setdefault(data["unionid"], key)
        return out

    def key_of(self, kind: str, data: Any) -> str:
        """The openid routing a refund (its payment's) or an input naming a unionid."""
        if not isinstance(data, dict):
            return ""
        if kind == "refund":
            return self.payment.get(str(data.get("transaction_id")), "")
        return self.person.get(str(data.get("unionid")), "")


def _key_of(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    payer = data.get("payer")
    if isinstance(payer, dict) and isinstance(payer.get("openid"), str):
        return payer["openid"]
    return data.get("openid") if isinstance(data.get("openid"), str) else ""


def replay_duration_s(path: str | Path, speedup: float) -> float:
    """Return how long replaying the trace at `speedup` takes (last t - first t) / speedup."""
    first = last = None
    for line in read_trace(path):
        first = line.t if first is None else first
        last = line.t
    return 0.0 if first is None or last is None else (last - first) / speedup


def owner_process(line: TraceLine, processes: int) -> int:
    """Return which generator process replays `line`: every delivery of an input goes to one."""
    return zlib.crc32(line.identity().encode()) % processes


def plan(line: TraceLine, notifier: Notifier, shards: int) -> Planned:
    """Return the request that delivers `line` to the shard owning its key."""
    shard = shard_of(line.key, shards) if line.key else 0
    if line.kind in ("payment", "refund"):
        body = notifier.payment(line.data) if line.kind == "payment" else \
            notifier.refund(line.data)
        path = paths.NOTIFY_TRANSACTION if line.kind == "payment" else paths.NOTIFY_REFUND
        return Planned(line.kind, shard, "POST", path, body, notifier.notify_headers(body),
                       ref=line.identity())
    if line.kind in ("binding", "enrollment"):
        path = paths.BINDINGS if line.kind == "binding" else paths.ENROLLMENTS
        body = orjson.dumps(line.data)
    else:
        path = paths.EVENTS_BATCH
        body = orjson.dumps({"events": [{"kind": line.kind, "data": line.data}]})
    return Planned(line.kind, shard, "POST", path, body,
                   notifier.api_headers("POST", path, body), ref=line.identity())
