"""Bad input never raises out of the public API, and a rejection changes nothing."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from core import (
    Binding,
    CouponIssue,
    Engagement,
    Engine,
    Enrollment,
    Payment,
    Refund,
    Spend,
    check_invariants,
)
from tests.helpers import APP, STORE, T0, oid, program, uid

junk = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                 st.floats(allow_nan=True), st.text(max_size=80), st.binary(max_size=10),
                 st.lists(st.integers(), max_size=3), st.tuples(st.text(max_size=5)),
                 st.sampled_from([APP, STORE, oid(1), uid(1), "quickmart", T0, 2000, "CNY",
                                  "follow", "referral", "lunch3", ()]))
KINDS = (Payment, Refund, Engagement, Binding, Enrollment, Spend, CouponIssue)
METHOD = {Payment: "pay", Refund: "refund", Engagement: "engage", Binding: "bind",
          Enrollment: "enroll", Spend: "spend", CouponIssue: "issue_coupon"}


def _engine() -> Engine:
    eng = Engine([program(return_window_days=0)])
    eng.pay(Payment("42" + "0" * 30, APP, STORE, oid(1), 2000, T0))
    eng.bind(Binding(APP, oid(1), uid(1), T0))
    return eng


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KINDS), st.data())
def test_typed_api_never_raises(kind: type, data: st.DataObject) -> None:
    """Any field of any typed input may be junk: the call returns an Outcome."""
    eng = _engine()
    before = eng.stats()
    fields = {f.name: data.draw(junk) for f in dataclasses.fields(kind)}
    out = getattr(eng, METHOD[kind])(kind(**fields))
    assert out.code.value and isinstance(out.message, str)
    if not out.ok:
        assert eng.stats() == before
    assert not check_invariants(eng)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["payment", "refund", "event", "binding", "enrollment", "spend",
                        "coupon", "advance", "nonsense"]),
       st.one_of(junk, st.dictionaries(st.text(max_size=20), junk, max_size=8)))
def test_dict_api_never_raises(kind: str, data: object) -> None:
    """submit() with any data returns an Outcome; rejections change nothing."""
    eng = _engine()
    before = eng.stats()
    out = eng.submit(kind, data)
    if not out.ok:
        assert eng.stats() == before
    assert not check_invariants(eng)
