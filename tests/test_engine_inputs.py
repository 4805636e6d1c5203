"""The compiled bindings, events and enrollments (core/_inputs.pyx, _identity.pyx, _enroll.pyx)
against their Python reference (`_bind_py`, `_engage_py`, `_enroll_py`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import (
    Binding,
    Code,
    Engagement,
    Engine,
    Enrollment,
    Outcome,
    Payment,
    Program,
    Refund,
    check_invariants,
    limits,
    outcome_columns,
)
from core.program import CouponStock
from tests.helpers import APP, APP2, DAY, MINI, STORE, T0, bad_outcome_columns, oid, program, uid

settings.register_profile("paymember", max_examples=60, deadline=None)
settings.load_profile("paymember")

_WELCOME = CouponStock("welcome5", 500, 2000, 30, "enroll")
PROGRAMS = [
    program(),
    program(return_window_days=0, expiry="rolling", expiry_days=20, lookback_days=3,
            welcome_bonus=0),
    program(expiry="month_end", expiry_days=5, tier_basis="spend", allow_negative=True,
            welcome_bonus_from_s=T0 + 5 * DAY, coupons={"welcome5": _WELCOME}),
    program(expiry="none", lookback_days=0, friend_min_visits=0, coupons={}),
]
OPENIDS = [oid(k) for k in range(3)] * 3 + ["", "bad id!", "x" * 65]
UNIONIDS = [uid(k) for k in range(2)] * 3 + ["", "bad/u"]
KINDS = ["follow", "visit", "ugc", "checkin", "referral", "ad", "nonesuch"]
# Days a few apart (lookback, caps, expiry boundaries), sometimes weeks and months apart,
# sometimes anywhere in (or just outside) the engine's time range.
days = st.builds(lambda d, s: T0 + d * DAY + s, st.integers(-1, 5), st.integers(0, 5))
near = st.one_of(days, days, st.integers(T0 - 3 * DAY, T0 + 70 * DAY))
times = st.one_of(near, near, near, st.integers(limits.TIME_S_MIN - 10, limits.TIME_S_MAX + 10))
apps = st.sampled_from([APP, APP, APP, APP2, "wxunknown"])


@st.composite
def inputs(draw: st.DrawFn, n: int) -> Any:
    """Input number `n`: a payment, binding, event or enrollment over a few shoppers,
    with repeats, bad ids, unknown apps and programs, and out-of-range times."""
    kind = draw(st.sampled_from(["pay", "bind", "bind", "event", "event", "enroll",
                                 "advance", "refund", "refund"]))
    t, app = draw(times), draw(apps)
    if kind == "advance":  # moves the idempotency window: older events become STALE
        return draw(near)
    openid, unionid = draw(st.sampled_from(OPENIDS)), draw(st.sampled_from(UNIONIDS))
    if kind == "pay":
        mch = MINI if app == APP2 else STORE
        return Payment(f"42{n:030d}", app, mch, openid or oid(0), draw(st.integers(1, 9000)),
                       draw(near))
    if kind == "refund":
        return _refund(draw, n, app, openid)
    if kind == "bind":
        return Binding(app, openid, unionid, t)
    if kind == "event":
        ref = draw(st.sampled_from(["", *OPENIDS]))
        eid = f"ev{draw(st.integers(0, n))}"  # repeats are duplicates
        return Engagement(eid, app, openid, draw(st.sampled_from(KINDS)), t, ref)
    prog = draw(st.sampled_from(["quickmart", "quickmart", "elsewhere"]))
    if draw(st.booleans()):
        return Enrollment(prog, t, unionid=unionid)
    return Enrollment(prog, t, appid=app, openid=openid)


def _refund(draw: st.DrawFn, n: int, app: str, openid: str) -> Refund:
    """A refund of an earlier (or later, or no) payment: its total SAME_TOTAL stands for
    the payment's own (see `_totals`); repeated and over-long ids, other merchants, an
    openid to check, amounts over the payment's, wrong types."""
    tx = f"42{draw(st.integers(0, n + 1)):030d}"
    rid = draw(st.sampled_from([f"rf{draw(st.integers(0, n))}", "", "r" * 65]))
    mch = draw(st.sampled_from([STORE, STORE, MINI, "1999"]))
    total = draw(st.sampled_from([SAME_TOTAL, SAME_TOTAL, SAME_TOTAL, 5000]))
    fen = draw(st.one_of(st.integers(1, 4000), st.integers(-1, 12_000)))
    t = draw(st.one_of(near, near, times))
    who = draw(st.sampled_from([("", ""), ("", ""), (app, openid), (APP, oid(1))]))
    r = Refund(rid, tx, mch, fen, total, t, "", *who)
    if draw(st.integers(0, 20)) == 0:
        r = dataclasses.replace(r, refund_fen=str(fen))  # a wrong type
    return r


