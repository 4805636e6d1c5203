"""Identity and membership: bindings and merges, enrollment with shadow conversion,
engagement points with caps, spending, card coupons and Friend Membership.

A mixin of Engine: it reads the engine's columns (`self.acc`, `self.ledger`, ...).
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import TYPE_CHECKING

from core import limits
from core.accounts import lots_add, lots_merge, lots_take
from core.ids import valid_id as _valid_id
from core.ledger import CAUSE_EVENT
from core.program import EventRule
from core.rules import DAY_S, Compiled
from core.types import (
    Binding,
    Bucket,
    Code,
    CouponIssue,
    Engagement,
    Enrollment,
    Entry,
    Outcome,
    Payment,
    Spend,
)

if TYPE_CHECKING:
    from core.engine import Engine

_DUP = Outcome(Code.DUPLICATE, 0, "already applied")
_COLS = (("avail", Bucket.AVAILABLE), ("pend", Bucket.PENDING), ("shad", Bucket.SHADOW),
         ("shad_pend", Bucket.SHADOW_PENDING))


def _reject(code: Code, message: str) -> Outcome:
    return Outcome(code, 0, message)


def _bad_time(t: object) -> bool:
    return type(t) is not int or not limits.TIME_S_MIN <= t < limits.TIME_S_MAX  # type: ignore


class MembershipMixin:
    """Bindings, enrollment, engagement, spending and coupons (mixed into Engine)."""

    def __init__(self) -> None:
        self.event_seen: set[str] = set()
        self.event_ids: list[str] = []
        # account -> (kind, level 0/1/2 = day/week/month, period number) -> events counted.
        # Every period is its own key, so events arriving out of time order count right.
        self.caps: dict[int, dict[tuple[str, int, int], int]] = {}
        self.spend_seen: dict[str, tuple[int, int]] = {}
        self.coupons: dict[str, list] = {}  # id -> [account, prog, stock, expire_s, state]
        self.coupon_heap: list[tuple[int, str]] = []
        self.invited: set[int] = set()
        self.merged_from: dict[int, list[int]] = {}  # survivor -> accounts merged into it

    # ------------------------------------------------------------------ identity
    def bind(self: Engine, b: Binding) -> Outcome:
        """Bind (appid, openid) to unionid, merging its history into the unionid's account.

        Binding an openid already bound to another unionid is OPENID_BOUND_ELSEWHERE.
        """
        pi = self.app_prog.get(b.appid)
        if pi is None:
            return _reject(Code.UNKNOWN_APP, f"appid {b.appid!r} is in no program")
        for name, value in (("openid", b.openid), ("unionid", b.unionid)):
            if not _valid_id(value):
                return _reject(Code.BAD_ID, f"{name} must be 1..64 of [A-Za-z0-9_-]")
        if _bad_time(b.time_s):
            return _reject(Code.BAD_TIME, "time is out of range")
        acc = self.acc
        apps = acc.by_app[b.appid]
        unions = acc.by_union[pi]
        o = apps.get(b.openid)
        u = unions.get(b.unionid)
        if o is not None:
            o = acc.find(o)
            bound = acc.union_of.get(o)
            if bound == b.unionid:
                return _DUP
            if bound is not None:
                return _reject(Code.OPENID_BOUND_ELSEWHERE,
                               "openid is already bound to another unionid")
        if u is not None:
            u = acc.find(u)
        if o is None and u is None:
            a = acc.create(pi)
            apps[b.openid] = a
            unions[b.unionid] = a
            acc.union_of[a] = b.unionid
        elif o is None:
            apps[b.openid] = u
        elif u is None:
            unions[b.unionid] = o
            acc.union_of[o] = b.unionid
        else:
            cause = self.ledger.note(f"bind {b.appid}/{b.openid} -> {b.unionid}")
            moved = self._merge(o, u, b.time_s, cause)
            self._count("merges")
            return Outcome(Code.APPLIED, moved, "histories merged")
        return Outcome(Code.APPLIED, 0, "")

    def _merge(self: Engine, src: int, dst: int, t: int, cause: int) -> int:
        """Move everything of account `src` into `dst`; returns the points moved."""
        acc = self.acc
        led = self.ledger
        if acc.member[dst] and not acc.member[src]:
            self._convert(src, t, cause)
        elif acc.member[src] and not acc.member[dst]:
            self._convert(dst, t, cause)
        moved = 0
        for col_name, bucket in _COLS:
            col = getattr(acc, col_name)
            x = col[src]
            if x:
                col[src] = 0
                col[dst] += x
                led.rows.extend((Entry.MERGE_OUT, bucket, src, -x, t, cause))
                led.rows.extend((Entry.MERGE_IN, bucket, dst, x, t, cause))
                moved += x
        lots_merge(acc.lots, src, dst)
        if acc.member[dst]:
            # A negative side (allow_negative) absorbs lots: sum(lots) == max(0, avail).
            excess = sum(p for _, p in acc.lots.get(dst, ())) - max(0, acc.avail[dst])
            if excess > 0:
                lots_take(acc.lots, dst, excess)
        c = self.rules[acc.prog[dst]]
        if acc.member[dst] and c.keep_member_lots:
            for day, _ in acc.lots.get(dst, ()):
                heapq.heappush(self.expiry_heap, (self.expiry_day(c, day), dst))
        w = acc.qual_slots
        qb = acc.qual_buckets
        for k in range(w):
            qb[dst * w + k] += qb[src * w + k]
            qb[src * w + k] = 0
        acc.qual[dst] += acc.qual[src]
        acc.qual_base[dst] += acc.qual_base[src]
        acc.qual[src] = acc.qual_base[src] = 0
        acc.tier[dst] = max(acc.tier[dst], acc.tier[src])
        acc.tier[src] = 0
        self._upgrade(dst, c)
        acc.root[src] = dst
        self.merged_from.setdefault(dst, []).extend([src, *self.merged_from.pop(src, [])])
        if acc.visit_slots:
            acc.set_visit_days(dst, acc.visit_days(src) + acc.visit_days(dst))
            acc.set_visit_days(src, [])
        if src in self.invited:
            self.invited.add(dst)
        moved_caps = self.caps.pop(src, None)
        if moved_caps:
            _merge_caps(self.caps.setdefault(dst, {}), moved_caps)
        return moved

    # ---------------------------------------------------------------- enrollment
    def enroll(self: Engine, e: Enrollment) -> Outcome:
        """Enroll a shopper in program `e.program`, converting shadow points and adding the
        welcome bonus; an existing member gives DUPLICATE."""
        pi = self.prog_index.get(e.program)
        if pi is None:
            return _reject(Code.UNKNOWN_PROGRAM, f"no program {e.program!r}")
        if _bad_time(e.time_s):
            return _reject(Code.BAD_TIME, "time is out of range")
        a = self._resolve(pi, e.unionid, e.appid, e.openid, create=True)
        if type(a) is Outcome:
            return a
        acc = self.acc
        if acc.member[a]:
            return _reject(Code.DUPLICATE, "already a member")
        c = self.rules[pi]
        cause = self.ledger.note(f"enroll {e.program} {e.unionid or e.openid}")
        converted = self._convert(a, e.time_s, cause)
        bonus = c.program.welcome_bonus
        if bonus:
            acc.avail[a] += bonus
            self.ledger.add(Entry.BONUS, Bucket.AVAILABLE, a, bonus, e.time_s, cause)
            if c.keep_member_lots:
                self._credit_lot(a, c, e.time_s, bonus)
        for stock in c.program.coupons.values():
            if stock.trigger == "enroll":
                self._issue(f"enroll-{stock.stock_id}-{a}", a, pi, stock.stock_id, e.time_s)
        self._count("enrollments")
        return Outcome(Code.APPLIED, converted + bonus, "")

    def _convert(self: Engine, a: int, t: int, cause: int) -> int:
        """Make shadow account `a` a member: shadow points inside the lookback window become
        available, older ones are forfeited, shadow pending becomes pending. Returns points
        converted."""
        acc = self.acc
        led = self.ledger
        c = self.rules[acc.prog[a]]
        cutoff = (t + c.off_s) // DAY_S - c.program.lookback_days
        lots = acc.lots.pop(a, [])
        old = sum(p for day, p in lots if day < cutoff)
        keep = acc.shad[a] - old
        assert keep >= 0 and sum(p for _, p in lots) == acc.shad[a], "shadow lots out of step"
        if old:
            led.rows.extend((Entry.FORFEIT, Bucket.SHADOW, a, -old, t, cause))
        if keep:
            led.rows.extend((Entry.CONVERT, Bucket.SHADOW, a, -keep, t, cause))
            led.rows.extend((Entry.CONVERT, Bucket.AVAILABLE, a, keep, t, cause))
            acc.avail[a] += keep
            if c.keep_member_lots:
                kept = [lot for lot in lots if lot[0] >= cutoff]
                acc.lots[a] = kept
                for day, _ in kept:
                    heapq.heappush(self.expiry_heap, (self.expiry_day(c, day), a))
        acc.shad[a] = 0
        sp = acc.shad_pend[a]
        if sp:
            led.rows.extend((Entry.CONVERT, Bucket.SHADOW_PENDING, a, -sp, t, cause))
            led.rows.extend((Entry.CONVERT, Bucket.PENDING, a, sp, t, cause))
            acc.pend[a] += sp
            acc.shad_pend[a] = 0
        acc.member[a] = 1
        self._upgrade(a, c)
        self.invited.discard(a)
        return keep

    def _qualify(self: Engine, a: int, c: Compiled, q: int) -> None:
        """Count `q` toward account `a`'s tier (current month) and upgrade a member."""
        acc = self.acc
        acc.qual[a] += q
        self._upgrade(a, c)

    def _upgrade(self: Engine, a: int, c: Compiled) -> None:
        acc = self.acc
        if acc.member[a]:
            tier = acc.tier[a]
            while acc.qual[a] >= c.tier_next[tier]:
                tier += 1
            acc.tier[a] = tier

    def _resolve(self: Engine, pi: int, unionid: str, appid: str, openid: str,
                 create: bool) -> int | Outcome:
        """The account of a shopper named by unionid or by (appid, openid) in program `pi`."""
        acc = self.acc
        if unionid:
            if not _valid_id(unionid):
                return _reject(Code.BAD_ID, "unionid must be 1..64 of [A-Za-z0-9_-]")
            a = acc.by_union[pi].get(unionid)
            if a is None:
                if not create:
                    return _reject(Code.UNKNOWN_MEMBER, f"no account for unionid {unionid!r}")
                a = acc.create(pi)
                acc.by_union[pi][unionid] = a
                acc.union_of[a] = unionid
                return a
            return acc.find(a)
        if not appid or not openid:
            return _reject(Code.MISSING_FIELD, "name the shopper by unionid or appid+openid")
        if self.app_prog.get(appid) != pi:
            return _reject(Code.UNKNOWN_APP, f"appid {appid!r} is not in this program")
        if not _valid_id(openid):
            return _reject(Code.BAD_ID, "openid must be 1..64 of [A-Za-z0-9_-]")
        if not create:
            a = acc.by_app[appid].get(openid)
            if a is None:
                return _reject(Code.UNKNOWN_MEMBER, "no account for that openid")
            return acc.find(a)
        return acc.open_account(pi, appid, openid)

    # ---------------------------------------------------------------- engagement
    def engage(self: Engine, e: Engagement) -> Outcome:
        """Reward an engagement event per its program's rule, within the rule's caps."""
        if e.event_id in self.event_seen:
            return _DUP
        if not 0 < len(e.event_id) <= limits.REF_LEN_MAX:
            return _reject(Code.BAD_ID, "event_id must be 1..64 characters")
        pi = self.app_prog.get(e.appid)
        if pi is None:
            return _reject(Code.UNKNOWN_APP, f"appid {e.appid!r} is in no program")
        c = self.rules[pi]
        rule = c.program.events.get(e.kind)
        if rule is None:
            return _reject(Code.UNKNOWN_EVENT_RULE,
                           f"program {c.program.id!r} has no rule for {e.kind!r}")
        if _bad_time(e.time_s):
            return _reject(Code.BAD_TIME, "time is out of range")
        who = [e.openid]
        if e.kind == "referral":
            if not e.referred_openid or e.referred_openid == e.openid:
                return _reject(Code.BAD_VALUE, "a referral names a referred_openid, not self")
            who = {"referrer": [e.openid], "referred": [e.referred_openid],
                   "both": [e.openid, e.referred_openid]}[rule.reward]
        for oid in (e.openid, e.referred_openid):
            if oid and not _valid_id(oid):
                return _reject(Code.BAD_ID, "openid must be 1..64 of [A-Za-z0-9_-]")
        periods = _periods(c, e.time_s)
        apps = self.acc.by_app[e.appid]
        for oid in who:
            known = apps.get(oid)
            if known is not None and _capped(self.caps.get(self.acc.find(known)), e.kind,
                                             periods, rule):
                return _reject(Code.CAP_REACHED, f"{e.kind} cap reached for this period")
        # Only now create accounts: a rejection must leave no trace.
        accounts = [self.acc.open_account(pi, e.appid, oid) for oid in who]
        self.event_seen.add(e.event_id)
        self.event_ids.append(e.event_id)
        cause = (len(self.event_ids) - 1) << 3 | CAUSE_EVENT
        for a in accounts:
            _count_cap(self.caps.setdefault(a, {}), e.kind, periods, rule)
            if rule.points:
                self._credit(a, c, rule.points, e.time_s, cause, Entry.EARN)
                if not c.spend_basis:
                    self._qualify(a, c, rule.points)
        return Outcome(Code.APPLIED, rule.points * len(accounts), "")

    def _credit(self: Engine, a: int, c: Compiled, pts: int, t: int, cause: int,
                kind: Entry) -> None:
        """Credit `pts` to account `a`'s available (member) or shadow balance."""
        acc = self.acc
        if acc.member[a]:
            acc.avail[a] += pts
            self.ledger.add(kind, Bucket.AVAILABLE, a, pts, t, cause)
            if c.keep_member_lots:
                self._credit_lot(a, c, t, pts)
        else:
            acc.shad[a] += pts
            self.ledger.add(kind, Bucket.SHADOW, a, pts, t, cause)
            lots_add(acc.lots, a, (t + c.off_s) // DAY_S, pts)

    # ------------------------------------------------------------ spend, coupons
    def spend(self: Engine, s: Spend) -> Outcome:
        """Spend a member's available points at the till; INSUFFICIENT_POINTS if short."""
        seen = self.spend_seen.get(s.spend_id)
        if seen is not None:
            return _DUP if seen[1] == s.points else _reject(
                Code.BAD_VALUE, f"spend_id {s.spend_id!r} was used for {seen[1]} points")
        if not 0 < len(s.spend_id) <= limits.REF_LEN_MAX:
            return _reject(Code.BAD_ID, "spend_id must be 1..64 characters")
        if type(s.points) is not int or not 0 < s.points <= limits.POINTS_PER_INPUT_MAX:
            return _reject(Code.BAD_VALUE, "points must be a positive integer")
        pi = self.prog_index.get(s.program)
        if pi is None:
            return _reject(Code.UNKNOWN_PROGRAM, f"no program {s.program!r}")
        if _bad_time(s.time_s):
            return _reject(Code.BAD_TIME, "time is out of range")
        a = self._resolve(pi, s.unionid, s.appid, s.openid, create=False)
        if type(a) is Outcome:
            return a
        acc = self.acc
        if not acc.member[a]:
            return _reject(Code.NOT_MEMBER, "only members spend points")
        if acc.avail[a] < s.points and not self.programs[pi].allow_negative:
            return _reject(Code.INSUFFICIENT_POINTS,
                           f"{s.points} points asked, {acc.avail[a]} available")
        acc.avail[a] -= s.points
        cause = self.ledger.note(f"spend {s.spend_id}")
        self.ledger.add(Entry.SPEND, Bucket.AVAILABLE, a, -s.points, s.time_s, cause)
        lots_take(acc.lots, a, s.points)
        self.spend_seen[s.spend_id] = (a, s.points)
        return Outcome(Code.APPLIED, -s.points, "")

    def issue_coupon(self: Engine, ci: CouponIssue) -> Outcome:
        """Issue card coupon `ci.coupon_id` of a program's stock to a member."""
        if ci.coupon_id in self.coupons:
            return _DUP
        if not 0 < len(ci.coupon_id) <= limits.REF_LEN_MAX:
            return _reject(Code.BAD_ID, "coupon_id must be 1..64 characters")
        pi = self.prog_index.get(ci.program)
        if pi is None:
            return _reject(Code.UNKNOWN_PROGRAM, f"no program {ci.program!r}")
        if ci.stock_id not in self.programs[pi].coupons:
            return _reject(Code.UNKNOWN_COUPON, f"program has no coupon stock {ci.stock_id!r}")
        if _bad_time(ci.time_s):
            return _reject(Code.BAD_TIME, "time is out of range")
        a = self._resolve(pi, ci.unionid, ci.appid, ci.openid, create=False)
        if type(a) is Outcome:
            return a
        if not self.acc.member[a]:
            return _reject(Code.NOT_MEMBER, "coupons go to members")
        self._issue(ci.coupon_id, a, pi, ci.stock_id, ci.time_s)
        return Outcome(Code.APPLIED, 0, "")

    def _issue(self: Engine, coupon_id: str, a: int, pi: int, stock_id: str, t: int) -> None:
        stock = self.programs[pi].coupons[stock_id]
        expire_s = t + stock.valid_days * DAY_S
        self.coupons[coupon_id] = [a, pi, stock_id, expire_s, 0]
        heapq.heappush(self.coupon_heap, (expire_s, coupon_id))
        self._count("coupons_issued")

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

    def _invite(self: Engine, a: int) -> bool:
        """Invite account `a` to Friend Membership unless it was invited already."""
        if a in self.invited:
            return False
        self.invited.add(a)
        self._count("friend_invites")
        return True

    def _count(self: Engine, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def _periods(c: Compiled, t: int) -> tuple[int, int, int]:
    day = (t + c.off_s) // DAY_S
    d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return day, (day + 3) // 7, d.year * 12 + d.month - 1  # weeks start on Monday


def _capped(state: dict[tuple[str, int, int], int] | None, kind: str,
            periods: tuple[int, int, int], rule: EventRule) -> bool:
    if not state:
        return False
    caps = (rule.cap_day, rule.cap_week, rule.cap_month)
    return any(caps[k] and state.get((kind, k, periods[k]), 0) >= caps[k] for k in range(3))


def _count_cap(state: dict[tuple[str, int, int], int], kind: str,
               periods: tuple[int, int, int], rule: EventRule) -> None:
    caps = (rule.cap_day, rule.cap_week, rule.cap_month)
    for k in range(3):
        if caps[k]:
            key = (kind, k, periods[k])
            state[key] = state.get(key, 0) + 1
    if len(state) > limits.CAP_PERIODS_MAX:
        # Forget periods far behind the newest of their kind and level: the platform
        # stops redelivering after 24h04m, so nothing that old can still arrive.
        newest: dict[tuple[str, int], int] = {}
        for kd, lv, per in state:
            newest[(kd, lv)] = max(newest.get((kd, lv), per), per)
        for key in [key for key in state if key[2] < newest[(key[0], key[1])] - 2]:
            del state[key]


def _merge_caps(dst: dict[tuple[str, int, int], int],
                src: dict[tuple[str, int, int], int]) -> None:
    """Fold `src`'s engagement counts into `dst`, so a merged shopper's caps count both
    histories."""
    for key, n in src.items():
        dst[key] = dst.get(key, 0) + n
