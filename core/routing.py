"""The one routing function: which shard owns a member key, for one key or a batch.

The service, the simulation, the load generator and `ShardedEngine` all route with
`shard_of` (one key) or `shards_of` (many keys, the same numbers), so a key always
lands on the same shard whoever sends it. `Forwards` is the same function for an
engine whose accounts can move (`ShardedEngine` moves an openid's account to its
unionid's shard on a binding): `shard_of`, except for the (appid, openid) pairs that
moved, which go where their account lives now.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

_POLY = 0xEDB88320
_TABLE = np.zeros(256, np.uint32)
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE[_i] = _c
del _i, _c


def shard_of(key: str, shards: int) -> int:
    """Return the shard (0..shards-1) owning `key` (an openid or unionid); stable across runs.

    Raises ValueError when `shards` < 1.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    # crc32 is stable across processes (unlike hash()) and fast in C.
    return zlib.crc32(key.encode()) % shards


def crc32_rows(b: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Return zlib.crc32 (uint32) of each row of the uint8 matrix `b`, over its first
    `lengths[i]` bytes (all of it when `lengths` is None); table-driven, one column a step.

    Raises ValueError when `b` is not a 2-d uint8 matrix or `lengths` does not fit it.
    """
    if b.ndim != 2 or b.dtype != np.uint8:
        raise ValueError(f"expected a 2-d uint8 matrix, got {b.ndim}-d {b.dtype}")
    crc = np.full(len(b), 0xFFFFFFFF, np.uint32)
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(b),) or (len(b) and not 0 <= lengths.min() <= lengths.max()
                                          <= b.shape[1]):
            raise ValueError("lengths must give 0..width bytes for each row")
    eight = np.uint32(8)
    for k in range(b.shape[1]):
        step = _TABLE[(crc ^ b[:, k]) & 0xFF] ^ (crc >> eight)
        crc = step if lengths is None else np.where(lengths > k, step, crc)
    return crc ^ np.uint32(0xFFFFFFFF)


def shards_of(keys: Sequence[str] | np.ndarray, shards: int) -> np.ndarray:
    """Return `shard_of(key, shards)` of every key (int64 array), for a list of str or a
    numpy array of str (`U`), bytes (`S`: UTF-8, trailing NULs are padding) or str objects.

    Raises ValueError when `shards` < 1 or the array's dtype holds no keys.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if isinstance(keys, np.ndarray):
        if keys.dtype.kind == "U":
            keys = np.char.encode(keys, "utf-8")
        if keys.dtype.kind == "S":
            width = keys.dtype.itemsize
            if not len(keys) or not width:
                crc = np.full(len(keys), zlib.crc32(b""), np.uint32)
            else:
                # numpy pads `S` items with NULs and drops trailing NULs: a key ends there.
                crc = crc32_rows(np.ascontiguousarray(keys).view(np.uint8).reshape(-1, width),
                                 np.char.str_len(keys))
            return (crc % np.uint32(shards)).astype(np.int64)
        if keys.dtype.kind != "O":
            raise ValueError(f"keys of dtype {keys.dtype} are not strings")
        keys = keys.tolist()
    # One C call per key (encode, crc32) with no Python frame between: as fast as the
    # numpy table for 28-char ids, and exact for any text.
    crc = np.fromiter(map(zlib.crc32, map(str.encode, keys)), np.uint32, len(keys))
    return (crc % np.uint32(shards)).astype(np.int64)


class Forwards:
    """Routing with moved accounts: (appid, openid) -> the shard its account lives on, for
    the pairs whose shard is not `shard_of(openid)`; every other pair routes as usual."""

    __slots__ = ("openids", "shards", "to")

    def __init__(self, shards: int) -> None:
        """No moved account yet, over `shards` shards (ValueError when < 1)."""
        if shards < 1:
            raise ValueError(f"shards must be >= 1, got {shards}")
        self.shards = shards
        self.to: dict[tuple[str, str], int] = {}
        self.openids: set[str] = set()  # the openids of `to`, for a batch's quick test

    def __len__(self) -> int:
        """The number of moved pairs."""
        return len(self.to)

    def set(self, appid: str, openid: str, shard: int) -> None:
        """Record that the account of (appid, openid) lives on `shard` now."""
        if shard == shard_of(openid, self.shards):
            self.to.pop((appid, openid), None)
            if not any(o == openid for _, o in self.to):
                self.openids.discard(openid)
        else:
            self.to[(appid, openid)] = shard
            self.openids.add(openid)

    def shard(self, appid: object, openid: str) -> int:
        """The shard of the account of (appid, openid)."""
        if openid in self.openids:
            s = self.to.get((appid, openid))  # type: ignore[arg-type]
            if s is not None:
                return s
        return shard_of(openid, self.shards)

    def shards_of(self, appids: Sequence[str], openids: Sequence[str],
                  routed: np.ndarray | None = None) -> np.ndarray:
        """`shard` of every (appids[i], openids[i]), as `shards_of` numbers them (int64).
        `routed`, when given, is `shards_of(openids)` already computed (it is updated)."""
        out = shards_of(openids, self.shards) if routed is None else routed
        if self.to and not self.openids.isdisjoint(openids):
            # A set test a row in C; the pairs' own lookups only for the openids that moved.
            hit = np.fromiter(map(self.openids.__contains__, openids), bool, len(out))
            to = self.to
            for r in np.flatnonzero(hit).tolist():
                s = to.get((appids[r], openids[r]))
                if s is not None:
                    out[r] = s
        return out


__all__ = ["Forwards", "crc32_rows", "shard_of", "shards_of"]
