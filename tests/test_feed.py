"""The plain-dict API: notification shapes accepted, every fault named, nothing raised."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import Code, Engine, _fastparse, parse_time
from core import feed as feed_module
from tests.helpers import APP, STORE, oid

TXN = {
    "appid": APP, "mchid": STORE, "out_trade_no": "1217752501201407033233368018",
    "transaction_id": "4200000001202603020001", "trade_type": "MICROPAY",
    "trade_state": "SUCCESS", "trade_state_desc": "ok", "bank_type": "CMC", "attach": "",
    "success_time": "2026-03-02T10:34:56+08:00", "payer": {"openid": oid(1)},
    "amount": {"total": 2000, "payer_total": 2000, "currency": "CNY", "payer_currency": "CNY"},
    "promotion_detail": [], "scene_info": {"device_id": "013467007045764"},
}
REFUND = {
    "mchid": STORE, "transaction_id": "4200000001202603020001", "out_trade_no": "x",
    "refund_id": "50300000012026030200011", "out_refund_no": "r1", "refund_status": "SUCCESS",
    "success_time": "2026-03-02T11:00:00+08:00",
    "amount": {"total": 2000, "refund": 500, "payer_total": 2000, "payer_refund": 500},
}


def test_transaction_resource_is_accepted(engine: Engine) -> None:
    """The decrypted v3 transaction applies, then is a duplicate."""
    assert engine.submit("payment", TXN).points == 20
    assert engine.submit("payment", TXN).code is Code.DUPLICATE
    assert engine.submit("refund", REFUND).points == -5


def _broken(path: list[str], value: object) -> dict:
    d = copy.deepcopy(TXN)
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize(("path", "value", "code"), [
    (["transaction_id"], KeyError, Code.MISSING_FIELD),
    (["payer", "openid"], KeyError, Code.MISSING_FIELD),
    (["payer"], "me", Code.BAD_TYPE),
    (["amount", "total"], "20.00", Code.BAD_TYPE),
    (["amount", "total"], 20.0, Code.BAD_TYPE),
    (["amount", "total"], True, Code.BAD_TYPE),
    (["amount", "total"], -5, Code.BAD_VALUE),
    (["success_time"], "yesterday", Code.BAD_TIME),
    (["success_time"], "2026-03-02T10:34:56", Code.BAD_TIME),
    (["trade_type"], "CARRIER_PIGEON", Code.BAD_VALUE),
    (["attach"], "x" * 129, Code.BAD_VALUE),
    (["promotion_detail"], [{"name": "no id"}], Code.MISSING_FIELD),
    (["mchid"], "1999999999", Code.UNKNOWN_MERCHANT),
])
def test_bad_payment_fields_are_named(engine: Engine, path: list[str], value: object,
                                      code: Code) -> None:
    """Each malformed field gets its own code and a message naming the field."""
    out = engine.submit("payment", _broken(path, value))
    assert out.code is code and out.message
    assert engine.stats()["payments"] == 0


def test_not_success_states_are_acknowledged_and_ignored(engine: Engine) -> None:
    """trade_state other than SUCCESS and closed refunds change nothing but are acked."""
    assert engine.submit("payment", _broken(["trade_state"], "CLOSED")).code is Code.IGNORED
    closed = dict(REFUND, refund_status="CLOSED")
    out = engine.submit("refund", closed)
    assert out.code is Code.IGNORED and out.ok


@pytest.mark.parametrize(("kind", "data", "code"), [
    ("teleport", {}, Code.UNKNOWN_KIND),
    ("payment", [1, 2], Code.MALFORMED),
    ("payment", None, Code.MALFORMED),
    (None, {}, Code.UNKNOWN_KIND),
    ("binding", {"appid": APP, "openid": oid(1)}, Code.MISSING_FIELD),
    ("event", {"event_id": "e", "appid": APP, "openid": oid(1), "kind": "follow",
               "time": 5}, Code.BAD_TYPE),
    ("spend", {"spend_id": "s", "program": "quickmart", "points": "10",
               "time_s": 1772416800}, Code.BAD_TYPE),
    ("advance", {"time": "soon"}, Code.BAD_TIME),
])
def test_other_kinds_and_shapes(engine: Engine, kind: object, data: object, code: Code) -> None:
    """Unknown kinds, non-objects and bad fields of every kind are named."""
    assert engine.submit(kind, data).code is code  # type: ignore[arg-type]


def test_every_kind_applies_through_submit(engine: Engine) -> None:
    """Each kind of input can be given as plain data."""
    t = "2026-03-02T10:00:00+08:00"
    u = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
    inputs = [
        ("payment", TXN),
        ("event", {"event_id": "e1", "appid": APP, "openid": oid(1), "kind": "follow",
                   "time": t}),
        ("binding", {"appid": APP, "openid": oid(1), "unionid": u, "time": t}),
        ("enrollment", {"program": "quickmart", "unionid": u, "time": t}),
        ("spend", {"spend_id": "s1", "program": "quickmart", "unionid": u, "points": 10,
                   "time": t}),
        ("coupon", {"coupon_id": "c1", "program": "quickmart", "stock_id": "lunch3",
                    "unionid": u, "time": t}),
        ("refund", REFUND),
        ("advance", {"time": "2026-03-20T00:00:00+08:00"}),
    ]
    for kind, data in inputs:
        out = engine.submit(kind, data)
        assert out.code is Code.APPLIED, (kind, out)
    assert engine.balance("quickmart", unionid=u).available == 20 + 50 + 200 - 10 - 5


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31),
                    timezones=st.sampled_from([dt.timezone(dt.timedelta(minutes=m))
                                               for m in range(-14 * 60, 14 * 60 + 1, 15)])))
def test_compiled_time_parser_agrees_with_datetime(when: dt.datetime) -> None:
    """The compiled RFC 3339 parser gives datetime's answer for every canonical time."""
    text = when.replace(microsecond=0).isoformat()
    assert _fastparse.fast_time(text) == int(when.replace(microsecond=0).timestamp())
    assert parse_time(text) == int(when.replace(microsecond=0).timestamp())


