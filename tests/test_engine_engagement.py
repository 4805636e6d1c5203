"""Engagement events: points per rule, caps per day/week/month, referrals."""

from __future__ import annotations

from core import Code, Engagement, Engine
from tests.helpers import APP, DAY, T0, oid


def ev(n: int, who: int, kind: str, t: int = T0, referred: int | None = None) -> Engagement:
    """Engagement event number `n` by shopper `who`."""
    return Engagement(f"ev{n}", APP, oid(who), kind, t,
                      oid(referred) if referred is not None else "")


def _shadow(eng: Engine, who: int) -> int:
    bal = eng.balance("quickmart", appid=APP, openid=oid(who))
    return bal.shadow if bal else 0


def test_each_rule_pays_its_points(engine: Engine) -> None:
    """Follow 50, visit 2, livestream 10, ugc 30, checkin 20, ad 1."""
    for n, kind in enumerate(["follow", "visit", "livestream", "ugc", "checkin", "ad"]):
        assert engine.engage(ev(n, 1, kind)).code is Code.APPLIED
    assert _shadow(engine, 1) == 50 + 2 + 10 + 30 + 20 + 1


def test_daily_cap(engine: Engine) -> None:
    """Three mini-program visits a day earn; the fourth is CAP_REACHED; next day earns."""
    codes = [engine.engage(ev(n, 1, "visit", T0 + n)).code for n in range(4)]
    assert codes == [Code.APPLIED] * 3 + [Code.CAP_REACHED]
    assert engine.engage(ev(9, 1, "visit", T0 + DAY)).code is Code.APPLIED
    assert _shadow(engine, 1) == 8


def test_weekly_and_monthly_caps(engine: Engine) -> None:
    """UGC is capped at 2 a week, follow at 1 a month."""
    codes = [engine.engage(ev(n, 1, "ugc", T0 + n * 3600)).code for n in range(3)]
    assert codes == [Code.APPLIED, Code.APPLIED, Code.CAP_REACHED]
    assert engine.engage(ev(10, 1, "ugc", T0 + 7 * DAY)).code is Code.APPLIED
    assert engine.engage(ev(20, 1, "follow")).code is Code.APPLIED
    assert engine.engage(ev(21, 1, "follow", T0 + 5 * DAY)).code is Code.CAP_REACHED
    assert engine.engage(ev(22, 1, "follow", T0 + 31 * DAY)).code is Code.APPLIED


def test_referral_rewards_both(engine: Engine) -> None:
    """A referral rewards referrer and referred (reward = both)."""
    assert engine.engage(ev(1, 1, "referral", referred=2)).points == 200
    assert _shadow(engine, 1) == 100 and _shadow(engine, 2) == 100


def test_referral_reward_side(make_engine) -> None:
    """With reward = referrer only the referrer earns."""
    import dataclasses

    from tests.helpers import program
    p = program(return_window_days=0)
    rule = dataclasses.replace(p.events["referral"], reward="referrer")
    eng = make_engine(dataclasses.replace(p, events={**p.events, "referral": rule}))
    eng.engage(ev(1, 1, "referral", referred=2))
    assert _shadow(eng, 1) == 100 and _shadow(eng, 2) == 0


def test_bad_events_are_named_and_leave_no_trace(engine: Engine) -> None:
    """Unknown kind, self-referral and duplicates are named; rejections create nothing."""
    assert engine.engage(ev(1, 1, "dance")).code is Code.UNKNOWN_EVENT_RULE
    assert engine.engage(ev(2, 1, "referral", referred=1)).code is Code.BAD_VALUE
    assert engine.stats()["accounts"] == 0
    engine.engage(ev(3, 1, "follow"))
    assert engine.engage(ev(3, 1, "follow")).code is Code.DUPLICATE
    assert engine.engage(ev(4, 1, "follow")).code is Code.CAP_REACHED
    assert engine.stats()["accounts"] == 1


def test_caps_hold_for_events_out_of_time_order(engine: Engine) -> None:
    """An event for an earlier day arriving late does not reset the later day's count."""
    assert engine.engage(ev(1, 1, "checkin", T0 + DAY)).code is Code.APPLIED
    assert engine.engage(ev(2, 1, "checkin", T0)).code is Code.APPLIED
    assert engine.engage(ev(3, 1, "checkin", T0 + DAY + 60)).code is Code.CAP_REACHED


def test_caps_follow_a_merge(engine: Engine) -> None:
    """Counts of two openids merged into one person add up against the cap."""
    from core import Binding
    from tests.helpers import uid
    engine.engage(ev(1, 1, "follow"))
    engine.engage(ev(2, 2, "follow"))
    engine.bind(Binding(APP, oid(1), uid(1), T0))
    engine.bind(Binding(APP, oid(2), uid(1), T0))
    assert engine.engage(ev(3, 2, "follow", T0 + 60)).code is Code.CAP_REACHED
