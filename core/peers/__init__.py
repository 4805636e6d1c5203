"""Peers: the same payment accrual built the way one would without this engine.

(a) `NaivePeer`: straightforward Python, a dict of member objects;
(b) `RedisLuaPeer`: Redis 7 with a Lua script, pipelined via redis-py;
(c) `SqlitePeer`: SQLite, one transaction per payment.
Each has `run(payments) -> payments_per_s`, `pay(p) -> points | DUPLICATE | REJECTED`
and `state() -> {openid: (points, tier)}`; `measure` runs the chosen ones.
`ensure_program` installs a Debian package a benchmark drives when it is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from core.peers.apt import ensure_program
from core.peers.naive import NaivePeer
from core.peers.redis_lua import RedisLuaPeer, RedisServer
from core.peers.rules import DUPLICATE, REJECTED, Rules, rules_of
from core.peers.sqlite_peer import SqlitePeer
from core.program import Program
from core.types import Payment

PEER_NAMES = ("naive_python", "redis_lua", "sqlite")


def measure(program: Program, payments: Sequence[Payment],
            peers: Sequence[str] = PEER_NAMES,
            say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
            ) -> dict[str, float]:
    """Run each of `peers` on `payments` in order; returns payments per second by name.

    A peer that cannot run (redis-server cannot be installed or started) is reported
    through `say` and left out. Raises ValueError for an unknown peer name.
    """
    for name in peers:
        if name not in PEER_NAMES:
            raise ValueError(f"unknown peer {name!r}; one of {', '.join(PEER_NAMES)}")
    out: dict[str, float] = {}
    for name in peers:
        say(f"peer {name} on {len(payments):,} payments ...")
        if name == "naive_python":
            naive = NaivePeer(program)
            out[name] = naive.run(payments)
        elif name == "sqlite":
            lite = SqlitePeer(program)
            try:
                out[name] = lite.run(payments)
            finally:
                lite.close()
        else:
            try:
                with RedisServer() as server:
                    peer = RedisLuaPeer(program, server.port)
                    try:
                        out[name] = peer.run(payments)
                    finally:
                        peer.close()
            except (RuntimeError, OSError) as e:
                say(f"peer {name} skipped: {e}")
    return out


__all__ = ["DUPLICATE", "PEER_NAMES", "REJECTED", "NaivePeer", "RedisLuaPeer", "RedisServer",
           "Rules", "SqlitePeer", "ensure_program", "measure", "rules_of"]
