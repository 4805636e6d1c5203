"""The shard workers behind `ShardedEngine`: N processes, one pipe each, and the
messaging that reaches them (send, wait for the answer within a timeout, notice a death).

Once a worker dies, fails or does not answer in time the pool is broken for good: every
later send raises `ShardError` with the first failure's message.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import orjson

from core.limits import QUIT_TIMEOUT_S, START_TIMEOUT_S
from core.program import Program
from core.sharded_wire import QUIT, REPLY_OK
from core.sharded_worker import serve


class ShardError(RuntimeError):
    """A shard worker died, failed, or did not answer in time; the engine is unusable."""


class ShardPool:
    """`shards` worker processes serving `programs` (core.sharded_worker.serve)."""

    def __init__(self, programs: Sequence[Program], shards: int, root: str | None, fsync: str,
                 reply_timeout_s: float, start_method: str) -> None:
        """Start the workers and wait for each to be ready (recovered from its journal
        under `root`/shard-i when `root`); ShardError, every worker stopped, otherwise."""
        self.shards = shards
        self.timeout_s = reply_timeout_s
        self.broken = ""
        ctx = mp.get_context(start_method)
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        for i in range(shards):
            here, there = ctx.Pipe()
            # A forked worker closes its copies of the router's ends (its own and the other
            # shards'), so that each worker sees end-of-file as soon as the router is gone.
            others = ([c.fileno() for c in (*self.conns, here)] if start_method == "fork"
                      else [])
            p = ctx.Process(target=serve, args=(there, i, list(programs), root, fsync, others),
                            name=f"paymember-shard-{i}", daemon=True)
            p.start()
            there.close()
            self.procs.append(p)
            self.conns.append(here)
        try:
            for i in range(shards):
                self.reply(i, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def _fail(self, message: str) -> ShardError:
        self.broken = self.broken or message
        return ShardError(message)

    def send(self, i: int, msg: bytes) -> None:
        """Send shard `i` one message; ShardError if the pool is broken or `i` is gone."""
        if self.broken:
            raise ShardError(self.broken)
        try:
            self.conns[i].send_bytes(msg)
        except OSError:
            raise self._fail(self._death(i)) from None

    def _death(self, i: int) -> str:
        p = self.procs[i]
        p.join(1.0)
        return f"shard {i} (pid {p.pid}) died (exit code {p.exitcode})"

    def reply(self, i: int, timeout_s: float | None = None) -> memoryview:
        """The answer of shard `i`, waiting at most the timeout; ShardError otherwise."""
        conn, p = self.conns[i], self.procs[i]
        limit = self.timeout_s if timeout_s is None else timeout_s
        ready = wait([conn, p.sentinel], limit)
        if not ready:
            raise self._fail(f"shard {i} (pid {p.pid}) did not answer within {limit} s")
        try:
            msg = conn.recv_bytes() if conn in ready or conn.poll() else None
        except (EOFError, OSError):
            msg = None
        if msg is None:
            raise self._fail(self._death(i))
        if msg[:1] != REPLY_OK:
            raise self._fail(msg[1:].decode(errors="replace"))
        return memoryview(msg)[1:]

    def ask(self, msgs: dict[int, bytes]) -> dict[int, memoryview]:
        """Send each shard its message, then collect every answer."""
        for i, m in msgs.items():
            self.send(i, m)
        return {i: self.reply(i) for i in msgs}

    def ask_all(self, op: bytes, body: Any) -> list[Any]:
        """Every shard's JSON answer to `op` with JSON `body`, by shard."""
        msg = op + orjson.dumps(body)
        return [orjson.loads(r) for r in self.ask(dict.fromkeys(range(self.shards), msg))
                .values()]

    def quit(self) -> None:
        """Ask every worker to quit (each makes its journal durable), unless the pool is
        broken; ShardError if one fails to."""
        if not self.broken:
            self.ask(dict.fromkeys(range(self.shards), QUIT))

    def stop(self) -> None:
        """Close the pipes and join the workers, killing any that do not exit in time."""
        for conn in self.conns:
            conn.close()  # a worker waiting for a request sees EOF and exits
        for p in self.procs:
            p.join(QUIT_TIMEOUT_S)
            if p.is_alive():
                p.kill()
                p.join()


__all__ = ["ShardError", "ShardPool"]
