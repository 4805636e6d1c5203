"""Engagement events: points per program rule, with caps per day, week and month.

A mixin of Engine. Cap counters are kept per account and per period, so events
arriving out of time order count right, and a merge adds both histories up.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from core import limits
from core.ids import field_types, valid_id
from core.ledger import CAUSE_EVENT
from core.program import EventRule
from core.rules import DAY_S, Compiled
from core.types import DUPLICATE, Bucket, Code, Engagement, Entry, Outcome, reject, type_fault

if TYPE_CHECKING:
    from core.engine import Engine

_REF_MAX, _CAP_PERIODS_MAX = limits.REF_LEN_MAX, limits.CAP_PERIODS_MAX
_T_MIN, _T_MAX = limits.TIME_S_MIN, limits.TIME_S_MAX
_FIELDS, _TYPES = field_types(Engagement)
_EARN = int(Entry.EARN)
_AV, _SH = int(Bucket.AVAILABLE), int(Bucket.SHADOW)
# A referral's reward -> who gets it, as indexes into (openid, referred_openid).
_SELF = (0,)
_REWARDED = {"referrer": _SELF, "referred": (1,), "both": (0, 1)}
# Local day -> (day, week, month): at most one entry a day of the engine's time range
# (limits.TIME_S_MIN..TIME_S_MAX, ~40k days), shared by all engines.
_PERIODS: dict[int, tuple[int, int, int]] = {}
# Points -> Outcome(APPLIED, points): outcomes are immutable, and the points of events
# are a rule's points once or twice, so few distinct values.
_APPLIED: dict[int, Outcome] = {}

class EngagementMixin:
    """engage() and its caps (mixed into Engine)."""

    def __init__(self: Engine) -> None:
        self.event_seen = self.idem.events  # the ids of applied events inside the window
        self.event_ids: list[str] = []
        # account -> (kind, level 0/1/2 = day/week/month, period number) -> events counted.
        self.caps: dict[int, dict[tuple[str, int, int], int]] = {}

    def _engage_py(self: Engine, e: Engagement) -> Outcome:
        """Reward an engagement event per its program's rule, within the rule's caps. The
        reference of the compiled `Engine.engage` (core/_engage.pyx), which calls it for
        anything unusual."""
        if ((type(e) is not Engagement or tuple(map(type, _FIELDS(e))) != _TYPES)
                and (fault := type_fault(e)) is not None):
            return reject(Code.BAD_TYPE, fault)
        if e.time_s < self.idem.horizon_s:
            return reject(Code.STALE, self.idem.stale_message(e.time_s))
        event_id = e.event_id
        if event_id in self.event_seen:
            return DUPLICATE
        if not 0 < len(event_id) <= _REF_MAX:
            return reject(Code.BAD_ID, "event_id must be 1..64 characters")
        appid = e.appid
        pi = self.app_prog.get(appid)
        if pi is None:
            return reject(Code.UNKNOWN_APP, f"appid {appid!r} is in no program")
        c = self.rules[pi]
        kind = e.kind
        rule = c.program.events.get(kind)
        if rule is None:
            return reject(Code.UNKNOWN_EVENT_RULE,
                           f"program {c.program.id!r} has no rule for {kind!r}")
        t = e.time_s  # an int: the type check above
        if not _T_MIN <= t < _T_MAX:
            return reject(Code.BAD_TIME, "time is out of range")
        openid, referred = e.openid, e.referred_openid
        who = _SELF  # indexes into (openid, referred)
        if kind == "referral":
            if not referred or referred == openid:
                return reject(Code.BAD_VALUE, "a referral names a referred_openid, not self")
            who = _REWARDED[rule.reward]
        acc = self.acc
        apps = acc.by_app[appid]
        # Every key of an app's openid map passed valid_id when it was added.
        known_o = apps.get(openid)
        known_r = apps.get(referred) if referred else None
        if ((known_o is None and openid and not valid_id(openid))
                or (known_r is None and referred and not valid_id(referred))):
            return reject(Code.BAD_ID, "openid must be 1..64 of [A-Za-z0-9_-]")
        periods = _periods(c.off_s, t)
        caps = self.caps
        # ((kind, level, period), cap) of each capped level: built once, for the check
        # and for the count.
        limits3 = _cap_keys(kind, periods, rule)
        root = acc.root
        known = [(known_o, known_r)[k] for k in who]
        for k, a in enumerate(known):
            if a is not None:
                if root[a] != a:
                    a = known[k] = acc.find(a)
                if limits3 and (state := caps.get(a)):
                    for key, cap in limits3:
                        if state.get(key, 0) >= cap:
                            return reject(Code.CAP_REACHED,
                                          f"{kind} cap reached for this period")
        # Only now create accounts: a rejection must leave no trace.
        accounts = []
        for k, a in zip(who, known, strict=True):
            if a is None:
                a = apps[(openid, referred)[k]] = acc.create(pi)  # as open_account does
            accounts.append(a)
        self.idem.add_event(event_id, t)
        event_ids = self.event_ids
        event_ids.append(event_id)
        cause = (len(event_ids) - 1) << 3 | CAUSE_EVENT
        pts = rule.points
        for a in accounts:
            state = caps.get(a)
            if state is None:
                state = caps[a] = {}
            for key, _ in limits3:
                state[key] = state.get(key, 0) + 1
            if len(state) > _CAP_PERIODS_MAX:
                _forget_old(state)
            if pts:
                # _credit, then _qualify, inline: this is the simulation's busiest input.
                if acc.member[a]:
                    acc.add("avail", a, pts)
                    self.ledger.add(_EARN, _AV, a, pts, t, cause)
                    if c.keep_member_lots:
                        self._credit_lot(a, c, t, pts)
                else:
                    acc.add("shad", a, pts)
                    self.ledger.add(_EARN, _SH, a, pts, t, cause)
                    acc.lots.add(a, periods[0], pts)
                self.scalars[1] += pts
                if not c.spend_basis:
                    acc.add("qual", a, pts)
                    if acc.member[a]:
                        tier = acc.tier[a]
                        tier_next = c.tier_next
                        while acc.qual[a] >= tier_next[tier]:
                            tier += 1
                        acc.tier[a] = tier
        out = _APPLIED.get(pts * len(accounts))
        if out is None:
            out = _APPLIED[pts * len(accounts)] = Outcome(Code.APPLIED, pts * len(accounts), "")
        return out

    def _credit(self: Engine, a: int, c: Compiled, pts: int, t: int, cause: int,
                kind: Entry) -> None:
        """Credit `pts` to account `a`'s available (member) or shadow balance."""
        acc = self.acc
        if acc.member[a]:
            acc.add("avail", a, pts)
            self.ledger.add(kind, Bucket.AVAILABLE, a, pts, t, cause)
            if c.keep_member_lots:
                self._credit_lot(a, c, t, pts)
        else:
            acc.add("shad", a, pts)
            self.ledger.add(kind, Bucket.SHADOW, a, pts, t, cause)
            acc.lots.add(a, (t + c.off_s) // DAY_S, pts)


def _periods(off_s: int, t: int) -> tuple[int, int, int]:
    """(day, week, month) numbers since 1970 of local time `t` (UTC offset `off_s`)."""
    day = (t + off_s) // DAY_S
    p = _PERIODS.get(day)
    if p is None:
        d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        p = _PERIODS[day] = (day, (day + 3) // 7, d.year * 12 + d.month - 1)  # Monday weeks
    return p


def _cap_keys(kind: str, periods: tuple[int, int, int],
              rule: EventRule) -> tuple[tuple[tuple[str, int, int], int], ...]:
    """((kind, level, period number), cap) for each level (day, week, month) that `rule`
    caps; () for an uncapped rule."""
    day, week, month = rule.cap_day, rule.cap_week, rule.cap_month
    if not (day or week or month):
        return ()
    out = []
    if day:
        out.append(((kind, 0, periods[0]), day))
    if week:
        out.append(((kind, 1, periods[1]), week))
    if month:
        out.append(((kind, 2, periods[2]), month))
    return tuple(out)


def _forget_old(state: dict[tuple[str, int, int], int]) -> None:
    """Forget periods far behind the newest of their kind and level: the platform stops
    redelivering after 24h04m, so nothing that old can still arrive."""
    newest: dict[tuple[str, int], int] = {}
    for kd, lv, per in state:
        newest[(kd, lv)] = max(newest.get((kd, lv), per), per)
    for key in [key for key in state if key[2] < newest[(key[0], key[1])] - 2]:
        del state[key]


def merge_caps(dst: dict[tuple[str, int, int], int],
                src: dict[tuple[str, int, int], int]) -> None:
    """Fold `src`'s engagement counts into `dst`, so a merged shopper's caps count both
    histories."""
    for key, n in src.items():
        dst[key] = dst.get(key, 0) + n
