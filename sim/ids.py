"""Identifiers the model gives its shoppers, payments and inputs: deterministic strings.

openids and unionids are 28 characters of [A-Za-z0-9_-] like the platform's; the
platform's own ids (transaction, refund) are 32 digits. All derive from integers, so
the same run produces the same ids.
"""

from __future__ import annotations

import numpy as np

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


# ---------------------------------------------------------------- many at once
# The same ids for whole numpy columns: the characters are written into one byte matrix
# (digits four at a time from a table), decoded once and split, which costs a third of
# formatting each id in Python.
_TAG_BYTES = np.frombuffer(PROGRAM_TAGS.encode(), np.uint8)
_DIGITS4 = np.array([list(f"{k:04d}".encode()) for k in range(10_000)], np.uint8)
_NL = ord("\n")


def _texts(head: np.ndarray | bytes, number: np.ndarray, width: int) -> list[str]:
    """Rows of `head` ((n, h) bytes, or one prefix for all) followed by `number`
    zero-padded to `width` digits."""
    out = _matrix(head, number, width).tobytes().decode("ascii").split("\n")
    out.pop()
    return out


def _spans(head: np.ndarray | bytes, number: np.ndarray,
           width: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The ids `_texts` makes as (bytes, starts, ends): never made into str."""
    m = _matrix(head, number, width)
    starts = np.arange(len(m), dtype=np.int64) * m.shape[1]
    return m.tobytes(), starts, starts + (m.shape[1] - 1)


def _matrix(head: np.ndarray | bytes, number: np.ndarray, width: int) -> np.ndarray:
    """The ids' characters, one row each, ending in a newline."""
    n = len(number)
    h = len(head) if isinstance(head, bytes) else head.shape[1]
    buf = np.empty((n, h + width + 1), np.uint8)
    buf[:, :h] = np.frombuffer(head, np.uint8) if isinstance(head, bytes) else head
    buf[:, -1] = _NL
    x = np.asarray(number, np.int64)
    hi = h + width
    while hi > h:
        k = min(4, hi - h)
        buf[:, hi - k:hi] = _DIGITS4[x % 10_000][:, 4 - k:]
        x = x // 10_000
        hi -= k
        if not x.any():
            buf[:, h:hi] = ord("0")
            break
    return buf


def openids(program: np.ndarray, app: np.ndarray | int, shopper: np.ndarray) -> list[str]:
    """Return `openid(program[k], app[k], shopper[k])` for every k."""
    return _texts(_openid_heads(program, app, shopper), shopper, 24)


def openid_spans(program: np.ndarray, app: np.ndarray | int,
                 shopper: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The same openids as (bytes, starts, ends)."""
    return _spans(_openid_heads(program, app, shopper), shopper, 24)


def _openid_heads(program: np.ndarray, app: np.ndarray | int, shopper: np.ndarray) -> np.ndarray:
    n = len(shopper)
    head = np.empty((n, 4), np.uint8)
    head[:, 0] = ord("o")
    head[:, 1] = _TAG_BYTES[program]
    head[:, 2] = ord("0") + np.asarray(app)
    head[:, 3] = ord("_")
    return head


def unionids(program: np.ndarray, shopper: np.ndarray) -> list[str]:
    """Return `unionid(program[k], shopper[k])` for every k."""
    n = len(shopper)
    head = np.empty((n, 3), np.uint8)
    head[:, 0] = ord("u")
    head[:, 1] = _TAG_BYTES[program]
    head[:, 2] = ord("_")
    return _texts(head, shopper, 25)


def transaction_ids(row: np.ndarray) -> list[str]:
    """Return `transaction_id(r)` for every row number in `row`."""
    return _texts(b"42", row, 30)


def transaction_id_spans(row: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The same transaction ids as (bytes, starts, ends)."""
    return _spans(b"42", row, 30)


def refund_ids(row: np.ndarray) -> list[str]:
    """Return `refund_id(r)` for every row number in `row`."""
    return _texts(b"50", row, 30)


def input_ids(prefix: str, row: np.ndarray) -> list[str]:
    """Return `input_id(prefix, r)` for every row number in `row`."""
    return _texts(prefix.encode(), row, 20)