@given(st.text(min_size=0, max_size=30))
def test_compiled_time_parser_never_guesses(text: str) -> None:
    """Anything the compiled parser accepts, datetime reads the same; the rest falls back."""
    t = _fastparse.fast_time(text)
    if t is not None:
        assert int(dt.datetime.fromisoformat(text).timestamp()) == t


@given(st.fixed_dictionaries({
    "transaction_id": st.text(min_size=1, max_size=40),
    "total": st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=False), st.text()),
    "payer_total": st.one_of(st.none(), st.integers(-5, 10**6)),
    "trade_type": st.sampled_from(["MICROPAY", "JSAPI", "PIGEON", 7]),
    "success_time": st.sampled_from(["2026-03-02T10:34:56+08:00", "2026-03-02T10:34:56Z",
                                     "2026-03-02 10:34:56", "2026-02-30T00:00:00+08:00"]),
    "attach": st.one_of(st.text(max_size=140), st.integers()),
}))
def test_compiled_payment_parser_agrees_with_the_careful_one(f: dict) -> None:
    """Whatever the compiled fast path accepts, the careful parser reads identically."""
    d = copy.deepcopy(TXN)
    d["transaction_id"], d["trade_type"], d["attach"] = (f["transaction_id"], f["trade_type"],
                                                         f["attach"])
    d["success_time"] = f["success_time"]
    d["amount"]["total"] = f["total"]
    if f["payer_total"] is None:
        del d["amount"]["payer_total"]
    else:
        d["amount"]["payer_total"] = f["payer_total"]
    fast = _fastparse.fast_payment(d)
    careful = _careful(d)
    if fast is not None:
        assert fast == careful


def _careful(d: dict) -> object:
    """The careful parser alone (the fast path bypassed)."""
    from collections import UserDict
    return feed_module.parse("payment", UserDict(d))
