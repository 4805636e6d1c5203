"""paymember core: the in-memory payment-to-membership accrual engine.

The whole public surface is listed in `__all__` below.
"""

from core.config import ConfigError
from core.engine import Engine
from core.feed import KINDS, parse_time
from core.invariants import assert_invariants, check_invariants
from core.program import Campaign, CouponStock, EventRule, Program, Tier, load_program
from core.routing import shard_of
from core.types import (
    AdvanceReport,
    Balance,
    Binding,
    Bucket,
    Code,
    CouponIssue,
    Engagement,
    Enrollment,
    Entry,
    LedgerRow,
    Outcome,
    Payment,
    Refund,
    Spend,
)

__all__ = [
    "KINDS",
    "AdvanceReport",
    "Balance",
    "Binding",
    "Bucket",
    "Campaign",
    "Code",
    "ConfigError",
    "CouponIssue",
    "CouponStock",
    "Engagement",
    "Engine",
    "Enrollment",
    "Entry",
    "EventRule",
    "LedgerRow",
    "Outcome",
    "Payment",
    "Program",
    "Refund",
    "Spend",
    "Tier",
    "assert_invariants",
    "check_invariants",
    "load_program",
    "parse_time",
    "shard_of",
]
