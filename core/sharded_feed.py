"""A seeded mixed feed (bindings, enrollments, payment batches, refunds before and after
their payments, an advance; optionally people with a second openid in another app, bound
mid-feed) that can drive an `Engine` or a `ShardedEngine` alike, for the sharding tests,
the crash test's child and `bench shards`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.engine import Engine
from core.payment_columns import PaymentColumns, from_payments
from core.program import Program
from core.types import Code, Payment
from core.workload import payment_stream

START_S = 1_772_409_600  # 2026-03-02T08:00:00+08:00


@dataclass(slots=True)
class Step:
    """One call: a payment batch (`cols`) or plain-dict inputs of one `kind` (`datas`)."""

    kind: str  # "payments" or a submit kind
    cols: PaymentColumns | None = None
    datas: Sequence[Any] = ()

    def __len__(self) -> int:
        """The number of inputs in the step."""
        return len(self.cols) if self.cols is not None else len(self.datas)


def refund_data(p: Payment, n: int, share_pct: int, time_s: int) -> dict[str, Any]:
    """Refund number `n` of `share_pct`% (at least 1 fen) of payment `p`, as notification data."""
    amount = max(1, p.total_fen * share_pct // 100)
    return {"mchid": p.mchid, "transaction_id": p.transaction_id, "refund_id": f"50{n:030d}",
            "out_refund_no": f"R{n}", "refund_status": "SUCCESS", "time_s": time_s,
            "amount": {"total": p.total_fen, "refund": amount, "payer_total": p.total_fen,
                       "payer_refund": amount}}


def mixed_feed(program: Program, seed: int, members: int, events: int, batch: int = 2000,
               refund_share: float = 0.05, people: int = 0) -> tuple[list[Step], list[str]]:
    """Steps of a seeded day and the openids of its shoppers: a fifth of them bound (each
    openid to its own unionid) and enrolled first, then payment batches, each batch's
    refunds (a `refund_share` of its payments) half sent before it and half after, one
    refund for a payment that never comes, and an advance to the next day.

    With `people`, that many of the enrolled shoppers also shop under a second openid in
    another app of the program (`second_openid`): payments from the start, bound to the
    person's unionid a third of the way through the payment batches (merging histories
    that may live on different shards), then more payments, refunds of payments from
    before the binding, a redelivered one, a second enrollment, and after the advance
    a spend by unionid and a last advance 40 days on (unlocks, expiry)."""
    rng = np.random.default_rng(seed)
    wl = payment_stream(program, rng, members, events, START_S)
    joined = wl.openids[:wl.member_count]
    steps = [
        Step("binding", datas=[{"appid": wl.appid, "openid": o, "unionid": "u" + o[1:],
                                "time_s": START_S - 86_400} for o in joined]),
        Step("enrollment", datas=[{"program": program.id, "unionid": "u" + o[1:],
                                   "time_s": START_S - 86_400} for o in joined]),
    ]
    n_refund = 0
    extra = _people(program, wl.appid, joined[:people], rng) if people else None
    bind_at = len(wl.payments) // batch // 3
    for nb, a in enumerate(range(0, len(wl.payments), batch)):
        pays = wl.payments[a:a + batch]
        if extra is not None:
            pays = pays + (extra.before if nb == 0 else extra.after if nb == bind_at + 1 else [])
            if nb == bind_at:
                steps.append(Step("binding", datas=extra.bindings))
        chosen = np.flatnonzero(rng.random(len(pays)) < refund_share).tolist()
        seen: set[str] = set()
        before, after = [], []
        for k, i in enumerate(chosen):
            p = pays[i]
            if p.transaction_id in seen:
                continue  # a redelivered payment in the same batch: refund it once
            seen.add(p.transaction_id)
            n_refund += 1
            (before if k % 2 else after).append(
                refund_data(p, n_refund, int(rng.integers(10, 101)), p.time_s + 60))
        if before:
            steps.append(Step("refund", datas=before))
        steps.append(Step("payments", cols=from_payments(pays)))
        if after:
            steps.append(Step("refund", datas=after))
        if extra is not None and nb == bind_at + 1:
            n_refund += len(extra.before)
            steps.append(Step("refund", datas=[
                refund_data(p, n_refund - j, 30 + j % 70, p.time_s + 5 * 3600)
                for j, p in enumerate(extra.before[::3])]))
            steps.append(Step("payments", cols=from_payments(extra.before[1::5])))
            steps.append(Step("enrollment", datas=extra.enrollments))
    ghost = Payment("4299" + "9" * 28, wl.appid, next(iter(program.merchants)), wl.openids[0],
                    500, START_S)
    steps.append(Step("refund", datas=[refund_data(ghost, n_refund + 1, 50, START_S + 60)]))
    steps.append(Step("advance", datas=[{"time_s": START_S + 86_400}]))
    if extra is not None:
        later = START_S + 40 * 86_400
        steps.append(Step("advance", datas=[{"time_s": later}]))
        steps.append(Step("spend", datas=[
            {"spend_id": f"sp{j}", "program": program.id, "points": 50 + j % 200,
             "unionid": b["unionid"], "time_s": later} for j, b in enumerate(extra.bindings)]))
    return steps, wl.openids


def second_openid(openid: str) -> str:
    """The feed's second openid (in the program's other app) of the shopper `openid`."""
    return "p" + openid[1:]


@dataclass(slots=True)
class _People:
    before: list[Payment]
    after: list[Payment]
    bindings: list[dict[str, Any]]
    enrollments: list[dict[str, Any]]


def _people(program: Program, appid: str, openids: Sequence[str],
            rng: np.random.Generator) -> _People:
    """The second openid's inputs of each of `openids` (see `mixed_feed`)."""
    app2 = next(a for a in program.appids if a != appid)
    mchids = sorted(program.merchants)
    n = 0

    def pays(o: str, count: int, t0: int) -> list[Payment]:
        nonlocal n
        out = []
        for _ in range(count):
            n += 1
            out.append(Payment(f"4300{n:028d}", app2, mchids[n % len(mchids)],
                               second_openid(o), int(rng.integers(500, 60_000)),
                               t0 + int(rng.integers(0, 3600))))
        return out

    before = [p for o in openids for p in pays(o, 3, START_S)]
    after = [p for o in openids for p in pays(o, 2, START_S + 4 * 3600)]
    bindings = [{"appid": app2, "openid": second_openid(o), "unionid": "u" + o[1:],
                 "time_s": START_S + 3 * 3600} for o in openids]
    enrollments = [{"program": program.id, "unionid": "u" + o[1:],
                    "time_s": START_S + 5 * 3600} for o in openids]
    return _People(before, after, bindings, enrollments)


def apply_step(target: Any, step: Step) -> list[tuple[Code, int]]:
    """Apply `step` to an Engine or a ShardedEngine; returns each input's (code, points)."""
    if step.cols is not None:
        out = target.pay_columns(step.cols)
        if isinstance(target, Engine):
            return [(o.code, o.points) for o in out]
        return [(out.code(i), int(out.points[i])) for i in range(len(out))]
    if isinstance(target, Engine):
        return [(o.code, o.points) for o in (target.submit(step.kind, d) for d in step.datas)]
    return [(o.code, o.points) for o in target.submit_many(step.kind, step.datas)]


__all__ = ["START_S", "Step", "apply_step", "mixed_feed", "refund_data", "second_openid"]
