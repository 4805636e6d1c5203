"""The `--trace` file: every input the model delivered, as timestamped JSON lines.

Each line is `{"t_s": delivery time (epoch seconds, float), "attempt": n, "kind": ...,
"data": {...}}` where kind and data are exactly what `Engine.submit` and
`paymember ingest` take (payment data is the decrypted WeChat Pay v3 transaction),
so the load tests can replay a run against the service.
"""

from __future__ import annotations

import datetime as dt
from typing import IO, Any

import orjson

from core import Binding, CouponIssue, Engagement, Enrollment, Payment, Refund


def rfc3339(time_s: int, offset_s: int) -> str:
    """Return epoch second `time_s` as RFC 3339 text at UTC offset `offset_s`."""
    tz = dt.timezone(dt.timedelta(seconds=offset_s))
    return dt.datetime.fromtimestamp(time_s, tz).isoformat()


def as_data(x: Any, offset_s: int) -> tuple[str, dict[str, Any]]:
    """Return (kind, data) of typed input `x` in the plain-dict API's shapes."""
    if isinstance(x, Payment):
        payer = x.total_fen if x.payer_total_fen < 0 else x.payer_total_fen
        promos = [{"coupon_id": c, "scope": "SINGLE", "type": "CASH",
                   "amount": x.total_fen - payer, "currency": x.currency} for c in x.coupon_ids]
        return "payment", {
            "appid": x.appid, "mchid": x.mchid, "out_trade_no": x.transaction_id,
            "transaction_id": x.transaction_id, "trade_type": x.trade_type,
            "trade_state": "SUCCESS", "trade_state_desc": "ok", "bank_type": "OTHERS",
            "attach": "", "success_time": rfc3339(x.time_s, offset_s),
            "payer": {"openid": x.openid},
            "amount": {"total": x.total_fen, "payer_total": payer, "currency": x.currency,
                       "payer_currency": x.currency},
            "promotion_detail": promos, "scene_info": {"device_id": x.device_id}}
    if isinstance(x, Refund):
        return "refund", {
            "mchid": x.mchid, "transaction_id": x.transaction_id,
            "out_trade_no": x.transaction_id, "refund_id": x.refund_id,
            "out_refund_no": x.refund_id, "refund_status": "SUCCESS",
            "success_time": rfc3339(x.time_s, offset_s),
            "amount": {"total": x.total_fen, "refund": x.refund_fen, "payer_total": x.total_fen,
                       "payer_refund": x.refund_fen}}
    if isinstance(x, Engagement):
        return "event", {"event_id": x.event_id, "appid": x.appid, "openid": x.openid,
                         "kind": x.kind, "time_s": x.time_s}
    if isinstance(x, Binding):
        return "binding", {"appid": x.appid, "openid": x.openid, "unionid": x.unionid,
                           "time_s": x.time_s}
    if isinstance(x, Enrollment):
        return "enrollment", {"program": x.program, "unionid": x.unionid, "time_s": x.time_s}
    if isinstance(x, CouponIssue):
        return "coupon", {"coupon_id": x.coupon_id, "program": x.program,
                          "stock_id": x.stock_id, "unionid": x.unionid, "time_s": x.time_s}
    raise TypeError(f"not a model input: {type(x).__name__}")


class TraceWriter:
    """Writes delivered inputs to an open binary file, one JSON object a line."""

    def __init__(self, out: IO[bytes], start_s: int, offset_s: int) -> None:
        """Write to `out`; times are seconds after `start_s` at UTC offset `offset_s`."""
        self.out, self.start_s, self.offset_s = out, start_s, offset_s
        self.lines = 0

    def write(self, due_s: float, attempt: int, x: Any) -> None:
        """Write input `x` delivered at `due_s` (model seconds) as its `attempt`-th try."""
        kind, data = as_data(x, self.offset_s)
        self.out.write(orjson.dumps({"t_s": round(self.start_s + due_s, 3), "attempt": attempt,
                                     "kind": kind, "data": data}) + b"\n")
        self.lines += 1
