"""Engagement events: points per program rule, with caps per day, week and month.

A mixin of Engine. Cap counters are kept per account and per period, so events
arriving out of time order count right, and a merge adds both histories up.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from core import limits
from core.accounts import lots_add
from core.ids import valid_id, valid_time
from core.ledger import CAUSE_EVENT
from core.program import EventRule
from core.rules import DAY_S, Compiled
from core.types import DUPLICATE, Bucket, Code, Engagement, Entry, Outcome, reject, type_fault

if TYPE_CHECKING:
    from core.engine import Engine

class EngagementMixin:
    """engage() and its caps (mixed into Engine)."""

    def __init__(self) -> None:
        self.event_seen: set[str] = set()
        self.event_ids: list[str] = []
        # account -> (kind, level 0/1/2 = day/week/month, period number) -> events counted.
        self.caps: dict[int, dict[tuple[str, int, int], int]] = {}

    def engage(self: Engine, e: Engagement) -> Outcome:
        """Reward an engagement event per its program's rule, within the rule's caps."""
        if (fault := type_fault(e)) is not None:
            return reject(Code.BAD_TYPE, fault)
        if e.event_id in self.event_seen:
            return DUPLICATE
        if not 0 < len(e.event_id) <= limits.REF_LEN_MAX:
            return reject(Code.BAD_ID, "event_id must be 1..64 characters")
        pi = self.app_prog.get(e.appid)
        if pi is None:
            return reject(Code.UNKNOWN_APP, f"appid {e.appid!r} is in no program")
        c = self.rules[pi]
        rule = c.program.events.get(e.kind)
        if rule is None:
            return reject(Code.UNKNOWN_EVENT_RULE,
                           f"program {c.program.id!r} has no rule for {e.kind!r}")
        if not valid_time(e.time_s):
            return reject(Code.BAD_TIME, "time is out of range")
        who = [e.openid]
        if e.kind == "referral":
            if not e.referred_openid or e.referred_openid == e.openid:
                return reject(Code.BAD_VALUE, "a referral names a referred_openid, not self")
            who = {"referrer": [e.openid], "referred": [e.referred_openid],
                   "both": [e.openid, e.referred_openid]}[rule.reward]
        for oid in (e.openid, e.referred_openid):
            if oid and not valid_id(oid):
                return reject(Code.BAD_ID, "openid must be 1..64 of [A-Za-z0-9_-]")
        periods = _periods(c, e.time_s)
        apps = self.acc.by_app[e.appid]
        for oid in who:
            known = apps.get(oid)
            if known is not None and _capped(self.caps.get(self.acc.find(known)), e.kind,
                                             periods, rule):
                return reject(Code.CAP_REACHED, f"{e.kind} cap reached for this period")
        # Only now create accounts: a rejection must leave no trace.
        accounts = [self.acc.open_account(pi, e.appid, oid) for oid in who]
        self.event_seen.add(e.event_id)
        self.event_ids.append(e.event_id)
        cause = (len(self.event_ids) - 1) << 3 | CAUSE_EVENT
        for a in accounts:
            _count_cap(self.caps.setdefault(a, {}), e.kind, periods, rule)
            if rule.points:
                self._credit(a, c, rule.points, e.time_s, cause, Entry.EARN)
                self.scalars[1] += rule.points
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


def merge_caps(dst: dict[tuple[str, int, int], int],
                src: dict[tuple[str, int, int], int]) -> None:
    """Fold `src`'s engagement counts into `dst`, so a merged shopper's caps count both
    histories."""
    for key, n in src.items():
        dst[key] = dst.get(key, 0) + n
