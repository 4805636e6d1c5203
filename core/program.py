"""A merchant brand's loyalty program: its rules as data, read from TOML.

One program per brand: its merchants (mchid -> channel), its apps (appids bound
to the brand's open platform, so unionids are per program), earning rules,
lifecycle rules, tiers, campaigns, engagement rules and coupon stocks.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from core import limits
from core.config import ConfigError, Section, between, load_toml, non_negative, one_of, positive

CHANNELS = ("store", "transit", "mini_program", "supermarket", "restaurant", "online")
EXPIRY_KINDS = ("none", "rolling", "month_end", "year_end")
EVENT_KINDS = ("follow", "visit", "livestream", "ugc", "checkin", "ad", "referral")


@dataclass(frozen=True, slots=True)
class Tier:
    """A tier: reached at `threshold` qualifying points (or fen), earning at `multiplier_pct`."""

    name: str
    threshold: int
    multiplier_pct: int


@dataclass(frozen=True, slots=True)
class Campaign:
    """A time-window multiplier: between start and end, during [hour_from, hour_to) local."""

    name: str
    start_s: int
    end_s: int
    hour_from: int
    hour_to: int
    multiplier_pct: int
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class EventRule:
    """Points for an engagement kind, with caps per day/week/month (0 = no cap)."""

    kind: str
    points: int
    cap_day: int
    cap_week: int
    cap_month: int
    reward: str  # "self"; for referral: "referrer", "referred" or "both"


@dataclass(frozen=True, slots=True)
class CouponStock:
    """A coupon stock: face value, minimum order, validity, and when it is issued."""

    stock_id: str
    value_fen: int
    min_order_fen: int
    valid_days: int
    trigger: str  # "enroll" (issued on joining) or "push" (campaign pushes)


@dataclass(frozen=True, slots=True)
class Program:
    """One brand's program; amounts in fen of `home_currency`, times in epoch seconds."""

    id: str
    home_currency: str = "CNY"
    utc_offset_s: int = 8 * 3600
    merchants: dict[str, str] = field(default_factory=dict)  # mchid -> channel
    appids: tuple[str, ...] = ()
    points_per_unit: int = 1  # points per 100 minor units of home currency
    min_order_fen: int = 0
    max_points_per_payment: int = 0  # 0 = no cap
    channel_pct: dict[str, int] = field(default_factory=dict)
    fx: dict[str, tuple[int, int]] = field(default_factory=dict)  # ccy -> (num, den)
    return_window_days: int = 0
    expiry: str = "none"
    expiry_days: int = 0
    lookback_days: int = 365
    welcome_bonus: int = 0
    welcome_bonus_from_s: int = 0  # enrollments before this time get no bonus (0: always)
    pay_to_join: bool = True
    pay_to_join_min_fen: int = 0
    allow_negative: bool = False
    tiers: tuple[Tier, ...] = (Tier("member", 0, 100),)
    tier_basis: str = "points"
    tier_window_months: int = 12
    downgrade: str = "one_level"
    campaigns: tuple[Campaign, ...] = ()
    events: dict[str, EventRule] = field(default_factory=dict)
    friend_min_visits: int = 0  # 0 = Friend Membership off
    friend_days: int = 30
    coupons: dict[str, CouponStock] = field(default_factory=dict)


def load_program(path: str | Path) -> Program:
    """Read a program TOML file; raises ConfigError naming file, key and reason."""
    root = load_toml(path)
    prog = _read_program(root.table("program", required=True))
    root.done()
    return prog