SAME_TOTAL = -7


def _totals(items: list[Any]) -> list[Any]:
    """`items` with each refund's SAME_TOTAL replaced by its payment's total (when the
    list has that payment), so that most refunds fit their payment."""
    totals = {x.transaction_id: x.total_fen for x in items if type(x) is Payment}
    return [dataclasses.replace(x, total_fen=totals.get(x.transaction_id, 100))
            if type(x) is Refund and x.total_fen == SAME_TOTAL else x for x in items]


_REFERENCE = {Binding: "_bind_py", Engagement: "_engage_py", Enrollment: "_enroll_py",
              Refund: "_refund_py"}


def feed(prog: Program, items: list[Any], reference: bool) -> tuple[Engine, list[Any]]:
    """A fresh engine fed `items`: bindings, events and enrollments by the compiled
    methods or by their Python reference (and payments' member lots likewise), ints as
    `advance`; returns it and the outcomes."""
    eng = Engine([prog])
    eng.compiled_lots = not reference
    eng._kernel = None
    outs: list[Any] = []
    for x in items:
        if type(x) is int:
            outs.append(eng.advance(x))
        elif type(x) is Payment:
            outs.append(eng.pay(x))
        elif reference:
            outs.append(getattr(eng, _REFERENCE[type(x)])(x))
        else:
            outs.append({Binding: eng.bind, Engagement: eng.engage, Enrollment: eng.enroll,
                         Refund: eng.refund}[type(x)](x))
    return eng, outs


def state(eng: Engine) -> dict[str, Any]:
    """Everything the inputs may change, in comparable form."""
    acc = eng.acc
    n = len(acc)
    out: dict[str, Any] = {name: list(getattr(acc, name)[:n]) for name in (
        "prog", "bal", "bal_pend", "qual", "member", "tier", "union_no",
        "visit_n")}
    out["roots"] = acc.roots(np.arange(n)).tolist()
    out["lots"] = [acc.lots.items(a) for a in range(n)]
    lots = acc.lots  # the pool itself: lots numbered alike, freed lots chained alike
    out["lot_pool"] = (list(lots.nxt), list(lots.day), list(lots.pts), list(lots.tail[:n]),
                       lots.free)
    out["by_app"] = {app: ix.items() for app, ix in acc.by_app.items()}
    out["by_union"] = [ix.items() for ix in acc.by_union]
    out["rows"] = list(eng.ledger.rows)
    out["notes"] = [eng.ledger.note_text(k) for k in range(len(eng.ledger.notes))]
    out["expiry_heap"] = sorted(eng.expiry_heap)
    out["coupon_heap"] = sorted(eng.coupon_heap)
    for name in ("caps", "event_ids", "event_seen", "invited", "merged_from", "counts",
                 "coupons"):
        out[name] = getattr(eng, name)
    idem = eng.idem
    out["idem"] = (idem.horizon_s, idem.forgotten, idem.gens, sorted(idem.gen_heap))
    out["scalars"] = list(eng.scalars)
    out["pays"] = (list(eng.pays), list(eng.pays_wide))
    out["refunds"] = (eng.refund_ids, eng.shortfall, eng.held, eng.held_count, idem.refunds)
    out["stats"] = eng.stats()
    return out


@settings(max_examples=200)
@given(st.sampled_from(PROGRAMS), st.integers(0, 60).flatmap(
    lambda m: st.tuples(*(inputs(n) for n in range(m)))))
def test_compiled_inputs_equal_the_python_reference(prog: Program, items: tuple) -> None:
    """Any mix of payments, refunds, bindings (merges, conflicts), events (caps, referrals, STALE
    behind the idempotency window), enrollments (conversion, forfeits, bonus, coupons)
    and clock advances gives the same outcomes, ledger, lots, caps, maps and idempotency
    generations through the compiled methods as through the Python reference."""
    items = _totals(list(items))
    fast, fast_outs = feed(prog, items, reference=False)
    ref, ref_outs = feed(prog, items, reference=True)
    assert fast_outs == ref_outs
    assert state(fast) == state(ref)
    assert not check_invariants(fast)


def _batchable(x: Any) -> bool:
    """Whether `x` can go through a batch entry point (events without a referral,
    enrollments by unionid)."""
    if type(x) is Engagement:
        return not x.referred_openid
    if type(x) is Enrollment:
        return not x.appid and not x.openid
    return type(x) is Binding


