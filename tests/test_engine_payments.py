"""Payments: earning rules, idempotency and named rejections."""

from __future__ import annotations

import dataclasses

from core import Binding, Code, Engine, Enrollment
from tests.helpers import APP, APP2, LUNCH, MINI, STORE, T0, TRANSIT, oid, pay, uid


def test_base_points_per_yuan(engine: Engine) -> None:
    """20 yuan at a store earns 20 points (1 point a yuan)."""
    out = engine.pay(pay(1, 1, 2000))
    assert out.code is Code.APPLIED and out.points == 20
    assert engine.balance("quickmart", appid=APP, openid=oid(1)).shadow == 20


def test_channel_multipliers(engine: Engine) -> None:
    """Transit earns 50%, the mini program 150% of the base."""
    assert engine.pay(pay(1, 1, 2000, mch=TRANSIT)).points == 10
    assert engine.pay(pay(2, 1, 2000, mch=MINI)).points == 30


def test_campaign_window_doubles_lunch_at_stores_only(engine: Engine) -> None:
    """The 12:00-14:00 campaign doubles store points, not transit ones."""
    assert engine.pay(pay(1, 1, 2000, t=LUNCH)).points == 40
    assert engine.pay(pay(2, 1, 2000, t=LUNCH, mch=TRANSIT)).points == 10
    assert engine.pay(pay(3, 1, 2000, t=LUNCH + 2 * 3600)).points == 20


def test_minimum_order_and_cap(engine: Engine) -> None:
    """Below the minimum order nothing is earned; above the cap the cap is earned."""
    assert engine.pay(pay(1, 1, 99)).points == 0
    assert engine.pay(pay(2, 1, 1_000_000)).points == 5000


def test_foreign_currency_earns_on_home_value(engine: Engine) -> None:
    """50,000 yen at 4.8 fen a yen is 2,400 fen: 24 points."""
    assert engine.pay(pay(1, 1, 50_000, currency="JPY")).points == 24


def test_coupon_share_earns_nothing(engine: Engine) -> None:
    """Points are earned on payer_total: what the shopper paid, not the coupon."""
    assert engine.pay(pay(1, 1, 2000, payer_total_fen=1500)).points == 15


def test_tier_multiplier_for_members(engine: Engine) -> None:
    """A silver member earns 125%; upgrade happens as soon as the threshold is reached."""
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    engine.enroll(Enrollment("quickmart", T0, unionid=uid(1)))
    assert engine.pay(pay(1, 1, 180_000)).points == 1800
    assert engine.balance("quickmart", unionid=uid(1)).tier == "member"
    assert engine.pay(pay(2, 1, 20_000)).points == 200  # reaches 2,000 + 200 bonus
    assert engine.balance("quickmart", unionid=uid(1)).tier == "silver"
    assert engine.pay(pay(3, 1, 2000)).points == 25


def test_duplicate_is_a_normal_result_that_changes_nothing(engine: Engine) -> None:
    """A redelivered notification is DUPLICATE and books nothing."""
    engine.pay(pay(1, 1))
    before = engine.stats()
    out = engine.pay(pay(1, 1))
    assert out.code is Code.DUPLICATE and out.ok
    assert engine.stats() == before


def test_same_id_different_amount_is_a_conflict(engine: Engine) -> None:
    """A transaction_id reused with another total is TRANSACTION_ID_CONFLICT."""
    engine.pay(pay(1, 1, 2000))
    out = engine.pay(pay(1, 1, 3000))
    assert out.code is Code.TRANSACTION_ID_CONFLICT and not out.ok


def test_rejections_are_named_and_change_nothing(engine: Engine) -> None:
    """Unknown merchant/app, mismatch, bad amount, time, id and currency are named."""
    before = engine.stats()
    cases = {
        Code.UNKNOWN_MERCHANT: pay(1, 1, mch="1999999999"),
        Code.UNKNOWN_APP: pay(2, 1, app="wxnotours"),
        Code.BAD_VALUE: pay(3, 1, 0),
        Code.BAD_TIME: pay(4, 1, t=12),
        Code.BAD_ID: dataclasses.replace(pay(5, 1), openid="bad openid!"),
        Code.UNKNOWN_CURRENCY: pay(6, 1, currency="XYZ"),
    }
    for code, p in cases.items():
        out = engine.pay(p)
        assert out.code is code and out.message, (code, out)
    assert engine.pay(dataclasses.replace(pay(7, 1), payer_total_fen=5000)).code is Code.BAD_VALUE
    assert engine.stats() == before


def test_app_of_another_brand_is_a_mismatch(make_engine) -> None:
    """A payment whose appid and mchid belong to different programs is rejected."""
    from tests.helpers import program
    other = dataclasses.replace(program(), id="otherbrand", appids=("wxotherbrandapp00001",),
                                merchants={"1800000001": "store"})
    eng = make_engine(program(), other)
    out = eng.pay(pay(1, 1, app="wxotherbrandapp00001", mch=STORE))
    assert out.code is Code.APP_MERCHANT_MISMATCH


def test_preview_books_nothing(engine: Engine) -> None:
    """preview() tells the points a payment would earn and changes nothing."""
    before = engine.stats()
    assert engine.preview(pay(1, 1, 2000, t=LUNCH)).points == 40
    assert engine.stats() == before
    engine.pay(pay(1, 1, 2000, t=LUNCH))
    assert engine.preview(pay(1, 1, 2000, t=LUNCH)).code is Code.DUPLICATE


def test_pay_to_join_offer_for_non_members_only(engine: Engine) -> None:
    """A non-member paying at least the program's minimum gets the offer; members don't."""
    assert engine.pay(pay(1, 1, 600)).offer_membership
    assert not engine.pay(pay(2, 1, 400)).offer_membership
    engine.bind(Binding(APP2, oid(2), uid(2), T0))
    engine.enroll(Enrollment("quickmart", T0, unionid=uid(2)))
    assert not engine.pay(pay(3, 2, 600, app=APP2, mch=MINI)).offer_membership


def test_payment_subclass_and_exact_payment_are_applied_alike(make_engine) -> None:
    # An exact Payment is read by slot offset, anything else by attribute: same outcomes.
    from core.types import Payment

    class Late(Payment):
        __slots__ = ()

    exact, other = make_engine(), make_engine()
    for n in range(40):
        p = pay(n, n % 7, total=500 + 37 * n, t=T0 + 60 * n)
        q = Late(*(getattr(p, f.name) for f in dataclasses.fields(Payment)))
        assert exact.pay(p) == other.pay(q)
    bad = dataclasses.replace(pay(99, 1), total_fen="100")  # wrong type either way
    assert exact.pay(bad).code == Code.BAD_TYPE == other.pay(
        Late(*(getattr(bad, f.name) for f in dataclasses.fields(Payment)))).code
    assert exact.stats() == other.stats()


def test_batch_with_columns_of_different_lengths_is_refused_untouched(make_engine) -> None:
    import pytest

    from core.payment_columns import from_payments

    eng = make_engine()
    cols = from_payments([pay(n, n) for n in range(5)])
    before = eng.stats()
    for name in ("openid", "appid", "coupon_ids"):
        short = dataclasses.replace(cols, **{name: getattr(cols, name)[:-1]})
        with pytest.raises(ValueError, match="differ in length"):
            eng.pay_columns(short)
    short = dataclasses.replace(cols, time_s=cols.time_s[:-1])
    with pytest.raises(ValueError, match="differ in length"):
        eng.pay_columns(short)
    assert eng.stats() == before
    assert all(o.code == Code.APPLIED for o in eng.pay_columns(cols))
