"""The load mix without Locust: every request it draws is accepted by the service, books add up."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest

from core import Engine, check_invariants, load_program, shard_of
from loadtests import (
    Aead,
    Authenticator,
    HmacSigner,
    HmacVerifier,
    NonceCache,
    Notifier,
    Service,
    ServiceConfig,
    call_app_async,
)
from loadtests.fastplan import MixPlan, RunBooks
from loadtests.mix import RETRY_DUE_S, Books, MixDriver
from loadtests.pacing import Pacer
from loadtests.population import brands_of, openid_of, slice_of
from loadtests.scenario import load_scenario

KEY = b"k" * 32
APIV3 = b"0123456789abcdef0123456789abcdef"
NOW = 1_700_000_000.0


def shard_services(n: int) -> list[Service]:
    out = []
    for i in range(n):
        cfg = ServiceConfig(Authenticator(HmacVerifier(KEY), NonceCache(), lambda: NOW),
                            Authenticator(HmacVerifier(KEY), NonceCache(), lambda: NOW),
                            Aead(APIV3), programs=("loadshop",), shard=i, shards=n)
        out.append(Service(cfg, Engine([load_program("scenarios/load_program.toml")]),
                           shard_of=shard_of, check_invariants=check_invariants))
    return out


@pytest.mark.parametrize("shards", [1, 3])
def test_every_drawn_request_is_accepted_and_books_match(shards: int) -> None:
    """Driving the smoke mix for 600 requests gets only 200s; acknowledged == engine, invariants."""
    scenario = load_scenario("scenarios/load_smoke.toml")
    services = shard_services(shards)
    books = Books()
    notifier = Notifier(HmacSigner(KEY), Aead(APIV3), clock=lambda: NOW)
    driver = MixDriver(scenario, brands_of(scenario.programs)[0], notifier, range(0, 40),
                       shards, books, random.Random(7))
    t = NOW
    for _ in range(600):
        t += 0.01
        p = driver.next(t)
        status, body = asyncio.run(call_app_async(services[p.shard], p.method, p.path, p.body,
                                                  p.headers))
        assert driver.answered(p, status, body), (p.kind, status, body)
    assert books.errors == {}
    assert set(books.requests) >= {"payment", "duplicate", "refund", "binding", "enrollment",
                                   "balance", "batch"}
    engine_payments = sum(s.engine.stats()["payments"] for s in services)
    engine_refunds = sum(s.engine.stats()["refunds"] for s in services)
    assert books.payments_acked == books.payments_sent == engine_payments
    assert books.refunds_acked == books.refunds_sent == engine_refunds
    for s in services:
        assert check_invariants(s.engine) == []


@pytest.mark.parametrize("shards", [1, 2])
def test_fast_plan_draws_the_whole_mix_and_every_request_is_accepted(shards: int) -> None:
    """The fast generator's plan, made before any answer, holds every kind of the mix in
    its proportions; sent in order, each is accepted and the run's books match the engine."""
    scenario = load_scenario("scenarios/load_smoke.toml")
    services = shard_services(shards)
    notifier = Notifier(HmacSigner(KEY), Aead(APIV3), clock=lambda: NOW)
    plan = MixPlan(scenario, 0, 1, notifier, shards, ["h"] * shards, random.Random(3))
    items = plan.build(2000, NOW, 200.0) + plan.build(1000, NOW + 10, 500.0)
    books = Books()
    run = RunBooks(books)
    for item in items:
        p = item.planned
        assert item.raw.startswith(f"{p.method} {p.path} HTTP/1.1\r\nHost: h\r\n".encode())
        assert item.raw.endswith(b"\r\n\r\n" + p.body)
        run.sent(item)
        status, body = asyncio.run(call_app_async(services[p.shard], p.method, p.path, p.body,
                                                  p.headers))
        assert run.answered(item, status, body), (p.kind, status, body)
    assert books.errors == {}
    weights = sum(scenario.mix.values())
    for kind, weight in scenario.mix.items():
        # Each kind near its share; a kind with nothing to act on yet falls back to another.
        assert books.requests[kind] == pytest.approx(len(items) * weight / weights, rel=0.5)
    engine = [s.engine.stats() for s in services]
    assert books.payments_acked == books.payments_sent == sum(e["payments"] for e in engine)
    assert books.refunds_acked == books.refunds_sent == sum(e["refunds"] for e in engine) > 0
    for s in services:
        assert check_invariants(s.engine) == []


