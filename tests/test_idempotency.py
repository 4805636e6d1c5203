"""The bounded idempotency window (core/idempotency.py): duplicates inside it, STALE
inputs behind it, keys forgotten whole generations at a time, snapshots and recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from core import Code, Engagement, Engine, Spend, check_invariants, limits
from core.idempotency import KeyWindow
from core.journal import Journal
from core.recovery import checkpoint, recover_engine
from core.types import Binding, Enrollment
from tests.helpers import APP, DAY, T0, oid, pay, program, refund, uid

W = limits.IDEMPOTENCY_WINDOW_S


def member_engine(**kw: Any) -> Engine:
    """An engine whose shopper 1 is a member with the welcome bonus (200 points) and may
    spend past zero (allow_negative), so spends never run short."""
    eng = Engine([program(allow_negative=True)], **kw)
    eng.bind(Binding(APP, oid(1), uid(1), T0))
    eng.enroll(Enrollment("quickmart", T0, unionid=uid(1)))
    return eng


def event(n: int, t: int = T0) -> Engagement:
    """Engagement event number `n` (a visit) by shopper 1 at `t`."""
    return Engagement(f"ev{n}", APP, oid(1), "visit", t)


def spend(n: int, t: int = T0, points: int = 10) -> Spend:
    """Spend number `n` of shopper 1's points at `t`."""
    return Spend(f"sp{n}", "quickmart", points, t, unionid=uid(1))


def idem_state(eng: Engine) -> tuple:
    """The idempotency window's content, in comparable form (set order aside)."""
    i = eng.idem
    return (i.window_s, i.bucket_s, i.horizon_s, i.forgotten, sorted(i.events),
            sorted(i.refunds.items()), sorted(i.spends.items()),
            sorted((b, tuple(map(sorted, g))) for b, g in i.gens.items()), sorted(i.gen_heap))


def test_default_window_is_the_retry_span_and_a_margin() -> None:
    """The default window is 24h04m of retries plus 23h56m of margin: two days."""
    assert limits.RETRY_WINDOW_S == 24 * 3600 + 4 * 60
    assert W == limits.RETRY_WINDOW_S + limits.IDEMPOTENCY_MARGIN_S == 2 * DAY
    assert Engine([program()]).idem.window_s == W


@pytest.mark.parametrize("window_s", [limits.RETRY_WINDOW_S - 1, 0, -5, 2.5 * DAY,
                                      limits.IDEMPOTENCY_WINDOW_S_MAX + 1, True])
def test_window_out_of_range_is_refused(window_s: Any) -> None:
    """A window shorter than the retry span (a retry would be refused), longer than the
    limit, or not an int is a ValueError naming the range."""
    with pytest.raises(ValueError, match="idempotency window"):
        Engine([program()], idempotency_window_s=window_s)
    with pytest.raises(ValueError, match="generation"):
        KeyWindow(W, bucket_s=0)


def test_duplicates_inside_the_window_are_duplicate() -> None:
    """An event, refund or spend redelivered with the clock exactly a window past its
    time is still DUPLICATE, and changes nothing."""
    eng = member_engine()
    assert eng.pay(pay(1, 1)).code is Code.APPLIED
    assert eng.engage(event(1)).code is Code.APPLIED
    assert eng.refund(refund(1, 1, 500, t=T0)).code is Code.APPLIED
    assert eng.spend(spend(1)).code is Code.APPLIED
    eng.advance(T0 + W)
    before = eng.snapshot()
    assert eng.engage(event(1)).code is Code.DUPLICATE
    assert eng._engage_py(event(1)).code is Code.DUPLICATE
    assert eng.refund(refund(1, 1, 500, t=T0)).code is Code.DUPLICATE
    assert eng.spend(spend(1)).code is Code.DUPLICATE
    assert eng.snapshot() == before
    assert eng.stats()["idempotency_keys"] == 3


def test_inputs_older_than_the_window_are_stale_and_change_nothing() -> None:
    """Past the window an event, refund or spend, redelivered or new, is STALE: nothing is
    applied twice and nothing changes; its key is forgotten."""
    eng = member_engine()
    assert eng.pay(pay(1, 1)).code is Code.APPLIED
    assert eng.engage(event(1)).code is Code.APPLIED
    assert eng.refund(refund(1, 1, 500, t=T0)).code is Code.APPLIED
    assert eng.spend(spend(1)).code is Code.APPLIED
    eng.advance(T0 + W + limits.IDEMPOTENCY_BUCKET_S)
    assert eng.stats()["idempotency_keys"] == 0
    assert eng.stats()["idempotency_keys_forgotten"] == 3
    before = eng.snapshot()
    for x in (event(1), event(2), event(1, T0 + 1)):
        for apply in (eng.engage, eng._engage_py):
            out = apply(x)
            assert out.code is Code.STALE and "idempotency window" in out.message
    assert eng.refund(refund(1, 1, 500, t=T0)).code is Code.STALE
    assert eng.refund(refund(2, 1, 500, t=T0)).code is Code.STALE
    assert eng.spend(spend(1)).code is Code.STALE
    assert eng.submit("event", {"event_id": "ev1", "appid": APP, "openid": oid(1),
                                "kind": "visit", "time_s": T0}).code is Code.STALE
    assert eng.snapshot() == before
    assert not check_invariants(eng)


