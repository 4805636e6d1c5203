"""Feeding the engine: the one place where model rows become engine inputs.

`feed` takes a tick's input rows in processing order and returns their outcomes as
numpy columns. Inputs of different shoppers touch different accounts (a shopper's
openids and unionids are its own; the engine has no state across accounts that an
input's outcome depends on), so only each shopper's own inputs must keep their
order. `apply_order` therefore applies the tick in layers: every shopper's first
input, then every shopper's second, and so on; within a layer by kind. Each layer's
payments then go through the engine's batch path (`Engine.pay_block`) in one call,
and the outcomes are exactly those of applying the rows one by one in order; bindings,
events and enrollments go through the engine's column entry points (`bind_columns`, ...)
the same way. Each kind's inputs are made for the whole tick at once (ids as numpy
columns, sim.ids), a run of one kind being a slice of them, and outcomes come back as
columns (`core.outcome_columns`). With a trace, inputs go one by one in delivery order,
as the trace file lists them.
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
    PaymentBlock,
    Refund,
    outcome_columns,
)
from sim import ids
from sim._tick import plan
from sim.inputs import Batch, FeedContext, in_order, payment_block, take, times, typed_inputs
from sim.tables import BIND, COUPON, ENROLL, EVENT, PAY, REFUND
from sim.timing import WallSplit

CODES = tuple(Code)
CODE_INDEX = {c: i for i, c in enumerate(CODES)}
OK_CODES = np.array([c.ok for c in CODES])
OFFER, INVITE = 1, 2  # bits of the flags column (as core.outcome_columns sets them)
_APPLIED_INDEX = CODE_INDEX[Code.APPLIED]
_APPLIED = Outcome(Code.APPLIED)
_METHOD = {PAY: "pay", REFUND: "refund", EVENT: "engage", BIND: "bind", ENROLL: "enroll",
           COUPON: "issue_coupon"}

__all__ = ["CODES", "CODE_INDEX", "INVITE", "OFFER", "OK_CODES", "EngineLike", "FeedContext",
           "NullEngine", "Prepared", "apply_order", "apply_prepared", "feed", "prepare"]


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
    def point_totals(self) -> dict[str, int]: ...


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

    point_totals = stats


def apply_order(shopper: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Positions of a tick's rows in application order: by each row's rank among its
    shopper's rows (first, second, ...), then by kind, then by position. The definition
    of the order; `prepare` makes it, grouped by kind, in one C pass (sim._tick.plan)."""
    n = len(shopper)
    pos = np.arange(n)
    by = np.argsort(shopper, kind="stable")
    s = shopper[by]
    new = np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(new, pos, 0))
    rank = np.empty(n, np.int64)
    rank[by] = pos - first
    return np.lexsort((pos, kind, rank))


_KINDS = COUPON + 1  # kinds are 0.._KINDS-1


