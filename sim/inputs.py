"""Model rows as engine inputs, many at once: a `PaymentBlock` for payments (ids left as
bytes; `payment_columns` makes the same payments as str columns), typed inputs for the
rest. Ids come from `sim.ids`' column builders and per-row lookups
(appid, mchid, currency) from numpy object arrays, so no Python runs per row except
the inputs' own constructors.

A `Batch` is what the engine side needs of some rows of the model's `Inputs` table:
the row numbers (ids derive from them) and those rows' columns, aligned. It is plain
numpy, so it crosses to an engine process as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import Binding, CouponIssue, Engagement, Enrollment, PaymentBlock, PaymentColumns, Refund
from sim import ids
from sim.scenario import HABITS, Scenario
from sim.tables import BIND, COUPON, ENROLL, EVENT, PAY, REFUND, Inputs


def _objects(values: list[Any] | tuple[Any, ...]) -> np.ndarray:
    out = np.empty(len(values), object)
    out[:] = values
    return out


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What turning rows into inputs needs: programs' apps and merchants, currencies."""

    start_s: int
    program_ids: tuple[str, ...]
    appids: tuple[tuple[str, ...], ...]  # per program: app number -> appid
    mchids: tuple[str, ...]  # per place type
    currencies: tuple[str, ...]
    stocks: tuple[tuple[str, ...], ...]  # per program: stock number -> stock_id
    # The same names as object arrays, built once: rows look them up by number.
    tables: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    # ... and as lists (a payment block's dictionaries), with the apps' table width.
    names: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)
    app_width: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        width = max(len(a) for a in self.appids)
        object.__setattr__(self, "app_width", width)
        t = self.tables
        t["app"] = _objects([a[min(k, len(a) - 1)] for a in self.appids for k in range(width)])
        t["mchid"] = _objects(self.mchids)
        t["currency"] = _objects(self.currencies)
        t["program"] = _objects(self.program_ids)
        t["habit"] = _objects(HABITS)
        t["stock"] = _objects([s for st in self.stocks for s in st] or [""])
        t["stock_first"] = np.cumsum([0, *(len(st) for st in self.stocks)])[:-1]
        self.names.update((k, t[k].tolist()) for k in ("app", "mchid", "currency"))

    @classmethod
    def of(cls, scenario: Scenario, currencies: tuple[str, ...]) -> FeedContext:
        """Build the context of `scenario` with the run's currency list."""
        return cls(scenario.start_s, tuple(p.id for p in scenario.programs),
                   tuple(p.appids for p in scenario.programs),
                   tuple(p.mchid for p in scenario.places), currencies,
                   tuple(tuple(p.coupons) for p in scenario.programs))

    def appid(self, prog: np.ndarray, app: np.ndarray | int) -> list[str]:
        """The appid of app number `app` of each program in `prog`."""
        return self.tables["app"][prog.astype(np.int64) * self.app_width + app].tolist()

    def lookup(self, table: str, index: np.ndarray) -> list[str]:
        """The names of `table` ("mchid", "currency", "program", "habit", "stock") at `index`."""
        return self.tables[table][index].tolist()


# A batch's columns: those of `Inputs` that inputs are made of, plus "row" (row numbers).
BATCH_COLUMNS = ("kind", "shopper", "prog", "place", "t_s", "amount", "payer", "ref",
                 "currency", "app")
Batch = dict[str, np.ndarray]


