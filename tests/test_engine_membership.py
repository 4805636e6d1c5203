"""Enrollment with shadow conversion, Friend Membership, spending and coupons."""

from __future__ import annotations

from core import Binding, Code, CouponIssue, Engine, Enrollment, Entry, Spend
from tests.helpers import APP, DAY, T0, oid, pay, uid


def _member(eng: Engine, n: int, t: int = T0) -> None:
    eng.bind(Binding(APP, oid(n), uid(n), t))
    eng.enroll(Enrollment("quickmart", t, unionid=uid(n)))


def test_enrollment_converts_shadow_points_and_adds_the_bonus(engine: Engine) -> None:
    """Joining converts shadow points from the lookback window and adds the welcome bonus."""
    engine.pay(pay(1, 1, 5000))
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    out = engine.enroll(Enrollment("quickmart", T0 + 60, unionid=uid(1)))
    assert out.code is Code.APPLIED and out.points == 250
    bal = engine.balance("quickmart", unionid=uid(1))
    assert (bal.available, bal.shadow, bal.member) == (250, 0, True)


def test_shadow_points_older_than_the_lookback_are_forfeited(engine: Engine) -> None:
    """Only the last 365 days of shadow points convert; older ones are forfeited."""
    engine.pay(pay(1, 1, 3000, t=T0))
    engine.pay(pay(2, 1, 1000, t=T0 + 400 * DAY))
    engine.bind(Binding(APP, oid(1), uid(1), T0 + 400 * DAY))
    out = engine.enroll(Enrollment("quickmart", T0 + 400 * DAY, unionid=uid(1)))
    assert out.points == 10 + 200
    kinds = [r.entry for r in engine.history("quickmart", unionid=uid(1))]
    assert Entry.FORFEIT in kinds


def test_enroll_by_openid_and_twice(engine: Engine) -> None:
    """A shopper can join by (appid, openid); joining again is DUPLICATE."""
    engine.pay(pay(1, 1, 2000))
    assert engine.enroll(Enrollment("quickmart", T0, appid=APP, openid=oid(1))).ok
    assert engine.enroll(Enrollment("quickmart", T0, appid=APP,
                                    openid=oid(1))).code is Code.DUPLICATE
    assert engine.enroll(Enrollment("nope", T0, unionid=uid(1))).code is Code.UNKNOWN_PROGRAM


def test_enrollment_issues_the_welcome_coupon(engine: Engine) -> None:
    """Coupon stocks triggered on enrollment are issued to the new member."""
    _member(engine, 1)
    assert engine.stats()["counts"]["coupons_issued"] == 1


def test_friend_membership_invites_after_k_visits_in_d_days(engine: Engine) -> None:
    """The fifth visit within 30 days brings the Friend Membership invitation, once."""
    outs = [engine.pay(pay(k, 1, 1000, t=T0 + k * DAY)) for k in range(1, 6)]
    assert [o.friend_invite for o in outs] == [False] * 4 + [True]
    assert not engine.pay(pay(6, 1, 1000, t=T0 + 6 * DAY)).friend_invite


def test_sparse_visits_bring_no_invitation(engine: Engine) -> None:
    """Five visits spread over more than 30 days are not enough."""
    outs = [engine.pay(pay(k, 1, 1000, t=T0 + k * 10 * DAY)) for k in range(1, 6)]
    assert not any(o.friend_invite for o in outs)


def test_spend_points(engine: Engine) -> None:
    """Members spend available points; more than available is INSUFFICIENT_POINTS."""
    _member(engine, 1)
    assert engine.spend(Spend("s1", "quickmart", 150, T0, unionid=uid(1))).points == -150
    assert engine.spend(Spend("s1", "quickmart", 150, T0, unionid=uid(1))).code is Code.DUPLICATE
    out = engine.spend(Spend("s2", "quickmart", 51, T0, unionid=uid(1)))
    assert out.code is Code.INSUFFICIENT_POINTS
    assert engine.balance("quickmart", unionid=uid(1)).available == 50


def test_non_members_cannot_spend(engine: Engine) -> None:
    """Shadow points are not spendable."""
    engine.pay(pay(1, 1, 5000))
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    assert engine.spend(Spend("s1", "quickmart", 10, T0, unionid=uid(1))).code is Code.NOT_MEMBER
    assert engine.spend(Spend("s2", "quickmart", 10, T0,
                              unionid=uid(9))).code is Code.UNKNOWN_MEMBER


def test_coupon_issued_redeemed_once(engine: Engine) -> None:
    """A pushed coupon is redeemed by its holder's payment naming it, once."""
    _member(engine, 1)
    assert engine.issue_coupon(CouponIssue("c1", "quickmart", "lunch3", T0,
                                           unionid=uid(1))).code is Code.APPLIED
    engine.pay(pay(1, 1, 2000, coupon_ids=("c1",)))
    engine.pay(pay(2, 1, 2000, coupon_ids=("c1",)))
    counts = engine.stats()["counts"]
    assert counts["coupons_redeemed"] == 1 and counts["coupons_not_usable"] == 1


def test_coupon_rules(engine: Engine) -> None:
    """Coupons go to members of stocks that exist; another member cannot redeem one;
    a minimum order applies; expired coupons do not redeem."""
    _member(engine, 1)
    _member(engine, 2)
    assert engine.issue_coupon(CouponIssue("c0", "quickmart", "nope", T0,
                                           unionid=uid(1))).code is Code.UNKNOWN_COUPON
    engine.pay(pay(50, 3))
    assert engine.issue_coupon(CouponIssue("c9", "quickmart", "lunch3", T0, appid=APP,
                                           openid=oid(3))).code is Code.NOT_MEMBER
    engine.issue_coupon(CouponIssue("c1", "quickmart", "lunch3", T0, unionid=uid(1)))
    engine.issue_coupon(CouponIssue("c2", "quickmart", "lunch3", T0, unionid=uid(1)))
    engine.pay(pay(1, 2, 2000, coupon_ids=("c1",)))  # not the holder
    engine.pay(pay(2, 1, 1000, coupon_ids=("c1",)))  # below the 15-yuan minimum
    assert engine.advance(T0 + 8 * DAY).coupons_expired == 2
    engine.pay(pay(3, 1, 2000, t=T0 + 8 * DAY, coupon_ids=("c2",)))
    counts = engine.stats()["counts"]
    assert counts.get("coupons_redeemed", 0) == 0 and counts["coupons_expired"] == 2


def test_welcome_bonus_from_a_given_time(make_engine) -> None:
    """With welcome_bonus_from set, only enrollments from then on get the bonus."""
    eng = make_engine(return_window_days=0, welcome_bonus_from_s=T0 + 3600)
    eng.bind(Binding(APP, oid(1), uid(1), T0))
    eng.bind(Binding(APP, oid(2), uid(2), T0))
    assert eng.enroll(Enrollment("quickmart", T0 + 3599, unionid=uid(1))).points == 0
    assert eng.enroll(Enrollment("quickmart", T0 + 3600, unionid=uid(2))).points == 200


def test_stats_count_members_per_tier(engine: Engine) -> None:
    """stats() gives each program's members per tier."""
    _member(engine, 1)
    _member(engine, 2)
    engine.pay(pay(1, 2, 300_000))  # 3,000 points: silver
    engine.pay(pay(2, 3, 2000))  # a shadow shopper is not counted
    assert engine.stats()["tiers"] == {"quickmart": {"member": 1, "silver": 1, "gold": 0}}
