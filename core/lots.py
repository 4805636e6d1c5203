"""Point lots: the points of each account's available (member) or shadow balance, grouped
by the local day they arrived, oldest first. They drive expiry and the shadow lookback
window; sum(lots) == max(0, balance) always.

One pool for every account, with no Python object per lot: lot `k` is `day[k]`,
`pts[k]` and `nxt[k]` in three arrays (16 bytes a lot), and each account's lots form
a circular list through `nxt`, reached from its newest lot `tail[a]` (0 = no lots:
`tail` is a core/_amap.pyx AccountMap, sparse while few accounts hold lots, a dense column
once that is smaller). The newest lot is where points usually arrive and
`nxt[tail[a]]` is the oldest, where they are taken, so both are O(1). Freed lots are
chained through `nxt` from `free` and reused.
"""

from __future__ import annotations

from array import array

import numpy as np

from core import _lots
from core._amap import AccountMap

_I32_TOP = 2**31 - 1  # past this many lots, lot numbers need a 64-bit `nxt`


def wide(col: array, top: int) -> array:
    """`col`, or a 64-bit copy of it once numbers up to `top` no longer fit 32 bits."""
    return array("q", col) if col.typecode == "i" and top >= _I32_TOP else col


class Lots:
    """Every account's lots, oldest first, in one pool of integer arrays."""

    __slots__ = ("day", "free", "nxt", "pts", "tail")

    def __init__(self) -> None:
        """No accounts, no lots; lot 0 is a sentinel, never used."""
        self.day = array("i", [0])
        self.pts = array("q", [0])
        self.nxt = array("i", [0])
        self.tail = AccountMap()  # by account: its newest lot, 0 for none
        self.free = 0

    def grow(self, accounts: int) -> None:
        """Make room for `accounts` more accounts (with no lots)."""
        self.tail.grow(accounts)

    def _new(self, day: int, points: int) -> int:
        k = self.free
        if k:
            self.free = self.nxt[k]
            self.day[k] = day
            self.pts[k] = points
            return k
        k = len(self.pts)
        if k == _I32_TOP:
            self.nxt = wide(self.nxt, k)  # tail widens itself
        self.day.append(day)
        self.pts.append(points)
        self.nxt.append(0)
        return k

    def _add_py(self, a: int, day: int, points: int) -> bool:
        """Add `points` arriving on `day` to account `a`; True when a new lot started.

        The reference of `add` (core/_lots.pyx), which runs the common cases in C.
        """
        t = self.tail[a]
        nxt = self.nxt
        if t:
            last = self.day[t]
            if last == day:
                self.pts[t] += points
                return False
            if last > day:
                return self._insert(a, day, points)
            k = self._new(day, points)
            nxt = self.nxt  # _new may have widened it
            nxt[k] = nxt[t]
            nxt[t] = k
        else:
            k = self._new(day, points)
            nxt = self.nxt
            nxt[k] = k
        self.tail[a] = k
        return True

    add = _lots.add

    def _insert(self, a: int, day: int, points: int) -> bool:
        """Out-of-order arrival (`day` before the newest lot's): keep the days sorted."""
        nxt, days = self.nxt, self.day
        prev = self.tail[a]
        cur = nxt[prev]
        while days[cur] < day:
            prev, cur = cur, nxt[cur]
        if days[cur] == day:
            self.pts[cur] += points
            return False
        k = self._new(day, points)
        self.nxt[k] = cur
        self.nxt[prev] = k
        return True

    def _release(self, k: int) -> None:
        self.nxt[k] = self.free
        self.free = k

    def oldest_day(self, a: int) -> int | None:
        """The day of account `a`'s oldest lot, or None when it has none."""
        t = self.tail[a]
        return self.day[self.nxt[t]] if t else None

    def pop_oldest(self, a: int) -> int:
        """Remove account `a`'s oldest lot (it must have one); returns its points."""
        t = self.tail[a]
        k = self.nxt[t]
        if k == t:
            self.tail[a] = 0
        else:
            self.nxt[t] = self.nxt[k]
        points = self.pts[k]
        self._release(k)
        return points

    def take(self, a: int, points: int) -> None:
        """Consume `points` from account `a`'s oldest lots (what is not there is a deficit)."""
        pts = self.pts
        while points > 0 and self.tail[a]:
            k = self.nxt[self.tail[a]]
            if pts[k] > points:
                pts[k] -= points
                return
            points -= self.pop_oldest(a)

    def items(self, a: int) -> list[tuple[int, int]]:
        """Account `a`'s lots as (day, points), oldest first."""
        t = self.tail[a]
        if not t:
            return []
        nxt, days, pts = self.nxt, self.day, self.pts
        out = []
        k = t
        while True:
            k = nxt[k]
            out.append((days[k], pts[k]))
            if k == t:
                return out

    def total(self, a: int) -> int:
        """Points in account `a`'s lots."""
        return sum(p for _, p in self.items(a))

    def clear(self, a: int) -> None:
        """Drop every lot of account `a`."""
        while self.tail[a]:
            self.pop_oldest(a)

    def drop_before(self, a: int, day: int) -> None:
        """Drop account `a`'s lots that arrived before `day`."""
        while (d := self.oldest_day(a)) is not None and d < day:
            self.pop_oldest(a)

    def merge(self, src: int, dst: int) -> None:
        """Move account `src`'s lots into `dst`, keeping days sorted and coalesced."""
        if not self.tail[src]:
            return
        merged: dict[int, int] = {}
        for day, pts in self.items(dst) + self.items(src):
            merged[day] = merged.get(day, 0) + pts
        self.clear(src)
        self.clear(dst)
        for day in sorted(merged):
            self.add(dst, day, merged[day])

    def walk(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every lot of accounts below `n`, all lists walked at once (numpy, one step per
        lot of the longest list): (account, day, points) arrays, each account's lots
        oldest first and the accounts in ascending order."""
        tail = np.frombuffer(self.tail.column(n), dtype=np.int64)
        nxt = np.frombuffer(self.nxt, dtype=self.nxt.typecode).astype(np.int64)
        day = np.frombuffer(self.day, dtype=self.day.typecode)
        pts = np.frombuffer(self.pts, dtype=np.int64)
        who = np.flatnonzero(tail)
        ends = tail[who]
        cur = nxt[ends]  # each list's oldest lot
        steps: list[tuple[np.ndarray, np.ndarray]] = []
        while len(who):
            steps.append((who, cur))
            going = cur != ends
            who, ends, cur = who[going], ends[going], nxt[cur[going]]
        if not steps:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        accounts = np.concatenate([w for w, _ in steps])
        lots = np.concatenate([k for _, k in steps])
        order = np.argsort(accounts, kind="stable")  # stable: each account's lots stay in order
        accounts, lots = accounts[order], lots[order]
        return accounts, day[lots].astype(np.int64), pts[lots].copy()

    def holders(self, n: int) -> np.ndarray:
        """The accounts (below `n`) that have lots."""
        return np.flatnonzero(np.frombuffer(self.tail.column(n), dtype=np.int64))


_lots.register(Lots)  # the compiled add reads its slots by offset
