"""Shared type names of the engine: result codes, inputs, outcomes, queries.

Money is integer minor units (fen), points are whole integers, time is integer
epoch seconds (`*_s`). Nothing here reads a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import NamedTuple


class Code(enum.StrEnum):
    """Named result of applying one input; rejections change nothing."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already applied: a normal result, nothing changes
    HELD = "held"  # refund held until its payment arrives
    IGNORED = "ignored"  # a valid notification that changes nothing (refund closed/abnormal)
    # Rejections of malformed input.
    MALFORMED = "malformed"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_VALUE = "bad_value"
    BAD_ID = "bad_id"
    BAD_TIME = "bad_time"
    UNKNOWN_KIND = "unknown_kind"
    # Rejections of inconsistent input.
    UNKNOWN_MERCHANT = "unknown_merchant"
    UNKNOWN_APP = "unknown_app"
    APP_MERCHANT_MISMATCH = "app_merchant_mismatch"
    UNKNOWN_CURRENCY = "unknown_currency"
    REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
    REFUND_MEMBER_MISMATCH = "refund_member_mismatch"
    REFUND_ID_CONFLICT = "refund_id_conflict"
    TRANSACTION_ID_CONFLICT = "transaction_id_conflict"
    OPENID_BOUND_ELSEWHERE = "openid_bound_elsewhere"
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_PROGRAM = "unknown_program"
    NOT_MEMBER = "not_member"
    ALREADY_MEMBER = "already_member"
    UNKNOWN_EVENT_RULE = "unknown_event_rule"
    CAP_REACHED = "cap_reached"
    INSUFFICIENT_POINTS = "insufficient_points"
    UNKNOWN_COUPON = "unknown_coupon"
    COUPON_NOT_USABLE = "coupon_not_usable"
    TIME_BEFORE_CLOCK = "time_before_clock"
    LIMIT_EXCEEDED = "limit_exceeded"
    # An event, refund or spend whose time is older than the idempotency window
    # (engine clock - window): its id may be forgotten, so it is never applied.
    STALE = "stale"

    @property
    def ok(self) -> bool:
        """True for results that acknowledge the input (applied, duplicate, held, ignored)."""
        return self in _OK


_OK = frozenset({Code.APPLIED, Code.DUPLICATE, Code.HELD, Code.IGNORED})


class Outcome(NamedTuple):
    """What applying one input did: its code, the points it moved, and a message."""

    code: Code
    points: int = 0
    message: str = ""
    offer_membership: bool = False  # "pay to become a member" is due after this payment
    friend_invite: bool = False  # Friend Membership: visits reached the program's threshold

    @property
    def ok(self) -> bool:
        """True when the input is acknowledged (applied, duplicate, held or ignored)."""
        return self.code in _OK


def reject(code: Code, message: str) -> Outcome:
    """An Outcome for a rejection: `code` with a readable `message`."""
    return Outcome(code, 0, message)


DUPLICATE = Outcome(Code.DUPLICATE, 0, "already applied")


_SPECS: dict[type, tuple[tuple[str, type, bool], ...]] = {}


def type_fault(x: object) -> str | None:
    """Name the first field of input dataclass `x` whose value has the wrong type, or None.

    Inputs' annotations are `str`, `int` or `tuple[str, ...]`; bool is not an int here.
    """
    spec = _SPECS.get(type(x))
    if spec is None:
        spec = _SPECS[type(x)] = tuple(
            (f.name, {"str": str, "int": int}.get(f.type, tuple), f.type not in ("str", "int"))
            for f in fields(x))  # type: ignore[arg-type]
    for name, want, of_str in spec:
        v = getattr(x, name)
        if type(v) is not want or (of_str and not all(type(e) is str for e in v)):
            label = "tuple[str, ...]" if of_str else want.__name__
            return f"{name} must be {label}, got {type(v).__name__}"
    return None


class Entry(enum.IntEnum):
    """Kinds of ledger entry; every change of a balance is one of these."""

    EARN = 1  # points credited straight to available
    PENDING = 2  # points credited to pending (return window)
    UNLOCK = 3  # pending -> available
    SPEND = 4
    EXPIRE = 5
    REVERSE = 6  # refund took points back
    MERGE_OUT = 7  # points left an account in an identity merge
    MERGE_IN = 8  # ... and arrived in the surviving account
    CONVERT = 9  # shadow points converted on enrollment
    BONUS = 10  # welcome bonus and other grants
    FORFEIT = 11  # shadow points older than the lookback window, dropped on enrollment
    MOVE_OUT = 12  # points left an account moved to another shard (core/migrate.py)
    MOVE_IN = 13  # ... and arrived in its copy there


class Bucket(enum.IntEnum):
    """Which balance of an account a ledger entry moves."""

    AVAILABLE = 0
    PENDING = 1
    SHADOW = 2
    SHADOW_PENDING = 3


@dataclass(slots=True)
class Payment:
    """A successful payment: the decrypted transaction resource, typed."""

    transaction_id: str
    appid: str
    mchid: str
    openid: str
    total_fen: int
    time_s: int
    payer_total_fen: int = -1  # -1: same as total_fen
    currency: str = "CNY"
    trade_type: str = "MICROPAY"
    out_trade_no: str = ""
    device_id: str = ""
    coupon_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class Refund:
    """A successful (possibly partial) refund of one payment."""

    refund_id: str
    transaction_id: str
    mchid: str
    refund_fen: int
    total_fen: int
    time_s: int
    out_refund_no: str = ""
    appid: str = ""  # optional: when given with openid, the refund must be that member's
    openid: str = ""


@dataclass(slots=True)
class Engagement:
    """A tracked non-payment interaction (follow, visit, livestream, ugc, checkin, ad, referral)."""

    event_id: str
    appid: str
    openid: str
    kind: str
    time_s: int
    referred_openid: str = ""  # for referrals: the shopper who was referred


@dataclass(slots=True)
class Binding:
    """(appid, openid) learned to belong to unionid within the app's brand."""

    appid: str
    openid: str
    unionid: str
    time_s: int


@dataclass(slots=True)
class Enrollment:
    """A shopper joins a brand's program, known by unionid or by (appid, openid)."""

    program: str
    time_s: int
    unionid: str = ""
    appid: str = ""
    openid: str = ""


@dataclass(slots=True)
class Spend:
    """Points spent at the till by a member."""

    spend_id: str
    program: str
    points: int
    time_s: int
    unionid: str = ""
    appid: str = ""
    openid: str = ""


@dataclass(slots=True)
class CouponIssue:
    """A card coupon issued to a member by rule or pushed by a campaign."""

    coupon_id: str
    program: str
    stock_id: str
    time_s: int
    unionid: str = ""
    appid: str = ""
    openid: str = ""


@dataclass(slots=True, frozen=True)
class Balance:
    """Balances of one account: available, pending, shadow points, tier and membership."""

    available: int
    pending: int
    shadow: int
    shadow_pending: int
    tier: str
    member: bool
    qualifying: int  # points (or fen) counted toward the tier in the rolling window


@dataclass(slots=True, frozen=True)
class LedgerRow:
    """One ledger entry as a query returns it; `cause` names the input behind it."""

    seq: int
    time_s: int
    entry: Entry
    bucket: Bucket
    points: int
    cause: str


@dataclass(slots=True)
class AdvanceReport:
    """What an `advance(now)` did: points unlocked and expired, tiers changed."""

    now_s: int
    unlocked: int = 0
    expired: int = 0
    tier_changes: int = 0
    coupons_expired: int = 0
    notes: list[str] = field(default_factory=list)