def _read_program(s: Section) -> Program:
    pid = s.get("id", str, check=lambda v: None if v else "must not be empty")
    home = s.get("home_currency", str, "CNY", check=_currency)
    offset = s.get("utc_offset", str, "+08:00")
    try:
        off = _parse_offset(offset)
    except ValueError:
        raise s.error("utc_offset", "expected +HH:MM") from None

    merchants: dict[str, str] = {}
    ms = s.table("merchants", required=True)
    for mchid in ms.names():
        ch = ms.data[mchid]
        if not isinstance(ch, str) or ch not in CHANNELS:
            raise ms.error(mchid, f"channel must be one of {', '.join(CHANNELS)}")
        merchants[mchid] = ch
    if not merchants:
        raise s.error("merchants", "at least one merchant is required")
    appids = tuple(s.get("appids", list, check=_str_list))
    if not appids:
        raise s.error("appids", "at least one appid is required")

    earn = s.table("earn")
    ppu = earn.get("points_per_unit", int, 1, check=between(0, limits.POINTS_PER_UNIT_MAX))
    min_order = earn.get("min_order_fen", int, 0, check=non_negative)
    max_pts = earn.get("max_points_per_payment", int, 0, check=non_negative)
    chp = earn.table("channel_multiplier_pct")
    channel_pct = {c: 100 for c in CHANNELS}
    for c in chp.names():
        if c not in CHANNELS:
            raise chp.error(c, f"unknown channel; one of {', '.join(CHANNELS)}")
        channel_pct[c] = chp.get(c, int, check=between(0, limits.MULTIPLIER_PCT_MAX))
    fx: dict[str, tuple[int, int]] = {}
    fxs = earn.table("fx")
    for ccy in fxs.names():
        if _currency(ccy):
            raise fxs.error(ccy, "currency must be a 3-letter code")
        t = fxs.table(ccy)
        fx[ccy] = (t.get("num", int, check=positive), t.get("den", int, check=positive))
        t.done()
    earn.done()

    life = s.table("lifecycle")
    window = life.get("return_window_days", int, 0, check=between(0, 365))
    expiry = life.get("expiry", str, "none", check=one_of(*EXPIRY_KINDS))
    expiry_days = life.get("expiry_days", int, 0, check=between(0, 3650))
    if expiry == "rolling" and expiry_days == 0:
        raise life.error("expiry_days", "required (> 0) when expiry = \"rolling\"")
    allow_neg = life.get("allow_negative", bool, False)
    life.done()

    mem = s.table("membership")
    lookback = mem.get("lookback_days", int, 365, check=between(0, 3650))
    bonus = mem.get("welcome_bonus", int, 0, check=between(0, limits.POINTS_PER_INPUT_MAX))
    bonus_from = 0
    if mem.has("welcome_bonus_from"):
        when = mem.get("welcome_bonus_from", dt.datetime)
        if when.tzinfo is None:
            raise mem.error("welcome_bonus_from",
                            "datetime needs a UTC offset, e.g. 2026-03-10T12:00:00+08:00")
        bonus_from = int(when.timestamp())
    ptj = mem.get("pay_to_join", bool, True)
    ptj_min = mem.get("pay_to_join_min_fen", int, 0, check=non_negative)
    fr_visits = mem.get("friend_min_visits", int, 0,
                        check=between(0, limits.FRIEND_VISITS_MAX))
    fr_days = mem.get("friend_days", int, 30, check=between(1, 366))
    mem.done()

    tiers = []
    for t in s.tables("tiers"):
        tiers.append(Tier(t.get("name", str), t.get("threshold", int, check=non_negative),
                          t.get("multiplier_pct", int, 100,
                                check=between(0, limits.MULTIPLIER_PCT_MAX))))
        t.done()
    if not tiers:
        tiers = [Tier("member", 0, 100)]
    if len(tiers) > limits.TIERS_MAX:
        raise s.error("tiers", f"at most {limits.TIERS_MAX} tiers")
    if tiers[0].threshold != 0 or any(
            a.threshold >= b.threshold for a, b in itertools.pairwise(tiers)):
        raise s.error("tiers", "thresholds must start at 0 and strictly increase")
    tr = s.table("tier_rules")
    basis = tr.get("basis", str, "points", check=one_of("points", "spend"))
    twm = tr.get("window_months", int, 12, check=between(1, limits.TIER_WINDOW_MONTHS_MAX))
    down = tr.get("downgrade", str, "one_level", check=one_of("one_level", "to_qualified", "never"))
    tr.done()

    campaigns = [_read_campaign(c) for c in s.tables("campaigns")]
    if len(campaigns) > limits.CAMPAIGNS_MAX:
        raise s.error("campaigns", f"at most {limits.CAMPAIGNS_MAX} campaigns")
    events: dict[str, EventRule] = {}
    for e in s.tables("events"):
        rule = _read_event(e)
        if rule.kind in events:
            raise e.error("kind", f"duplicate rule for {rule.kind!r}")
        events[rule.kind] = rule
    coupons: dict[str, CouponStock] = {}
    for c in s.tables("coupons"):
        stock = CouponStock(c.get("stock_id", str), c.get("value_fen", int, check=positive),
                            c.get("min_order_fen", int, 0, check=non_negative),
                            c.get("valid_days", int, 30, check=between(1, 3650)),
                            c.get("trigger", str, "push", check=one_of("enroll", "push")))
        c.done()
        coupons[stock.stock_id] = stock
    s.done()
    return Program(
        id=pid, home_currency=home, utc_offset_s=off, merchants=merchants, appids=appids,
        points_per_unit=ppu, min_order_fen=min_order, max_points_per_payment=max_pts,
        channel_pct=channel_pct, fx=fx, return_window_days=window, expiry=expiry,
        expiry_days=expiry_days, lookback_days=lookback, welcome_bonus=bonus,
        welcome_bonus_from_s=bonus_from, pay_to_join=ptj,
        pay_to_join_min_fen=ptj_min, allow_negative=allow_neg, tiers=tuple(tiers),
        tier_basis=basis, tier_window_months=twm, downgrade=down, campaigns=tuple(campaigns),
        events=events, friend_min_visits=fr_visits, friend_days=fr_days, coupons=coupons)