def test_the_horizon_is_exact_and_the_clock_only_moves_forward() -> None:
    """An input exactly at clock - window is inside; one second older is STALE; an
    advance backwards moves neither the clock nor the window."""
    eng = member_engine()
    eng.advance(T0 + W)
    assert eng.engage(event(1, T0)).code is Code.APPLIED
    assert eng.engage(event(2, T0 - 1)).code is Code.STALE
    eng.advance(T0)
    assert eng.idem.horizon_s == T0
    assert eng.engage(event(1, T0)).code is Code.DUPLICATE


def test_payments_keep_exact_idempotency_past_the_window() -> None:
    """Payments are not windowed: a redelivery months later is DUPLICATE (the payment
    store keeps every transaction id for refunds), and a late refund of it applies."""
    eng = member_engine()
    assert eng.pay(pay(1, 1)).code is Code.APPLIED
    eng.advance(T0 + 100 * DAY)
    assert eng.pay(pay(1, 1)).code is Code.DUPLICATE
    assert eng.refund(refund(1, 1, 500, t=T0 + 100 * DAY)).code is Code.APPLIED
    assert eng.refund(refund(1, 1, 500, t=T0 + 100 * DAY)).code is Code.DUPLICATE


def test_held_refunds_apply_when_their_payment_comes_after_the_window() -> None:
    """A refund acknowledged HELD is applied when its payment arrives, however late."""
    eng = member_engine()
    assert eng.refund(refund(1, 1, 2000, t=T0 + 60)).code is Code.HELD
    eng.advance(T0 + 10 * DAY)
    assert eng.pay(pay(1, 1)).code is Code.APPLIED
    assert eng.stats()["refunds"] == 1 and eng.held_count == 0
    assert not check_invariants(eng)


def run_days(eng: Engine, days: int, per_hour: int, sizes: list[int]) -> None:
    """Feed `per_hour` events, refunds and spends an hour for `days` days, advancing the
    clock each hour, and append the key count after each hour to `sizes`."""
    n = 0
    for hour in range(days * 24):
        t = T0 + hour * 3600
        for k in range(per_hour):
            n += 1
            assert eng.engage(Engagement(f"ev{n}", APP, oid(2 + n % 50), "ad",
                                         t + k)).code is Code.APPLIED
            assert eng.pay(pay(n, 2 + n % 50, t=t + k)).code is Code.APPLIED
            assert eng.refund(refund(n, n, 100, t=t + k + 1)).code is Code.APPLIED
            if k % 4 == 0:
                assert eng.spend(spend(n, t + k, 1)).code is Code.APPLIED
        eng.advance(t + 3600)
        sizes.append(len(eng.idem))


