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
from core.sharded_feed import START_S, apply_step, mixed_feed, refund_data, second_openid
from tests.helpers import APP, APP2, MINI, STORE, oid, program, uid

PROGRAM = program()
PEOPLE = 150
STEPS, OPENIDS = mixed_feed(PROGRAM, seed=7, members=3000, events=12_000, batch=1500,
                            people=PEOPLE)
PAYMENTS = next(s.cols for s in STEPS if s.cols is not None)
# Totals that must not depend on the number of shards, people with openids on two shards
# included (their accounts move to their unionid's shard when bound).
TOTALS = ("payments", "refunds", "refunds_held", "accounts", "members", "shadow_members",
          "points_issued", "points_outstanding", "points_available", "points_pending",
          "shadow_points", "reversal_shortfall", "ledger_entries", "counts", "tiers")
# Not idempotency_keys: the router's parked refund stays a key after the feed's last
# advance, where Engine forgets its held refund's (docs/sharding.md, Refunds).


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
        for o in OPENIDS[:PEOPLE]:
            assert sharded.balance(PROGRAM.id, appid=APP2, openid=second_openid(o)) == \
                eng.balance(PROGRAM.id, appid=APP2, openid=second_openid(o))
        assert sharded.check_invariants() == []
        if shards == 2:
            # Half the people had their second openid on another shard than their unionid:
            # those accounts moved, and so did the first openids' (forwarding entries).
            people = [(APP2, second_openid(o), "u" + o[1:]) for o in OPENIDS[:PEOPLE]]
            apart = sum(shard_of(o, 2) != shard_of(u, 2) for _, o, u in people)
            assert apart > PEOPLE // 4
            assert all(sharded.fwd.shard(a, o) == shard_of(u, 2) for a, o, u in people)


def test_feed_with_people_exercises_moves(plain: tuple[Engine, list]) -> None:
    """The feed's people merge histories, pay, are refunded after the binding and spend by
    unionid: the answers the sharded engine must match are the interesting ones."""
    _eng, answers = plain
    kinds = [s.kind for s in STEPS]
    bind_step = max(k for k, s in enumerate(STEPS) if s.kind == "binding")
    merged = [p for code, p in answers[bind_step] if code is Code.APPLIED and p > 0]
    assert len(merged) == PEOPLE  # each binding merged a history with points
    spends = answers[kinds.index("spend")]
    assert sum(code is Code.APPLIED for code, _ in spends) > PEOPLE // 3
    enrolled_again = answers[max(k for k, s in enumerate(STEPS) if s.kind == "enrollment")]
    assert all(code is Code.DUPLICATE for code, _ in enrolled_again)  # bonus once


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


def test_cross_shard_person_is_one_account_as_in_one_engine(two: ShardedEngine) -> None:
    """Binding a person's openids that live on two shards moves one account to the
    unionid's shard: one account, one welcome bonus, a spend over the merged points,
    refunds and redeliveries after the move: every answer and balance is Engine's."""
    a, b = _apart()
    eng = Engine([PROGRAM])
    pays = [_pay(1, a), _pay(2, b, app=APP2, mch=MINI, total=3000),
            _pay(3, b, app=APP2, mch=MINI, total=90_000)]
    binds = [{"appid": APP, "openid": a, "unionid": uid(1), "time_s": START_S + 10},
             {"appid": APP2, "openid": b, "unionid": uid(1), "time_s": START_S + 10}]
    enroll = {"program": PROGRAM.id, "unionid": uid(1), "time_s": START_S + 20}
    later = START_S + 40 * 86_400
    steps = [
        ("payments", pays), *(("binding", d) for d in binds),
        ("enrollment", enroll), ("enrollment", enroll),
        ("refund", refund_data(pays[2], 1, 50, START_S + 30)),  # after the move
        ("payments", [pays[1], _pay(4, b, app=APP2, mch=MINI, total=5000)]),
        ("advance", {"time_s": later}),
    ]
    for kind, x in steps:
        if kind == "payments":
            want = eng.pay_columns(from_payments(x))
            got = two.pay_columns(from_payments(x))
            assert [(got.code(i), int(got.points[i])) for i in range(len(got))] == \
                [(o.code, o.points) for o in want]
        else:
            got, want = two.submit(kind, x), eng.submit(kind, x)
            assert (got.code, got.points) == (want.code, want.points), (kind, x)
            assert got == want or kind == "advance"  # its text is one shard's report
    merged = eng.balance(PROGRAM.id, unionid=uid(1))
    assert merged.member and merged.available > PROGRAM.welcome_bonus
    assert two.balance(PROGRAM.id, unionid=uid(1)) == merged
    for app, o in ((APP, a), (APP2, b)):
        assert two.balance(PROGRAM.id, appid=app, openid=o) == merged
    assert two.stats()["accounts"] == eng.stats()["accounts"] == 1
    # A spend of every available point: it needs both openids' points.
    spend = {"spend_id": "all", "program": PROGRAM.id, "points": merged.available,
             "unionid": uid(1), "time_s": later}
    assert two.submit("spend", spend) == eng.submit("spend", spend)
    assert two.submit("spend", spend).code is Code.DUPLICATE
    assert two.balance(PROGRAM.id, unionid=uid(1)).available == 0
    assert two.moved >= 1


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
