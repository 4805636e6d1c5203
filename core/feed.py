"""The plain-dict API: notification JSON shapes in, typed inputs out, every fault named.

`parse(kind, data)` returns a typed input or an Outcome rejection; it never raises
on bad data. Payment data is the decrypted WeChat Pay v3 transaction resource;
refund data the decrypted refund resource (../shared/DOMAIN.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from core import _fastparse, limits
from core.types import (
    Binding,
    Code,
    CouponIssue,
    Engagement,
    Enrollment,
    Outcome,
    Payment,
    Refund,
    Spend,
)

KINDS = ("payment", "refund", "event", "binding", "enrollment", "spend", "coupon", "advance")
TRADE_TYPES = frozenset({"JSAPI", "NATIVE", "APP", "MICROPAY", "MWEB", "FACEPAY"})


class Bad(Exception):
    """Raised inside this module only: carries the rejection for one input."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.outcome = Outcome(code, 0, message)


def parse_time(text: str) -> int:
    """RFC 3339 time with an offset (e.g. 2018-06-08T10:34:56+08:00) -> epoch seconds.

    Raises ValueError when the text is not such a time.
    """
    if type(text) is not str or len(text) > 40:
        raise ValueError("not an RFC 3339 time")
    t = _fastparse.fast_time(text)
    if t is not None:
        return t
    d = dt.datetime.fromisoformat(text)
    if d.tzinfo is None:
        raise ValueError("time has no UTC offset")
    return int(d.timestamp())


def _get(d: Mapping[str, Any], key: str, kind: type, where: str = "",
         required: bool = True, default: Any = None) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in d or d[key] is None:
        if required:
            raise Bad(Code.MISSING_FIELD, f"{name} is missing")
        return default
    v = d[key]
    if type(v) is not kind:
        raise Bad(Code.BAD_TYPE, f"{name} must be {kind.__name__}, got {type(v).__name__}")
    if kind is str and len(v) > limits.ATTACH_LEN_MAX * 2:
        raise Bad(Code.BAD_VALUE, f"{name} is too long")
    return v


def _obj(d: Mapping[str, Any], key: str, required: bool = True) -> Mapping[str, Any]:
    v = d.get(key)
    if v is None:
        if required:
            raise Bad(Code.MISSING_FIELD, f"{key} is missing")
        return {}
    if not isinstance(v, Mapping):
        raise Bad(Code.BAD_TYPE, f"{key} must be an object")
    return v


def _time(d: Mapping[str, Any], key: str = "time") -> int:
    if "time_s" in d and key not in d:
        return _get(d, "time_s", int)
    text = _get(d, key, str)
    try:
        return parse_time(text)
    except ValueError as e:
        raise Bad(Code.BAD_TIME, f"{key} {text!r} is not an RFC 3339 time: {e}") from None


