"""Earning rules compiled from a Program into flat tuples the hot path reads fast."""

from __future__ import annotations

from dataclasses import dataclass

from core.limits import POINTS_PER_INPUT_MAX
from core.program import Program

DAY_S = 86_400
_BIG = 1 << 62


@dataclass(slots=True)
class Compiled:
    """One program's rules in the shapes the per-event path wants."""

    program: Program
    min_order_fen: int
    points_per_unit: int
    cap: int  # 0 = none
    window_s: int  # return window; 0 = points available at once
    off_s: int
    campaigns: tuple[tuple[int, int, int, int, int, frozenset[str]], ...]
    tier_pct: tuple[int, ...]
    tier_next: tuple[int, ...]  # threshold of the next tier (huge for the top)
    thresholds: tuple[int, ...]
    spend_basis: bool
    window_months: int
    keep_member_lots: bool  # members need lots only when points expire
    fx: dict[str, tuple[int, int]]
    home: str
    camp_lo: int  # campaigns can apply only in [camp_lo, camp_hi): a cheap first test
    camp_hi: int
    friend_k: int  # Friend Membership: visits needed (0 = off) ...
    friend_days: int  # ... within this many days
    # channel -> {local hour number: campaign pct}: memo of campaign_pct for whole
    # local hours in which no campaign starts or ends.
    camp_memo: dict[str, dict[int, int]]


def compile_program(p: Program) -> Compiled:
    """Compile program `p`'s rules into a Compiled record."""
    thresholds = tuple(t.threshold for t in p.tiers)
    return Compiled(
        program=p, min_order_fen=p.min_order_fen, points_per_unit=p.points_per_unit,
        cap=p.max_points_per_payment, window_s=p.return_window_days * DAY_S,
        off_s=p.utc_offset_s,
        campaigns=tuple((c.start_s, c.end_s, c.hour_from, c.hour_to, c.multiplier_pct,
                         c.channels) for c in p.campaigns),
        tier_pct=tuple(t.multiplier_pct for t in p.tiers),
        tier_next=(*thresholds[1:], _BIG), thresholds=thresholds,
        spend_basis=p.tier_basis == "spend", window_months=p.tier_window_months,
        keep_member_lots=p.expiry != "none", fx=dict(p.fx), home=p.home_currency,
        camp_lo=min((c.start_s for c in p.campaigns), default=0),
        camp_hi=max((c.end_s for c in p.campaigns), default=0),
        friend_k=p.friend_min_visits, friend_days=p.friend_days,
        camp_memo={ch: {} for ch in p.channel_pct})


def points_for(c: Compiled, home_fen: int, channel: str, channel_pct: int, tier_pct: int,
               time_s: int) -> int:
    """Points a payment of `home_fen` earns: base x channel x tier x best campaign, capped.

    One floor at the end, so multipliers never round twice.
    """
    if home_fen < c.min_order_fen:
        return 0
    camp = campaign_pct(c, channel, time_s)
    pts = home_fen * c.points_per_unit * channel_pct * tier_pct * camp // 100_000_000
    if c.cap and pts > c.cap:
        return c.cap
    return pts if pts <= POINTS_PER_INPUT_MAX else POINTS_PER_INPUT_MAX


def campaign_pct(c: Compiled, channel: str, time_s: int) -> int:
    """The best campaign multiplier (percent) for `channel` at `time_s`; 100 when none."""
    camp = 100
    for start, end, h_from, h_to, pct, chans in c.campaigns:
        if start <= time_s < end and channel in chans:
            hour = (time_s + c.off_s) % DAY_S // 3600
            if h_from <= hour < h_to and pct > camp:
                camp = pct
    return camp


def campaign_pct_memo(c: Compiled, channel: str, time_s: int) -> int:
    """campaign_pct, remembered per local hour when no campaign boundary cuts that hour."""
    hour = (time_s + c.off_s) // 3600
    memo = c.camp_memo[channel]
    pct = memo.get(hour)
    if pct is None:
        pct = campaign_pct(c, channel, time_s)
        lo = hour * 3600 - c.off_s
        if len(memo) < 100_000 and not any(lo < s < lo + 3600 or lo < e < lo + 3600
                                           for s, e, *_ in c.campaigns):
            memo[hour] = pct
    return pct


def local_day(c: Compiled, time_s: int) -> int:
    """Days since 1970-01-01 in the program's local time."""
    return (time_s + c.off_s) // DAY_S
