"""Feeding the engine: the one place where model rows become engine inputs.

`feed` takes a tick's input rows in processing order and returns their outcomes as
numpy columns. Inputs of different shoppers touch different accounts (a shopper's
openids and unionids are its own; the engine has no state across accounts that an
input's outcome depends on), so only each shopper's own inputs must keep their
order. `apply_order` therefore applies the tick in layers: every shopper's first
input, then every shopper's second, and so on; within a layer by kind. Each layer's
payments then go through the engine's batch path (`Engine.pay_columns`) in one call,
and the outcomes are exactly those of applying the rows one by one in order. With a
trace, inputs go one by one in delivery order, as the trace file lists them.
"""

from __future__ import annotations

from collections.abc import Callable
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
    Refund,
)
from sim.inputs import FeedContext, in_order, payment_columns, typed_inputs
from sim.tables import BIND, COUPON, ENROLL, EVENT, PAY, REFUND, Inputs
from sim.timing import WallSplit

CODES = tuple(Code)
CODE_INDEX = {c: i for i, c in enumerate(CODES)}
OK_CODES = np.array([c.ok for c in CODES])
OFFER, INVITE = 1, 2  # bits of the flags column
DECODE_DISTINCT_MIN = 64  # from this many outcomes, decode each distinct object once
_APPLIED_INDEX = CODE_INDEX[Code.APPLIED]
_APPLIED = Outcome(Code.APPLIED)
# Codes are singletons: indexing by id() skips the enum's Python-level __hash__.
_CODE_BY_ID = {id(c): i for i, c in enumerate(CODES)}
_METHOD = {PAY: "pay", REFUND: "refund", EVENT: "engage", BIND: "bind", ENROLL: "enroll",
           COUPON: "issue_coupon"}

__all__ = ["CODES", "CODE_INDEX", "INVITE", "OFFER", "OK_CODES", "EngineLike", "FeedContext",
           "NullEngine", "apply_order", "feed"]


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


def apply_order(shopper: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Positions of a tick's rows in application order: by each row's rank among its
    shopper's rows (first, second, ...), then by kind, then by position."""
    n = len(shopper)
    pos = np.arange(n)
    by = np.argsort(shopper, kind="stable")
    s = shopper[by]
    new = np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(new, pos, 0))
    rank = np.empty(n, np.int64)
    rank[by] = pos - first
    return np.lexsort((pos, kind, rank))


def feed(eng: EngineLike, ctx: FeedContext, tab: Inputs,
         rows: np.ndarray, on_input: Callable[[int, Any], None] | None = None,
         wall: WallSplit | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply input `rows` of `tab` to `eng` as if in order; returns (code index, points, flags).

    `on_input(k, obj)` sees the typed input made of `rows[k]`, in order (for traces); `wall`
    accumulates the wall time spent inside the engine's calls. Raises whatever a broken
    engine raises: rejections are outcomes, not exceptions.
    """
    n = len(rows)
    if type(eng) is NullEngine and on_input is None:
        # Nothing to apply: skip building inputs, so benchmarks see the model's own cost.
        eng.inputs += n
        code = np.empty(n, np.int16)
        code.fill(_APPLIED_INDEX)
        return code, np.zeros(n, np.int64), np.zeros(n, np.int8)
    code = np.empty(n, np.int16)
    pts = np.zeros(n, np.int64)
    flags = np.zeros(n, np.int8)
    if not n:
        return code, pts, flags
    wall = wall or WallSplit()
    if on_input is not None or not hasattr(eng, "pay_columns"):
        outs = []
        for k, x in enumerate(in_order(ctx, tab, rows)):
            apply = getattr(eng, _METHOD[_kind_of(x)])
            wall.start()
            outs.append(apply(x))
            wall.inputs_done()
            if on_input is not None:
                on_input(k, x)
        _decode(outs, np.arange(n), code, pts, flags)
        return code, pts, flags
    kinds = tab.cols["kind"][rows]
    order = apply_order(tab.cols["shopper"][rows], kinds)
    # Runs of one kind in application order; a run applies its rows in order.
    cut = np.flatnonzero(np.diff(kinds[order])) + 1
    for part in np.split(order, cut):
        kd = int(kinds[part[0]])
        if kd == PAY:
            cols = payment_columns(ctx, tab, rows[part])
            wall.start()
            outs = eng.pay_columns(cols)  # type: ignore[attr-defined]
        else:
            apply = getattr(eng, _METHOD[kd])
            xs = typed_inputs(ctx, tab, rows[part], kd)
            wall.start()
            outs = [apply(x) for x in xs]
        wall.inputs_done()
        _decode(outs, part, code, pts, flags)
    return code, pts, flags


_TYPE_KIND = {Payment: PAY, Refund: REFUND, Engagement: EVENT, Binding: BIND, Enrollment: ENROLL,
              CouponIssue: COUPON}


def _kind_of(x: Any) -> int:
    return _TYPE_KIND[type(x)]


def _decode(outs: list[Outcome], at: np.ndarray, code: np.ndarray, pts: np.ndarray,
            flags: np.ndarray) -> None:
    """Write outcomes `outs` of the rows at positions `at` into the outcome columns."""
    m = len(outs)
    if m >= DECODE_DISTINCT_MIN:
        # The engine shares its common outcomes (APPLIED with so many points): decode each
        # distinct object once and spread the result by identity.
        oid = np.fromiter(map(id, outs), np.uintp, m)
        _, first, inv = np.unique(oid, return_index=True, return_inverse=True)
        if 4 * len(first) <= m:
            ci, pi, fi = _columns([outs[k] for k in first.tolist()])
            code[at], pts[at], flags[at] = ci[inv], pi[inv], fi[inv]
            return
    code[at], pts[at], flags[at] = _columns(outs)


def _columns(outs: list[Outcome]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code index, points, flags) of each outcome in `outs`."""
    m = len(outs)
    c, p, _, offer, invite = zip(*outs, strict=True)
    ci = np.fromiter(map(_CODE_BY_ID.get, map(id, c), (-1,) * m), np.int16, m)
    for k in np.flatnonzero(ci < 0).tolist():  # a code that is not the enum member itself
        ci[k] = CODE_INDEX[Code(c[k])]
    return (ci, np.fromiter(p, np.int64, m),
            (np.fromiter(offer, bool, m) * OFFER) | (np.fromiter(invite, bool, m) * INVITE))