def test_redeliveries_follow_the_compressed_retry_schedule() -> None:
    """A duplicate is sent only once its retry is due, each payment at most once per retry,
    and with retries due, duplicates take their share of the mix."""
    smoke = load_scenario("scenarios/load_smoke.toml")
    scenario = replace(smoke, mix={**{k: 0 for k in smoke.mix}, "payment": 1, "duplicate": 1})
    notifier = Notifier(HmacSigner(KEY), Aead(APIV3), clock=lambda: NOW)
    driver = MixDriver(scenario, brands_of(scenario.programs)[0], notifier, range(0, 40), 1,
                       Books(), random.Random(5))
    t, kinds = NOW, []
    for _ in range(4000):
        t += 0.01
        p = driver.next(t)
        kinds.append(p.kind)
        if p.kind == "duplicate":
            rec = p.ref
            assert t >= rec.first_sent_s + RETRY_DUE_S[rec.deliveries - 1] / \
                scenario.time_compression
            assert rec.deliveries <= len(RETRY_DUE_S)
    assert kinds.count("duplicate") > 0.4 * len(kinds)


def test_member_slices_are_disjoint_and_cover() -> None:
    """User slices never overlap, and with fewer members than users each gets at most one."""
    slices = [slice_of(i, 7, 100) for i in range(7)]
    seen = [m for r in slices for m in r]
    assert len(seen) == len(set(seen)) == 98
    small = [slice_of(i, 7, 3) for i in range(7)]
    assert [len(r) for r in small] == [1, 1, 1, 0, 0, 0, 0]
    assert len(openid_of(12)) == 28


def test_pacer_keeps_an_open_loop_schedule() -> None:
    """The pacer schedules sends at 1/rate, does not sleep when late, and bounds its backlog."""
    p = Pacer(100.0, lag_s_max=1.0)
    assert p.due(100.0) == 100.0
    assert p.advance(100.0, 10.0) == pytest.approx(0.1)
    assert p.due(100.05) == pytest.approx(100.1)
    assert p.advance(100.5, 10.0) == 0.0  # late: send now, latency counted from 100.2
    assert p.due(100.5) == pytest.approx(100.2)
    p.advance(200.0, 10.0)
    assert p.due(200.0) == pytest.approx(199.0)  # the backlog is cut at lag_s_max
    assert p.advance(200.0, 0.0) == 0.0 and p.due(201.0) == 201.0  # closed loop


def test_a_redelivery_of_a_payment_never_sent_counts_as_its_first_delivery() -> None:
    """The fast generator plans before the run: when a payment is left unsent at a stage's
    end (service too slow) and its planned redelivery goes out, the books count one payment
    sent, as the engine does."""
    smoke = load_scenario("scenarios/load_smoke.toml")
    scenario = replace(smoke, mix={**{k: 0 for k in smoke.mix}, "payment": 1, "duplicate": 1})
    services = shard_services(1)
    notifier = Notifier(HmacSigner(KEY), Aead(APIV3), clock=lambda: NOW)
    plan = MixPlan(scenario, 0, 1, notifier, 1, ["h"], random.Random(3))
    items = plan.build(3000, NOW, 200.0)
    dup = next(i for i in items if i.planned.kind == "duplicate")
    first = next(i for i in items if i.planned.kind == "payment"
                 and i.planned.ref.txid == dup.planned.ref.txid)
    books = Books()
    run = RunBooks(books)
    run.sent(first)
    run.sent(first, -1)  # left in the queue at the stage's end: never sent
    assert books.payments_sent == 0
    run.sent(dup)
    p = dup.planned
    status, body = asyncio.run(call_app_async(services[0], p.method, p.path, p.body,
                                              p.headers))
    assert run.answered(dup, status, body)
    run.sent(dup)  # a second redelivery of it: still one payment
    assert books.payments_acked == books.payments_sent == 1
    assert services[0].engine.stats()["payments"] == 1
