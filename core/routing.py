"""The one routing function: which shard owns a member key.

The service, the simulation and the load generator all route with `shard_of`,
so a key always lands on the same shard whoever sends it.
"""

from __future__ import annotations

import zlib


def shard_of(key: str, shards: int) -> int:
    """Return the shard (0..shards-1) owning `key` (an openid or unionid); stable across runs.

    Raises ValueError when `shards` < 1.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    # crc32 is stable across processes (unlike hash()) and fast in C.
    return zlib.crc32(key.encode()) % shards
