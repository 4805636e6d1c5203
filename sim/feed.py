"""Feeding the engine: the one place where model rows become engine inputs.

`feed` takes a batch of input rows in processing order and returns their outcomes
as numpy columns. Runs of consecutive payments go through the engine's batch path
(`Engine.pay_columns`, the same per-payment semantics); other inputs, and every
input when a trace is written, go through the per-input typed API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from core import (
    Binding,
    Code,
    CouponIssue,
    Engagement,
    Enrollment,
    Outcome,
    Payment,
    PaymentColumns,
    Refund,
)
from sim import ids
from sim.scenario import HABITS, Scenario
from sim.tables import BIND, COUPON, ENROLL, EVENT, PAY, REFUND, Inputs

CODES = tuple(Code)
CODE_INDEX = {c: i for i, c in enumerate(CODES)}
OK_CODES = np.array([c.ok for c in CODES])
OFFER, INVITE = 1, 2  # bits of the flags column
PAY_RUN_MIN = 16  # shorter runs of payments go one by one
_APPLIED_INDEX = CODE_INDEX[Code.APPLIED]
_APPLIED = Outcome(Code.APPLIED)


class EngineLike(Protocol):
    """What the model needs of an engine (core.Engine, or NullEngine for benchmarks)."""

    def pay(self, p: Payment) -> Outcome: ...
    def refund(self, r: Refund) -> Outcome: ...
    def engage(self, e: Engagement) -> Outcome: ...
    def bind(self, b: Binding) -> Outcome: ...
    def enroll(self, e: Enrollment) -> Outcome: ...
    def issue_coupon(self, c: CouponIssue) -> Outcome: ...
    def advance(self, now_s: int) -> Any: ...
    def stats(self) -> dict[str, Any]: ...


class NullEngine:
    """An engine that acknowledges everything and books nothing: the model's cost alone."""

    def __init__(self) -> None:
        """Start with no inputs counted."""
        self.inputs = 0

    def _ok(self, _x: object) -> Outcome:
        self.inputs += 1
        return _APPLIED

    pay = refund = engage = bind = enroll = issue_coupon = _ok

    def advance(self, now_s: int) -> None:
        """Do nothing: a null engine has no time-based work."""

    def stats(self) -> dict[str, Any]:
        """Return the count of inputs seen."""
        return {"inputs": self.inputs}


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What turning rows into inputs needs: programs' apps and merchants, currencies."""

    start_s: int
    program_ids: tuple[str, ...]
    appids: tuple[tuple[str, ...], ...]  # per program: app number -> appid
    mchids: tuple[str, ...]  # per place type
    currencies: tuple[str, ...]
    coupon_value: dict[int, int]  # coupon row -> value in fen (set when issued)
    stocks: tuple[tuple[str, ...], ...]  # per program: stock number -> stock_id

    @classmethod
    def of(cls, scenario: Scenario, currencies: tuple[str, ...]) -> FeedContext:
        """Build the context of `scenario` with the run's currency list."""
        return cls(scenario.start_s, tuple(p.id for p in scenario.programs),
                   tuple(p.appids for p in scenario.programs),
                   tuple(p.mchid for p in scenario.places), currencies, {},
                   tuple(tuple(p.coupons) for p in scenario.programs))


