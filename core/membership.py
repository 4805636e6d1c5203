"""Identity and membership: bindings and merges, enrollment with shadow conversion,
tier qualification, and Friend Membership invitations.

A mixin of Engine: it reads the engine's columns (`self.acc`, `self.ledger`, ...).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from core import limits
from core.engagement import merge_caps
from core.ids import field_types, valid_id, valid_time
from core.rules import DAY_S, Compiled
from core.types import (
    DUPLICATE,
    Binding,
    Bucket,
    Code,
    Enrollment,
    Entry,
    Outcome,
    reject,
    type_fault,
)

if TYPE_CHECKING:
    from core.engine import Engine

_BIND_FIELDS, _BIND_TYPES = field_types(Binding)
_ENROLL_FIELDS, _ENROLL_TYPES = field_types(Enrollment)
_T_MIN, _T_MAX = limits.TIME_S_MIN, limits.TIME_S_MAX
_BONUS, _FORFEIT, _CONVERT = int(Entry.BONUS), int(Entry.FORFEIT), int(Entry.CONVERT)
_AV, _PE, _SH, _SP = (int(Bucket.AVAILABLE), int(Bucket.PENDING), int(Bucket.SHADOW),
                      int(Bucket.SHADOW_PENDING))
_BOUND = Outcome(Code.APPLIED, 0, "")

_COLS = (("avail", _AV), ("pend", _PE), ("shad", _SH), ("shad_pend", _SP))
_MERGE_OUT, _MERGE_IN = int(Entry.MERGE_OUT), int(Entry.MERGE_IN)


class MembershipMixin:
    """Bindings and merges, enrollment, tier qualification, invitations (mixed into Engine)."""

    def __init__(self) -> None:
        self.invited: set[int] = set()
        self.merged_from: dict[int, list[int]] = {}  # survivor -> accounts merged into it

    # ------------------------------------------------------------------ identity
    def _bind_py(self: Engine, b: Binding) -> Outcome:
        """Bind (appid, openid) to unionid, merging its history into the unionid's account.

        Binding an openid already bound to another unionid is OPENID_BOUND_ELSEWHERE. The
        reference of the compiled `Engine.bind` (core/_inputs.pyx), which calls it for
        anything unusual.
        """
        if ((type(b) is not Binding or tuple(map(type, _BIND_FIELDS(b))) != _BIND_TYPES)
                and (fault := type_fault(b)) is not None):
            return reject(Code.BAD_TYPE, fault)
        appid, openid, unionid = b.appid, b.openid, b.unionid
        pi = self.app_prog.get(appid)
        if pi is None:
            return reject(Code.UNKNOWN_APP, f"appid {appid!r} is in no program")
        acc = self.acc
        apps = acc.by_app[appid]
        unions = acc.by_union[pi]
        o = apps.get(openid)
        u = unions.get(unionid)
        # Known ids passed valid_id when they were added (but for an engagement's empty
        # openid, which valid_id refuses).
        if (o is None or not openid) and not valid_id(openid):
            return reject(Code.BAD_ID, "openid must be 1..64 of [A-Za-z0-9_-]")
        if u is None and not valid_id(unionid):
            return reject(Code.BAD_ID, "unionid must be 1..64 of [A-Za-z0-9_-]")
        if not _T_MIN <= b.time_s < _T_MAX:  # an int: the type check above
            return reject(Code.BAD_TIME, "time is out of range")
        if o is not None:
            o = acc.find(o)
            bound = acc.unionid(o)
            if bound == unionid:
                return DUPLICATE
            if bound is not None:
                return reject(Code.OPENID_BOUND_ELSEWHERE,
                               "openid is already bound to another unionid")
        if u is not None:
            u = acc.find(u)
        if o is None and u is None:
            a = acc.create(pi)
            apps[openid] = a
            acc.set_unionid(a, unionid)
        elif o is None:
            apps[openid] = u
        elif u is None:
            acc.set_unionid(o, unionid)
        else:
            return self._bind_merge(o, u, b)
        return _BOUND

    def _bind_merge(self: Engine, o: int, u: int, b: Binding) -> Outcome:
        """Binding `b` names two accounts: merge `o` (the openid's) into `u` (the unionid's)."""
        cause = self.ledger.note("bind ", b.appid, "/", b.openid, " -> ", b.unionid)
        moved = self._merge(o, u, b.time_s, cause)
        self._count("merges")
        return Outcome(Code.APPLIED, moved, "histories merged")

    def _merge(self: Engine, src: int, dst: int, t: int, cause: int) -> int:
        """Move everything of account `src` into `dst`; returns the points moved."""
        acc = self.acc
        led = self.ledger
        if acc.member[dst] and not acc.member[src]:
            self._convert(src, t, cause)
        elif acc.member[src] and not acc.member[dst]:
            self._convert(dst, t, cause)
        moved = 0
        for col_name, bucket in _COLS:  # both members now, or both shadow accounts
            x = acc.balance(col_name, src)
            if x:
                acc.put(col_name, src, 0)
                acc.add(col_name, dst, x)
                led.add(_MERGE_OUT, bucket, src, -x, t, cause)
                led.add(_MERGE_IN, bucket, dst, x, t, cause)
                moved += x
        lots = acc.lots
        lots.merge(src, dst)
        if acc.member[dst]:
            # A negative side (allow_negative) absorbs lots: sum(lots) == max(0, avail).
            excess = lots.total(dst) - max(0, acc.balance("avail", dst))
            if excess > 0:
                lots.take(dst, excess)
        c = self.rules[acc.prog[dst]]
        if acc.member[dst] and c.keep_member_lots:
            for day, _ in lots.items(dst):
                heapq.heappush(self.expiry_heap, (self.expiry_day(c, day), dst))
        # The closed months of src's tier window follow the merge at the next month end
        # (core.lifecycle): only the running total moves now.
        acc.add("qual", dst, acc.qual[src])
        acc.put("qual", src, 0)
        acc.tier[dst] = max(acc.tier[dst], acc.tier[src])
        acc.tier[src] = 0
        self._upgrade(dst, c)
        acc.root[src] = dst  # fits: root is as wide as account numbers
        self._merge_records(src, dst)
        return moved

    def _merge_records(self: Engine, src: int, dst: int) -> None:
        """The part of a merge of `src` into `dst` outside the balances and lots: merge
        history, Friend Membership visits and invitation, engagement caps (shared with the
        compiled merge in core/_identity.pyx)."""
        acc = self.acc
        self.merged_from.setdefault(dst, []).extend([src, *self.merged_from.pop(src, [])])
        if acc.visit_slots and (acc.visit_n[src] or acc.visit_n[dst]):  # else a no-op
            acc.set_visit_days(dst, acc.visit_days(src) + acc.visit_days(dst))
            acc.set_visit_days(src, [])
        if src in self.invited:
            self.invited.add(dst)
        moved_caps = self.caps.pop(src, None)
        if moved_caps:
            merge_caps(self.caps.setdefault(dst, {}), moved_caps)

    # ---------------------------------------------------------------- enrollment
    def _enroll_py(self: Engine, e: Enrollment) -> Outcome:
        """Enroll a shopper in program `e.program`, converting shadow points and adding the
        welcome bonus; an existing member gives DUPLICATE. The reference of the compiled
        `Engine.enroll` (core/_inputs.pyx), which calls it for anything unusual."""
        if ((type(e) is not Enrollment or tuple(map(type, _ENROLL_FIELDS(e))) != _ENROLL_TYPES)
                and (fault := type_fault(e)) is not None):
            return reject(Code.BAD_TYPE, fault)
        program, t = e.program, e.time_s
        # _shopper, inline
        pi = self.prog_index.get(program)
        if pi is None:
            return reject(Code.UNKNOWN_PROGRAM, f"no program {program!r}")
        if not _T_MIN <= t < _T_MAX:  # an int: the type check above
            return reject(Code.BAD_TIME, "time is out of range")
        a = self._resolve(pi, e.unionid, e.appid, e.openid, True)
        if type(a) is Outcome:
            return a
        acc = self.acc
        if acc.member[a]:
            return reject(Code.DUPLICATE, "already a member")
        c = self.rules[pi]
        p = c.program
        cause = self.ledger.note("enroll ", program, " ", e.unionid or e.openid)
        converted = self._convert(a, t, cause)
        bonus = p.welcome_bonus if t >= p.welcome_bonus_from_s else 0
        if bonus:
            acc.add("avail", a, bonus)
            self.ledger.add(_BONUS, _AV, a, bonus, t, cause)
            self.scalars[1] += bonus
            if c.keep_member_lots:
                self._credit_lot(a, c, t, bonus)
        if p.coupons:
            for stock in p.coupons.values():
                if stock.trigger == "enroll":
                    self._issue(f"enroll-{stock.stock_id}-{a}", a, pi, stock.stock_id, t)
        counts = self.counts
        counts["enrollments"] = counts.get("enrollments", 0) + 1
        return Outcome(Code.APPLIED, converted + bonus, "")

    def _convert(self: Engine, a: int, t: int, cause: int) -> int:
        """Make shadow account `a` a member: shadow points inside the lookback window become
        available, older ones are forfeited, shadow pending becomes pending. Returns points
        converted."""
        acc = self.acc
        led = self.ledger
        c = self.rules[acc.prog[a]]
        cutoff = (t + c.off_s) // DAY_S - c.program.lookback_days
        lots = acc.lots.items(a)
        old = total = 0
        for day, p in lots:
            total += p
            if day < cutoff:
                old += p
        shad = acc.balance("shad", a)
        keep = shad - old
        assert keep >= 0 and total == shad, "shadow lots out of step"
        if old:
            led.add(_FORFEIT, _SH, a, -old, t, cause)
        if keep:
            led.add(_CONVERT, _SH, a, -keep, t, cause)
            led.add(_CONVERT, _AV, a, keep, t, cause)
        if keep and c.keep_member_lots:
            acc.lots.drop_before(a, cutoff)
            for day, _ in acc.lots.items(a):
                heapq.heappush(self.expiry_heap, (self.expiry_day(c, day), a))
        else:
            acc.lots.clear(a)
        # One pair holds a shadow account's shadow points and a member's available points
        # (core.accounts): the kept shadow points stay as available, the shadow pending as
        # pending, once `member` says so.
        if old:
            acc.put("shad", a, keep)
        sp = acc.balance("shad_pend", a)
        if sp:
            led.add(_CONVERT, _SP, a, -sp, t, cause)
            led.add(_CONVERT, _PE, a, sp, t, cause)
        acc.member[a] = 1
        tier = acc.tier[a]  # _upgrade, inline: now a member
        tier_next = c.tier_next
        while acc.qual[a] >= tier_next[tier]:
            tier += 1
        acc.tier[a] = tier
        self.invited.discard(a)
        return keep

    def _qualify(self: Engine, a: int, c: Compiled, q: int) -> None:
        """Count `q` toward account `a`'s tier (current month) and upgrade a member."""
        acc = self.acc
        acc.add("qual", a, q)
        self._upgrade(a, c)

    def _upgrade(self: Engine, a: int, c: Compiled) -> None:
        acc = self.acc
        if acc.member[a]:
            tier = acc.tier[a]
            while acc.qual[a] >= c.tier_next[tier]:
                tier += 1
            acc.tier[a] = tier

    def _shopper(self: Engine, program: str, time_s: int, unionid: str, appid: str,
                 openid: str, create: bool) -> tuple[int, int] | Outcome:
        """(program number, account) of a shopper of `program` named by unionid or
        (appid, openid) at `time_s`, or the rejection naming what is wrong."""
        pi = self.prog_index.get(program)
        if pi is None:
            return reject(Code.UNKNOWN_PROGRAM, f"no program {program!r}")
        if not valid_time(time_s):
            return reject(Code.BAD_TIME, "time is out of range")
        a = self._resolve(pi, unionid, appid, openid, create)
        return a if type(a) is Outcome else (pi, a)  # type: ignore[return-value]

    def _resolve(self: Engine, pi: int, unionid: str, appid: str, openid: str,
                 create: bool) -> int | Outcome:
        """The account of a shopper named by unionid or by (appid, openid) in program `pi`."""
        acc = self.acc
        if unionid:
            a = acc.by_union[pi].get(unionid) if type(unionid) is str else None
            if a is None and not valid_id(unionid):  # known unionids passed it
                return reject(Code.BAD_ID, "unionid must be 1..64 of [A-Za-z0-9_-]")
            if a is None:
                if not create:
                    return reject(Code.UNKNOWN_MEMBER, f"no account for unionid {unionid!r}")
                a = acc.create(pi)
                acc.set_unionid(a, unionid)
                return a
            return acc.find(a)
        if not appid or not openid:
            return reject(Code.MISSING_FIELD, "name the shopper by unionid or appid+openid")
        if self.app_prog.get(appid) != pi:
            return reject(Code.UNKNOWN_APP, f"appid {appid!r} is not in this program")
        apps = acc.by_app[appid]
        a = apps.get(openid) if type(openid) is str else None
        if a is None:
            if not valid_id(openid):  # known openids passed it
                return reject(Code.BAD_ID, "openid must be 1..64 of [A-Za-z0-9_-]")
            if not create:
                return reject(Code.UNKNOWN_MEMBER, "no account for that openid")
            a = apps[openid] = acc.create(pi)  # as open_account does
            return a
        return acc.find(a)

    def _invite(self: Engine, a: int) -> bool:
        """Invite account `a` to Friend Membership unless it was invited already."""
        if a in self.invited:
            return False
        self.invited.add(a)
        self._count("friend_invites")
        return True

    def _count(self: Engine, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
