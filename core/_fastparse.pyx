# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""The dict path's common case, compiled: a decrypted transaction resource that is
plainly right becomes a `Payment` without the careful parser (core.feed), and an
RFC 3339 time in the platform's one layout becomes epoch seconds. Anything else
returns None and the careful parser names the fault.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

from core import limits
from core.types import Payment

cdef frozenset _TRADE_TYPES = frozenset({"JSAPI", "NATIVE", "APP", "MICROPAY", "MWEB",
                                         "FACEPAY"})
cdef Py_ssize_t ATTACH_MAX = limits.ATTACH_LEN_MAX


cdef inline int _digits(str s, Py_ssize_t at, Py_ssize_t n) except -2:
    cdef int v = 0
    cdef Py_ssize_t j
    cdef int ch
    for j in range(at, at + n):
        ch = <int>(<Py_UCS4>s[j])
        if ch < 48 or ch > 57:
            return -1
        v = v * 10 + (ch - 48)
    return v


cdef long long _days_from_civil(long long y, long long m, long long d):
    # Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
    y -= m <= 2
    cdef long long era = (y if y >= 0 else y - 399) // 400
    cdef long long yoe = y - era * 400
    cdef long long doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    cdef long long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef int[13] _MDAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def fast_time(str s):
    """Epoch seconds of `s` if it is exactly `YYYY-MM-DDTHH:MM:SS+HH:MM` (or `...Z`),
    else None (the caller falls back to the general parser)."""
    cdef Py_ssize_t n = len(s)
    cdef int y, mo, d, h, mi, se, oh, om, sign
    if n != 25 and n != 20:
        return None
    if s[4] != "-" or s[7] != "-" or s[10] != "T" or s[13] != ":" or s[16] != ":":
        return None
    y, mo, d = _digits(s, 0, 4), _digits(s, 5, 2), _digits(s, 8, 2)
    h, mi, se = _digits(s, 11, 2), _digits(s, 14, 2), _digits(s, 17, 2)
    if y < 0 or mo < 1 or mo > 12 or d < 1 or d > _MDAYS[mo] or h < 0 or h > 23 or mi < 0 \
            or mi > 59 or se < 0 or se > 59:
        return None
    if mo == 2 and d == 29 and not (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)):
        return None
    if n == 20:
        if s[19] != "Z":
            return None
        oh = om = 0
        sign = 1
    else:
        if s[22] != ":" or (s[19] != "+" and s[19] != "-"):
            return None
        oh, om = _digits(s, 20, 2), _digits(s, 23, 2)
        if oh < 0 or oh > 23 or om < 0 or om > 59:
            return None
        sign = 1 if s[19] == "+" else -1
    return (_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se
            - sign * (oh * 3600 + om * 60))


def fast_payment(dict d):
    """A Payment from the decrypted transaction dict `d` when every field is plainly
    right; None when anything needs the careful parser (which names the fault)."""
    amount = d.get("amount")
    payer = d.get("payer")
    if type(amount) is not dict or type(payer) is not dict:
        return None
    txid = d.get("transaction_id")
    appid = d.get("appid")
    mchid = d.get("mchid")
    openid = (<dict>payer).get("openid")
    when = d.get("success_time")
    total = (<dict>amount).get("total")
    if (type(txid) is not str or type(appid) is not str or type(mchid) is not str
            or type(openid) is not str or type(when) is not str or type(total) is not int
            or len(<str>txid) > 2 * ATTACH_MAX or len(<str>appid) > 2 * ATTACH_MAX
            or len(<str>mchid) > 2 * ATTACH_MAX or len(<str>openid) > 2 * ATTACH_MAX):
        return None
    state = d.get("trade_state", "SUCCESS")
    trade_type = d.get("trade_type", "MICROPAY")
    attach = d.get("attach", "")
    if (state != "SUCCESS" or type(trade_type) is not str or trade_type not in _TRADE_TYPES
            or type(attach) is not str or len(<str>attach) > ATTACH_MAX):
        return None
    payer_total = (<dict>amount).get("payer_total", total)
    currency = (<dict>amount).get("currency", "CNY")
    if type(payer_total) is not int or type(currency) is not str:
        return None
    promos = d.get("promotion_detail")
    if promos:
        return None  # coupons: the careful parser reads them
    out_trade_no = d.get("out_trade_no", "")
    scene = d.get("scene_info")
    device = ""
    if scene is not None:
        if type(scene) is not dict:
            return None
        device = (<dict>scene).get("device_id", "")
    if type(out_trade_no) is not str or type(device) is not str:
        return None
    t = fast_time(<str>when)
    if t is None:
        return None
    return Payment(txid, appid, mchid, openid, total, t, payer_total, currency, trade_type,
                   out_trade_no, device, ())
