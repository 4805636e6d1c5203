"""ShardedEngine: the same answers and totals as one Engine, real worker processes, clear
errors instead of hangs, and the documented rules for refunds and cross-shard people."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from core import (
    Code,
    Engine,
    Payment,
    ShardedEngine,
    ShardError,
    check_invariants,
    from_payments,
    shard_of,
)
from core.sharded_feed import START_S, apply_step, mixed_feed, refund_data
from tests.helpers import APP, APP2, MINI, STORE, oid, program, uid

PROGRAM = program()
STEPS, OPENIDS = mixed_feed(PROGRAM, seed=7, members=3000, events=12_000, batch=1500)
PAYMENTS = next(s.cols for s in STEPS if s.cols is not None)
# Totals that must not depend on the number of shards for this feed (no cross-app people).
TOTALS = ("payments", "refunds", "refunds_held", "accounts", "members", "shadow_members",
          "points_issued", "points_outstanding", "points_available", "points_pending",
          "shadow_points", "reversal_shortfall", "ledger_entries", "counts")


@pytest.fixture(scope="module")
def plain() -> tuple[Engine, list]:
    """The feed through one plain Engine, with every input's (code, points)."""
    eng = Engine([PROGRAM])
    answers = [apply_step(eng, s) for s in STEPS]
    assert not check_invariants(eng)
    return eng, answers


@pytest.fixture
def two() -> Iterator[ShardedEngine]:
    """An empty two-shard engine over the example program, checked and closed after."""
    with ShardedEngine([PROGRAM], 2) as eng:
        yield eng
        assert eng.check_invariants() == []


@pytest.mark.parametrize("shards", [1, 2])
def test_same_feed_same_answers_and_totals(plain: tuple[Engine, list], shards: int) -> None:
    """Every input's answer, the totals and each shopper's balance equal one Engine's."""
    eng, answers = plain
    with ShardedEngine([PROGRAM], shards) as sharded:
        got = [apply_step(sharded, s) for s in STEPS]
        assert got == answers
        want, have = eng.stats(), sharded.stats()
        assert {k: have[k] for k in TOTALS} == {k: want[k] for k in TOTALS}
        assert want["refunds_held"] == 1  # the refund whose payment never came
        for o in OPENIDS[::7]:
            assert sharded.balance(PROGRAM.id, appid=APP, openid=o) == \
                eng.balance(PROGRAM.id, appid=APP, openid=o)
        for o in OPENIDS[:300:5]:
            assert sharded.balance(PROGRAM.id, unionid="u" + o[1:]) == \
                eng.balance(PROGRAM.id, unionid="u" + o[1:])
        assert sharded.check_invariants() == []


def test_workers_are_separate_processes(two: ShardedEngine) -> None:
    """Each shard is its own live process, none of them this one."""
    pids = two.worker_pids()
    assert len(set(pids)) == 2
    assert os.getpid() not in pids
    assert pids == [p.pid for p in two.procs]
    for pid in pids:
        os.kill(pid, 0)  # alive


def test_close_twice_is_fine() -> None:
    """close() stops the workers; a second close() and the context exit do nothing."""
    eng = ShardedEngine([PROGRAM], 2)
    procs = list(eng.procs)
    with eng:
        eng.close()
        eng.close()
    assert all(p.exitcode == 0 for p in procs)
    with pytest.raises(ShardError):
        eng.stats()


def test_dead_worker_is_a_clear_error_not_a_hang() -> None:
    """A SIGKILLed worker makes the next call raise ShardError naming it, and every later one."""
    eng = ShardedEngine([PROGRAM], 2)
    victim = eng.procs[1].pid
    os.kill(victim, signal.SIGKILL)
    eng.procs[1].join(10)
    with pytest.raises(ShardError, match=rf"shard 1 \(pid {victim}\) died"):
        eng.pay_columns(PAYMENTS)
    with pytest.raises(ShardError, match="shard 1"):
        eng.stats()
    eng.close()  # the death was reported already: close quietly
    assert not any(p.is_alive() for p in eng.procs)


def test_stuck_worker_times_out() -> None:
    """A worker that stops answering is reported after the reply timeout."""
    eng = ShardedEngine([PROGRAM], 2, reply_timeout_s=0.5)
    stuck = eng.procs[0].pid
    os.kill(stuck, signal.SIGSTOP)
    try:
        with pytest.raises(ShardError, match=r"did not answer within 0\.5 s"):
            eng.stats()
    finally:
        os.kill(stuck, signal.SIGCONT)
        eng.close()


def test_worker_failing_to_start_is_reported(tmp_path) -> None:
    """A shard whose journal cannot be opened fails the constructor with its reason."""
    (tmp_path / "shard-0").write_text("not a directory")
    with pytest.raises(ShardError, match="shard 0 did not start"):
        ShardedEngine([PROGRAM], 2, journal_dir=tmp_path)


def _pay(n: int, openid: str, app: str = APP, mch: str = STORE, total: int = 2000) -> Payment:
    return Payment(f"42{n:030d}", app, mch, openid, total, START_S + n)


def test_refund_before_its_payment_waits_in_the_router(two: ShardedEngine) -> None:
    """A refund for an unseen payment is HELD by the router, applied on the payment's shard
    when it arrives, and a duplicate after that; a bad one is rejected as Engine does."""
    p = _pay(1, oid(1))
    data = refund_data(p, 1, 50, START_S + 100)
    assert two.submit("refund", data).code is Code.HELD
    assert two.submit("refund", data).code is Code.DUPLICATE
    assert two.stats()["refunds_held"] == 1
    out = two.pay_columns(from_payments([p]))
    assert out.code(0) is Code.APPLIED
    s = two.stats()
    assert (s["refunds_held"], s["refunds"]) == (0, 1)
    assert two.submit("refund", data).code is Code.DUPLICATE
    bad = dict(data, refund_id="other", mchid="nope")
    assert two.submit("refund", bad).code is Engine([PROGRAM]).submit("refund", bad).code