def feed_columns(prog: Program, items: list[Any], into: bool = False,
                 ) -> tuple[Engine, list[Any]]:
    """A fresh engine fed `items`, every run of consecutive bindings, events or
    enrollments that a batch entry point takes as one `*_columns` call; with `into`, as
    one `*_columns_into` call, whose rows' outcomes come back as (code index, points,
    flags) tuples."""
    eng = Engine([prog])
    rng = np.random.default_rng(len(items))
    outs: list[Any] = []
    k = 0
    while k < len(items):
        x = items[k]
        j = k + 1
        if _batchable(x):
            while j < len(items) and type(items[j]) is type(x) and _batchable(items[j]):
                j += 1
        run = items[k:j]
        if type(x) is int:  # a clock advance
            outs.append(eng.advance(x))
            k = j
            continue
        times = np.array([y.time_s for y in run], np.int64)
        if not _batchable(x):
            outs.append(eng.pay(x) if type(x) is Payment else
                        {Engagement: eng.engage, Enrollment: eng.enroll,
                         Refund: eng.refund}[type(x)](x))
        else:
            if type(x) is Binding:
                name, cols = "bind_columns", ([y.appid for y in run], [y.openid for y in run],
                                              [y.unionid for y in run], times)
            elif type(x) is Engagement:
                name, cols = "engage_columns", ([y.event_id for y in run],
                                                [y.appid for y in run], [y.openid for y in run],
                                                [y.kind for y in run], times)
            else:
                name, cols = "enroll_columns", ([y.program for y in run], times,
                                                [y.unionid for y in run])
            if into:
                outs += _apply_into(getattr(eng, name + "_into"), cols, len(run), rng)
            else:
                outs += getattr(eng, name)(*cols)
        k = j
    return eng, outs


def _apply_into(apply: Any, cols: tuple, n: int, rng: np.random.Generator) -> list[tuple]:
    """Rows `cols` through `apply` (a `*_columns_into`), written at scattered positions of
    columns two longer, the other two left as they were; returns each row's columns."""
    at = rng.permutation(n + 2)[:n].astype(np.int64)
    out = (np.full(n + 2, -1, np.int16), np.full(n + 2, -1, np.int64),
           np.full(n + 2, -1, np.int8))
    assert apply(*cols, *out, at) is None
    assert all((np.delete(c, at) == -1).all() for c in out)  # nothing written elsewhere
    return list(zip(*(c[at].tolist() for c in out), strict=True))


def _as_columns(outs: list[Any]) -> list[Any]:
    """Each Outcome of `outs` as its (code index, points, flags), as outcome_columns
    gives them; anything else (clock advances' reports, tuples) as it is."""
    return [tuple(c[0] for c in outcome_columns([o])) if isinstance(o, Outcome) else o
            for o in outs]


@settings(max_examples=150)
@given(st.sampled_from(PROGRAMS), st.integers(0, 60).flatmap(
    lambda m: st.tuples(*(inputs(n) for n in range(m)))))
def test_batch_entry_points_into_columns_equal_the_list_forms(prog: Program,
                                                              items: tuple) -> None:
    """`bind_columns_into`, `engage_columns_into` and `enroll_columns_into` write, at each
    row's position, exactly what `outcome_columns` of the list forms' outcomes gives
    (rejections included: bad ids, unknown apps and programs, duplicates, bad times), and
    leave the same state."""
    items = _totals(list(items))
    listed, list_outs = feed_columns(prog, items)
    into, into_outs = feed_columns(prog, items, into=True)
    assert _as_columns(into_outs) == _as_columns(list_outs)
    assert state(into) == state(listed)


@settings(max_examples=150)
@given(st.sampled_from(PROGRAMS), st.integers(0, 60).flatmap(
    lambda m: st.tuples(*(inputs(n) for n in range(m)))))
def test_batch_entry_points_equal_the_python_reference(prog: Program, items: tuple) -> None:
    """Runs of bindings, events and enrollments given as columns (`bind_columns`,
    `engage_columns`, `enroll_columns`) give the same outcomes and state as the Python
    reference applying them one by one, and `outcome_columns` decodes those outcomes."""
    items = _totals(list(items))
    fast, fast_outs = feed_columns(prog, items)
    ref, ref_outs = feed(prog, items, reference=True)
    assert fast_outs == ref_outs
    assert state(fast) == state(ref)
    assert not check_invariants(fast)
    totals = fast.point_totals()
    assert totals == {k: v for k, v in fast.stats().items() if k in totals} and len(totals) == 5
    outs = [o for o in ref_outs if isinstance(o, Outcome)]  # not advance's reports
    code, pts, flags = outcome_columns([o for o in fast_outs if isinstance(o, Outcome)])
    codes = list(Code)
    assert [codes[c] for c in code.tolist()] == [o.code for o in outs]
    assert pts.tolist() == [o.points for o in outs]
    assert flags.tolist() == [o.offer_membership + 2 * o.friend_invite for o in outs]


