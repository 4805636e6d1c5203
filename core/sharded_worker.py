"""One shard of `ShardedEngine`: a process owning an Engine (and its journal), serving
requests from the router over a pipe until told to quit or the pipe closes.

With a journal, every input that changed state (acknowledged and not a duplicate) is
appended in the order it was applied and the group is committed before the reply, so
a reply means "durable" under the `always` policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from core.durable import EngineJournal, open_engine
from core.engine import Engine
from core.invariants import check_invariants
from core.migrate import (
    adjust_stats,
    confirm,
    export_batch,
    forwards,
    import_account,
    outbox,
    owns_payment,
)
from core.payment_block import PaymentBlock, decode_run, split_record
from core.payment_columns import count_of
from core.program import Program
from core.sharded_wire import (
    BALANCE,
    CONFIRM,
    EXPORT,
    HOLDERS,
    IMPORT,
    INVARIANTS,
    LOCATE,
    MOVES,
    PAY,
    PID,
    QUIT,
    REPLY_ERROR,
    REPLY_OK,
    STATS,
    SUBMIT,
    outcomes_of,
    pay_reply,
    read_pay_request,
    submit_row,
)
from core.types import Code, Outcome

# A payment row after which a waiting refund may apply: the payment is now known here.
_KNOWN = frozenset({Code.APPLIED, Code.DUPLICATE, Code.TRANSACTION_ID_CONFLICT})
GC_GEN0_THRESHOLD = 50_000
_code_of = itemgetter(0)  # Outcome.code
_NOT_APPLIED = Outcome(Code.HELD, 0, "payment not applied; the refund still waits")


def shard_dir(root: str | Path, index: int) -> Path:
    """The journal directory of shard `index` under `root`."""
    return Path(root) / f"shard-{index}"


class Shard:
    """The engine of one shard and its journal (None without one)."""

    def __init__(self, index: int, programs: Sequence[Program], journal_dir: str | None,
                 fsync: str) -> None:
        """Open shard `index`: recover it from `journal_dir`/shard-`index`, or start empty.

        Raises what `open_engine` raises (JournalCorrupt, ValueError, OSError).
        """
        self.index = index
        self.journal: EngineJournal | None = None
        self.recovered_inputs = 0
        if journal_dir is None:
            self.engine = Engine(programs)
        else:
            self.engine, self.journal, report = open_engine(
                shard_dir(journal_dir, index), programs, fsync)
            self.recovered_inputs = report.inputs
        self.handlers: dict[bytes, Callable[[memoryview], bytes]] = {
            PAY: self.pay, SUBMIT: self.submit, LOCATE: self.locate, HOLDERS: self.holders,
            BALANCE: self.balance, STATS: self.stats, INVARIANTS: self.invariants,
            PID: self.pid, QUIT: self.quit, EXPORT: self.export, IMPORT: self.import_,
            CONFIRM: self.confirm, MOVES: self.moves}

    def _apply_payments(self, block: PaymentBlock, records: list[memoryview], start: int,
                        stop: int) -> list[Outcome]:
        """Apply rows start..stop-1 of `block` (the payments of `records`, one after
        another) and journal those applied: a record as it came when all its rows in the
        range were, else those rows cut out of it."""
        part = block if start == 0 and stop == len(block) else block.slice(start, stop)
        outs = self.engine.pay_block(part)
        if self.journal is None:
            return outs
        codes = list(map(_code_of, outs))
        if codes.count(Code.APPLIED) == len(codes):
            keep = None  # every row
        else:
            keep = np.fromiter((c.ok and c is not Code.DUPLICATE for c in codes), bool,
                               len(codes))
        first = 0
        for rec in records:
            n = count_of(rec)
            lo, hi = max(first, start), min(first + n, stop)
            if lo < hi:
                mine = None if keep is None else keep[lo - start:hi - start]
                if mine is None and (lo, hi) == (first, first + n):
                    self.journal.append_payments_record(rec, n)
                elif mine is None or mine.any():
                    labels = np.full(n, -1, np.int64)
                    labels[lo - first:hi - first] = 0 if mine is None else \
                        np.where(mine, 0, -1)
                    self.journal.append_payments_record(split_record(rec, labels, 1)[0],
                                                        int(np.count_nonzero(labels == 0)))
            first += n
        return outs

    def _apply(self, kind: str, data: Any) -> Outcome:
        out = self.engine.submit(kind, data)
        if self.journal is not None and out.ok and out.code is not Code.DUPLICATE:
            self.journal.append(kind, data)
        return out

    def _commit(self) -> None:
        if self.journal is not None:
            self.journal.flush()

    def pay(self, body: memoryview) -> bytes:
        """PAY: apply the payments in order, each waiting refund right after its row."""
        records, after = read_pay_request(body)
        assert records
        block = decode_run(records)  # one block over the message's bytes
        outs: list[Outcome] = []
        after_outs: list[list[Outcome]] = []
        start = 0
        for row, datas in sorted(after, key=lambda x: x[0]):
            if row >= start:
                outs += self._apply_payments(block, records, start, row + 1)
                start = row + 1
            if outs[row].code in _KNOWN:
                after_outs.append([self._apply("refund", d) for d in datas])
            else:
                after_outs.append([_NOT_APPLIED] * len(datas))
        if start < len(block):
            outs += self._apply_payments(block, records, start, len(block))
        self._commit()
        # Answer the after-refunds in the order they were asked.
        order = sorted(range(len(after)), key=lambda k: after[k][0])
        answered: list[list[Outcome]] = [[] for _ in after]
        for k, res in zip(order, after_outs, strict=True):
            answered[k] = res
        return pay_reply(outcomes_of(outs), answered)

    def submit(self, body: memoryview) -> bytes:
        """SUBMIT: apply inputs of one kind in order, each waiting refund right after its
        row (payments only); answers [[outcome row], [[outcome row] per after entry]]."""
        kind, datas, after = orjson.loads(body)
        waiting = {row: k for k, (row, _) in enumerate(after)}
        outs = []
        answered: list[list[Any]] = [[] for _ in after]
        for j, d in enumerate(datas):
            o = self._apply(kind, d)
            outs.append(submit_row(o))
            k = waiting.get(j)
            if k is not None:
                refunds = after[k][1]
                answered[k] = [submit_row(self._apply("refund", r) if o.code in _KNOWN
                                          else _NOT_APPLIED) for r in refunds]
        self._commit()
        return REPLY_OK + orjson.dumps([outs, answered])

    def locate(self, body: memoryview) -> bytes:
        """LOCATE: for each transaction_id, whether its payment was applied here."""
        eng = self.engine
        found = [owns_payment(eng, t) for t in orjson.loads(body)]
        return REPLY_OK + orjson.dumps(found)

    def holders(self, body: memoryview) -> bytes:
        """HOLDERS: for each [program, unionid], whether this shard has its account."""
        of = self.engine.account_of
        return REPLY_OK + orjson.dumps([of(p, unionid=u) is not None
                                        for p, u in orjson.loads(body)])

    def balance(self, body: memoryview) -> bytes:
        """BALANCE: the Balance of [program, unionid, appid, openid] here, or null."""
        b = self.engine.balance(*orjson.loads(body))
        return REPLY_OK + orjson.dumps(None if b is None else dataclasses.asdict(b))

    def stats(self, body: memoryview) -> bytes:
        """STATS: the engine's totals."""
        return REPLY_OK + orjson.dumps(adjust_stats(self.engine, self.engine.stats()))

    def invariants(self, body: memoryview) -> bytes:
        """INVARIANTS: what check_invariants finds wrong ([] when all hold)."""
        return REPLY_OK + orjson.dumps(check_invariants(self.engine))

    def export(self, body: memoryview) -> bytes:
        """EXPORT: take the accounts of [[appid, openid, target, time_s]] out (journaled and
        committed before the answer); answers each one's blob, or null: it stays here."""
        record, blobs = export_batch(self.engine, self.index, orjson.loads(body))
        if record is not None and self.journal is not None:
            self.journal.append("export", record)
            self.journal.flush()
        return REPLY_OK + orjson.dumps(blobs)

    def import_(self, body: memoryview) -> bytes:
        """IMPORT: recreate the accounts of these blobs (journaled, committed); answers for
        each whether it was new here (false: imported before)."""
        done = []
        for blob in orjson.loads(body):
            new = import_account(self.engine, blob)
            if new and self.journal is not None:
                self.journal.append("import", blob)
            done.append(new)
        self._commit()
        return REPLY_OK + orjson.dumps(done)

    def confirm(self, body: memoryview) -> bytes:
        """CONFIRM: these move ids are imported on their target; drop them from the outbox."""
        confirm(self.engine, orjson.loads(body))
        return REPLY_OK

    def moves(self, body: memoryview) -> bytes:
        """MOVES: {"forward": [[appid, openid, shard]], "outbox": [[move id, target, blob]]}."""
        return REPLY_OK + orjson.dumps({"forward": forwards(self.engine),
                                        "outbox": outbox(self.engine)})

    def pid(self, body: memoryview) -> bytes:
        """PID: this process's id and the inputs recovery replayed."""
        return REPLY_OK + orjson.dumps([os.getpid(), self.recovered_inputs])

    def quit(self, body: memoryview) -> bytes:
        """QUIT: make the journal durable and close it."""
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        return REPLY_OK

    def poll_s(self) -> float | None:
        """How long to wait for a request before driving the `<N>ms` fsync policy."""
        if self.journal is None:
            return None
        policy = self.journal.journal.policy
        return policy.interval_ms / 1000 if policy.mode == "interval" else None


