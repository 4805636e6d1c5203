"""Identifiers the model gives its shoppers, payments and inputs: deterministic strings.

openids and unionids are 28 characters of [A-Za-z0-9_-] like the platform's; the
platform's own ids (transaction, refund) are 32 digits. All derive from integers, so
the same run produces the same ids.
"""

from __future__ import annotations

import numpy as np

from sim._tick import id_matrix

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
# The same ids for whole numpy columns: the characters are written into one byte matrix,
# one row per id ending in a newline, decoded once and split, which costs a third of
# formatting each id in Python. Each matrix is copies of one template row (the fixed
# prefix, zeros, the newline) with each number's digits written in, in one pass in C
# (sim._tick: a tick's few hundred ids took a dozen numpy calls).
_TAG_BYTES = np.frombuffer(PROGRAM_TAGS.encode(), np.uint8)
_DIGITS4 = np.array([list(f"{k:04d}".encode()) for k in range(10_000)], np.uint8)
_NL = ord("\n")
_ZERO = ord("0")


def _texts(head: bytes, number: np.ndarray, width: int) -> list[str]:
    """`head` followed by each of `number` zero-padded to `width` digits."""
    return texts(_matrix(head, number, width))


def texts(m: np.ndarray) -> list[str]:
    """The ids of byte matrix `m` (one per row, each ending in a newline) as str."""
    out = m.tobytes().decode("ascii").split("\n")
    out.pop()
    return out


def _spans(m: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The ids of byte matrix `m` as (bytes, starts, ends): never made into str."""
    starts = np.arange(len(m), dtype=np.int64) * m.shape[1]
    return m.tobytes(), starts, starts + (m.shape[1] - 1)


_ROWS: dict[tuple[bytes, int], bytes] = {}


def _matrix(head: bytes, number: np.ndarray, width: int) -> np.ndarray:
    """The ids' characters, one row each, ending in a newline: `head`, then `number`
    zero-padded to `width` digits (callers may overwrite head bytes per row)."""
    row = _ROWS.get((head, width))
    if row is None:
        row = _ROWS[head, width] = head + b"0" * width + b"\n"
    x = np.ascontiguousarray(number, np.int64)
    buf = id_matrix(row, x, width)  # one pass in C (None: a number out of range)
    if buf is not None:
        return buf
    # Negative numbers, or more digits than `width`: the last `width` digits of each, by
    # 4-digit table lookups.
    buf = np.empty((len(x), len(row)), np.uint8)
    buf[:] = np.frombuffer(row, np.uint8)
    end = len(row) - 1
    h = end - width
    while end > h:
        k = min(4, end - h)
        buf[:, end - k:end] = _DIGITS4[x % 10_000][:, 4 - k:]
        x = x // 10_000
        end -= k
        if not x.any():
            break
    return buf


def openid_matrix(program: np.ndarray, app: np.ndarray | int, shopper: np.ndarray,
                  ) -> np.ndarray:
    """The byte matrix (see `texts`) of `openid(program[k], app[k], shopper[k])`."""
    fixed = isinstance(app, int | np.integer)
    m = _matrix(b"oA%d_" % (app if fixed else 0), shopper, 24)
    m[:, 1] = _TAG_BYTES[program]
    if not fixed:
        m[:, 2] = np.asarray(app, np.uint8) + _ZERO
    return m


def openids(program: np.ndarray, app: np.ndarray | int, shopper: np.ndarray) -> list[str]:
    """Return `openid(program[k], app[k], shopper[k])` for every k."""
    return texts(openid_matrix(program, app, shopper))


def openid_spans(program: np.ndarray, app: np.ndarray | int,
                 shopper: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The same openids as (bytes, starts, ends)."""
    return _spans(openid_matrix(program, app, shopper))


def unionid_matrix(program: np.ndarray, shopper: np.ndarray) -> np.ndarray:
    """The byte matrix (see `texts`) of `unionid(program[k], shopper[k])`."""
    m = _matrix(b"uA_", shopper, 25)
    m[:, 1] = _TAG_BYTES[program]
    return m


def unionids(program: np.ndarray, shopper: np.ndarray) -> list[str]:
    """Return `unionid(program[k], shopper[k])` for every k."""
    return texts(unionid_matrix(program, shopper))


def transaction_ids(row: np.ndarray) -> list[str]:
    """Return `transaction_id(r)` for every row number in `row`."""
    return _texts(b"42", row, 30)


def transaction_id_spans(row: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The same transaction ids as (bytes, starts, ends)."""
    return _spans(_matrix(b"42", row, 30))


def refund_ids(row: np.ndarray) -> list[str]:
    """Return `refund_id(r)` for every row number in `row`."""
    return _texts(b"50", row, 30)


def input_id_matrix(prefix: str, row: np.ndarray) -> np.ndarray:
    """The byte matrix (see `texts`) of `input_id(prefix, r)` for every r in `row`."""
    return _matrix(prefix.encode(), row, 20)


def input_ids(prefix: str, row: np.ndarray) -> list[str]:
    """Return `input_id(prefix, r)` for every row number in `row`."""
    return texts(input_id_matrix(prefix, row))
