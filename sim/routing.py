"""core's routing (`shard_of`: crc32 of the key, modulo shards) for many model openids
at once: the openids are built as a byte matrix from numpy columns (no Python strings)
and hashed with core's `crc32_rows`."""

from __future__ import annotations

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
