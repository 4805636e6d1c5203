"""Time-based work, done only by an explicit `advance(now)`: unlocking pending points
after the return window, expiring points, expiring coupons, and the monthly roll of
the tier window with upgrades and downgrades.

A mixin of Engine; tier work is vectorised over numpy views of the columns.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import TYPE_CHECKING

import numpy as np

from core import payments
from core.ledger import CAUSE_PAYMENT
from core.payments import P_ACCT, P_PENDING, P_PROG, P_TIME
from core.rules import DAY_S, Compiled
from core.types import AdvanceReport, Bucket, Entry

if TYPE_CHECKING:
    from core.accounts import Accounts
    from core.engine import Engine

_NEVER = 1 << 40
# (year end?, day) -> the first day of the next year or month after `day`: a pure
# function of the calendar, worked out once per day (a few thousand entries at most).
_CALENDAR_ENDS: dict[tuple[bool, int], int] = {}


def month_of(time_s: int) -> int:
    """Months since 1970-01 (UTC) of epoch second `time_s`."""
    d = dt.datetime.fromtimestamp(time_s, dt.UTC)
    return (d.year - 1970) * 12 + d.month - 1


class LifecycleMixin:
    """advance(now): unlock, expire, coupon expiry, tier window roll (mixed into Engine)."""

    def expiry_day(self: Engine, c: Compiled, day: int) -> int:
        """First local day on which points that arrived on `day` are expired."""
        p = c.program
        if p.expiry == "rolling":
            return day + p.expiry_days
        if p.expiry == "none":
            return _NEVER
        key = (p.expiry == "year_end", day + p.expiry_days)
        end_day = _CALENDAR_ENDS.get(key)
        if end_day is None:
            d = dt.date(1970, 1, 1) + dt.timedelta(days=key[1])
            if key[0]:
                end = dt.date(d.year + 1, 1, 1)
            else:
                end = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
            end_day = _CALENDAR_ENDS[key] = (end - dt.date(1970, 1, 1)).days
        return end_day

    def advance(self: Engine, now_s: int) -> AdvanceReport:
        """Move the engine's clock to `now_s` and do all time-based work due by then,
        forgetting the idempotency keys of inputs older than the window.

        A time before the current clock changes nothing (the report says so).
        """
        report = AdvanceReport(now_s)
        if type(now_s) is not int or now_s < self.clock_s:
            report.notes.append(f"clock stays at {self.clock_s}: time does not go back")
            return report
        self.clock_s = now_s
        self.idem.advance(now_s)  # forget idempotency keys behind the window
        report.unlocked = self._unlock(now_s)
        report.expired = self._expire(now_s)
        report.coupons_expired = self._expire_coupons(now_s)
        report.tier_changes = self._roll_months(month_of(now_s))
        return report

    def _unlock(self: Engine, now_s: int) -> int:
        """Make pending points of payments whose return window closed by `now_s` available."""
        total = 0
        fifo, pays, wide, rules = self.pending_fifo, self.pays, self.pays_wide, self.rules
        get = payments.get
        head = self.pending_head
        while head < len(fifo):
            i = fifo[head]
            unlock_s = get(pays, wide, i, P_TIME) + rules[get(pays, wide, i, P_PROG)].window_s
            if unlock_s > now_s:
                break
            head += 1
            total += self._unlock_one(i, unlock_s)
        if head > 65_536 and head * 2 > len(fifo):
            del fifo[:head]
            head = 0
        self.pending_head = head
        heap = self.pending_heap
        while heap and heap[0][0] <= now_s:
            unlock_s, i = heapq.heappop(heap)
            total += self._unlock_one(i, unlock_s)
        return total

    def _unlock_one(self: Engine, i: int, unlock_s: int) -> int:
        pays, wide = self.pays, self.pays_wide
        pts = payments.get(pays, wide, i, P_PENDING)
        if not pts:
            return 0
        acc = self.acc
        led = self.ledger
        payments.put(pays, wide, i, P_PENDING, 0)
        a = acc.find(payments.get(pays, wide, i, P_ACCT))
        c = self.rules[acc.prog[a]]
        cause = i << 3 | CAUSE_PAYMENT
        if acc.member[a]:
            acc.add("pend", a, -pts)
            acc.add("avail", a, pts)
            led.add(Entry.UNLOCK, Bucket.PENDING, a, -pts, unlock_s, cause)
            led.add(Entry.UNLOCK, Bucket.AVAILABLE, a, pts, unlock_s, cause)
            if c.keep_member_lots:
                self._credit_lot(a, c, unlock_s, pts)
        else:
            acc.add("shad_pend", a, -pts)
            acc.add("shad", a, pts)
            led.add(Entry.UNLOCK, Bucket.SHADOW_PENDING, a, -pts, unlock_s, cause)
            led.add(Entry.UNLOCK, Bucket.SHADOW, a, pts, unlock_s, cause)
            self._credit_lot(a, c, unlock_s, pts)
        return pts

    def _expire(self: Engine, now_s: int) -> int:
        acc = self.acc
        heap = self.expiry_heap
        total = 0
        later: list[tuple[int, int]] = []
        horizon = (now_s + 14 * 3600) // DAY_S  # the furthest-ahead local day of any program
        while heap and heap[0][0] <= horizon:
            due_day, a = heapq.heappop(heap)
            a = acc.find(a)
            c = self.rules[acc.prog[a]]
            today = (now_s + c.off_s) // DAY_S
            if due_day > today:
                later.append((due_day, a))
                continue
            if not acc.member[a]:
                continue  # shadow points do not expire; the lookback window bounds them
            lots = acc.lots
            gone = 0
            while (day := lots.oldest_day(a)) is not None and self.expiry_day(c, day) <= today:
                gone += lots.pop_oldest(a)
            if gone:
                acc.add("avail", a, -gone)
                cause = self.ledger.note(f"expiry on local day {today}")
                self.ledger.add(Entry.EXPIRE, Bucket.AVAILABLE, a, -gone, now_s, cause)
                total += gone
        for item in later:
            heapq.heappush(heap, item)
        return total

    def _expire_coupons(self: Engine, now_s: int) -> int:
        n = 0
        heap = self.coupon_heap
        while heap and heap[0][0] <= now_s:
            _, cid = heapq.heappop(heap)
            cp = self.coupons[cid]
            if cp[4] == 0:
                cp[4] = 2
                n += 1
        if n:
            self.counts["coupons_expired"] = self.counts.get("coupons_expired", 0) + n
        return n

    def _roll_months(self: Engine, month: int) -> int:
        """Advance the tier window to `month`: close each month (its amounts go into
        acc.qual_months), take the months leaving each program's window off, then re-tier
        every member by the program's downgrade rule. Returns the number of tier changes."""
        if self.month_base is None:
            self.month_base = month
            return 0
        rel = month - self.month_base
        if rel <= self.month_rel:
            return 0
        acc = self.acc
        n = len(acc)
        if n == 0:
            self.month_rel = rel
            return 0
        qual = acc.view("qual")
        prog = acc.view("prog")
        tier = acc.view("tier")
        member = acc.view("member")
        windows = np.array([c.window_months for c in self.rules], dtype=np.int64)
        months = acc.qual_months
        _follow_merges(acc, months)
        # qual right after the last month end: the closed months inside each window.
        base = np.zeros(n, dtype=np.int64)
        for m, (who, amounts) in months.items():
            inside = m >= self.month_rel + 1 - windows[prog[who]]
            base[who[inside]] += amounts[inside]  # accounts are distinct within a month
        # After w + 1 quiet months every window is empty: no need to step further.
        for r in range(self.month_rel, min(rel, self.month_rel + self.qual_w + 1)):
            closed = np.flatnonzero(qual != base)
            if len(closed):
                months[r] = (_narrow(closed), _narrow(qual[closed] - base[closed]))
            for pi, c in enumerate(self.rules):
                leaving = months.get(r + 1 - c.window_months)
                if leaving is not None:
                    who, amounts = leaving
                    mine = prog[who] == pi
                    # accounts are distinct within a month; exact, widening qual if need be
                    new = qual[who[mine]].astype(np.int64) - amounts[mine]
                    del qual
                    acc.assign("qual", who[mine], new)
                    qual = acc.view("qual")
            base[:] = qual
        for m in [m for m in months if m < rel + 1 - self.qual_w]:
            del months[m]  # outside every window
        changes = 0
        alive = acc.view("root") == np.arange(n)
        for pi, c in enumerate(self.rules):
            mask = (prog == pi) & (member == 1) & alive
            if not mask.any():
                continue
            earned = np.searchsorted(np.asarray(c.thresholds), qual[mask], side="right") - 1
            cur = tier[mask].astype(np.int64)
            rule = c.program.downgrade
            if rule == "never":
                new = np.maximum(cur, earned)
            elif rule == "one_level":
                new = np.where(earned < cur, cur - 1, earned)
            else:
                new = earned
            changes += int(np.count_nonzero(new != cur))
            tier[mask] = new.astype(np.int8)
        self.month_rel = rel
        del qual, prog, tier, member  # release buffer exports: arrays must grow
        return changes


def _narrow(x: np.ndarray) -> np.ndarray:
    """`x` as int32 when every value fits (exactly the same numbers), else as int64."""
    if len(x) and (x.min() < -(2**31) or x.max() >= 2**31):
        return x.astype(np.int64)
    return x.astype(np.int32)


def _follow_merges(acc: Accounts, months: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Credit the stored months of merged accounts to their survivors (a merge moves the
    whole history), adding up amounts that meet on one account and dropping zeros."""
    for m, (who, amounts) in list(months.items()):
        to = acc.roots(who)
        if np.array_equal(to, who):
            continue
        order = np.argsort(to, kind="stable")
        to = to[order]
        starts = np.flatnonzero(np.r_[True, to[1:] != to[:-1]])
        owners = to[starts]
        summed = np.add.reduceat(amounts[order].astype(np.int64), starts)  # exact: integers
        keep = summed != 0
        months[m] = (_narrow(owners[keep]), _narrow(summed[keep]))
