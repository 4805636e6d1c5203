"""Refunds: proportional reversal, exact full reversal, held refunds, named rejections."""

from __future__ import annotations

from core import Binding, Code, Engine, Enrollment, Spend
from tests.helpers import APP, STORE2, T0, oid, pay, program, refund, uid


def test_refund_reverses_the_refunded_share(make_engine) -> None:
    """Refunding 20 of a 40 order that earned 70 points takes back 35 (DOMAIN.md)."""
    chans = dict(program().channel_pct, store=175)
    eng = make_engine(return_window_days=0, channel_pct=chans)
    assert eng.pay(pay(1, 1, 4000)).points == 70
    out = eng.refund(refund(1, 1, 2000, total=4000))
    assert out.code is Code.APPLIED and out.points == -35


def test_full_refund_in_parts_takes_back_exactly_what_was_earned(engine: Engine) -> None:
    """Three partial refunds adding up to the total reverse exactly the points earned."""
    earned = engine.pay(pay(1, 1, 3333)).points
    parts = [1000, 1111, 1222]
    back = sum(-engine.refund(refund(k, 1, amt, total=3333)).points
               for k, amt in enumerate(parts))
    assert back == earned == 33
    assert engine.balance("quickmart", appid=APP, openid=oid(1)).shadow == 0


def test_refund_before_payment_is_held_then_applied(engine: Engine) -> None:
    """A refund arriving first is HELD and applied when its payment arrives."""
    assert engine.refund(refund(1, 1, 1000)).code is Code.HELD
    assert engine.stats()["refunds_held"] == 1
    assert engine.pay(pay(1, 1, 2000)).code is Code.APPLIED
    assert engine.stats()["refunds_held"] == 0
    assert engine.balance("quickmart", appid=APP, openid=oid(1)).shadow == 10
    assert engine.refund(refund(1, 1, 1000)).code is Code.DUPLICATE


def test_repeated_refund_is_duplicate_and_changes_nothing(engine: Engine) -> None:
    """A redelivered refund notification is DUPLICATE."""
    engine.pay(pay(1, 1))
    engine.refund(refund(1, 1, 500))
    before = engine.stats()
    assert engine.refund(refund(1, 1, 500)).code is Code.DUPLICATE
    assert engine.stats() == before


def test_refund_id_reused_for_another_amount_is_a_conflict(engine: Engine) -> None:
    """The same refund_id with another amount is REFUND_ID_CONFLICT."""
    engine.pay(pay(1, 1))
    engine.refund(refund(1, 1, 500))
    assert engine.refund(refund(1, 1, 600)).code is Code.REFUND_ID_CONFLICT


def test_refunds_beyond_the_paid_total_are_rejected(engine: Engine) -> None:
    """Refunds adding up to more than the payment are REFUND_EXCEEDS_PAYMENT."""
    engine.pay(pay(1, 1, 2000))
    assert engine.refund(refund(1, 1, 1500)).code is Code.APPLIED
    before = engine.stats()
    assert engine.refund(refund(2, 1, 600)).code is Code.REFUND_EXCEEDS_PAYMENT
    assert engine.stats() == before


def test_refund_for_another_members_payment_is_rejected(engine: Engine) -> None:
    """A refund naming a member who did not make the payment is rejected."""
    engine.pay(pay(1, 1))
    engine.pay(pay(2, 2))
    out = engine.refund(refund(1, 1, 500, appid=APP, openid=oid(2)))
    assert out.code is Code.REFUND_MEMBER_MISMATCH
    assert engine.refund(refund(2, 1, 500, appid=APP, openid=oid(1))).code is Code.APPLIED


def test_refund_from_another_merchant_of_the_brand_is_fine(engine: Engine) -> None:
    """Any merchant of the same program may refund (returns at another store)."""
    engine.pay(pay(1, 1))
    assert engine.refund(refund(1, 1, 500, mch=STORE2)).code is Code.APPLIED


def test_refund_total_must_match_payment(engine: Engine) -> None:
    """A refund quoting another amount.total than the payment's is BAD_VALUE."""
    engine.pay(pay(1, 1, 2000))
    assert engine.refund(refund(1, 1, 500, total=2100)).code is Code.BAD_VALUE


def test_refund_after_spending_takes_what_is_left(engine: Engine) -> None:
    """With allow_negative off, a refund after spending never makes the balance negative;
    the shortfall is counted."""
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    engine.enroll(Enrollment("quickmart", T0, unionid=uid(1)))  # +200 welcome bonus
    engine.pay(pay(1, 1, 10_000))  # +100
    engine.spend(Spend("s1", "quickmart", 280, T0 + 60, unionid=uid(1)))
    out = engine.refund(refund(1, 1, 10_000, total=10_000))
    assert out.points == -100
    bal = engine.balance("quickmart", unionid=uid(1))
    assert bal.available == 0
    assert engine.stats()["reversal_shortfall"] == 80


def test_refund_can_go_negative_when_the_program_allows(make_engine) -> None:
    """With allow_negative on, the full reversal is booked and the balance goes below 0."""
    eng = make_engine(return_window_days=0, allow_negative=True)
    eng.bind(Binding(APP, oid(1), uid(1), T0))
    eng.enroll(Enrollment("quickmart", T0, unionid=uid(1)))
    eng.pay(pay(1, 1, 10_000))
    eng.spend(Spend("s1", "quickmart", 300, T0 + 60, unionid=uid(1)))
    eng.refund(refund(1, 1, 10_000, total=10_000))
    assert eng.balance("quickmart", unionid=uid(1)).available == -100


def test_refund_of_pending_points_comes_from_pending(make_engine) -> None:
    """Inside the return window the reversal takes pending points, not available ones."""
    eng = make_engine()  # 7-day return window
    eng.pay(pay(1, 1, 2000))
    assert eng.balance("quickmart", appid=APP, openid=oid(1)).shadow_pending == 20
    eng.refund(refund(1, 1, 1000))
    bal = eng.balance("quickmart", appid=APP, openid=oid(1))
    assert (bal.shadow_pending, bal.shadow) == (10, 0)
