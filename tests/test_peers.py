"""Peers apply the engine's accrual rules: the naive and SQLite peers agree with each other
and with the engine, payment by payment (the Redis peer is exercised by the benchmark)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from core import Binding, Code, Engine, Enrollment, Payment, load_program
from core.peers import DUPLICATE, REJECTED, NaivePeer, SqlitePeer, measure
from core.peers.redis_lua import lua_script
from core.peers.rules import rules_of
from core.workload import payment_stream

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = dataclasses.replace(load_program(ROOT / "scenarios/programs/convenience.toml"),
                              welcome_bonus=0)
START_S = 1_780_000_000  # 2026-05-28: inside the program's lunch campaign year


def stream() -> list[Payment]:
    """Payments by few shoppers (so tiers rise), with duplicates, fx and a stranger."""
    wl = payment_stream(PROGRAM, np.random.default_rng(3), 40, 4000, START_S,
                        duplicate_share=0.05, foreign_share=0.1)
    stranger = dataclasses.replace(wl.payments[0], transaction_id="x1", mchid="999")
    odd_ccy = dataclasses.replace(wl.payments[1], transaction_id="x2", currency="EUR")
    return [*wl.payments, stranger, odd_ccy]


def test_naive_and_sqlite_agree_payment_by_payment() -> None:
    """Both Python-side peers give every payment the same outcome and end in the same state."""
    payments = stream()
    naive, lite = NaivePeer(PROGRAM), SqlitePeer(PROGRAM)
    try:
        got = [(naive.pay(p), lite.pay(p)) for p in payments]
        assert all(a == b for a, b in got)
        assert naive.state() == lite.state()
    finally:
        lite.close()
    outcomes = [a for a, _ in got]
    assert DUPLICATE in outcomes and outcomes[-2:] == [REJECTED, REJECTED]
    assert max(tier for _, tier in naive.state().values()) >= 1


def test_naive_peer_earns_what_the_engine_earns() -> None:
    """For enrolled members the naive peer's points per payment equal the engine's."""
    payments = stream()
    eng = Engine([PROGRAM])
    appid = payments[0].appid
    for oid in sorted({p.openid for p in payments}):
        eng.bind(Binding(appid, oid, "u" + oid, START_S - 86_400))
        assert eng.enroll(Enrollment(PROGRAM.id, START_S - 86_400, unionid="u" + oid)).ok
    naive = NaivePeer(PROGRAM)
    for p in payments:
        out, pts = eng.pay(p), naive.pay(p)
        if out.code == Code.APPLIED:
            assert pts == out.points, p
        else:
            assert pts == (DUPLICATE if out.code == Code.DUPLICATE else REJECTED), (p, out)


def test_measure_reports_rates_and_refuses_unknown_peers() -> None:
    """measure returns payments/s for each peer asked for; an unknown name is a ValueError."""
    rates = measure(PROGRAM, stream()[:300], ("naive_python", "sqlite"), say=lambda m: None)
    assert set(rates) == {"naive_python", "sqlite"} and min(rates.values()) > 0
    with pytest.raises(ValueError):
        measure(PROGRAM, [], ("mongodb",))


def test_lua_script_carries_the_program() -> None:
    """The Redis script embeds every merchant, tier and campaign of the program."""
    src = lua_script(rules_of(PROGRAM))
    for mchid in PROGRAM.merchants:
        assert f'["{mchid}"]' in src
    assert "local TIER_AT = {0, 2000, 8000}" in src
    assert "redis.call('SET', tx, pts)" in src


def test_ensure_program_finds_or_says_why_it_cannot_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A program on PATH is found as it is; one missing where apt-get is not available is
    a RuntimeError naming it and its package, not a hang or a silent skip."""
    from core.peers import ensure_program

    tool = tmp_path / "sometool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ensure_program("sometool", "some-package") == str(tool)
    with pytest.raises(RuntimeError, match=r"othertool is missing .* Debian's other-package"):
        ensure_program("othertool", "other-package")
