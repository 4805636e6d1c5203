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

from core.program import Program


class Accounts:
    """Columns indexed by account number, plus the id -> account maps."""

    __slots__ = ("_zeros", "avail", "by_app", "by_union", "keys", "lots", "member", "pend",
                 "prog", "qual", "qual_buckets", "qual_slots", "root", "shad", "shad_pend",
                 "tier", "union_of", "visits")

    def __init__(self, programs: list[Program], qual_slots: int) -> None:
        self.prog = array("h")
        self.avail = array("q")
        self.pend = array("q")
        self.shad = array("q")
        self.shad_pend = array("q")
        self.qual = array("q")  # qualifying total over the tier window
        self.member = array("b")
        self.tier = array("b")
        self.root = array("q")  # itself, or the account it was merged into
        self.qual_slots = qual_slots
        self.qual_buckets = array("q")  # account * qual_slots + month slot
        self._zeros = array("q", [0]) * qual_slots
        self.by_app: dict[str, dict[str, int]] = {a: {} for p in programs for a in p.appids}
        self.by_union: list[dict[str, int]] = [{} for _ in programs]
        self.union_of: dict[int, str] = {}
        self.keys: dict[int, list[tuple[str, str]]] = {}  # account -> its (appid, openid)s
        self.lots: dict[int, list[list[int]]] = {}
        self.visits: dict[int, list[int]] = {}  # Friend Membership: recent visit days

    def __len__(self) -> int:
        return len(self.prog)

    def create(self, prog: int) -> int:
        """Append a new shadow account of program `prog`; returns its number."""
        a = len(self.prog)
        self.prog.append(prog)
        self.avail.append(0)
        self.pend.append(0)
        self.shad.append(0)
        self.shad_pend.append(0)
        self.qual.append(0)
        self.member.append(0)
        self.tier.append(0)
        self.root.append(a)
        self.qual_buckets.extend(self._zeros)
        return a

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
            self.keys[a] = [(appid, openid)]
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