def _payment(d: Mapping[str, Any]) -> Payment | Outcome:
    if type(d) is dict:
        fast = _fastparse.fast_payment(d)  # the common, plainly right case, compiled
        if fast is not None:
            return fast
    state = _get(d, "trade_state", str, required=False, default="SUCCESS")
    if state != "SUCCESS":
        return Outcome(Code.IGNORED, 0, f"trade_state {state}: nothing to apply")
    amount = _obj(d, "amount")
    trade_type = _get(d, "trade_type", str, required=False, default="MICROPAY")
    if trade_type not in TRADE_TYPES:
        raise Bad(Code.BAD_VALUE, f"trade_type {trade_type!r} is not one of the platform's")
    attach = _get(d, "attach", str, required=False, default="")
    if len(attach) > limits.ATTACH_LEN_MAX:
        raise Bad(Code.BAD_VALUE, f"attach is longer than {limits.ATTACH_LEN_MAX}")
    promos = d.get("promotion_detail") or []
    if not isinstance(promos, list) or len(promos) > limits.PROMOTIONS_PER_PAYMENT_MAX:
        raise Bad(Code.BAD_VALUE, "promotion_detail must be a list of at most "
                                  f"{limits.PROMOTIONS_PER_PAYMENT_MAX}")
    coupons = []
    for k, pr in enumerate(promos):
        if not isinstance(pr, Mapping):
            raise Bad(Code.BAD_TYPE, f"promotion_detail[{k}] must be an object")
        coupons.append(_get(pr, "coupon_id", str, f"promotion_detail[{k}]"))
    total = _get(amount, "total", int, "amount")
    payer = _get(amount, "payer_total", int, "amount", required=False, default=total)
    return Payment(
        transaction_id=_get(d, "transaction_id", str), appid=_get(d, "appid", str),
        mchid=_get(d, "mchid", str), openid=_get(_obj(d, "payer"), "openid", str, "payer"),
        total_fen=total, payer_total_fen=payer, time_s=_time(d, "success_time"),
        currency=_get(amount, "currency", str, "amount", required=False, default="CNY"),
        trade_type=trade_type, out_trade_no=_get(d, "out_trade_no", str, required=False,
                                                 default=""),
        device_id=_get(_obj(d, "scene_info", required=False), "device_id", str, "scene_info",
                       required=False, default=""),
        coupon_ids=tuple(coupons))


def _refund(d: Mapping[str, Any]) -> Refund | Outcome:
    status = _get(d, "refund_status", str, required=False, default="SUCCESS")
    if status != "SUCCESS":
        return Outcome(Code.IGNORED, 0, f"refund_status {status}: nothing to apply")
    amount = _obj(d, "amount")
    return Refund(
        refund_id=_get(d, "refund_id", str), transaction_id=_get(d, "transaction_id", str),
        mchid=_get(d, "mchid", str), refund_fen=_get(amount, "refund", int, "amount"),
        total_fen=_get(amount, "total", int, "amount"), time_s=_time(d, "success_time"),
        out_refund_no=_get(d, "out_refund_no", str, required=False, default=""),
        appid=_get(d, "appid", str, required=False, default=""),
        openid=_get(d, "openid", str, required=False, default=""))


def _who(d: Mapping[str, Any]) -> dict[str, str]:
    return {k: _get(d, k, str, required=False, default="") for k in ("unionid", "appid", "openid")}


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "payment": _payment,
    "refund": _refund,
    "event": lambda d: Engagement(
        event_id=_get(d, "event_id", str), appid=_get(d, "appid", str),
        openid=_get(d, "openid", str), kind=_get(d, "kind", str), time_s=_time(d),
        referred_openid=_get(d, "referred_openid", str, required=False, default="")),
    "binding": lambda d: Binding(appid=_get(d, "appid", str), openid=_get(d, "openid", str),
                                 unionid=_get(d, "unionid", str), time_s=_time(d)),
    "enrollment": lambda d: Enrollment(program=_get(d, "program", str), time_s=_time(d),
                                       **_who(d)),
    "spend": lambda d: Spend(spend_id=_get(d, "spend_id", str), program=_get(d, "program", str),
                             points=_get(d, "points", int), time_s=_time(d), **_who(d)),
    "coupon": lambda d: CouponIssue(coupon_id=_get(d, "coupon_id", str),
                                    program=_get(d, "program", str),
                                    stock_id=_get(d, "stock_id", str), time_s=_time(d), **_who(d)),
    "advance": _time,
}


def parse(kind: str, data: Any) -> Any:
    """Turn `data` of input `kind` into a typed input (an int time for "advance"), or an
    Outcome rejection naming what is wrong. Never raises on bad data."""
    parser = _PARSERS.get(kind) if type(kind) is str else None
    if parser is None:
        return Outcome(Code.UNKNOWN_KIND, 0, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(data, Mapping):
        return Outcome(Code.MALFORMED, 0, "data must be a JSON object")
    try:
        return parser(data)
    except Bad as e:
        return e.outcome
