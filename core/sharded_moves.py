"""The router's side of account moves (docs/sharding.md, "Bindings across shards").

A binding whose openid lives on another shard than its unionid's moves the openid's
account there first: EXPORT on the source, IMPORT on the target, CONFIRM to the source
(each journaled by its shard, see core/migrate.py); `Forwards` then routes the openid's
later inputs to where its account lives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from core.engine import Engine
from core.feed import parse
from core.program import Program
from core.routing import Forwards, shard_of
from core.sharded_routes import BY_OPENID
from core.sharded_wire import CONFIRM, EXPORT, IMPORT, MOVES
from core.types import Binding, Code

Ask = Callable[[dict[int, bytes]], dict[int, memoryview]]
AskAll = Callable[[bytes, Any], list[Any]]


class Moves:
    """Moves accounts between a router's shards, and knows where moved ones live."""

    def __init__(self, programs: Sequence[Program], shards: int, ask: Ask,
                 ask_all: AskAll) -> None:
        """Moves over `shards` shards, asking them with the router's `ask` (one message a
        shard, replies by shard) and `ask_all` (one op to every shard, decoded replies)."""
        self.programs = list(programs)
        self.shards = shards
        self.ask, self.ask_all = ask, ask_all
        self.fwd = Forwards(shards)  # where moved accounts live (rebuilt from the shards)
        self.moved = 0  # accounts (or forwarding entries) moved by this router
        self.scratch = Engine(self.programs)  # validates a binding before its move

    def before_bindings(self, datas: Sequence[Any], routes: list[tuple[str, str]]) -> None:
        """Before bindings `datas` apply: move the account of each openid that lives on
        another shard than its unionid's to the unionid's shard (when the binding is
        valid; an openid bound already stays, and its shard answers the binding)."""
        n = self.shards
        moves: dict[int, list[tuple[str, str, int, int]]] = {}  # source -> its moves
        seen: set[tuple[str, str]] = set()
        used = False
        for d, (how, _key) in zip(datas, routes, strict=True):
            b = parse("binding", d) if how == BY_OPENID else None
            if not isinstance(b, Binding) or (b.appid, b.openid) in seen:
                continue
            seen.add((b.appid, b.openid))
            src, dst = self.fwd.shard(b.appid, b.openid), shard_of(b.unionid, n)
            if src == dst:
                continue
            used = True
            if self.scratch.bind(b).code is Code.APPLIED:  # else its shard rejects it
                moves.setdefault(src, []).append((b.appid, b.openid, dst, b.time_s))
        if used:
            self.scratch = Engine(self.programs)
        if not moves:
            return
        answers = self.ask({s: EXPORT + orjson.dumps(ms) for s, ms in moves.items()})
        per_dst: dict[int, list[Any]] = {}
        done: dict[int, list[str]] = {}
        for s, body in answers.items():
            for (appid, openid, dst, _t), blob in zip(moves[s], orjson.loads(body), strict=True):
                if blob is not None:
                    per_dst.setdefault(dst, []).append(blob)
                    done.setdefault(s, []).append(blob["id"])
                    self.fwd.set(appid, openid, dst)
        self._deliver(per_dst, done)

    def _deliver(self, per_dst: dict[int, list[Any]], done: dict[int, list[str]]) -> None:
        """Import exported accounts on their targets, then confirm to their sources."""
        if per_dst:
            self.ask({d: IMPORT + orjson.dumps(blobs) for d, blobs in per_dst.items()})
            self.moved += sum(map(len, per_dst.values()))
        if done:
            self.ask({s: CONFIRM + orjson.dumps(ids) for s, ids in done.items()})

    def recover(self) -> None:
        """After a restart: finish the moves a crash interrupted (exported, maybe not
        imported: the target ignores a second import), then rebuild the forwarding table
        from the shards' entries, following each openid from its own shard."""
        if self.shards == 1:
            return
        replies = self.ask_all(MOVES, None)
        per_dst: dict[int, list[Any]] = {}
        done: dict[int, list[str]] = {}
        for s, r in enumerate(replies):
            for mid, to, blob in r["outbox"]:
                per_dst.setdefault(to, []).append(blob)
                done.setdefault(s, []).append(mid)
        if done:
            self._deliver(per_dst, done)
            replies = self.ask_all(MOVES, None)
        entries = [{(ap, op): to for ap, op, to in r["forward"]} for r in replies]
        for appid, openid in set().union(*entries):
            s = shard_of(openid, self.shards)
            for _ in range(self.shards):
                if (appid, openid) not in entries[s]:
                    break
                s = entries[s][(appid, openid)]
            self.fwd.set(appid, openid, s)


__all__ = ["Moves"]