def feed(eng: EngineLike, ctx: FeedContext, b: Batch,
         on_input: Callable[[int, Any], None] | None = None,
         wall: WallSplit | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply batch `b`'s inputs to `eng` as if in order; returns (code index, points, flags).

    `on_input(k, obj)` sees the typed input made of row k of `b`, in order (for traces);
    `wall` accumulates the wall time spent inside the engine's calls. Raises whatever a
    broken engine raises: rejections are outcomes, not exceptions.
    """
    n = len(b["row"])
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
    if on_input is not None or not hasattr(eng, "pay_block"):
        outs = []
        for k, x in enumerate(in_order(ctx, b)):
            apply = getattr(eng, _METHOD[_kind_of(x)])
            wall.start()
            outs.append(apply(x))
            wall.inputs_done()
            if on_input is not None:
                on_input(k, x)
        code[:], pts[:], flags[:] = outcome_columns(outs)
        return code, pts, flags
    return apply_prepared(eng, prepare(ctx, b), wall, (code, pts, flags))


@dataclass(slots=True)
class Prepared:
    """A tick's inputs made and put in application order, ready for an engine: built in
    the model's process, so that an engine in a process of its own (sim.link) only
    applies them. `made[kind]` is (positions in the batch in application order, that
    kind's inputs as `_make` makes them); `runs` are (kind, lo, hi): inputs lo..hi-1 of
    that kind, applied in turn. Plain data: it pickles as ids in bytes buffers and byte
    matrices (made into str by `apply_prepared`, in the engine's process) and arrays."""

    n: int
    made: dict[int, tuple[np.ndarray, Any]]
    runs: list[tuple[int, int, int]]


def prepare(ctx: FeedContext, b: Batch) -> Prepared:
    """Batch `b`'s inputs, made per kind and ordered for `apply_prepared` (see `feed`)."""
    n = len(b["row"])
    if not n:
        return Prepared(0, {}, [])
    # The application order (`apply_order`), each kind's rows in it and the runs of one
    # kind, in one pass in C.
    shopper = np.ascontiguousarray(b["shopper"], np.int64)
    grouped, counts, runs = plan(shopper, np.ascontiguousarray(b["kind"], np.int8), _KINDS)
    made: dict[int, tuple[np.ndarray, Any]] = {}
    lo = 0
    for kd, c in enumerate(counts):
        if c:
            at = grouped[lo:lo + c]
            made[kd] = (at, _make(ctx, take(b, at), kd))
            lo += c
    return Prepared(n, made, runs)


def apply_prepared(eng: EngineLike, prep: Prepared, wall: WallSplit | None = None,
                   out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply inputs `prep` (from `prepare`) to `eng` in order; returns (code index, points,
    flags) by position in the batch, into `out` when given."""
    n = prep.n
    code, pts, flags = out or (np.empty(n, np.int16), np.zeros(n, np.int64),
                               np.zeros(n, np.int8))
    wall = wall or WallSplit()
    made = {kd: (at, _with_texts(kd, inp)) for kd, (at, inp) in prep.made.items()}
    for kd, lo, hi in prep.runs:
        at, inp = made[kd]
        into = getattr(eng, _INTO_METHOD[kd], None) if kd in _INTO_METHOD else None
        if into is not None:  # outcomes straight into the columns
            cols = (inp.slice(lo, hi),) if kd == PAY else _rows(inp, lo, hi)
            wall.start()
            into(*cols, code, pts, flags, at[lo:hi])
            wall.inputs_done()
            continue
        outs = _apply(eng, kd, inp, lo, hi, wall)
        pos = at[lo:hi]
        code[pos], pts[pos], flags[pos] = outcome_columns(outs)
    return code, pts, flags


def _make(ctx: FeedContext, b: Batch, kind: int) -> Any:
    """The inputs of batch `b` (all of kind `kind`) in the form `_apply` takes: columns
    for payments, bindings, events and enrollments, typed inputs for the rest."""
    if kind == PAY:
        return payment_block(ctx, b)
    prog, shopper, t = b["prog"], b["shopper"], times(ctx, b)
    if kind == BIND:
        return (ctx.appid(prog, b["app"]), ids.openid_matrix(prog, b["app"], shopper),
                ids.unionid_matrix(prog, shopper), t)
    if kind == EVENT:
        return (ids.input_id_matrix("ev", b["row"]), ctx.appid(prog, b["app"]),
                ids.openid_matrix(prog, b["app"], shopper), ctx.lookup("habit", b["ref"]), t)
    if kind == ENROLL:
        return ctx.lookup("program", prog), t, ids.unionid_matrix(prog, shopper)
    return typed_inputs(ctx, b, kind)


def _with_texts(kind: int, inp: Any) -> Any:
    """Inputs `inp` as `_make` made them, with their ids' byte matrices (columns kinds)
    made into the lists of str the engine's column methods take."""
    if kind not in _COLUMNS_METHOD:
        return inp
    return tuple(ids.texts(c) if c.__class__ is np.ndarray and c.ndim == 2 else c for c in inp)


def _apply(eng: EngineLike, kind: int, inp: Any, lo: int, hi: int,
           wall: WallSplit) -> list[Outcome]:
    """Apply inputs lo..hi-1 of `inp` (made by `_make` for `kind`) in order."""
    if kind == PAY:
        return pay_batch(eng, inp.slice(lo, hi), wall)
    if kind in _COLUMNS_METHOD:
        apply_columns = getattr(eng, _COLUMNS_METHOD[kind])
        cols = _rows(inp, lo, hi)
        wall.start()
        outs = apply_columns(*cols)
    else:
        apply = getattr(eng, _METHOD[kind])
        xs = inp[lo:hi]
        wall.start()
        outs = [apply(x) for x in xs]
    wall.inputs_done()
    return outs


def _rows(cols: Any, lo: int, hi: int) -> Any:
    """Rows lo..hi-1 of columns `cols`: a run of the whole kind (most ticks: one layer)
    takes the columns as they are, without copies."""
    return cols if lo == 0 and hi == len(cols[0]) else [c[lo:hi] for c in cols]


_COLUMNS_METHOD = {BIND: "bind_columns", EVENT: "engage_columns", ENROLL: "enroll_columns"}
# The methods that write outcomes straight into the columns (core.Engine's; not every
# EngineLike has them).
_INTO_METHOD = {PAY: "pay_block_into"} | {k: m + "_into" for k, m in _COLUMNS_METHOD.items()}


def pay_batch(eng: EngineLike, block: PaymentBlock, wall: WallSplit) -> list[Outcome]:
    """Apply payments `block` in order through the engine's batch path: the one place the
    model calls it."""
    wall.start()
    outs = eng.pay_block(block)  # type: ignore[attr-defined]
    wall.inputs_done()
    return outs


_TYPE_KIND = {Payment: PAY, Refund: REFUND, Engagement: EVENT, Binding: BIND, Enrollment: ENROLL,
              CouponIssue: COUPON}


def _kind_of(x: Any) -> int:
    return _TYPE_KIND[type(x)]
