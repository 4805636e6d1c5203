"""The fast generator's plan: every request of a run, drawn from the scenario's mix beforehand.

The fast generator signs and encrypts before the run, so it cannot wait for an
answer to decide what comes next, as a Locust user does. It draws the same mix
with the same `MixDriver`s, one per virtual user (each owning a disjoint slice
of the process's members, as Locust users do), at the requests' intended times,
and assumes each planned request is answered 200 `SETTLE_S` after it is due:
a refund then only names a payment due a second earlier, an enrollment or a
balance query a member whose binding was. At run time the books count what was
really sent and answered (`RunBooks`), never what the plan assumed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import orjson

from loadtests.client import Notifier
from loadtests.mix import Books, MixDriver, PaymentRecord, Planned, book_answer, book_sent
from loadtests.population import brands_of, slice_of
from loadtests.scenario import Scenario

VIRTUAL_USERS_MAX = 64  # per process: member slices, each with its own driver and records
SETTLE_S = 1.0  # a planned request is assumed answered this long after it is due


@dataclass(slots=True)
class Item:
    """One request of the plan: what it is (for the books) and its raw HTTP bytes."""

    planned: Planned
    raw: bytes


def raw_request(p: Planned, host: str) -> bytes:
    """Return `p` as the bytes of an HTTP/1.1 request to `host` (keep-alive)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in p.headers.items())
    return (f"{p.method} {p.path} HTTP/1.1\r\nHost: {host}\r\n{head}"
            f"Content-Length: {len(p.body)}\r\n\r\n").encode() + p.body


def _assumed_answer(p: Planned) -> bytes:
    if p.kind == "batch":
        return orjson.dumps({"code": "SUCCESS", "results": {"applied": p.events},
                             "rejected": []})
    return b'{"code":"SUCCESS"}'


class MixPlan:
    """Plans process `part` of `parts`: its members split among virtual users, its requests
    drawn from the scenario's mix and routed to `shards` shards (`hosts` their host:port)."""

    def __init__(self, scenario: Scenario, part: int, parts: int, notifier: Notifier,
                 shards: int, hosts: list[str], rng: random.Random) -> None:
        members = slice_of(part, parts, scenario.members) or range(part, part + 1)
        users = max(1, min(VIRTUAL_USERS_MAX, len(members)))
        brands = brands_of(scenario.programs)
        self.hosts = hosts
        self._plan_books = Books()  # what planning assumed: never reported
        self.drivers = []
        for u in range(users):
            mine = slice_of(u, users, len(members))
            self.drivers.append(MixDriver(
                scenario, brands[(part + u) % len(brands)], notifier,
                range(members.start + mine.start, members.start + mine.stop), shards,
                self._plan_books, random.Random(rng.getrandbits(64))))
        self._assumed: deque[tuple[float, MixDriver, Planned]] = deque()
        self._turn = 0

    def build(self, n: int, t0: float, rate_per_s: float) -> list[Item]:
        """Return the `n` requests due at `t0 + k / rate_per_s` (k = 0..n-1), in order."""
        out = []
        assumed = self._assumed
        for k in range(n):
            t = t0 + k / rate_per_s
            while assumed and assumed[0][0] <= t:
                _, driver, p = assumed.popleft()
                driver.answered(p, 200, _assumed_answer(p))
            driver = self.drivers[self._turn % len(self.drivers)]
            self._turn += 1
            p = driver.next(t)
            assumed.append((t + SETTLE_S, driver, p))
            out.append(Item(p, raw_request(p, self.hosts[p.shard])))
        return out


class RunBooks:
    """The books of what was sent and answered at run time, into `books`."""

    def __init__(self, books: Books) -> None:
        self.books = books
        self._acked: set[str] = set()  # transaction ids acknowledged at least once
        # Deliveries counted as sent, by transaction id. Requests are planned before the
        # run, so a payment left unsent at a stage's end (the service too slow) may have
        # a redelivery that does go out: that one is then the payment's first delivery.
        self._deliveries: dict[str, int] = {}

    def sent(self, item: Item, n: int = 1) -> None:
        """Count `item` as sent (`n` = -1: it was counted, then never sent)."""
        p = item.planned
        if p.kind not in ("payment", "duplicate"):
            book_sent(self.books, p, n)
            return
        txid = p.ref.txid
        before = self._deliveries.get(txid, 0)
        after = self._deliveries[txid] = before + n
        assert after >= 0, txid
        self.books.payments_sent += (after > 0) - (before > 0)  # distinct payments sent

    def answered(self, item: Item, status: int, body: bytes) -> bool:
        """Count the answer to `item`; return True when it is the expected one."""
        return book_answer(self.books, item.planned, status, body, self._first_ack)

    def _first_ack(self, rec: PaymentRecord) -> bool:
        if rec.txid in self._acked:
            return False
        self._acked.add(rec.txid)
        return True