class _Gathered(dict):  # type: ignore[type-arg]
    """A batch of a table's rows whose columns are gathered when first read: a kind's
    sub-batch (`take`) gathers straight from the table, once, only what its inputs use."""

    __slots__ = ("_cols", "_rows")

    def __init__(self, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        super().__init__(row=rows)
        self._cols, self._rows = cols, rows

    def __missing__(self, key: str) -> np.ndarray:
        if key not in BATCH_COLUMNS:
            raise KeyError(key)
        v = self[key] = self._cols[key][self._rows]
        return v


def batch_of(tab: Inputs, rows: np.ndarray, **known: np.ndarray) -> Batch:
    """The batch of `tab`'s rows `rows` (in that order); `known` are columns already
    gathered for them (the same values as the table's)."""
    b = _Gathered(tab.cols, np.asarray(rows, np.int64))
    b.update(known)
    return b


def take(b: Batch, at: np.ndarray) -> Batch:
    """The sub-batch of `b` at positions `at` (in that order)."""
    if type(b) is _Gathered:
        return _Gathered(b._cols, b["row"][at])
    return {k: v[at] for k, v in b.items()}


def times(ctx: FeedContext, b: Batch) -> np.ndarray:
    """Each input's time: whole seconds since the epoch (int64)."""
    return np.floor(b["t_s"]).astype(np.int64) + ctx.start_s


def payment_columns(ctx: FeedContext, b: Batch) -> PaymentColumns:
    """The payments of batch `b` (all of kind PAY) as one `PaymentColumns`."""
    m = len(b["row"])
    prog, ref = b["prog"], b["ref"]
    coupons: list[tuple[str, ...]] = [()] * m
    used = np.flatnonzero(ref >= 0)
    for k, cid in zip(used.tolist(), ids.input_ids("cp", ref[used]), strict=True):
        coupons[k] = (cid,)
    return PaymentColumns(
        ids.transaction_ids(b["row"]), ctx.appid(prog, 0), ctx.lookup("mchid", b["place"]),
        ids.openids(prog, 0, b["shopper"]), b["amount"].astype(np.int64), times(ctx, b),
        b["payer"].astype(np.int64), ctx.lookup("currency", b["currency"]),
        ["MICROPAY"] * m, [""] * m, [""] * m, coupons)


def payment_block(ctx: FeedContext, b: Batch) -> PaymentBlock:
    """The payments of batch `b` (all of kind PAY) as one `PaymentBlock`: the same payments
    as `payment_columns`, their ids never made into str."""
    m = len(b["row"])
    prog, ref = b["prog"], b["ref"]
    used = np.flatnonzero(ref >= 0)
    coupons: list[tuple[str, ...]] | None = None
    if len(used):
        coupons = [()] * m
        for k, cid in zip(used.tolist(), ids.input_ids("cp", ref[used]), strict=True):
            coupons[k] = (cid,)
    tx, tx_lo, tx_hi = ids.transaction_id_spans(b["row"])
    op, op_lo, op_hi = ids.openid_spans(prog, 0, b["shopper"])
    names = ctx.names
    # The table's amount columns are int64 already: no copies.
    return PaymentBlock(tx, tx_lo, tx_hi, op, op_lo, op_hi,
                        prog.astype(np.uint16) * np.uint16(ctx.app_width), names["app"],
                        b["place"].astype(np.uint16), names["mchid"],
                        b["currency"].astype(np.uint16), names["currency"],
                        np.asarray(b["amount"], np.int64), times(ctx, b),
                        np.asarray(b["payer"], np.int64), coupons)


def typed_inputs(ctx: FeedContext, b: Batch, kind: int) -> list[Any]:
    """The typed inputs (`Refund`, `Engagement`, ...) of batch `b`, all of kind `kind`."""
    t = times(ctx, b).tolist()
    rows, prog, shopper, app = b["row"], b["prog"], b["shopper"], b["app"]
    if kind == PAY:
        return list(payment_columns(ctx, b).rows())
    if kind == REFUND:
        return list(map(Refund, ids.refund_ids(rows), ids.transaction_ids(b["ref"]),
                        ctx.lookup("mchid", b["place"]), b["amount"].tolist(),
                        b["payer"].tolist(), t))
    if kind == EVENT:
        return list(map(Engagement, ids.input_ids("ev", rows), ctx.appid(prog, app),
                        ids.openids(prog, app, shopper), ctx.lookup("habit", b["ref"]), t))
    if kind == BIND:
        return list(map(Binding, ctx.appid(prog, app), ids.openids(prog, app, shopper),
                        ids.unionids(prog, shopper), t))
    if kind == ENROLL:
        return list(map(Enrollment, ctx.lookup("program", prog), t,
                        ids.unionids(prog, shopper)))
    if kind == COUPON:
        return list(map(CouponIssue, ids.input_ids("cp", rows),
                        ctx.lookup("program", prog),
                        ctx.lookup("stock", ctx.tables["stock_first"][prog] + b["ref"]), t,
                        ids.unionids(prog, shopper)))
    raise AssertionError(f"unknown input kind {kind}")  # pragma: no cover - the model's own


def in_order(ctx: FeedContext, b: Batch) -> list[Any]:
    """The typed inputs of batch `b` of any kinds, in the batch's order."""
    kinds = b["kind"]
    out: list[Any] = [None] * len(kinds)
    for kd in np.unique(kinds).tolist():
        at = np.flatnonzero(kinds == kd)
        for k, x in zip(at.tolist(), typed_inputs(ctx, take(b, at), kd), strict=True):
            out[k] = x
    return out
