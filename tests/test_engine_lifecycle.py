"""Time-based work through advance(now): unlocking, expiry, tiers, clock rules."""

from __future__ import annotations

from core import Binding, Code, Engine, Enrollment, parse_time
from tests.helpers import APP, APP2, DAY, T0, oid, pay, uid


def _member(eng: Engine, n: int, t: int = T0) -> None:
    eng.bind(Binding(APP, oid(n), uid(n), t))
    eng.enroll(Enrollment("quickmart", t, unionid=uid(n)))


def test_points_pending_until_the_return_window_closes(make_engine) -> None:
    """With a 7-day window, points are pending until advance() passes day 7."""
    eng = make_engine()
    _member(eng, 1)
    eng.pay(pay(1, 1, 5000))
    bal = eng.balance("quickmart", unionid=uid(1))
    assert (bal.available, bal.pending) == (200, 50)
    assert eng.advance(T0 + 7 * DAY - 1).unlocked == 0
    assert eng.advance(T0 + 7 * DAY).unlocked == 50
    bal = eng.balance("quickmart", unionid=uid(1))
    assert (bal.available, bal.pending) == (250, 0)


def test_shadow_pending_unlocks_into_shadow(make_engine) -> None:
    """A non-member's pending points unlock into the shadow balance."""
    eng = make_engine()
    eng.pay(pay(1, 1, 5000))
    eng.advance(T0 + 8 * DAY)
    bal = eng.balance("quickmart", appid=APP, openid=oid(1))
    assert (bal.shadow, bal.shadow_pending) == (50, 0)


def test_out_of_order_payments_unlock_on_time(make_engine) -> None:
    """A late notification for an earlier payment still unlocks at its own time."""
    eng = make_engine()
    eng.pay(pay(1, 1, 5000, t=T0 + 2 * DAY))
    eng.pay(pay(2, 2, 3000, t=T0))
    assert eng.advance(T0 + 7 * DAY).unlocked == 30
    assert eng.advance(T0 + 9 * DAY).unlocked == 50


def test_rolling_expiry_oldest_first(engine: Engine) -> None:
    """Points expire 365 days after they arrived; spending used the oldest first."""
    _member(engine, 1)  # 200 bonus on day 0
    engine.pay(pay(1, 1, 10_000, t=T0 + 100 * DAY))  # 100 on day 100
    rep = engine.advance(T0 + 366 * DAY)
    assert rep.expired == 200
    assert engine.balance("quickmart", unionid=uid(1)).available == 100
    assert engine.advance(T0 + 466 * DAY).expired == 100


def test_year_end_expiry(make_engine) -> None:
    """With year_end expiry (0 extra days), points earned in 2026 expire on 2027-01-01."""
    eng = make_engine(return_window_days=0, expiry="year_end", expiry_days=0)
    _member(eng, 1)
    assert eng.advance(parse_time("2026-12-31T23:00:00+08:00")).expired == 0
    assert eng.advance(parse_time("2027-01-01T00:00:00+08:00")).expired == 200


def test_month_end_expiry(make_engine) -> None:
    """With month_end expiry and 30 extra days, March points expire on May 1st."""
    eng = make_engine(return_window_days=0, expiry="month_end", expiry_days=30)
    _member(eng, 1)  # 2026-03-02, +30 days = April 1st -> expires at the end of April
    assert eng.advance(parse_time("2026-04-30T12:00:00+08:00")).expired == 0
    assert eng.advance(parse_time("2026-05-01T00:00:00+08:00")).expired == 200


def test_no_expiry(make_engine) -> None:
    """With expiry = none, points stay."""
    eng = make_engine(return_window_days=0, expiry="none", expiry_days=0)
    _member(eng, 1)
    assert eng.advance(T0 + 2000 * DAY).expired == 0


def test_tier_downgrade_one_level_when_months_leave_the_window(make_engine) -> None:
    """Gold earned in one month falls one level a month once it leaves the 12-month
    window, not straight to the bottom."""
    eng = make_engine(return_window_days=0, expiry="none", expiry_days=0)
    _member(eng, 1)
    eng.advance(T0)
    eng.pay(pay(1, 1, 800_000))  # 5000-point cap ... twice
    eng.pay(pay(2, 1, 800_000))
    assert eng.balance("quickmart", unionid=uid(1)).tier == "gold"
    eng.advance(parse_time("2027-02-15T00:00:00+08:00"))  # March 2026 is still inside
    assert eng.balance("quickmart", unionid=uid(1)).tier == "gold"
    eng.advance(parse_time("2027-03-15T00:00:00+08:00"))  # ... and now it left
    assert eng.balance("quickmart", unionid=uid(1)).tier == "silver"
    eng.advance(parse_time("2027-04-15T00:00:00+08:00"))
    assert eng.balance("quickmart", unionid=uid(1)).tier == "member"


def test_tier_to_qualified_drops_at_once(make_engine) -> None:
    """With downgrade = to_qualified, the tier follows the window's total."""
    eng = make_engine(return_window_days=0, expiry="none", expiry_days=0,
                      downgrade="to_qualified", tier_window_months=1)
    _member(eng, 1)
    eng.advance(T0)
    eng.pay(pay(1, 1, 800_000))
    eng.pay(pay(2, 1, 800_000))
    assert eng.balance("quickmart", unionid=uid(1)).tier == "gold"
    eng.advance(parse_time("2026-04-02T00:00:00+08:00"))
    bal = eng.balance("quickmart", unionid=uid(1))
    assert (bal.tier, bal.qualifying) == ("member", 0)


def test_merged_months_leave_the_survivors_window_on_time(make_engine) -> None:
    """A month closed before a merge stays in the survivor's tier window, and leaves it
    when the window moves past it."""
    eng = make_engine(return_window_days=0, expiry="none", expiry_days=0,
                      downgrade="to_qualified", tier_window_months=2)
    _member(eng, 1)
    eng.advance(T0)
    eng.pay(pay(1, 1, 300_000))  # March: 3000 points as a member
    eng.pay(pay(2, 2, 500_000, app=APP2))  # ... and 5000 as a shadow on the other app
    eng.advance(parse_time("2026-04-02T00:00:00+08:00"))
    eng.bind(Binding(APP2, oid(2), uid(1), parse_time("2026-04-03T00:00:00+08:00")))
    bal = eng.balance("quickmart", unionid=uid(1))
    assert (bal.tier, bal.qualifying) == ("gold", 8000)
    eng.advance(parse_time("2026-05-02T00:00:00+08:00"))  # March leaves, both halves
    bal = eng.balance("quickmart", unionid=uid(1))
    assert (bal.tier, bal.qualifying) == ("member", 0)


def test_spend_basis_tiers(make_engine) -> None:
    """With basis = spend, qualifying counts fen paid, and refunds take it back."""
    eng = make_engine(return_window_days=0, tier_basis="spend")
    _member(eng, 1)
    eng.pay(pay(1, 1, 3000))
    assert eng.balance("quickmart", unionid=uid(1)).tier == "silver"  # 3000 fen >= 2000
    from tests.helpers import refund
    eng.refund(refund(1, 1, 3000, total=3000))
    assert eng.balance("quickmart", unionid=uid(1)).qualifying == 0


def test_clock_does_not_go_back(engine: Engine) -> None:
    """advance() to an earlier time changes nothing and says so; submit names it."""
    engine.advance(T0 + DAY)
    rep = engine.advance(T0)
    assert rep.notes and rep.unlocked == 0
    out = engine.submit("advance", {"time_s": T0})
    assert out.code is Code.TIME_BEFORE_CLOCK
