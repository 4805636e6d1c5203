"""The request mix of a load test, without Locust: what to send next, and the books kept.

A `MixDriver` belongs to one load-generating user. It draws the next request
from the scenario's mix (payments, duplicate deliveries on the retry schedule,
refunds, bindings, enrollments, balance queries, batches), routes it to the
shard owning its openid, and on each answer updates what it knows was sent and
acknowledged, so that the run can be checked against the engine's state.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from core import shard_of
from core.limits import RETRY_SCHEDULE_S
from loadtests import client as paths
from loadtests.client import Notifier
from loadtests.payloads import binding_data, enrollment_data, payment_data, refund_data
from loadtests.population import Brand, openid_of, unionid_of
from loadtests.scenario import MIX_KINDS, Scenario

PAYMENTS_KEPT_MAX = 2048  # per user: candidates for duplicates and refunds
# When the k-th delivery (k >= 1) of a payment is due, after its first: the schedule summed.
RETRY_DUE_S = tuple(sum(RETRY_SCHEDULE_S[:k]) for k in range(len(RETRY_SCHEDULE_S) + 1))
AMOUNTS_FEN = (300, 650, 1200, 1880, 2500, 4999, 12800)


@dataclass(slots=True)
class Planned:
    """One request to send: its mix kind, shard, method, path, body, headers and event count."""

    kind: str
    shard: int
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    events: int = 1
    ref: Any = None  # what the answer updates (a payment record, a member number)


@dataclass(slots=True)
class PaymentRecord:
    """A payment this user sent: where, how much, refunded so far, and its delivery clock."""

    txid: str
    member: int
    shard: int
    mchid: str
    total_fen: int
    body: bytes
    first_sent_s: float
    deliveries: int = 1
    acked: bool = False
    refunded_fen: int = 0


@dataclass(slots=True)
class Books:
    """Counts of distinct inputs sent and acknowledged, and answers by status, for one process."""

    payments_sent: int = 0
    payments_acked: int = 0
    refunds_sent: int = 0
    refunds_acked: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the books as JSON-able data."""
        return {"payments_sent": self.payments_sent, "payments_acked": self.payments_acked,
                "refunds_sent": self.refunds_sent, "refunds_acked": self.refunds_acked,
                "requests": dict(self.requests), "errors": dict(self.errors)}


def book_sent(books: Books, p: Planned, n: int = 1) -> None:
    """Count `n` sends of `p` (-1: take back one counted but never sent) as distinct
    inputs: new payments (a batch's payments), refunds."""
    if p.kind == "payment":
        books.payments_sent += n
    elif p.kind == "refund":
        books.refunds_sent += n
    elif p.kind == "batch":
        books.payments_sent += n * p.events


def book_answer(books: Books, p: Planned, status: int, body: bytes,
                first_ack: Callable[[PaymentRecord], bool]) -> bool:
    """Count the answer (`status`, `body`) to `p` in `books`; `first_ack(record)` says
    whether an acknowledged payment is acknowledged for the first time. Returns True
    when the answer is the expected one (200, and a batch without rejections)."""
    books.requests[p.kind] = books.requests.get(p.kind, 0) + 1
    ok = status == 200
    if ok and p.kind in ("payment", "duplicate"):
        books.payments_acked += first_ack(p.ref)
    elif ok and p.kind == "refund":
        books.refunds_acked += 1
    elif ok and p.kind == "batch":
        doc = orjson.loads(body)
        books.payments_acked += doc["results"].get("applied", 0)
        ok = not doc.get("rejected")
    if not ok:
        code = f"{p.kind}:{status}"
        books.errors[code] = books.errors.get(code, 0) + 1
    return ok


