"""core's routing (`shard_of`: crc32 of the key, modulo shards) for many model openids
at once: the openids are built as a byte matrix from numpy columns (no Python strings)
and hashed with core's `crc32_rows`."""

from __future__ import annotations

import zlib

import numpy as np

from core.routing import crc32_rows
from sim.ids import PROGRAM_TAGS

_TAGS = np.frombuffer(PROGRAM_TAGS.encode(), np.uint8)
# The last 18 of the 24 digits (int64 holds 10^18); shopper numbers are far smaller.
_POW10 = 10 ** np.arange(17, -1, -1, dtype=np.int64)


def openid_bytes(prog: np.ndarray, app: np.ndarray, shopper: np.ndarray) -> np.ndarray:
    """Return the (n, 28) uint8 matrix of `sim.ids.openid(prog, app, shopper)` for each row."""
    n = len(shopper)
    b = np.empty((n, 28), np.uint8)
    b[:, 0] = ord("o")
    b[:, 1] = _TAGS[prog]
    b[:, 2] = ord("0") + app
    b[:, 3] = ord("_")
    b[:, 4:10] = ord("0")
    b[:, 10:] = (shopper[:, None] // _POW10 % 10 + ord("0")).astype(np.uint8)
    return b


def openid_shards(prog: np.ndarray, app: np.ndarray, shopper: np.ndarray,
                  shards: int) -> np.ndarray:
    """Return `core.shard_of(openid, shards)` of each row's openid (int64)."""
    return (crc32_rows(openid_bytes(prog, app, shopper)) % np.uint32(shards)).astype(np.int64)


def _crc_table() -> np.ndarray:
    """zlib's crc32 table (polynomial 0xEDB88320), all 256 entries at once."""
    c = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        c = np.where(c & 1, (c >> np.uint32(1)) ^ np.uint32(0xEDB88320), c >> np.uint32(1))
    return c.astype(np.uint32)


_CRC_TABLE = _crc_table()


def openid_shards_of(prog: int, app: int, shopper: np.ndarray, shards: int) -> np.ndarray:
    """Return `openid_shards` of `shopper`s' openids in app `app` of program `prog`.

    All these openids share their bytes up to the largest shopper's significant digits
    (tag, app, zero padding), so the crc32 of that prefix is computed once and only the
    remaining digit columns are hashed per row: the same numbers, with far fewer steps.
    """
    n = len(shopper)
    if not n:
        return np.zeros(0, np.int64)
    digits = len(str(int(shopper.max())))
    one = np.zeros(1, np.int64)
    prefix = openid_bytes(one + prog, one + app, one)[0, :28 - digits].tobytes()
    crc = np.full(n, zlib.crc32(prefix) ^ 0xFFFFFFFF, np.uint32)
    eight = np.uint32(8)
    digit = (shopper[:, None] // _POW10[18 - digits:] % 10 + ord("0")).astype(np.uint32)
    for k in range(digits):
        crc = _CRC_TABLE[(crc ^ digit[:, k]) & 0xFF] ^ (crc >> eight)
    return ((crc ^ np.uint32(0xFFFFFFFF)) % np.uint32(shards)).astype(np.int64)
