"""Plain-dict inputs as the platform and the merchant's systems send them.

The dicts are those of `core.Engine.submit` (docs/ENGINE_API.md): the
decrypted WeChat Pay v3 transaction and refund resources, bindings,
enrollments and engagement events.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

CHINA_OFFSET_S = 8 * 3600


def rfc3339(time_s: int, offset_s: int = CHINA_OFFSET_S) -> str:
    """Return epoch `time_s` as RFC 3339 with a +HH:MM offset of `offset_s` seconds."""
    tz = dt.timezone(dt.timedelta(seconds=offset_s))
    return dt.datetime.fromtimestamp(time_s, tz).isoformat()


def payment_data(transaction_id: str, appid: str, mchid: str, openid: str, total_fen: int,
                 time_s: int, payer_total_fen: int | None = None, currency: str = "CNY",
                 trade_type: str = "MICROPAY", device_id: str = "013467007045764",
                 attach: str = "") -> dict[str, Any]:
    """Return the decrypted transaction resource of a successful payment."""
    payer_total = total_fen if payer_total_fen is None else payer_total_fen
    return {
        "appid": appid, "mchid": mchid, "out_trade_no": "o" + transaction_id,
        "transaction_id": transaction_id, "trade_type": trade_type, "trade_state": "SUCCESS",
        "trade_state_desc": "ok", "bank_type": "OTHERS", "attach": attach,
        "success_time": rfc3339(time_s), "payer": {"openid": openid},
        "amount": {"total": total_fen, "payer_total": payer_total, "currency": currency,
                   "payer_currency": currency},
        "promotion_detail": [], "scene_info": {"device_id": device_id},
    }


def refund_data(refund_id: str, transaction_id: str, mchid: str, refund_fen: int,
                total_fen: int, time_s: int, status: str = "SUCCESS") -> dict[str, Any]:
    """Return the decrypted refund resource of a refund of `refund_fen` out of `total_fen`."""
    return {
        "mchid": mchid, "transaction_id": transaction_id, "out_trade_no": "o" + transaction_id,
        "refund_id": refund_id, "out_refund_no": "o" + refund_id, "refund_status": status,
        "success_time": rfc3339(time_s),
        "amount": {"total": total_fen, "refund": refund_fen, "payer_total": total_fen,
                   "payer_refund": refund_fen},
    }


def binding_data(appid: str, openid: str, unionid: str, time_s: int) -> dict[str, Any]:
    """Return a binding of (appid, openid) to `unionid`."""
    return {"appid": appid, "openid": openid, "unionid": unionid, "time_s": time_s}


def enrollment_data(program: str, time_s: int, unionid: str = "", appid: str = "",
                    openid: str = "") -> dict[str, Any]:
    """Return an enrollment in `program`, by unionid or by (appid, openid)."""
    data: dict[str, Any] = {"program": program, "time_s": time_s}
    if unionid:
        data["unionid"] = unionid
    else:
        data["appid"], data["openid"] = appid, openid
    return data


def event_data(event_id: str, appid: str, openid: str, kind: str, time_s: int) -> dict[str, Any]:
    """Return an engagement event (follow, visit, ...) of (appid, openid)."""
    return {"event_id": event_id, "appid": appid, "openid": openid, "kind": kind,
            "time_s": time_s}
