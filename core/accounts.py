"""Account state: dense account numbers, integer columns, identity maps and point lots.

An account is one shopper within one program (brand). It starts as a shadow
account keyed by (appid, openid); a binding gives it a unionid, possibly merging
another account into it. A merged account keeps its number with `root` pointing
at the survivor, so old payments still resolve to whoever owns them now.

Lots: the points of an account's available (member) or shadow balance, grouped
by the local day they arrived, oldest first: `[[day, points], ...]`. They drive
expiry and the shadow lookback window; sum(lots) == max(0, balance) always.
"""

from __future__ import annotations

from array import array

import numpy as np

from core._keys import KeyIndex
from core.program import Program


class Accounts:
    """Columns indexed by account number, plus the id -> account maps."""

    __slots__ = (
        "avail",
        "by_app",
        "by_union",
        "cap",
        "lots",
        "member",
        "n",
        "pend",
        "prog",
        "qual",
        "qual_base",
        "qual_buckets",
        "qual_slots",
        "root",
        "shad",
        "shad_pend",
        "tier",
        "union_of",
        "visit_n",
        "visit_ring",
        "visit_slots",
    )

    def __init__(self, programs: list[Program], qual_slots: int) -> None:
        """Empty columns for `programs`; `qual_slots` months of tier window per account."""
        self.prog = array("h")
        self.avail = array("q")
        self.pend = array("q")
        self.shad = array("q")
        self.shad_pend = array("q")
        self.qual = array("q")  # qualifying total over the tier window
        self.member = array("b")
        self.tier = array("b")
        self.root = array("q")  # itself, or the account it was merged into
        # Tier qualification: `qual` is the total over the window, the only column the
        # per-event path touches. At each month end the month's amount (qual - qual_base)
        # goes into its bucket (account * qual_slots + month % qual_slots), and the month
        # leaving the window is taken off qual.
        self.qual_base = array("q")  # qual right after the last month end
        self.qual_slots = qual_slots
        self.qual_buckets = array("q")
        self.by_app: dict[str, KeyIndex] = {a: KeyIndex() for p in programs for a in p.appids}
        self.by_union: list[KeyIndex] = [KeyIndex() for _ in programs]
        self.union_of: dict[int, str] = {}
        self.lots: dict[int, list[list[int]]] = {}
        # Friend Membership: the days of each account's last `visit_slots` visits (a ring),
        # enough to tell whether the k-th latest visit lies within d days.
        self.visit_slots = max(p.friend_min_visits for p in programs)
        self.visit_ring = array("i")
        self.visit_n = array("i")
        # Columns are allocated ahead (capacity `cap`, zero-filled) so that creating an
        # account on the hot path writes two cells instead of appending to every column.
        self.n = 0
        self.cap = 0

    def __len__(self) -> int:
        return self.n

    def create(self, prog: int) -> int:
        """Add a new shadow account of program `prog`; returns its number."""
        a = self.n
        if a == self.cap:
            self._grow()
        self.n = a + 1
        self.prog[a] = prog
        return a

    def _grow(self) -> None:
        old = self.cap
        more = max(4096, old // 4)  # 25% headroom at most, amortised O(1)
        for col in (self.prog, self.member, self.tier, self.avail, self.pend, self.shad,
                    self.shad_pend, self.qual, self.qual_base):
            col.frombytes(bytes(more * col.itemsize))
        self.root.extend(range(old, old + more))
        self.qual_buckets.frombytes(bytes(8 * more * self.qual_slots))
        if self.visit_slots:
            self.visit_n.frombytes(bytes(4 * more))
            self.visit_ring.frombytes(bytes(4 * more * self.visit_slots))
        self.cap = old + more

    def view(self, name: str) -> np.ndarray:
        """A numpy view of column `name` over the live accounts (2-D for the per-account
        slot columns). Delete it before creating accounts: it pins the buffer."""
        col = getattr(self, name)
        width = {"qual_buckets": self.qual_slots, "visit_ring": self.visit_slots}.get(name)
        v = np.frombuffer(col, dtype=col.typecode)[: self.n * (width or 1)]
        return v.reshape(self.n, width) if width is not None else v

    def visit_days(self, a: int) -> list[int]:
        """Days of account `a`'s remembered visits, oldest first."""
        k = self.visit_slots
        n = self.visit_n[a] if k else 0
        return [self.visit_ring[a * k + j % k] for j in range(max(0, n - k), n)]

    def set_visit_days(self, a: int, days: list[int]) -> None:
        """Replace account `a`'s remembered visits with the latest `visit_slots` of `days`."""
        k = self.visit_slots
        keep = sorted(days)[-k:] if k else []
        for j, d in enumerate(keep):
            self.visit_ring[a * k + j] = d
        if k:
            self.visit_n[a] = len(keep)

    def find(self, a: int) -> int:
        """The surviving account for `a`, compressing the path of merges."""
        root = self.root
        r = root[a]
        if r == a:
            return a
        while root[r] != r:
            r = root[r]
        while root[a] != r:
            root[a], a = r, root[a]
        return r

    def open_account(self, prog: int, appid: str, openid: str) -> int:
        """The account of (appid, openid), created as a shadow account if new."""
        apps = self.by_app[appid]
        a = apps.get(openid)
        if a is None:
            a = self.create(prog)
            apps[openid] = a
            return a
        return self.find(a)


def lots_add(lots: dict[int, list[list[int]]], a: int, day: int, points: int) -> bool:
    """Add `points` arriving on `day` to account `a`'s lots; True when a new lot started."""
    ls = lots.get(a)
    if ls is None:
        lots[a] = [[day, points]]
        return True
    last = ls[-1] if ls else None
    if last is not None and last[0] == day:
        last[1] += points
        return False
    if last is not None and last[0] > day:
        # Out-of-order arrival: keep the list sorted by day.
        for lot in ls:
            if lot[0] == day:
                lot[1] += points
                return False
        ls.append([day, points])
        ls.sort()
        return True
    ls.append([day, points])
    return True


def lots_take(lots: dict[int, list[list[int]]], a: int, points: int) -> None:
    """Consume `points` from account `a`'s oldest lots (what is not there is a deficit)."""
    ls = lots.get(a)
    if not ls:
        return
    i = 0
    n = len(ls)
    while points > 0 and i < n:
        lot = ls[i]
        if lot[1] > points:
            lot[1] -= points
            points = 0
            break
        points -= lot[1]
        i += 1
    if i:
        del ls[:i]


def lots_merge(lots: dict[int, list[list[int]]], src: int, dst: int) -> None:
    """Move account `src`'s lots into `dst`, keeping days sorted and coalesced."""
    moved = lots.pop(src, None)
    if not moved:
        return
    merged: dict[int, int] = {}
    for day, pts in (lots.get(dst) or []) + moved:
        merged[day] = merged.get(day, 0) + pts
    lots[dst] = [[d, merged[d]] for d in sorted(merged)]