def test_batch_entry_points_refuse_ragged_columns_and_take_wrong_types() -> None:
    """Columns of different lengths, or `_into` forms' outcome columns of other types or
    lengths or positions outside them, are a ValueError that changes nothing; a field of
    the wrong type gets the reference's BAD_TYPE; `outcome_columns` refuses a
    non-Outcome."""
    eng = Engine([program()])
    t = np.array([T0, T0], np.int64)
    with pytest.raises(ValueError):
        eng.bind_columns([APP], [oid(1)], [uid(1)], t)
    with pytest.raises(ValueError):
        eng.engage_columns(["e1", "e2"], [APP, APP], [oid(1)], ["visit", "visit"], t)
    with pytest.raises(ValueError):
        eng.enroll_columns(["quickmart"], t, [uid(1), uid(2)])
    assert len(eng.acc) == 0 and not eng.ledger.rows
    good, at, bad = bad_outcome_columns(2)
    rows = {"bind_columns": ([APP, APP], [oid(1), oid(2)], [uid(1), uid(2)], t),
            "engage_columns": (["e1", "e2"], [APP, APP], [oid(1), oid(2)], ["visit"] * 2, t),
            "enroll_columns": (["quickmart"] * 2, t, [uid(1), uid(2)])}
    for name, cols in rows.items():
        into = getattr(eng, name + "_into")
        for reason, out, where in bad:
            with pytest.raises(ValueError, match=reason):
                into(*cols, *out, where)
        with pytest.raises(ValueError, match="differ in length"):
            into(*[c[:1] if k == 1 else c for k, c in enumerate(cols)], *good, at)
    assert len(eng.acc) == 0 and not eng.ledger.rows
    outs = eng.bind_columns([APP, APP], [oid(1), 7], [uid(1), uid(2)], t)  # type: ignore[list-item]
    assert [o.code for o in outs] == [Code.APPLIED, Code.BAD_TYPE]
    with pytest.raises(TypeError):
        outcome_columns([outs[0], (Code.APPLIED, 0, "", False, False)])


def test_wrong_types_get_the_reference_rejection() -> None:
    """Fields of the wrong type (bool for int, int for str) get BAD_TYPE, as in Python."""
    eng = Engine([program()])
    bad = [Binding(APP, oid(1), uid(1), True), Binding(APP, 7, uid(1), T0),  # type: ignore
           Engagement("e1", APP, oid(1), "visit", T0 + 0.5),  # type: ignore[arg-type]
           Enrollment("quickmart", T0, unionid=None)]  # type: ignore[arg-type]
    for x in bad:
        out = {Binding: eng.bind, Engagement: eng.engage, Enrollment: eng.enroll}[type(x)](x)
        assert out.code is Code.BAD_TYPE
    assert len(eng.acc) == 0 and not eng.ledger.rows


def test_snapshot_rebuilds_the_kernel() -> None:
    """An engine loaded from a snapshot applies inputs on its own structures."""
    eng = Engine([program()])
    eng.bind(Binding(APP, oid(1), uid(1), T0))
    eng.engage(Engagement("e1", APP, oid(1), "visit", T0))
    again = Engine.from_snapshot(eng.snapshot())
    assert again.enroll(Enrollment("quickmart", T0, unionid=uid(1))).points == 2 + 200
    assert again.engage(Engagement("e2", APP, oid(1), "visit", T0)).points == 2
    assert eng.balance("quickmart", unionid=uid(1)).shadow == 2  # the original: untouched
    assert not check_invariants(again)


def test_merged_history_keeps_caps_and_lots() -> None:
    """A merge by the compiled bind carries caps and lots: the merged shopper's fourth visit
    of the day is capped, and its points expire as the reference's would."""
    prog = dataclasses.replace(program(), expiry="rolling", expiry_days=30)
    eng = Engine([prog])
    eng.bind(Binding(APP, oid(1), uid(1), T0))
    eng.enroll(Enrollment("quickmart", T0, unionid=uid(1)))
    for n in range(2):
        eng.engage(Engagement(f"a{n}", APP2, oid(2), "visit", T0 + n))
    eng.engage(Engagement("b0", APP, oid(1), "visit", T0))
    assert eng.bind(Binding(APP2, oid(2), uid(1), T0 + 10)).message == "histories merged"
    assert eng.engage(Engagement("c0", APP, oid(1), "visit", T0 + 20)).code is Code.CAP_REACHED
    assert not check_invariants(eng)
