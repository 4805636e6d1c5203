"""The accrual engine: payments and refunds in, points and tiers out.

Idempotent on transaction_id and refund_id; integer money and points; time only
from the inputs and `advance(now)`. Rejections return a named Code and change
nothing; broken internal state is an AssertionError. Membership, lifecycle and
queries live in their own modules as mixins of this one class.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Sequence

from core import limits, state_codec

try:
    from core import _accrual
except ImportError as e:  # pragma: no cover - a checkout whose extension was not built
    raise ImportError("core._accrual is not built: run `make test` or "
                      "`pip install -e .` to compile it") from e
from core import _batch, _engage, _enroll, _identity, _refund, payments
from core._keys import KeyIndex
from core.accounts import Accounts, UnpairedBalances
from core.engagement import EngagementMixin
from core.feed import parse
from core.idempotency import KeyWindow
from core.ids import ID_RE, field_types
from core.ledger import CAUSE_REFUND, Ledger, rows_from_int64
from core.lifecycle import LifecycleMixin
from core.membership import MembershipMixin
from core.payments import (
    P_ACCT,
    P_BASIS,
    P_PENDING,
    P_POINTS,
    P_PROG,
    P_REFUNDED,
    P_REVERSED,
    P_TOTAL,
)
from core.program import Program
from core.queries import QueryMixin
from core.rules import DAY_S, Compiled, compile_program, points_for
from core.spending import SpendingMixin
from core.types import DUPLICATE, Bucket, Code, Entry, Outcome, Payment, Refund, reject, type_fault

_REVERSE = int(Entry.REVERSE)
_APPLIED = Code.APPLIED
_new = tuple.__new__  # an Outcome straight from its fields (no NamedTuple defaults)
_REFUND_FIELDS, _REFUND_TYPES = field_types(Refund)
_AV, _PE, _SH, _SP = (int(Bucket.AVAILABLE), int(Bucket.PENDING), int(Bucket.SHADOW),
                      int(Bucket.SHADOW_PENDING))


_AMOUNT_MAX, _REF_MAX = limits.AMOUNT_FEN_MAX, limits.REF_LEN_MAX
_T_MIN, _T_MAX = limits.TIME_S_MIN, limits.TIME_S_MAX

_UNPICKLED = ("_kernel", "_inputs_kernel", "_txids")  # caches, rebuilt on demand
_METHODS = {"payment": "pay", "refund": "refund", "event": "engage", "binding": "bind",
            "enrollment": "enroll", "spend": "spend", "coupon": "issue_coupon"}


class Engine(MembershipMixin, EngagementMixin, SpendingMixin, LifecycleMixin, QueryMixin):
    """In-memory payment-to-membership engine over one or more programs (brands)."""

    def __init__(self, programs: Sequence[Program],
                 idempotency_window_s: int = limits.IDEMPOTENCY_WINDOW_S) -> None:
        """Build an empty engine for `programs` that remembers the ids of events, refunds
        and spends for `idempotency_window_s` behind its clock (docs/idempotency.md);
        raises ValueError on overlapping ids or a window out of range."""
        if not programs:
            raise ValueError("an engine needs at least one program")
        self.programs = list(programs)
        self.rules: list[Compiled] = [compile_program(p) for p in self.programs]
        self.prog_index: dict[str, int] = {}
        # mchid -> (prog, channel, channel pct, rules, points_per_unit * channel pct,
        #           the channel's campaign memo)
        self.mch: dict[str, tuple[int, str, int, Compiled, int, dict[int, int]]] = {}
        self.app_prog: dict[str, int] = {}
        for pi, (p, c) in enumerate(zip(self.programs, self.rules, strict=True)):
            if p.id in self.prog_index:
                raise ValueError(f"program id {p.id!r} appears twice")
            self.prog_index[p.id] = pi
            for mchid, channel in p.merchants.items():
                if mchid in self.mch:
                    raise ValueError(f"mchid {mchid!r} belongs to two programs")
                pct = p.channel_pct[channel]
                self.mch[mchid] = (pi, channel, pct, c, p.points_per_unit * pct,
                                   c.camp_memo[channel])
            for appid in p.appids:
                if appid in self.app_prog:
                    raise ValueError(f"appid {appid!r} belongs to two programs")
                self.app_prog[appid] = pi
        self.qual_w = max(p.tier_window_months for p in self.programs)
        self.acc = Accounts(self.programs)
        # appid -> (program, that app's openid -> account map): one lookup on the hot path
        self.app_of = {appid: (pi, self.acc.by_app[appid]) for appid, pi in self.app_prog.items()}
        self.ledger = Ledger()
        # Payments, columnar by payment number.
        self.pay_index = KeyIndex(values=False)  # transaction_id -> payment number
        # A record of PF integers a payment, narrow or wide: see core.payments.
        self.pays, self.pays_wide = payments.new_records()
        self.shortfall = 0  # reversals that found no points left (allow_negative = false)
        # Idempotency keys of events, refunds and spends, forgotten past the window;
        # event_seen, refund_seen and spend_seen are its maps (core/idempotency.py).
        self.idem = KeyWindow(idempotency_window_s)
        # Refunds: refund_id -> (transaction_id, refund_fen); held until the payment arrives.
        self.refund_seen = self.idem.refunds
        self.refund_ids: list[str] = []
        self.held: dict[str, list[Refund]] = {}
        self.held_count = 0
        # Payments with pending points, by unlock time: a FIFO of payment numbers while
        # unlock times arrive in order (the usual case: 4 bytes a payment, no tuple), and
        # a heap of (unlock_s, payment) for the few that arrive out of order.
        self.pending_fifo = array("I")
        self.pending_head = 0
        self.pending_heap: list[tuple[int, int]] = []
        # Scalars the compiled path updates in place: [0] the latest unlock time in
        # pending_fifo, [1] points issued (earned, pending, bonus) so far.
        self.scalars = array("q", [0, 0])
        self.expiry_heap: list[tuple[int, int]] = []  # (expiry day, account)
        self.clock_s = 0
        self.month_base: int | None = None  # month (since 1970) of the first advance
        self.month_rel = 0  # months since month_base
        self.counts: dict[str, int] = {}
        MembershipMixin.__init__(self)
        EngagementMixin.__init__(self)
        SpendingMixin.__init__(self)
        self._kernel: object = None  # built on first use; never pickled
        self._inputs_kernel: object = None  # core/_inputs.pyx's: the same

    # ----------------------------------------------------------------- dict API
    def submit(self, kind: str, data: object) -> Outcome:
        """Apply one input given as plain data (notification JSON shapes); never raises on
        bad data: a malformed input gets a rejection Code and changes nothing."""
        x = parse(kind, data)
        if type(x) is Outcome:
            return x
        if kind == "advance":
            if x < self.clock_s:
                return reject(Code.TIME_BEFORE_CLOCK, f"clock is at {self.clock_s}, not {x}")
            rep = self.advance(x)
            return Outcome(Code.APPLIED, rep.unlocked - rep.expired,
                           f"unlocked {rep.unlocked}, expired {rep.expired}, "
                           f"tier changes {rep.tier_changes}")
        return getattr(self, _METHODS[kind])(x)

    def snapshot(self) -> bytes:
        """The engine's whole state as bytes (pickle of integer columns and maps).

        Only for snapshots this engine wrote itself: never load one from elsewhere.
        """
        state = {k: v for k, v in self.__dict__.items() if k not in _UNPICKLED}
        return state_codec.dumps(state)

    @classmethod
    def from_snapshot(cls, data: bytes | memoryview) -> Engine:
        """Rebuild an engine from `snapshot()` bytes; raises ValueError if they are not one."""
        try:
            state = state_codec.loads(data)
        except UnpairedBalances:
            raise  # an older snapshot this version cannot hold: its own message
        except Exception as e:  # any unpickling failure means "not a snapshot"
            raise ValueError(f"not an engine snapshot: {e}") from None
        if not isinstance(state, dict) or "acc" not in state:
            raise ValueError("not an engine snapshot")
        if "pays_wide" not in state:  # a snapshot of version 4: int64 records and rows
            state["pays"], state["pays_wide"] = payments.from_int64(state["pays"])
            state["ledger"].rows = rows_from_int64(state["ledger"].rows)
            state["pending_fifo"] = array("I", state["pending_fifo"])
        if state["acc"].visit_n.typecode == "i":  # before version 6: int64 balances, int32 visits
            state["acc"].narrow_v5()
        state["acc"].sparse_v6()  # before version 7: dense root and lots' tail
        state["acc"].reslot_v6()  # before version 7: member maps of 8-byte slots (else nothing)
        eng = cls.__new__(cls)
        eng.__dict__.update(state)
        eng._kernel = eng._inputs_kernel = None
        return eng

    # ----------------------------------------------------------------- payments
    # The hot path is compiled (core/_accrual.pyx): the same C function applies one
    # payment for `pay` and each row of `pay_columns`, calling back into the Python
    # methods below for anything unusual.
    pay = _accrual.pay
    # A member's new points become a lot by the compiled `_credit_member` (core/_inputs.pyx);
    # False: by the Python reference `_credit_lot` (the tests compare the two).
    compiled_lots = True
    pay_columns = _batch.pay_columns
    pay_block = _batch.pay_block
    # The same, writing each outcome into numpy columns (no Outcome list): the sim's feed.
    pay_block_into = _batch.pay_block_into
    # Bindings, engagement events and enrollments are compiled too (core/_identity.pyx,
    # core/_engage.pyx, core/_enroll.pyx), with the Python methods _bind_py, _engage_py
    # and _enroll_py as their reference.
    bind = _identity.bind
    engage = _engage.engage
    enroll = _enroll.enroll
    # The same, for many inputs given as columns (no object per input): exactly the
    # methods above applied row by row.
    bind_columns = _identity.bind_columns
    engage_columns = _engage.engage_columns
    enroll_columns = _enroll.enroll_columns
    # The same, writing each outcome into numpy columns (no Outcome list): the sim's feed.
    bind_columns_into = _identity.bind_columns_into
    engage_columns_into = _engage.engage_columns_into
    enroll_columns_into = _enroll.enroll_columns_into

    def _build_kernel(self) -> object:
        """(Re)build the compiled path's typed view of this engine's structures."""
        self._kernel = _accrual.Kernel(self)
        return self._kernel

    def _check_duplicate(self, p: Payment, i: int) -> Outcome:
        """A repeated transaction_id: DUPLICATE, or a conflict if the total differs."""
        total = payments.get(self.pays, self.pays_wide, i, P_TOTAL)
        if total != p.total_fen:
            return reject(Code.TRANSACTION_ID_CONFLICT,
                          f"transaction_id {p.transaction_id!r} was applied with total "
                          f"{total}, now {p.total_fen}")
        return DUPLICATE

    def _push_pending(self, unlock_s: int, i: int) -> None:
        """Queue payment `i`'s pending points for unlocking at `unlock_s` (out of order)."""
        heapq.heappush(self.pending_heap, (unlock_s, i))

    def preview(self, p: Payment) -> Outcome:
        """The points payment `p` would earn now, booking nothing (DUPLICATE if applied)."""
        if (fault := type_fault(p)) is not None:
            return reject(Code.BAD_TYPE, fault)
        if p.transaction_id in self.pay_index:
            return DUPLICATE
        checked = self._check_payment(p)
        if type(checked) is Outcome:
            return checked
        _pi, channel, chan_pct, _home, basis_fen, c = checked  # type: ignore[misc]
        a = self.acc.by_app[p.appid].get(p.openid)
        tier_pct = 100
        if a is not None:
            a = self.acc.find(a)
            if self.acc.member[a]:
                tier_pct = c.tier_pct[self.acc.tier[a]]
        pts = points_for(c, basis_fen, channel, chan_pct, tier_pct, p.time_s)
        return Outcome(Code.APPLIED, pts, "preview: nothing booked")

    def _check_payment(self, p: Payment) -> Outcome | tuple:
        """Validate payment `p` fully: a rejection Outcome, or the tuple
        (prog, channel, channel_pct, home_fen, basis_fen, compiled rules)."""
        if (fault := type_fault(p)) is not None:
            return reject(Code.BAD_TYPE, fault)
        m = self.mch.get(p.mchid)
        if m is None:
            return reject(Code.UNKNOWN_MERCHANT, f"mchid {p.mchid!r} is in no program")
        pi, channel, chan_pct, c, _rate, _memo = m
        api = self.app_prog.get(p.appid)
        if api is None:
            return reject(Code.UNKNOWN_APP, f"appid {p.appid!r} is in no program")
        if api != pi:
            return reject(Code.APP_MERCHANT_MISMATCH,
                          f"appid {p.appid!r} and mchid {p.mchid!r} belong to different programs")
        total = p.total_fen
        if type(total) is not int or not 0 < total <= _AMOUNT_MAX:
            return reject(Code.BAD_VALUE, f"amount.total must be 1..{_AMOUNT_MAX}")
        payer = p.payer_total_fen
        if payer == -1:
            payer = total
        elif type(payer) is not int or not 0 <= payer <= total:
            return reject(Code.BAD_VALUE, "amount.payer_total must be 0..amount.total")
        t = p.time_s
        if type(t) is not int or not _T_MIN <= t < _T_MAX:
            return reject(Code.BAD_TIME, "success_time is out of range")
        if not 0 < len(p.transaction_id) <= _REF_MAX:
            return reject(Code.BAD_ID, "transaction_id must be 1..64 characters")
        if p.openid not in self.acc.by_app[p.appid] and not ID_RE.match(p.openid):
            return reject(Code.BAD_ID, "payer.openid must be 1..64 of [A-Za-z0-9_-]")
        if p.currency == c.home:
            home, basis = total, payer
        else:
            fx = c.fx.get(p.currency)
            if fx is None:
                return reject(Code.UNKNOWN_CURRENCY,
                              f"currency {p.currency!r} has no rate in program {c.program.id!r}")
            home, basis = total * fx[0] // fx[1], payer * fx[0] // fx[1]
        return pi, channel, chan_pct, home, basis, c

    def _credit_lot(self, a: int, c: Compiled, t: int, pts: int) -> None:
        """Record `pts`, already added to account `a`'s available/shadow balance, as a lot.

        Points that pay off a negative balance make no lot: sum(lots) == max(0, balance).
        """
        acc = self.acc
        member = acc.member[a]
        if member:
            new = acc.balance("avail", a)
            pts = max(0, new) - max(0, new - pts)
            if not pts:
                return
        day = (t + c.off_s) // DAY_S
        if acc.lots.add(a, day, pts) and member:
            heapq.heappush(self.expiry_heap, (self.expiry_day(c, day), a))

    # ------------------------------------------------------------------ refunds
    # Compiled (core/_refund.pyx) for the common case, `_refund_py` the reference for
    # the rest (rejections, held refunds, an openid to check).
    refund = _refund.refund

    def _refund_py(self, r: Refund) -> Outcome:
        """Apply a successful refund `r`, reversing the refunded share of the payment's points.

        A refund before its payment is HELD; a repeated refund_id is DUPLICATE; one older
        than the idempotency window is STALE.
        """
        if ((type(r) is not Refund or tuple(map(type, _REFUND_FIELDS(r))) != _REFUND_TYPES)
                and (fault := type_fault(r)) is not None):
            return reject(Code.BAD_TYPE, fault)
        if r.time_s < self.idem.horizon_s:
            return reject(Code.STALE, self.idem.stale_message(r.time_s))
        key = (r.transaction_id, r.refund_fen)
        seen = self.refund_seen.get(r.refund_id)
        if seen is not None:
            if seen != key:
                return reject(Code.REFUND_ID_CONFLICT,
                              f"refund_id {r.refund_id!r} was seen for {seen[0]!r} "
                              f"amount {seen[1]}")
            return DUPLICATE
        if not 0 < len(r.refund_id) <= _REF_MAX:
            return reject(Code.BAD_ID, "refund_id must be 1..64 characters")
        if not 0 < len(r.transaction_id) <= _REF_MAX:
            return reject(Code.BAD_ID, "transaction_id must be 1..64 characters")
        if type(r.refund_fen) is not int or not 0 < r.refund_fen <= _AMOUNT_MAX:
            return reject(Code.BAD_VALUE, f"amount.refund must be 1..{limits.AMOUNT_FEN_MAX}")
        if type(r.total_fen) is not int or not 0 < r.total_fen <= _AMOUNT_MAX:
            return reject(Code.BAD_VALUE, f"amount.total must be 1..{limits.AMOUNT_FEN_MAX}")
        if r.refund_fen > r.total_fen:
            return reject(Code.REFUND_EXCEEDS_PAYMENT, "amount.refund exceeds amount.total")
        if type(r.time_s) is not int or not _T_MIN <= r.time_s < _T_MAX:
            return reject(Code.BAD_TIME, "success_time is out of range")
        if r.mchid not in self.mch:
            return reject(Code.UNKNOWN_MERCHANT, f"mchid {r.mchid!r} is in no program")
        i = self.pay_index.get(r.transaction_id)
        if i is None:
            if self.held_count >= limits.HELD_REFUNDS_MAX:
                return reject(Code.LIMIT_EXCEEDED, "too many refunds wait for their payments")
            self.held.setdefault(r.transaction_id, []).append(r)
            self.held_count += 1
            self.idem.add_refund(r.refund_id, key, r.time_s)
            return Outcome(Code.HELD, 0, "payment not seen yet; applied when it arrives")
        out = self._apply_refund(i, r)
        if out[0] is _APPLIED:
            self.idem.add_refund(r.refund_id, key, r.time_s)
        return out

    def _apply_refund(self, i: int, r: Refund) -> Outcome:
        acc = self.acc
        rec = payments.record(self.pays, self.pays_wide, i)
        pi = rec[P_PROG]
        if self.mch[r.mchid][0] != pi:
            return reject(Code.REFUND_MEMBER_MISMATCH,
                          "refund's mchid belongs to another program than the payment")
        total = rec[P_TOTAL]
        if r.total_fen != total:
            return reject(Code.BAD_VALUE, f"amount.total {r.total_fen} differs from the "
                                          f"payment's total {total}")
        a = acc.find(rec[P_ACCT])
        if r.openid:
            apps = acc.by_app.get(r.appid)
            who = apps.get(r.openid) if apps is not None else None
            if who is None or acc.find(who) != a:
                return reject(Code.REFUND_MEMBER_MISMATCH,
                              "the refunded payment belongs to another member")
        refund_fen = r.refund_fen
        refunded = rec[P_REFUNDED] + refund_fen
        if refunded > total:
            return reject(Code.REFUND_EXCEEDS_PAYMENT,
                          f"refunds would total {refunded} fen of a {total} fen payment")
        # Cumulative floor: after refunds totalling R of T, floor(P*R/T) points are due
        # back, so any split of a full refund takes back exactly P.
        due = rec[P_POINTS] * refunded // total
        rev = due - rec[P_REVERSED]
        put = payments.put
        put(self.pays, self.pays_wide, i, P_REFUNDED, refunded)
        put(self.pays, self.pays_wide, i, P_REVERSED, due)
        refund_ids = self.refund_ids
        refund_ids.append(r.refund_id)
        cause = (len(refund_ids) - 1) << 3 | CAUSE_REFUND
        c = self.rules[pi]
        if rev:
            member = acc.member[a]
            t = r.time_s
            led = self.ledger
            from_pend = min(rev, rec[P_PENDING])
            if from_pend:
                put(self.pays, self.pays_wide, i, P_PENDING, rec[P_PENDING] - from_pend)
                if member:
                    acc.add("pend", a, -from_pend)
                    led.add(_REVERSE, _PE, a, -from_pend, t, cause)
                else:
                    acc.add("shad_pend", a, -from_pend)
                    led.add(_REVERSE, _SP, a, -from_pend, t, cause)
            rest = rev - from_pend
            if rest:
                bal = "avail" if member else "shad"
                have = acc.balance(bal, a)
                take = rest if (c.program.allow_negative and member) else min(rest, max(have, 0))
                self.shortfall += rest - take
                if take:
                    acc.put(bal, a, have - take)
                    led.add(_REVERSE, _AV if member else _SH, a, -take, t, cause)
                    acc.lots.take(a, take)
        if c.spend_basis:
            basis = rec[P_BASIS]
            q = basis * refunded // total - basis * (refunded - refund_fen) // total
        else:
            q = rev
        if q:
            acc.add("qual", a, -q)
        return _new(Outcome, (_APPLIED, -rev, "", False, False))

    def _release_held(self, txid: str, i: int) -> None:
        """Apply the refunds that waited for payment `i`, in arrival order."""
        for r in self.held.pop(txid):
            self.held_count -= 1
            out = self._apply_refund(i, r)
            if out.code is not Code.APPLIED:
                # The refund was acknowledged (HELD) but cannot apply: keep the record
                # so a redelivery stays a duplicate, and count it for the reports.
                self.counts["held_refund_rejected:" + out.code.value] = (
                    self.counts.get("held_refund_rejected:" + out.code.value, 0) + 1)
