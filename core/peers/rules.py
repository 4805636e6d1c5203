"""The accrual rules every peer applies, read straight from a Program.

Base points per 100 fen of home currency (the payer's share, converted by the
program's fx), times the channel, tier and best active campaign multipliers, one
floor at the end, capped; tiers rise with points (or fen) earned. Every payer is a
member of the program from their first payment: peers have no shadow accounts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.program import Program
from core.types import Payment

DAY_S = 86_400
DUPLICATE = -1  # outcome of a payment whose transaction_id was applied before
REJECTED = -2  # unknown merchant, app or currency

Campaign = tuple[int, int, int, int, int, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Rules:
    """A program's earning rules as plain values, shared by the peers (and the Lua script)."""

    program_id: str
    appids: frozenset[str]
    channel_of: dict[str, str]  # mchid -> channel
    channel_pct: dict[str, int]  # mchid -> multiplier pct
    home_currency: str
    fx: dict[str, tuple[int, int]]
    points_per_unit: int
    min_order_fen: int
    cap: int  # 0 = none
    utc_offset_s: int
    campaigns: tuple[Campaign, ...]
    tier_pct: tuple[int, ...]
    tier_threshold: tuple[int, ...]
    spend_basis: bool


def rules_of(p: Program) -> Rules:
    """The Rules of program `p`."""
    return Rules(
        program_id=p.id, appids=frozenset(p.appids), channel_of=dict(p.merchants),
        channel_pct={m: p.channel_pct[c] for m, c in p.merchants.items()},
        home_currency=p.home_currency, fx=dict(p.fx), points_per_unit=p.points_per_unit,
        min_order_fen=p.min_order_fen, cap=p.max_points_per_payment, utc_offset_s=p.utc_offset_s,
        campaigns=tuple((c.start_s, c.end_s, c.hour_from, c.hour_to, c.multiplier_pct,
                         c.channels) for c in p.campaigns),
        tier_pct=tuple(t.multiplier_pct for t in p.tiers),
        tier_threshold=tuple(t.threshold for t in p.tiers),
        spend_basis=p.tier_basis == "spend")


def basis_fen(r: Rules, currency: str, total_fen: int, payer_total_fen: int) -> int:
    """The earning basis in home fen, or REJECTED for a currency without a rate."""
    paid = total_fen if payer_total_fen == -1 else payer_total_fen
    if currency == r.home_currency:
        return paid
    fx = r.fx.get(currency)
    if fx is None:
        return REJECTED
    return paid * fx[0] // fx[1]


def campaign_pct(r: Rules, channel: str, time_s: int) -> int:
    """The best active campaign's multiplier at `time_s` on `channel` (100 when none)."""
    best = 100
    hour = (time_s + r.utc_offset_s) % DAY_S // 3600
    for start, end, h_from, h_to, pct, channels in r.campaigns:
        if start <= time_s < end and channel in channels and h_from <= hour < h_to \
                and pct > best:
            best = pct
    return best


def points(r: Rules, basis: int, mchid: str, tier: int, time_s: int) -> int:
    """Points a payment of `basis` home fen at `mchid` earns for a member at `tier`."""
    if basis < r.min_order_fen:
        return 0
    camp = campaign_pct(r, r.channel_of[mchid], time_s)
    pts = basis * r.points_per_unit * r.channel_pct[mchid] * r.tier_pct[tier] * camp \
        // 100_000_000
    return min(pts, r.cap) if r.cap else pts


def tier_after(r: Rules, tier: int, qualifying: int) -> int:
    """The tier reached with `qualifying` points (or fen), never below `tier`."""
    top = len(r.tier_threshold) - 1
    while tier < top and qualifying >= r.tier_threshold[tier + 1]:
        tier += 1
    return tier


__all__ = ["DUPLICATE", "REJECTED", "Rules", "basis_fen", "campaign_pct", "points", "rules_of",
           "tier_after"]


def rate(pay: Callable[[Payment], object], payments: Sequence[Payment]) -> float:
    """Apply `payments` in order with `pay`; returns payments per second."""
    t0 = time.perf_counter()
    for p in payments:
        pay(p)
    return len(payments) / (time.perf_counter() - t0)
