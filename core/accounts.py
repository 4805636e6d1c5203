"""Account state: dense account numbers, integer columns, identity maps and point lots.

An account is one shopper within one program (brand). It starts as a shadow
account keyed by (appid, openid); a binding gives it a unionid, possibly merging
another account into it. A merged account keeps its number with `root` pointing
at the survivor, so old payments still resolve to whoever owns them now.

Lots (core.lots) group an account's points by the day they arrived, for expiry and
the shadow lookback window. Tier qualification keeps one dense column (`qual`, the
total over the window) and, sparsely, the amounts of the closed months still inside
some program's window (see core.lifecycle's month roll).

Points are held in one pair of columns, `bal` and `bal_pend`: a member's available and
pending points, a shadow account's shadow and shadow pending points (`member` says
which; conversion and merges keep the other kind's points at zero, so one pair holds
both). `balance` and `balance_column` read them by name (`SIDES`); `add`/`put` take
the names too.

Balances (`BALANCES`) are int32 columns until a value does not fit: `widen` then
replaces that column by an int64 copy, for good, and tells the compiled kernels
registered in `kernels` to pick the new column up. Python code changes a balance with
`add`/`put`/`assign`, which widen; the compiled paths with core/_cols.pxd, the same.
`root` is sparse (core/_amap.pyx `RootMap`): only the merged accounts are stored.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from core import limits
from core._amap import AccountMap, RootMap
from core._keys import KeyIndex
from core.lots import Lots
from core.program import Program

# The balance columns: int32, or int64 once a value has not fit (`Accounts.widen`).
BALANCES = ("bal", "bal_pend", "qual")
# The named balances: (the pair column holding it, the `member` value of the accounts
# holding it). An account of the other kind has 0 of it.
SIDES = {"avail": ("bal", 1), "pend": ("bal_pend", 1), "shad": ("bal", 0),
         "shad_pend": ("bal_pend", 0)}
_I32 = (-(2**31), 2**31 - 1)
MAP_SLOT_BYTES = 4  # the member maps' KeyIndex table slots (by_app, by_union)


class UnpairedBalances(ValueError):
    """A snapshot before version 7 whose balances one pair cannot hold (a member with
    shadow points, or a shadow account with member points)."""


class Accounts:
    """Columns indexed by account number, plus the id -> account maps."""

    __slots__ = (
        "bal",
        "bal_pend",
        "by_app",
        "by_union",
        "cap",
        "kernels",
        "lots",
        "member",
        "n",
        "prog",
        "qual",
        "qual_months",
        "root",
        "tier",
        "union_no",
        "visit_n",
        "visit_ring",
        "visit_slots",
    )

    def __init__(self, programs: list[Program]) -> None:
        """Empty columns for `programs`. Raises ValueError for more than PROGRAMS_MAX
        programs, or a Friend Membership program keeping more than FRIEND_VISITS_MAX visits
        or with a UTC offset beyond a day (core.limits)."""
        if len(programs) > limits.PROGRAMS_MAX:
            raise ValueError(f"{len(programs)} programs: at most {limits.PROGRAMS_MAX}")
        self.prog = array("b")  # the account's program number
        self.bal = array("i")  # available points of a member, shadow points of a shadow account
        self.bal_pend = array("i")  # pending points, or shadow pending points
        self.qual = array("i")  # qualifying total over the tier window
        self.member = array("b")
        self.tier = array("b")
        self.root = RootMap()  # itself, or the account it was merged into (sparse)
        # Tier qualification: `qual` is the total over the window, the only column the
        # per-event path touches. At each month end the month's amount per account goes
        # into qual_months[month] = (accounts, amounts), only the accounts whose amount is
        # not zero, and the month leaving a program's window is taken off qual.
        self.qual_months: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # The member maps take 4-byte table slots (core/_keys.pyx): a key is inserted once a
        # shopper, so re-hashing as they grow costs little (docs/memory.md).
        self.by_app: dict[str, KeyIndex] = {a: KeyIndex(slot_bytes=MAP_SLOT_BYTES)
                                            for p in programs for a in p.appids}
        self.by_union: list[KeyIndex] = [KeyIndex(slot_bytes=MAP_SLOT_BYTES) for _ in programs]
        # The number of the account's unionid in by_union[prog] plus one; 0 for none
        # (sparse: most accounts of a large engine have no unionid).
        self.union_no = AccountMap()
        self.lots = Lots()
        # Friend Membership: the days (since 1970, uint16: until 2149) of each account's
        # last `visit_slots` visits (a ring), enough to tell whether the k-th latest visit
        # lies within d days. visit_n counts visits modulo 2 * visit_slots, kept at least
        # visit_slots once reached (a byte): only n % visit_slots and n >= k are read.
        for p in programs:
            if p.friend_min_visits and not (p.friend_min_visits <= limits.FRIEND_VISITS_MAX
                                            and abs(p.utc_offset_s) <= 86_400):
                raise ValueError(f"program {p.id!r}: friend_min_visits above "
                                 f"{limits.FRIEND_VISITS_MAX} or a UTC offset beyond a day")
        self.visit_slots = max(p.friend_min_visits for p in programs)
        self.visit_ring = array("H")
        self.visit_n = array("B")
        # The compiled kernels holding these columns, by kernel type: `widen` refreshes
        # them. Never pickled.
        self.kernels: dict[type, object] = {}
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
        for col in (self.prog, self.member, self.tier, self.bal, self.bal_pend, self.qual):
            col.frombytes(bytes(more * col.itemsize))
        self.lots.grow(more)
        if self.visit_slots:
            self.visit_n.frombytes(bytes(more))
            self.visit_ring.frombytes(bytes(2 * more * self.visit_slots))
        self.cap = old + more

    def __getstate__(self) -> tuple[None, dict[str, object]]:
        return None, {k: getattr(self, k) for k in self.__slots__ if k != "kernels"}

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        fields = state[1]
        if "avail" in fields:  # a snapshot before version 7: two balance pairs
            self.pair_v6(fields)
        for k, v in fields.items():
            setattr(self, k, v)
        self.kernels = {}

    @staticmethod
    def pair_v6(fields: dict[str, Any]) -> None:
        """Convert the pickled columns `fields` of a snapshot before version 7 (`avail`,
        `pend` for members, `shad`, `shad_pend` for shadow accounts) to the one pair `bal`,
        `bal_pend`: int32 where every value fits, else int64. Raises UnpairedBalances,
        naming the account, when a member holds shadow points or a shadow account member
        points (`fields` is unchanged then)."""
        member = np.frombuffer(fields["member"], dtype=fields["member"].typecode) != 0
        cols = {name: np.frombuffer(fields[name], dtype=fields[name].typecode) for name in SIDES}
        for name, (_, kind) in SIDES.items():
            wrong = (cols[name] != 0) & (member != bool(kind))
            if wrong.any():
                a = int(np.argmax(wrong))
                who = "a member" if member[a] else "a shadow account"
                raise UnpairedBalances(
                    f"snapshot before version 7: account {a} is {who} with {name} "
                    f"{int(cols[name][a])}; one balance pair cannot hold both kinds")
        for pair, (mine, other) in (("bal", ("avail", "shad")),
                                    ("bal_pend", ("pend", "shad_pend"))):
            v = np.where(member, cols[mine], cols[other])
            fits = not (len(v) and (v.min() < _I32[0] or v.max() > _I32[1]))
            fields[pair] = array("i" if fits else "q",
                                 v.astype(np.int32 if fits else np.int64).tobytes())
            del v
        del cols
        for name in SIDES:
            del fields[name]

    def widen(self, name: str) -> array:
        """Column `name` as int64 from now on (copied once if it is int32); returns it.
        The compiled kernels holding the columns pick the new one up at once."""
        col = getattr(self, name)
        if col.typecode == "q":
            return col
        assert name in BALANCES, name
        col = array("q", col)
        setattr(self, name, col)
        for k in self.kernels.values():
            k.refresh()  # type: ignore[attr-defined]
        return col

    def balance(self, name: str, a: int) -> int:
        """Balance `name` (a key of SIDES) of account `a`: 0 for the other kind's."""
        col, kind = SIDES[name]
        return getattr(self, col)[a] if (self.member[a] != 0) == kind else 0

    def balance_column(self, name: str) -> np.ndarray:
        """Balance `name` (a key of SIDES) of every live account: a new array (the pair
        column where the account is of the name's kind, else 0)."""
        col, kind = SIDES[name]
        member = self.view("member") != 0
        v = self.view(col)
        out = np.where(member if kind else ~member, v, v.dtype.type(0))
        del v  # a view pins the buffer
        return out

    def balance_totals(self) -> dict[str, int]:
        """The sum of each named balance (SIDES) over all accounts."""
        member = self.view("member") != 0
        out = {}
        for name, (col, kind) in SIDES.items():
            v = self.view(col)
            out[name] = int(v.sum(dtype=np.int64, where=member if kind else ~member))
            del v  # a view pins the buffer
        del member
        return out

    def _column(self, name: str, a: int) -> str:
        """The column holding balance `name` of account `a`: a pair column for a key of
        SIDES (ValueError if `a` is of the other kind), else `name`."""
        side = SIDES.get(name)
        if side is None:
            return name
        if (self.member[a] != 0) != side[1]:
            who = "a member" if self.member[a] else "a shadow account"
            raise ValueError(f"account {a} is {who}: it holds no {name} points")
        return side[0]

    def put(self, name: str, a: int, value: int) -> None:
        """Set balance `name` (a column of BALANCES or a key of SIDES) of account `a` to
        `value`, widening the column if needed."""
        name = self._column(name, a)
        col = getattr(self, name)
        try:
            col[a] = value
        except OverflowError:
            if col.typecode == "q":
                raise
            self.widen(name)[a] = value

    def add(self, name: str, a: int, delta: int) -> None:
        """Add `delta` to balance `name` (as `put`) of account `a`, widening if needed."""
        name = self._column(name, a)
        self.put(name, a, getattr(self, name)[a] + delta)

    def assign(self, name: str, accounts: np.ndarray, values: np.ndarray) -> None:
        """Set balance `name` of each of `accounts` to `values` (numpy, any integer type),
        widening the column first if some value does not fit."""
        if getattr(self, name).typecode == "i" and len(values) and (
                values.min() < _I32[0] or values.max() > _I32[1]):
            self.widen(name)
        v = self.view(name)
        v[accounts] = values
        del v  # a view pins the buffer

    def narrow_v5(self) -> None:
        """Convert the columns of a snapshot before version 6 (int64 balances and roots,
        int32 visits, int16 programs, a dense union_no) to this version's: int32 where
        every value fits, visit days uint16, visit counts modulo 2 * visit_slots,
        programs int8, union_no sparse. Raises
        ValueError for a visit day or program number that does not fit (nothing is
        changed then)."""
        k = self.visit_slots
        days = np.frombuffer(self.visit_ring, dtype=self.visit_ring.typecode)
        counts = np.frombuffer(self.visit_n, dtype=self.visit_n.typecode).astype(np.int64)
        progs = np.frombuffer(self.prog, dtype=self.prog.typecode)
        if len(days) and (days.min() < 0 or days.max() >= 2**16):
            raise ValueError("a remembered visit day is outside 1970..2149")
        if len(counts) and counts.min() < 0:
            raise ValueError("a negative visit count")
        if len(progs) and not 0 <= progs.min() <= progs.max() < limits.PROGRAMS_MAX:
            raise ValueError(f"a program number outside 0..{limits.PROGRAMS_MAX - 1}")
        if k:
            counts = np.where(counts < 2 * k, counts, k + counts % k)
        self.visit_ring = array("H", days.astype(np.uint16).tobytes())
        self.visit_n = array("B", counts.astype(np.uint8).tobytes())
        self.prog = array("b", progs.astype(np.int8).tobytes())
        del days, progs
        if isinstance(self.union_no, array):  # a column: numbers of the bound accounts
            dense = np.frombuffer(self.union_no, dtype=self.union_no.typecode)
            self.union_no = AccountMap()
            for a in np.flatnonzero(dense).tolist():
                self.union_no.set(a, int(dense[a]))
            del dense
        for name in BALANCES:
            col = getattr(self, name)
            v = np.frombuffer(col, dtype=col.typecode)
            fits = not (len(v) and (v.min() < _I32[0] or v.max() > _I32[1]))
            if col.typecode == "q" and fits:
                setattr(self, name, array("i", v.astype(np.int32).tobytes()))
            del v

    def sparse_v6(self) -> None:
        """Convert the dense `root` and lots' `tail` columns of a snapshot before version 7
        to this version's sparse maps (core/_amap.pyx). Raises ValueError for a root or a
        tail out of range (nothing is changed then)."""
        root, tail = self.root, self.lots.tail
        if not isinstance(root, array):
            return
        r = np.frombuffer(root, dtype=root.typecode)
        t = np.frombuffer(tail, dtype=tail.typecode)
        if len(r) != self.cap or len(t) != self.cap:
            raise ValueError(f"root or tail of {len(r)}, {len(t)} accounts, not {self.cap}")
        merged = np.flatnonzero(r != np.arange(len(r)))
        held = np.flatnonzero(t)
        if len(merged) and not 0 <= r[merged].min() <= r[merged].max() < self.cap:
            raise ValueError("a root outside the accounts")
        if len(held) and t[held].min() < 0:
            raise ValueError("a negative lot number")
        self.root = RootMap()
        for a in merged.tolist():
            self.root.put_root(a, int(r[a]))
        if 4 * len(held) > self.cap:  # a table would take about as much as the column
            self.lots.tail = AccountMap(array(tail.typecode), array(tail.typecode, t.tobytes()),
                                        len(held), self.cap, True)
        else:
            self.lots.tail = AccountMap()
            self.lots.tail.grow(self.cap)
            for a in held.tolist():
                self.lots.tail.set(a, int(t[a]))
        del r, t

    def reslot_v6(self) -> None:
        """Convert the member maps of a snapshot before version 7 (tables of 8-byte slots)
        to this version's 4-byte slots, each re-hashed from its keys."""
        for ix in (*self.by_app.values(), *self.by_union):
            ix.reslot(MAP_SLOT_BYTES)

    def view(self, name: str) -> np.ndarray:
        """A numpy view of column `name` over the live accounts (2-D for the per-account
        slot columns; for `root`, a read-only copy). Delete it before creating accounts: it
        pins the buffer."""
        if name == "root":  # sparse: a dense copy, read-only
            v = np.frombuffer(self.root.column(self.n), dtype=np.int64)
            v.flags.writeable = False
            return v
        col = getattr(self, name)
        width = {"visit_ring": self.visit_slots}.get(name)
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

    def unionid(self, a: int) -> str | None:
        """The unionid account `a` is bound to, or None."""
        u = self.union_no.get(a)
        return self.by_union[self.prog[a]].key(u - 1) if u else None

    def set_unionid(self, a: int, unionid: str) -> None:
        """Bind account `a` to `unionid` of its program, adding the unionid if new."""
        unions = self.by_union[self.prog[a]]
        unions[unionid] = a
        self.union_no.set(a, unions.number(unionid) + 1)

    def roots(self, accounts: np.ndarray) -> np.ndarray:
        """The surviving account of each of `accounts` (vectorised `find`, no compression)."""
        root = self.view("root")
        r = accounts
        while True:
            up = root[r]
            if np.array_equal(up, r):
                return r
            r = up

    def find(self, a: int) -> int:
        """The surviving account for `a`, compressing the path of merges."""
        return self.root.find(a)

    def open_account(self, prog: int, appid: str, openid: str) -> int:
        """The account of (appid, openid), created as a shadow account if new."""
        apps = self.by_app[appid]
        a = apps.get(openid)
        if a is None:
            a = self.create(prog)
            apps[openid] = a
            return a
        return self.find(a)