class MixDriver:
    """Draws requests for the members `members` (this user's slice) and keeps the books.

    `shards` is the service's shard count, `brand` the program the payments go
    to, `rng` the user's own seeded random source.
    """

    def __init__(self, scenario: Scenario, brand: Brand, notifier: Notifier, members: range,
                 shards: int, books: Books, rng: random.Random) -> None:
        assert len(members) > 0
        self.scenario, self.brand, self.notifier = scenario, brand, notifier
        self.members, self.shards, self.books, self.rng = members, shards, books, rng
        kinds = [k for k in MIX_KINDS if scenario.mix[k] > 0]
        self.kinds, self.weights = kinds, [scenario.mix[k] for k in kinds]
        self.prefix = secrets.token_hex(3)
        self.seq = 0
        self.payments: deque[PaymentRecord] = deque(maxlen=PAYMENTS_KEPT_MAX)
        # Records by deliveries so far (1..len(RETRY_SCHEDULE_S)), each queue in send
        # order and so in the order its next retry falls due.
        self.retrying: list[deque[PaymentRecord]] = [
            deque(maxlen=PAYMENTS_KEPT_MAX) for _ in range(len(RETRY_SCHEDULE_S) + 1)]
        self.paid: set[int] = set()  # members with an acknowledged payment
        self.bound: set[int] = set()
        self.binding: set[int] = set()  # bindings sent, not answered yet
        self.enrolled: set[int] = set()
        # Picked in O(1): bound members not enrolled nor being enrolled (oldest first),
        # and members both bound and paid (what a balance query may ask about).
        self.to_enroll: deque[int] = deque()
        self.queryable: list[int] = []
        self.by_shard: dict[int, list[int]] = {}
        for m in members:
            self.by_shard.setdefault(shard_of(openid_of(m), shards), []).append(m)

    def next(self, now_s: float) -> Planned:
        """Return the next request to send at `now_s` (epoch seconds)."""
        kind = self.rng.choices(self.kinds, self.weights)[0]
        make = getattr(self, "_" + kind)
        return make(now_s)

    def answered(self, p: Planned, status: int, body: bytes) -> bool:
        """Update the books with the answer to `p`; return True when it is the expected one."""
        if p.kind == "binding":
            self.binding.discard(p.ref)
        ok = book_answer(self.books, p, status, body, self._first_ack)
        if ok and p.kind == "binding":
            self._bound(p.ref)
        elif ok and p.kind == "enrollment":
            self.enrolled.add(p.ref)
        return ok

    def _first_ack(self, rec: PaymentRecord) -> bool:
        if rec.acked:
            return False
        rec.acked = True
        self._paid(rec.member)
        return True

    def _paid(self, m: int) -> None:
        if m not in self.paid:
            self.paid.add(m)
            if m in self.bound:
                self.queryable.append(m)

    def _bound(self, m: int) -> None:
        if m not in self.bound:
            self.bound.add(m)
            self.to_enroll.append(m)
            if m in self.paid:
                self.queryable.append(m)

    # --- the kinds of the mix --------------------------------------------------

    def _new_txid(self) -> str:
        self.seq += 1
        return f"42{self.prefix}{self.members.start:010d}{self.seq:012d}"

    def _payment(self, now_s: float, member: int | None = None) -> Planned:
        m = self.rng.choice(self.members) if member is None else member
        openid = openid_of(m)
        txid = self._new_txid()
        mchid = self.rng.choice(self.brand.mchids)
        total = self.rng.choice(AMOUNTS_FEN)
        body = self.notifier.payment(payment_data(txid, self.brand.appid, mchid, openid, total,
                                                  int(now_s)))
        rec = PaymentRecord(txid, m, shard_of(openid, self.shards), mchid, total, body, now_s)
        self.payments.append(rec)
        self.retrying[1].append(rec)
        self.books.payments_sent += 1
        return Planned("payment", rec.shard, "POST", paths.NOTIFY_TRANSACTION, body,
                       self.notifier.notify_headers(body), ref=rec)

    def _duplicate(self, now_s: float) -> Planned:
        # The platform redelivers on its schedule (compressed by the scenario): the
        # record whose next retry fell due first is sent again, re-signed. Within one
        # queue (same deliveries so far) the oldest is due first, so only the heads of
        # the queues need looking at.
        k = self.scenario.time_compression
        best: deque[PaymentRecord] | None = None
        best_due = now_s
        for n, queue in enumerate(self.retrying):
            if queue and (due := queue[0].first_sent_s + RETRY_DUE_S[n] / k) <= best_due:
                best, best_due = queue, due
        if best is None:
            return self._payment(now_s)
        rec = best.popleft()
        rec.deliveries += 1
        if rec.deliveries < len(self.retrying):
            self.retrying[rec.deliveries].append(rec)
        return Planned("duplicate", rec.shard, "POST", paths.NOTIFY_TRANSACTION, rec.body,
                       self.notifier.notify_headers(rec.body), ref=rec)

    def _refund(self, now_s: float) -> Planned:
        for _ in range(8):  # a few tries at finding a refundable payment, then pay instead
            if not self.payments:
                break
            rec = self.rng.choice(self.payments)
            left = rec.total_fen - rec.refunded_fen
            if rec.acked and left > 0:
                amount = max(1, left // 2)
                rec.refunded_fen += amount
                data = refund_data(f"R{rec.txid}{rec.refunded_fen:06d}", rec.txid, rec.mchid,
                                   amount, rec.total_fen, int(now_s))
                body = self.notifier.refund(data)
                self.books.refunds_sent += 1
                return Planned("refund", rec.shard, "POST", paths.NOTIFY_REFUND, body,
                               self.notifier.notify_headers(body), ref=rec)
        return self._payment(now_s)

    def _unbound(self) -> int | None:
        for _ in range(8):
            m = self.rng.choice(self.members)
            if m not in self.bound and m not in self.binding:
                return m
        return None

    def _binding(self, now_s: float) -> Planned:
        m = self._unbound()
        if m is None:
            return self._balance(now_s, fallback=False)
        self.binding.add(m)
        data = binding_data(self.brand.appid, openid_of(m), unionid_of(m), int(now_s))
        return self._api("binding", m, "POST", paths.BINDINGS, data)

    def _enrollment(self, now_s: float) -> Planned:
        if self.to_enroll:
            m = self.to_enroll.popleft()  # not offered again: one enrollment a member
            data = enrollment_data(self.brand.program, int(now_s), unionid=unionid_of(m))
            return self._api("enrollment", m, "POST", paths.ENROLLMENTS, data)
        return self._binding(now_s)

    def _balance(self, now_s: float, fallback: bool = True) -> Planned:
        if self.queryable:
            m = self.rng.choice(self.queryable)
            return self._api("balance", m, "GET", paths.MEMBERS + unionid_of(m), None)
        return self._binding(now_s) if fallback else self._payment(now_s)

    def _batch(self, now_s: float) -> Planned:
        shard = self.rng.choice(tuple(self.by_shard))
        members = self.by_shard[shard]
        events = []
        for _ in range(self.scenario.batch_size):
            m = self.rng.choice(members)
            events.append({"kind": "payment", "data": payment_data(
                self._new_txid(), self.brand.appid, self.rng.choice(self.brand.mchids),
                openid_of(m), self.rng.choice(AMOUNTS_FEN), int(now_s))})
        self.books.payments_sent += len(events)
        body = orjson.dumps({"events": events})
        return Planned("batch", shard, "POST", paths.EVENTS_BATCH, body,
                       self.notifier.api_headers("POST", paths.EVENTS_BATCH, body),
                       events=len(events), ref=len(events))

    def _api(self, kind: str, member: int, method: str, path: str, data: Any) -> Planned:
        body = b"" if data is None else orjson.dumps(data)
        return Planned(kind, shard_of(openid_of(member), self.shards), method, path, body,
                       self.notifier.api_headers(method, path, body), ref=member)