def test_keys_are_forgotten_and_memory_stays_bounded() -> None:
    """Over ten windows of traffic the remembered keys stop growing after the first
    window: at most the inputs of window + one generation + one advance interval."""
    eng = member_engine()
    eng.advance(T0)
    sizes: list[int] = []
    per_hour = 8
    run_days(eng, 20, per_hour, sizes)
    keys_per_hour = per_hour * 2 + per_hour // 4
    bound = keys_per_hour * (W // 3600 + 2)
    assert max(sizes) <= bound
    assert sizes[-1] == sizes[len(sizes) // 2] == sizes[W // 3600 + 5]  # flat
    assert len(eng.idem.gens) <= W // 3600 + 2
    assert eng.idem.forgotten + len(eng.idem) == keys_per_hour * 20 * 24
    assert not check_invariants(eng)


def test_snapshot_keeps_the_window() -> None:
    """A snapshot carries the window's size, horizon and generations: the loaded engine
    answers DUPLICATE and STALE as the original, and forgets the same keys later."""
    eng = member_engine(idempotency_window_s=3 * DAY)
    eng.pay(pay(1, 1))
    for n in range(10):
        eng.engage(event(n, T0 + n * 3 * 3600))
    eng.refund(refund(1, 1, 500, t=T0 + 3600))
    eng.spend(spend(1, T0 + 7200))
    eng.advance(T0 + 3 * DAY + 4 * 3600)
    again = Engine.from_snapshot(eng.snapshot())
    assert idem_state(again) == idem_state(eng) and again.idem.window_s == 3 * DAY
    for x in (event(1, T0 + 3 * 3600), event(5, T0 + 15 * 3600), event(99, T0)):
        assert again.engage(x) == eng.engage(x)
    assert again.refund(refund(1, 1, 500, t=T0 + 3600)) == eng.refund(
        refund(1, 1, 500, t=T0 + 3600))
    for e in (eng, again):
        e.advance(T0 + 4 * DAY)
    assert idem_state(again) == idem_state(eng)
    assert again.event_seen is again.idem.events and again.refund_seen is again.idem.refunds
    assert again.spend_seen is again.idem.spends


def live_run(directory: Path, days: int, checkpoint_hours: tuple[int, ...],
             codes: dict[Code, int]) -> Engine:
    """An engine fed days of events, payments, refunds, spends, stale and duplicate
    redeliveries and hourly advances, journaling what it acknowledged (as the service);
    counts the results in `codes`."""
    eng = Engine([program(allow_negative=True)])
    j = Journal.open(directory, "always", segment_bytes_max=32 * 1024)

    def submit(kind: str, data: dict) -> None:
        out = eng.submit(kind, data)
        codes[out.code] = codes.get(out.code, 0) + 1
        if out.ok and out.code is not Code.DUPLICATE:
            j.append(kind, orjson.dumps(data))

    submit("binding", {"appid": APP, "openid": oid(1), "unionid": uid(1), "time_s": T0})
    submit("enrollment", {"program": "quickmart", "unionid": uid(1), "time_s": T0})
    n = 0
    for hour in range(days * 24):
        t = T0 + hour * 3600
        for k in range(3):
            n += 1
            for m in (n, n - 1, n - 60):  # new, a redelivery, one older than the window
                submit("event", {"event_id": f"ev{m}", "appid": APP, "openid": oid(1),
                                 "kind": "ad", "time_s": t + k - (n - m) * 3600})
            p = pay(n, 1, t=t + k)
            if eng.pay(p).ok:
                j.append_payment(p)
            submit("refund", {"mchid": p.mchid, "transaction_id": p.transaction_id,
                              "refund_id": f"r{n}", "time_s": t + k + 5,
                              "amount": {"total": p.total_fen, "refund": 100}})
            submit("spend", {"spend_id": f"s{n}", "program": "quickmart", "points": 1,
                             "unionid": uid(1), "time_s": t + k})
        submit("advance", {"time_s": t + 3600})
        j.commit()
        if hour in checkpoint_hours:
            checkpoint(j, eng.snapshot())
    j.close()
    return eng


@pytest.mark.parametrize("checkpoints", [(), (30, 80)])
def test_recovery_equals_the_uninterrupted_run(tmp_path: Path, checkpoints: tuple) -> None:
    """Replaying the journal (from nothing, or from a snapshot taken mid-window) rebuilds
    the live engine's balances, ledger and idempotency window exactly."""
    codes: dict[Code, int] = {}
    live = live_run(tmp_path, 5, checkpoints, codes)
    assert codes[Code.STALE] and codes[Code.DUPLICATE] and codes[Code.APPLIED]
    assert live.stats()["idempotency_keys_forgotten"] > 0
    eng, journal, report = recover_engine(tmp_path, [program(allow_negative=True)])
    journal.close()
    assert (report.snapshot_seq is not None) == bool(checkpoints)
    assert isinstance(eng, Engine)
    assert eng.stats() == live.stats()
    assert idem_state(eng) == idem_state(live)
    assert list(eng.ledger.rows) == list(live.ledger.rows)
    assert check_invariants(eng) == []


def test_idempotency_bench_shows_flat_memory() -> None:
    """`paymember bench idempotency` reports keys that stop growing after the window,
    with bytes per key, and refuses sizes out of range."""
    from core import idempotency_bench

    r = idempotency_bench.measure(program(), days=4, per_hour=40, seed=2)
    days = r["by_day"]
    assert [d["day"] for d in days] == [1, 2, 3, 4]
    assert days[2]["forgotten"] > 0 and days[3]["keys"] <= days[1]["keys"]
    assert r["keys_if_kept_forever"] == days[-1]["forgotten"] + days[-1]["keys"]
    assert 50 < r["bytes_per_key"] < 2000 and r["invariants_ok"]
    text = idempotency_bench.format_report(r)
    assert "per key inside the window" in text and "48h00m" in text
    with pytest.raises(ValueError, match="days"):
        idempotency_bench.measure(program(), days=0)