def serve(conn: Connection, index: int, programs: Sequence[Program], journal_dir: str | None,
          fsync: str, inherited_fds: Sequence[int] = ()) -> None:
    """Run shard `index` on `conn` until QUIT or the router goes away (the process's target);
    first close `inherited_fds` (the router's ends of other shards' pipes, when forked).

    Any exception (an assertion failure is a bug) is sent back as an error reply and
    ends the process: its state can no longer be trusted.
    """
    for fd in inherited_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        shard = Shard(index, programs, journal_dir, fsync)
    except Exception as e:
        conn.send_bytes(REPLY_ERROR + f"shard {index} did not start: {e!r}".encode())
        return
    # Objects inherited from a forked router, and the recovered state, are long-lived: keep
    # the collector off them, and let it run less often (each batch allocates its Outcomes).
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
    conn.send_bytes(REPLY_OK)
    wait_s = shard.poll_s()
    while True:
        try:
            while wait_s is not None and not conn.poll(wait_s):
                shard.journal.poll()  # type: ignore[union-attr]
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            break  # the router is gone: what was committed is all that was acknowledged
        op = msg[:1]
        try:
            reply = shard.handlers[op](memoryview(msg)[1:])
        except BaseException:
            conn.send_bytes(REPLY_ERROR + f"shard {index} failed on op {op!r}:\n"
                            f"{traceback.format_exc()}".encode())
            raise SystemExit(1) from None
        conn.send_bytes(reply)
        if op == QUIT:
            return
    if shard.journal is not None:
        shard.journal.close()


__all__ = ["Shard", "serve", "shard_dir"]
