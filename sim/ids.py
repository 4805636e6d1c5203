"""Identifiers the model gives its shoppers, payments and inputs: deterministic strings.

openids and unionids are 28 characters of [A-Za-z0-9_-] like the platform's; the
platform's own ids (transaction, refund) are 32 digits. All derive from integers, so
the same run produces the same ids.
"""

from __future__ import annotations

# One character per program index (a run has at most this many programs).
PROGRAM_TAGS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PROGRAMS_MAX = len(PROGRAM_TAGS)


def openid(program: int, app: int, shopper: int) -> str:
    """Return shopper `shopper`'s openid in app number `app` of program number `program`."""
    return f"o{PROGRAM_TAGS[program]}{app}_{shopper:024d}"


def unionid(program: int, shopper: int) -> str:
    """Return shopper `shopper`'s unionid on program number `program`'s open platform."""
    return f"u{PROGRAM_TAGS[program]}_{shopper:025d}"


def transaction_id(row: int) -> str:
    """Return the platform transaction_id of payment row `row`."""
    return f"42{row:030d}"


def refund_id(row: int) -> str:
    """Return the platform refund_id of refund row `row`."""
    return f"50{row:030d}"


def input_id(prefix: str, row: int) -> str:
    """Return an id for a non-platform input (event, coupon) of row `row`."""
    return f"{prefix}{row:020d}"
