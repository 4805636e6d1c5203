"""Property tests: idempotency, refund proportionality, merge conservation, order
independence (Hypothesis; strategies in tests/strategies.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core import (
    Binding,
    Engagement,
    Engine,
    Enrollment,
    Payment,
    Refund,
    check_invariants,
    from_payments,
)
from core.payment_block import from_columns as block_from_columns
from tests.helpers import APP, APP2, T0, oid, program, uid
from tests.strategies import PEOPLE, SHOPPERS, feeds, payments, refunds_of

PROGRAM = program(return_window_days=0)
settings.register_profile("paymember", max_examples=60, deadline=None)
settings.load_profile("paymember")


def apply(eng: Engine, item: object) -> None:
    """Feed one typed input to the engine."""
    match item:
        case Payment():
            eng.pay(item)
        case Refund():
            eng.refund(item)
        case Binding():
            eng.bind(item)
        case Engagement():
            eng.engage(item)
        case Enrollment():
            eng.enroll(item)
        case _:
            raise AssertionError(item)


def run(items: list[object]) -> Engine:
    """A fresh engine fed `items`, its invariants checked."""
    eng = Engine([PROGRAM])
    for item in items:
        apply(eng, item)
    bad = check_invariants(eng)
    assert not bad, bad
    return eng


def holdings(eng: Engine) -> dict[str, tuple[int, int, int, int]]:
    """Balances of every person (by unionid) and every unbound openid."""
    out = {}
    for p in range(PEOPLE):
        b = eng.balance("quickmart", unionid=uid(p))
        if b is not None:
            out[uid(p)] = (b.available, b.pending, b.shadow, b.shadow_pending)
    for who in range(SHOPPERS):
        for app, off in ((APP, 0), (APP2, 100)):
            a = eng.account_of("quickmart", appid=app, openid=oid(who + off))
            if a is not None and a not in [eng.account_of("quickmart", unionid=uid(p))
                                           for p in range(PEOPLE)]:
                b = eng.balance("quickmart", appid=app, openid=oid(who + off))
                out[f"{app}/{who}"] = (b.available, b.pending, b.shadow, b.shadow_pending)
    return out


@given(feeds(), st.data())
def test_duplicate_deliveries_change_nothing(items: list[object], data: st.DataObject) -> None:
    """Any interleaving of redeliveries gives the same state as delivering each once."""
    once = run(items)
    delivered: list[object] = []
    for k, item in enumerate(items):
        delivered.append(item)
        for _ in range(data.draw(st.integers(0, 2))):
            # A redelivery of an earlier input lands somewhere after its first delivery.
            delivered.append(items[data.draw(st.integers(0, k))])
    again = run(delivered)
    assert holdings(again) == holdings(once)
    assert again.stats() == once.stats()


@given(feeds())
def test_order_does_not_matter(items: list[object]) -> None:
    """Payments, refunds (before or after their payment) and bindings in any order give
    the same balances. Capped engagement events are left out: whether two openids'
    events share a cap depends on whether the binding that joins them came first, which
    the domain cannot know in advance."""
    items = [x for x in items if not isinstance(x, Engagement)]
    forward = run(items)
    backward = run(list(reversed(items)))
    assert holdings(forward) == holdings(backward)
    assert forward.stats()["points_issued"] == backward.stats()["points_issued"]


@given(payments(0), st.data())
def test_refunds_reverse_the_refunded_share_exactly(p: Payment, data: st.DataObject) -> None:
    """After refunds totalling R of T, floor(P*R/T) points are back; a full refund takes
    back exactly P; refunds beyond T are rejected and change nothing."""
    eng = Engine([PROGRAM])
    earned = eng.pay(p).points
    refunded = back = 0
    for r in data.draw(refunds_of(p, 0)):
        out = eng.refund(r)
        if refunded + r.refund_fen > p.total_fen:
            assert not out.ok
            continue
        refunded += r.refund_fen
        back -= out.points
        assert back == earned * refunded // p.total_fen
    if refunded == p.total_fen:
        assert back == earned
    assert not check_invariants(eng)


@given(st.lists(payments(0), min_size=1, max_size=20, unique_by=lambda p: p.openid),
       st.data())
def test_merges_conserve_points(pays: list[Payment], data: st.DataObject) -> None:
    """Binding openids of both apps to a few unionids neither loses nor creates a point."""
    eng = Engine([PROGRAM])
    earned = 0
    for n, p in enumerate(pays):
        p.transaction_id = f"42{n:030d}"
        earned += eng.pay(p).points
    for p in pays:
        eng.bind(Binding(p.appid, p.openid, uid(data.draw(st.integers(0, PEOPLE - 1))),
                         p.time_s))
    s = eng.stats()
    assert s["shadow_points"] + s["points_outstanding"] == earned
    assert s["accounts"] <= PEOPLE
    assert not check_invariants(eng)


@given(st.lists(payments(0), min_size=1, max_size=30), st.data())
def test_compiled_path_earns_what_the_python_rules_say(pays: list[Payment],
                                                       data: st.DataObject) -> None:
    """For any payment, `pay` (compiled) books exactly the points `preview` (the Python
    rules in core.rules) predicts, home or foreign currency, member or not."""
    eng = Engine([PROGRAM])
    for n, p in enumerate(pays):
        p.transaction_id = f"42{n:030d}"
        p.currency = data.draw(st.sampled_from(["CNY", "JPY", "HKD"]))
        if data.draw(st.booleans()):
            eng.bind(Binding(p.appid, p.openid, uid(n % PEOPLE), p.time_s))
            eng.submit("enrollment", {"program": "quickmart", "unionid": uid(n % PEOPLE),
                                      "time_s": p.time_s})
        expected = eng.preview(p)
        got = eng.pay(p)
        assert (got.code, got.points) == (expected.code, expected.points)
    assert not check_invariants(eng)


@given(st.text(max_size=70))
def test_compiled_openid_check_matches_the_rule(openid: str) -> None:
    """A new openid is accepted by the compiled path exactly when core.ids.ID_RE accepts it."""
    from core import Code
    from core.ids import ID_RE
    from tests.helpers import STORE, T0
    eng = Engine([PROGRAM])
    out = eng.pay(Payment("42" + "0" * 30, APP, STORE, openid, 2000, T0))
    assert (out.code is Code.BAD_ID) == (ID_RE.match(openid) is None)


def _apply_batched(eng: Engine, items: list[object], block: bool = False) -> list[object]:
    """Feed `items` with every run of consecutive payments as one batch: `pay_columns`,
    or `pay_block` when `block`; returns the batches' outcomes."""
    run_: list[Payment] = []
    outcomes: list[object] = []
    for item in [*items, None]:
        if isinstance(item, Payment):
            run_.append(item)
            continue
        if run_:
            cols = from_payments(run_)
            outcomes += eng.pay_block(block_from_columns(cols)) if block else eng.pay_columns(cols)
            run_ = []
        if item is not None:
            apply(eng, item)
    return outcomes


@given(feeds(), st.data())
def test_batch_path_equals_per_event_path(items: list[object], data: st.DataObject) -> None:
    """Mixed inputs (redeliveries, refunds before payments, unbound openids, bindings,
    enrollments) give the same ledger, entry for entry, and the same balances whether
    payments go one by one, in columnar batches or in blocks (with the same outcomes)."""
    delivered: list[object] = []
    for k, item in enumerate(items):
        delivered.append(item)
        if data.draw(st.booleans()):
            delivered.append(items[data.draw(st.integers(0, k))])  # a redelivery
        if data.draw(st.integers(0, 9)) == 0:
            delivered.append(Enrollment("quickmart", T0 + 3600, unionid=uid(k % PEOPLE)))
    per_event = run(delivered)
    batched, blocks = Engine([PROGRAM]), Engine([PROGRAM])
    outcomes = _apply_batched(batched, delivered)
    assert _apply_batched(blocks, delivered, block=True) == outcomes
    for eng in (batched, blocks):
        assert list(eng.ledger.rows) == list(per_event.ledger.rows)
        assert holdings(eng) == holdings(per_event)
        assert eng.stats() == per_event.stats()
        assert not check_invariants(eng)