def feed(eng: EngineLike, ctx: FeedContext, tab: Inputs,
         rows: np.ndarray, on_input: Callable[[int, Any], None] | None = None,
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply input `rows` of `tab` to `eng` in order; returns (code index, points, flags).

    `on_input(k, obj)` sees the typed input made of `rows[k]` (for traces). Raises whatever a broken
    engine raises: rejections are outcomes, not exceptions.
    """
    n = len(rows)
    if type(eng) is NullEngine and on_input is None:
        # Nothing to apply: skip building inputs, so benchmarks see the model's own cost.
        eng.inputs += n
        return np.full(n, _APPLIED_INDEX, np.int16), np.zeros(n, np.int64), np.zeros(n, np.int8)
    code = np.empty(n, np.int16)
    pts = np.zeros(n, np.int64)
    flags = np.zeros(n, np.int8)
    kinds = tab.cols["kind"][rows]
    if on_input is None and hasattr(eng, "pay_columns") and (kinds == PAY).sum() >= PAY_RUN_MIN:
        # Split into runs of one kind; long runs of payments go as one batch.
        cut = np.flatnonzero(np.diff(kinds)) + 1
        for lo, hi in zip(np.r_[0, cut].tolist(), np.r_[cut, n].tolist(), strict=True):
            part = slice(lo, hi)
            if kinds[lo] == PAY and hi - lo >= PAY_RUN_MIN:
                _pay_batch(eng, ctx, tab, rows[part], code[part], pts[part], flags[part])
            else:
                _one_by_one(eng, ctx, tab, rows[part], None, code[part], pts[part], flags[part])
        return code, pts, flags
    _one_by_one(eng, ctx, tab, rows, on_input, code, pts, flags)
    return code, pts, flags


def _pay_batch(eng: Any, ctx: FeedContext, tab: Inputs, rows: np.ndarray, code: np.ndarray,
               pts: np.ndarray, flags: np.ndarray) -> None:
    """Apply payment `rows` with one `pay_columns` call, writing outcomes into the arrays."""
    c = tab.cols
    prog, place = c["prog"][rows].tolist(), c["place"][rows].tolist()
    shopper, ref = c["shopper"][rows].tolist(), c["ref"][rows].tolist()
    m = len(rows)
    appids, mchids, currencies = ctx.appids, ctx.mchids, ctx.currencies
    openid, txid, cid = ids.openid, ids.transaction_id, ids.input_id
    cols = PaymentColumns(
        [txid(r) for r in rows.tolist()], [appids[q][0] for q in prog],
        [mchids[p] for p in place], [openid(q, 0, i) for q, i in zip(prog, shopper, strict=True)],
        c["amount"][rows].astype(np.int64),
        np.floor(c["t_s"][rows]).astype(np.int64) + ctx.start_s,
        c["payer"][rows].astype(np.int64), [currencies[k] for k in c["currency"][rows].tolist()],
        ["MICROPAY"] * m, [""] * m, [""] * m,
        [(cid("cp", r),) if r >= 0 else () for r in ref])
    index = CODE_INDEX
    for k, out in enumerate(eng.pay_columns(cols)):
        code[k] = index[out.code]
        pts[k] = out.points
        if out.offer_membership or out.friend_invite:
            flags[k] = out.offer_membership * OFFER | out.friend_invite * INVITE


def _one_by_one(eng: EngineLike, ctx: FeedContext, tab: Inputs, rows: np.ndarray,
                on_input: Callable[[int, Any], None] | None, code: np.ndarray, pts: np.ndarray,
                flags: np.ndarray) -> None:
    """Apply `rows` one input at a time, writing outcomes into the arrays."""
    n = len(rows)
    c = tab.cols
    kind, shopper, prog, place = (c["kind"][rows].tolist(), c["shopper"][rows].tolist(),
                                  c["prog"][rows].tolist(), c["place"][rows].tolist())
    t_s = (np.floor(c["t_s"][rows]).astype(np.int64) + ctx.start_s).tolist()
    amount, payer, ref = (c["amount"][rows].tolist(), c["payer"][rows].tolist(),
                          c["ref"][rows].tolist())
    cur, app = c["currency"][rows].tolist(), c["app"][rows].tolist()
    row_l = rows.tolist()
    appids, mchids, currencies = ctx.appids, ctx.mchids, ctx.currencies
    index = CODE_INDEX
    openid = ids.openid
    for k in range(n):
        kd = kind[k]
        q = prog[k]
        i = shopper[k]
        if kd == PAY:
            coupons = (ids.input_id("cp", ref[k]),) if ref[k] >= 0 else ()
            x: Any = Payment(ids.transaction_id(row_l[k]), appids[q][0], mchids[place[k]],
                             openid(q, 0, i), amount[k], t_s[k], payer[k], currencies[cur[k]],
                             "MICROPAY", "", "", coupons)
            out = eng.pay(x)
        elif kd == REFUND:
            x = Refund(ids.refund_id(row_l[k]), ids.transaction_id(ref[k]), mchids[place[k]],
                       amount[k], payer[k], t_s[k])
            out = eng.refund(x)
        elif kd == EVENT:
            a = app[k]
            x = Engagement(ids.input_id("ev", row_l[k]), appids[q][a], openid(q, a, i),
                           HABITS[ref[k]], t_s[k])
            out = eng.engage(x)
        elif kd == BIND:
            a = app[k]
            x = Binding(appids[q][a], openid(q, a, i), ids.unionid(q, i), t_s[k])
            out = eng.bind(x)
        elif kd == ENROLL:
            x = Enrollment(ctx.program_ids[q], t_s[k], ids.unionid(q, i))
            out = eng.enroll(x)
        elif kd == COUPON:
            x = CouponIssue(ids.input_id("cp", row_l[k]), ctx.program_ids[q],
                            ctx.stocks[q][ref[k]], t_s[k], ids.unionid(q, i))
            out = eng.issue_coupon(x)
        else:  # pragma: no cover - kinds are the model's own
            raise AssertionError(f"unknown input kind {kd}")
        if on_input is not None:
            on_input(k, x)
        code[k] = index[out.code]
        pts[k] = out.points
        if out.offer_membership or out.friend_invite:
            flags[k] = out.offer_membership * OFFER | out.friend_invite * INVITE
