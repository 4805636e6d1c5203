"""Model rows as engine inputs, many at once: `PaymentColumns` for payments, typed
inputs for the rest. Ids come from `sim.ids`' column builders and per-row lookups
(appid, mchid, currency) from numpy object arrays, so no Python runs per row except
the inputs' own constructors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import Binding, CouponIssue, Engagement, Enrollment, PaymentColumns, Refund
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

    def __post_init__(self) -> None:
        width = max(len(a) for a in self.appids)
        t = self.tables
        t["app"] = _objects([a[min(k, len(a) - 1)] for a in self.appids for k in range(width)])
        t["mchid"] = _objects(self.mchids)
        t["currency"] = _objects(self.currencies)
        t["program"] = _objects(self.program_ids)
        t["habit"] = _objects(HABITS)
        t["stock"] = _objects([s for st in self.stocks for s in st] or [""])
        t["stock_first"] = np.cumsum([0, *(len(st) for st in self.stocks)])[:-1]

    @classmethod
    def of(cls, scenario: Scenario, currencies: tuple[str, ...]) -> FeedContext:
        """Build the context of `scenario` with the run's currency list."""
        return cls(scenario.start_s, tuple(p.id for p in scenario.programs),
                   tuple(p.appids for p in scenario.programs),
                   tuple(p.mchid for p in scenario.places), currencies,
                   tuple(tuple(p.coupons) for p in scenario.programs))

    def appid(self, prog: np.ndarray, app: np.ndarray | int) -> list[str]:
        """The appid of app number `app` of each program in `prog`."""
        width = max(len(a) for a in self.appids)
        return self.tables["app"][prog.astype(np.int64) * width + app].tolist()

    def lookup(self, table: str, index: np.ndarray) -> list[str]:
        """The names of `table` ("mchid", "currency", "program", "habit", "stock") at `index`."""
        return self.tables[table][index].tolist()


def _times(ctx: FeedContext, c: dict[str, np.ndarray], rows: np.ndarray) -> list[int]:
    return (np.floor(c["t_s"][rows]).astype(np.int64) + ctx.start_s).tolist()


def payment_columns(ctx: FeedContext, tab: Inputs, rows: np.ndarray) -> PaymentColumns:
    """The payments of `rows` (all of kind PAY) as one `PaymentColumns`."""
    c = tab.cols
    m = len(rows)
    prog, ref = c["prog"][rows], c["ref"][rows]
    coupons: list[tuple[str, ...]] = [()] * m
    used = np.flatnonzero(ref >= 0)
    for k, cid in zip(used.tolist(), ids.input_ids("cp", ref[used]), strict=True):
        coupons[k] = (cid,)
    return PaymentColumns(
        ids.transaction_ids(rows), ctx.appid(prog, 0), ctx.lookup("mchid", c["place"][rows]),
        ids.openids(prog, 0, c["shopper"][rows]), c["amount"][rows].astype(np.int64),
        np.floor(c["t_s"][rows]).astype(np.int64) + ctx.start_s,
        c["payer"][rows].astype(np.int64), ctx.lookup("currency", c["currency"][rows]),
        ["MICROPAY"] * m, [""] * m, [""] * m, coupons)


def typed_inputs(ctx: FeedContext, tab: Inputs, rows: np.ndarray, kind: int) -> list[Any]:
    """The typed inputs (`Refund`, `Engagement`, ...) of `rows`, all of kind `kind`."""
    c = tab.cols
    t = _times(ctx, c, rows)
    prog, shopper, app = c["prog"][rows], c["shopper"][rows], c["app"][rows]
    if kind == PAY:
        return list(payment_columns(ctx, tab, rows).rows())
    if kind == REFUND:
        ref = c["ref"][rows]
        return list(map(Refund, ids.refund_ids(rows), ids.transaction_ids(ref),
                        ctx.lookup("mchid", c["place"][rows]), c["amount"][rows].tolist(),
                        c["payer"][rows].tolist(), t))
    if kind == EVENT:
        return list(map(Engagement, ids.input_ids("ev", rows), ctx.appid(prog, app),
                        ids.openids(prog, app, shopper), ctx.lookup("habit", c["ref"][rows]), t))
    if kind == BIND:
        return list(map(Binding, ctx.appid(prog, app), ids.openids(prog, app, shopper),
                        ids.unionids(prog, shopper), t))
    if kind == ENROLL:
        return list(map(Enrollment, ctx.lookup("program", prog), t,
                        ids.unionids(prog, shopper)))
    if kind == COUPON:
        return list(map(CouponIssue, ids.input_ids("cp", rows),
                        ctx.lookup("program", prog),
                        ctx.lookup("stock", ctx.tables["stock_first"][prog] + c["ref"][rows]), t,
                        ids.unionids(prog, shopper)))
    raise AssertionError(f"unknown input kind {kind}")  # pragma: no cover - the model's own


def in_order(ctx: FeedContext, tab: Inputs, rows: np.ndarray) -> list[Any]:
    """The typed inputs of `rows` of any kinds, in the order of `rows`."""
    kinds = tab.cols["kind"][rows]
    out: list[Any] = [None] * len(rows)
    for kd in np.unique(kinds).tolist():
        at = np.flatnonzero(kinds == kd)
        for k, x in zip(at.tolist(), typed_inputs(ctx, tab, rows[at], kd), strict=True):
            out[k] = x
    return out
