"""Spending points at the till, and card coupons: issued, redeemed by a payment's
promotion_detail, expiring (expiry runs in lifecycle's advance).

A mixin of Engine.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from core import limits
from core.ids import field_types
from core.rules import DAY_S
from core.types import (
    DUPLICATE,
    Bucket,
    Code,
    CouponIssue,
    Entry,
    Outcome,
    Payment,
    Spend,
    reject,
    type_fault,
)

if TYPE_CHECKING:
    from core.engine import Engine

_COUPON_FIELDS, _COUPON_TYPES = field_types(CouponIssue)
_ISSUED = Outcome(Code.APPLIED, 0, "")  # outcomes are immutable: one shared

class SpendingMixin:
    """spend(), issue_coupon() and coupon redemption (mixed into Engine)."""

    def __init__(self: Engine) -> None:
        self.spend_seen = self.idem.spends  # spend_id -> (account, points)
        self.coupons: dict[str, list] = {}  # id -> [account, prog, stock, expire_s, state]
        self.coupon_heap: list[tuple[int, str]] = []

    def spend(self: Engine, s: Spend) -> Outcome:
        """Spend a member's available points at the till; INSUFFICIENT_POINTS if short,
        DUPLICATE for a spend_id seen, STALE older than the idempotency window."""
        if (fault := type_fault(s)) is not None:
            return reject(Code.BAD_TYPE, fault)
        if s.time_s < self.idem.horizon_s:
            return reject(Code.STALE, self.idem.stale_message(s.time_s))
        seen = self.spend_seen.get(s.spend_id)
        if seen is not None:
            return DUPLICATE if seen[1] == s.points else reject(
                Code.BAD_VALUE, f"spend_id {s.spend_id!r} was used for {seen[1]} points")
        if not 0 < len(s.spend_id) <= limits.REF_LEN_MAX:
            return reject(Code.BAD_ID, "spend_id must be 1..64 characters")
        if type(s.points) is not int or not 0 < s.points <= limits.POINTS_PER_INPUT_MAX:
            return reject(Code.BAD_VALUE, "points must be a positive integer")
        found = self._shopper(s.program, s.time_s, s.unionid, s.appid, s.openid, create=False)
        if type(found) is Outcome:
            return found
        pi, a = found  # type: ignore[misc]
        acc = self.acc
        if not acc.member[a]:
            return reject(Code.NOT_MEMBER, "only members spend points")
        have = acc.balance("avail", a)
        if have < s.points and not self.programs[pi].allow_negative:
            return reject(Code.INSUFFICIENT_POINTS,
                           f"{s.points} points asked, {have} available")
        acc.add("avail", a, -s.points)
        cause = self.ledger.note(f"spend {s.spend_id}")
        self.ledger.add(Entry.SPEND, Bucket.AVAILABLE, a, -s.points, s.time_s, cause)
        acc.lots.take(a, s.points)
        self.idem.add_spend(s.spend_id, (a, s.points), s.time_s)
        return Outcome(Code.APPLIED, -s.points, "")

    def issue_coupon(self: Engine, ci: CouponIssue) -> Outcome:
        """Issue card coupon `ci.coupon_id` of a program's stock to a member."""
        if ((type(ci) is not CouponIssue or tuple(map(type, _COUPON_FIELDS(ci))) != _COUPON_TYPES)
                and (fault := type_fault(ci)) is not None):
            return reject(Code.BAD_TYPE, fault)
        if ci.coupon_id in self.coupons:
            return DUPLICATE
        if not 0 < len(ci.coupon_id) <= limits.REF_LEN_MAX:
            return reject(Code.BAD_ID, "coupon_id must be 1..64 characters")
        found = self._shopper(ci.program, ci.time_s, ci.unionid, ci.appid, ci.openid,
                              create=False)
        if type(found) is Outcome:
            return found
        pi, a = found  # type: ignore[misc]
        if ci.stock_id not in self.programs[pi].coupons:
            return reject(Code.UNKNOWN_COUPON, f"program has no coupon stock {ci.stock_id!r}")
        if not self.acc.member[a]:
            return reject(Code.NOT_MEMBER, "coupons go to members")
        self._issue(ci.coupon_id, a, pi, ci.stock_id, ci.time_s)
        return _ISSUED

    def _issue(self: Engine, coupon_id: str, a: int, pi: int, stock_id: str, t: int) -> None:
        stock = self.programs[pi].coupons[stock_id]
        expire_s = t + stock.valid_days * DAY_S
        self.coupons[coupon_id] = [a, pi, stock_id, expire_s, 0]
        heapq.heappush(self.coupon_heap, (expire_s, coupon_id))
        counts = self.counts
        counts["coupons_issued"] = counts.get("coupons_issued", 0) + 1

    def _redeem_coupons(self: Engine, a: int, p: Payment, home_fen: int) -> None:
        """Mark this member's valid coupons named in the payment's promotion_detail redeemed."""
        for cid in p.coupon_ids:
            cp = self.coupons.get(cid)
            if cp is None:
                continue  # a platform coupon, not one of ours
            stock = self.programs[cp[1]].coupons[cp[2]]
            if (cp[4] == 0 and self.acc.find(cp[0]) == a and p.time_s < cp[3]
                    and home_fen >= stock.min_order_fen):
                cp[4] = 1
                self._count("coupons_redeemed")
            else:
                self._count("coupons_not_usable")