def _apart(shards: int = 2) -> tuple[str, str]:
    """Two openids (one per app) of one person that live on different shards."""
    for n in range(100):
        a, b = oid(n), oid(1000 + n)
        if shard_of(a, shards) != shard_of(b, shards):
            return a, b
    raise AssertionError("no pair found")


def test_cross_shard_person_has_one_account_per_shard(two: ShardedEngine) -> None:
    """Binding a person's openids from two shards leaves one account on each; balance by
    unionid is their sum, and enrolling by unionid enrolls both (bonus on each)."""
    a, b = _apart()
    eng = Engine([PROGRAM])
    pays = [_pay(1, a), _pay(2, b, app=APP2, mch=MINI, total=3000)]
    binds = [{"appid": APP, "openid": a, "unionid": uid(1), "time_s": START_S + 10},
             {"appid": APP2, "openid": b, "unionid": uid(1), "time_s": START_S + 10}]
    enroll = [{"program": PROGRAM.id, "unionid": uid(1), "time_s": START_S + 20}]
    for target in (eng, two):
        target.pay_columns(from_payments(pays))
        for d in binds:
            assert target.submit("binding", d).code is Code.APPLIED
    merged = eng.balance(PROGRAM.id, unionid=uid(1))
    assert two.balance(PROGRAM.id, unionid=uid(1)) == merged
    assert (two.stats()["accounts"], eng.stats()["accounts"]) == (2, 1)
    part = two.balance(PROGRAM.id, appid=APP, openid=a)
    assert 0 < part.shadow + part.shadow_pending < merged.shadow + merged.shadow_pending
    assert eng.submit("enrollment", enroll[0]).code is Code.APPLIED
    assert two.submit("enrollment", enroll[0]).code is Code.APPLIED
    one, both = eng.balance(PROGRAM.id, unionid=uid(1)), two.balance(PROGRAM.id, unionid=uid(1))
    assert both.member and one.member
    assert both.available == one.available + PROGRAM.welcome_bonus


def test_unionid_only_inputs_find_their_shard(two: ShardedEngine) -> None:
    """Spend and enrollment named by unionid reach the one shard holding the account."""
    a = oid(5)
    two.submit("binding", {"appid": APP, "openid": a, "unionid": uid(5), "time_s": START_S})
    assert two.submit("enrollment", {"program": PROGRAM.id, "unionid": uid(5),
                                     "time_s": START_S}).code is Code.APPLIED
    two.pay_columns(from_payments([_pay(9, a, total=500_000)]))
    two.submit("advance", {"time_s": START_S + 40 * 86_400})
    have = two.balance(PROGRAM.id, unionid=uid(5)).available
    assert have > 0
    out = two.submit("spend", {"spend_id": "s1", "program": PROGRAM.id, "points": 1,
                               "unionid": uid(5), "time_s": START_S + 40 * 86_400})
    assert out.code is Code.APPLIED
    assert two.balance(PROGRAM.id, unionid=uid(5)).available == have - 1
    assert two.submit("spend", {"spend_id": "s2", "program": PROGRAM.id, "points": 1,
                                "unionid": uid(6), "time_s": START_S + 40 * 86_400}
                      ).code is Code.UNKNOWN_MEMBER



def test_cross_shard_spend_draws_on_the_lowest_shard(two: ShardedEngine) -> None:
    """A spend by unionid of a person on two shards debits the lowest-numbered shard's account."""
    a, b = _apart()
    for d in ({"appid": APP, "openid": a, "unionid": uid(2), "time_s": START_S},
              {"appid": APP2, "openid": b, "unionid": uid(2), "time_s": START_S}):
        two.submit("binding", d)
    two.submit("enrollment", {"program": PROGRAM.id, "unionid": uid(2), "time_s": START_S})
    low = (APP, a) if shard_of(a, 2) < shard_of(b, 2) else (APP2, b)
    before = two.balance(PROGRAM.id, appid=low[0], openid=low[1]).available
    assert before > 0
    out = two.submit("spend", {"spend_id": "x1", "program": PROGRAM.id, "points": 1,
                               "unionid": uid(2), "time_s": START_S})
    assert out.code is Code.APPLIED
    assert two.balance(PROGRAM.id, appid=low[0], openid=low[1]).available == before - 1


def test_bench_shards_small_run_reports_both_ways_of_feeding() -> None:
    from core import sharded_bench

    r = sharded_bench.run(PROGRAM, (1, 2), events=3_000, members=800, batch_size=500, rounds=1)
    assert r["invariants_ok"]
    assert set(r["payments_per_s"]) == set(r["routed_payments_per_s"]) == {"1", "2"}
    assert r["scaling"]["1"] == r["routed_scaling"]["1"] == 1.0
    text = sharded_bench.format_report(r)
    assert "pre-routed" in text and "ShardedEngine,  2 shard(s)" in text


def test_routed_parts_cover_every_payment_once() -> None:
    import numpy as np

    from core.payment_columns import from_payments
    from core.routing import shards_of
    from core.sharded_bench import _time_routed
    from core.workload import payment_stream

    wl = payment_stream(PROGRAM, np.random.default_rng(5), 300, 1_000, START_S)
    cols = from_payments(wl.payments)
    counts = np.bincount(shards_of(cols.openid, 3), minlength=3)
    assert counts.sum() == len(cols) and (counts > 0).all()
    elapsed, ok = _time_routed(PROGRAM, 3, cols, 128)
    assert ok and elapsed > 0