def _read_campaign(c: Section) -> Campaign:
    def when(key: str) -> int:
        v = c.get(key, dt.datetime)
        if v.tzinfo is None:
            raise c.error(key, "datetime needs a UTC offset, e.g. 2026-11-11T00:00:00+08:00")
        return int(v.timestamp())

    start, end = when("start"), when("end")
    if end <= start:
        raise c.error("end", "must be after start")
    hours = c.get("hours", list, [0, 24])
    if (len(hours) != 2 or not all(isinstance(h, int) for h in hours)
            or not 0 <= hours[0] < hours[1] <= 24):
        raise c.error("hours", "expected [from, to) with 0 <= from < to <= 24")
    chans = c.get("channels", list, list(CHANNELS), check=_str_list)
    for ch in chans:
        if ch not in CHANNELS:
            raise c.error("channels", f"unknown channel {ch!r}")
    camp = Campaign(c.get("name", str), start, end, hours[0], hours[1],
                    c.get("multiplier_pct", int, check=between(0, limits.MULTIPLIER_PCT_MAX)),
                    frozenset(chans))
    c.done()
    return camp


def _read_event(e: Section) -> EventRule:
    kind = e.get("kind", str, check=one_of(*EVENT_KINDS))
    reward = e.get("reward", str, "both" if kind == "referral" else "self",
                   check=one_of("self", "referrer", "referred", "both"))
    if (kind == "referral") == (reward == "self"):
        raise e.error("reward", "referral rules reward referrer/referred/both; others self")
    rule = EventRule(kind, e.get("points", int, check=between(0, limits.POINTS_PER_INPUT_MAX)),
                     e.get("cap_per_day", int, 0, check=non_negative),
                     e.get("cap_per_week", int, 0, check=non_negative),
                     e.get("cap_per_month", int, 0, check=non_negative), reward)
    e.done()
    return rule


def _parse_offset(text: str) -> int:
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        raise ValueError(text)
    secs = int(text[1:3]) * 3600 + int(text[4:6]) * 60
    if secs > 14 * 3600:
        raise ValueError(text)
    return secs if text[0] == "+" else -secs


def _currency(v: str) -> str | None:
    return None if len(v) == 3 and v.isalpha() and v.isupper() else "must be a 3-letter code"


def _str_list(v: list) -> str | None:
    return None if all(isinstance(x, str) and x for x in v) else "must be non-empty strings"


__all__ = ["CHANNELS", "EVENT_KINDS", "Campaign", "ConfigError", "CouponStock", "EventRule",
           "Program", "Tier", "load_program"]
