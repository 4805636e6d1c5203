"""`ShardedEngine`: the engine split by member key over N worker processes, one a shard.

Every input goes to the shard `core.routing` names for its (appid, openid) (a
unionid-only input to the shards holding that unionid's account); the router sends to
every shard before collecting any answer, so shards apply their parts at the same time
on different cores. A binding whose openid lives on another shard than its unionid's
first moves the openid's account there (core/migrate.py: export, import, confirm, each
journaled by its shard) and the router's `Forwards` sends that openid's inputs after it.
Refunds, which name no shopper, go to the shard that applied their payment, found by
asking the shards; one whose payment no shard has seen is held by the router until the
payment arrives (core/sharded_parking.py). docs/sharding.md states the rules, and what
happens to a person whose openids live on different shards. The worker processes and
the messaging that reaches them are core/sharded_pool.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from core.engine import Engine
from core.feed import parse
from core.journal import FsyncPolicy
from core.limits import (
    JOURNAL_PAYMENTS_PER_RECORD_MAX,
    PAY_ROWS_PER_SHARD,
    REPLY_TIMEOUT_S,
    SHARDS_MAX,
    SUBMIT_ROWS_MAX,
)
from core.payment_block import PaymentBlock, split_record
from core.payment_columns import RECORD_ROWS_MAX, PaymentColumns, count_of, encode
from core.program import Program
from core.routing import shard_of
from core.sharded_moves import Moves
from core.sharded_parking import RefundParking
from core.sharded_pool import ShardError, ShardPool
from core.sharded_routes import (
    BY_OPENID,
    BY_TRANSACTION,
    BY_UNIONID,
    EVERY_SHARD,
    combine,
    route,
    sum_balances,
    sum_stats,
)
from core.sharded_wire import (
    BALANCE,
    HOLDERS,
    INVARIANTS,
    LOCATE,
    MOVES,
    PID,
    STATS,
    SUBMIT,
    BatchOutcomes,
    empty_outcomes,
    outcome_of,
    pay_request,
    read_pay_reply,
    scatter,
)
from core.types import Balance, Code, Outcome, Refund

# A chunk of a payment batch: its record, and how to get its rows' shards and
# transaction ids (the latter only asked for when refunds are parked).
_Chunk = tuple[bytes, Callable[[], np.ndarray], Callable[[], list[str]]]


class ShardedEngine:
    """N engines in N processes behind one router; a context manager that closes them."""

    def __init__(self, programs: Sequence[Program], shards: int,
                 journal_dir: str | Path | None = None, fsync: str = "always", *,
                 reply_timeout_s: float = REPLY_TIMEOUT_S, start_method: str = "fork") -> None:
        """Start `shards` workers for `programs`; with `journal_dir`, each recovers from and
        journals to `journal_dir`/shard-i, and the router's parked refunds to .../router.

        `start_method` is multiprocessing's: "fork" (the default) starts fast and needs no
        `if __name__ == "__main__"` guard in the caller's script; "spawn" inherits nothing.
        Raises ValueError (bad shard count, fsync policy or start method, conflicting programs),
        ShardError when a worker does not start (its recovery error in the message).
        """
        if not 1 <= shards <= SHARDS_MAX:
            raise ValueError(f"shards must be 1..{SHARDS_MAX}, got {shards}")
        FsyncPolicy.parse(fsync)
        self.programs = list(programs)
        self.scratch = Engine(self.programs)  # validates refunds before parking them
        self.tiers = {p.id: [t.name for t in p.tiers] for p in self.programs}
        self.shards = shards
        self.counts: dict[str, int] = {}
        # Account moves (a binding across shards) and where moved accounts live.
        self.moves = Moves(self.programs, shards, self._ask, self._ask_all)
        self.fwd = self.moves.fwd
        self.closed = False
        root = None if journal_dir is None else str(journal_dir)
        self.pool = ShardPool(self.programs, shards, root, fsync, reply_timeout_s,
                              start_method)
        self._send, self._reply = self.pool.send, self.pool.reply
        try:
            self.parking = RefundParking(None if root is None else Path(root) / "router", fsync)
            self.moves.recover()
            self._hand_over_parked()
        except BaseException:
            self._stop_all()
            raise

    @property
    def procs(self) -> list[Any]:
        """The shard worker processes, by shard."""
        return self.pool.procs

    @property
    def broken(self) -> str:
        """Why the engine is unusable ("" while it is not)."""
        return self.pool.broken

    @broken.setter
    def broken(self, why: str) -> None:
        self.pool.broken = why

    def _ask(self, msgs: dict[int, bytes]) -> dict[int, memoryview]:
        return self.pool.ask(msgs)

    def _ask_all(self, op: bytes, body: Any) -> list[Any]:
        return self.pool.ask_all(op, body)

    # ------------------------------------------------------------------ payments, batched
    def pay_columns(self, cols: PaymentColumns) -> BatchOutcomes:
        """Apply payments `cols` (each on its openid's shard, all shards at once), with the
        per-event semantics; returns each row's code, points and flags. The shards journal
        every field of `cols`.

        Raises ShardError when a shard dies or does not answer.
        """
        def chunk(a: int, b: int) -> _Chunk:
            part = cols.slice(a, b) if a or b < len(cols) else cols
            return (encode(part), lambda: self.fwd.shards_of(part.appid, part.openid),
                    lambda: part.transaction_id)

        return self._pay(len(cols), chunk)

    def pay_block(self, block: PaymentBlock) -> BatchOutcomes:
        """Apply payments `block` as `pay_columns` does, without a Python object per row on
        the way: the router routes the ids where they lie, cuts one record per shard, and
        each shard applies its part with `Engine.pay_block` (its journal gets no
        trade_type, out_trade_no or device_id, which a block does not hold).

        Raises ShardError when a shard dies or does not answer.
        """
        def chunk(a: int, b: int) -> _Chunk:
            part = block.slice(a, b) if a or b < len(block) else block
            return (part.record(), lambda: self._block_shards(part),
                    lambda: part.columns().transaction_id)

        return self._pay(len(block), chunk)

    def _block_shards(self, part: PaymentBlock) -> np.ndarray:
        """Each row's shard: routed where its openid lies, then, once accounts have moved,
        the rows of moved openids sent where those accounts live (`self.fwd`)."""
        sh = part.shards(self.shards)
        if not len(self.fwd):
            return sh
        appids = np.asarray(part.appids, dtype=object)[part.appid_codes]
        return self.fwd.shards_of(appids, part.openids(), sh)

    def _pay(self, n: int, chunk: Callable[[int, int], _Chunk]) -> BatchOutcomes:
        """Apply the n payments that `chunk(a, b)` gives rows a..b-1 of, a chunk at a time
        (see `_plan`); returns each row's outcome."""
        res = empty_outcomes(n)
        step = min(PAY_ROWS_PER_SHARD * self.shards, RECORD_ROWS_MAX)
        start = 0
        plan = self._plan(chunk(0, min(step, n)), 0, step) if n else None
        while plan is not None:
            for i, (_rows, _after, msg) in plan.items():
                self._send(i, msg)
            start += step
            # Split and encode the next chunk while the shards apply this one.
            nxt = self._plan(chunk(start, min(start + step, n)), start, step) \
                if start < n else None
            for i, (rows, after, _msg) in plan.items():
                part, after_outs = read_pay_reply(self._reply(i))
                scatter(res, rows, part)
                self._settle(after, after_outs)
            plan = nxt
        self.parking.tidy()
        return res

    def _plan(self, chunk: _Chunk, a: int, step: int
              ) -> dict[int, tuple[np.ndarray, list, bytes]]:
        """Per shard: its rows of the chunk of rows a.. (of at most `step` rows; batch row
        numbers), refunds it applies after rows, and the PAY message: its rows cut out of
        the chunk's record into records of at most JOURNAL_PAYMENTS_PER_RECORD_MAX."""
        rec, shards_fn, txids_fn = chunk
        m = count_of(rec)
        waiting = self._waiting(txids_fn()) if len(self.parking) else []
        per = -(-step // JOURNAL_PAYMENTS_PER_RECORD_MAX)  # records a shard at most
        if self.shards == 1 and m <= JOURNAL_PAYMENTS_PER_RECORD_MAX:
            return {0: (np.arange(a, a + m, dtype=np.int64), waiting,
                        pay_request([rec], waiting))}
        sh = shards_fn() if self.shards > 1 else np.zeros(m, np.int64)
        order = np.argsort(sh, kind="stable")
        bounds = np.searchsorted(sh[order], np.arange(self.shards + 1)).tolist()
        labels = np.empty(m, np.int64)
        for i in range(self.shards):
            local = order[bounds[i]:bounds[i + 1]]
            labels[local] = i * per + np.arange(len(local)) // JOURNAL_PAYMENTS_PER_RECORD_MAX
        records = split_record(rec, labels, self.shards * per)
        out = {}
        for i in range(self.shards):
            local = order[bounds[i]:bounds[i + 1]]
            if not len(local):
                continue
            mine = [(int(np.searchsorted(local, r)), d) for r, d in waiting if sh[r] == i]
            parts = [r for r in records[i * per:(i + 1) * per] if r is not None]
            out[i] = (local + a, mine, pay_request(parts, mine))
        return out

    def _waiting(self, txids: list[str]) -> list[tuple[int, list[Any]]]:
        """Parked refunds of payments among `txids`, taken out: [(row of the payment, [data])]."""
        if not len(self.parking):
            return []
        hits = set(filter(self.parking.by_txid.__contains__, txids))
        found = []
        for row, t in enumerate(txids):
            if t in hits:
                hits.discard(t)
                found.append((row, self.parking.pop(t)))
        return found

    def _settle(self, after: list[tuple[int, list[Any]]], outs: list[list[Outcome]]) -> None:
        """Book the answers of handed-over refunds: put back those whose payment did not
        apply, count those their shard rejected (as the engine counts a held refund's)."""
        for (_row, datas), res in zip(after, outs, strict=True):
            back = [d for d, o in zip(datas, res, strict=True) if o.code is Code.HELD]
            self.parking.restore(back)
            self.parking.handed(len(datas) - len(back))
            for o in res:
                if not o.ok:
                    key = "held_refund_rejected:" + o.code.value
                    self.counts[key] = self.counts.get(key, 0) + 1

    # ------------------------------------------------------------------ other inputs
    def submit(self, kind: str, data: Any) -> Outcome:
        """Apply one input given as plain data (as `Engine.submit`); see `submit_many`."""
        return self.submit_many(kind, [data])[0]

    def submit_many(self, kind: str, datas: Sequence[Any]) -> list[Outcome]:
        """Apply inputs of one `kind` given as plain data, in order, each on its shard(s);
        bad data gets a rejection Outcome as from `Engine.submit`.

        Raises ShardError when a shard dies or does not answer.
        """
        out: list[Outcome] = []
        for a in range(0, len(datas), SUBMIT_ROWS_MAX):
            out += self._submit_round(kind, datas[a:a + SUBMIT_ROWS_MAX])
        self.parking.tidy()
        return out

    def _submit_round(self, kind: str, datas: Sequence[Any]) -> list[Outcome]:
        routes = [route(kind, d) for d in datas]
        if kind == "binding" and self.shards > 1:
            self.moves.before_bindings(datas, routes)
        targets = self._targets(kind, datas, routes)
        res: list[Outcome | None] = [t if isinstance(t, Outcome) else None for t in targets]
        per: dict[int, tuple[list[Any], list[int]]] = {}
        for j, t in enumerate(targets):
            if not isinstance(t, Outcome):
                for i in t:
                    rows, who = per.setdefault(i, ([], []))
                    rows.append(datas[j])
                    who.append(j)
        after: dict[int, list[tuple[int, list[Any]]]] = {}
        if kind == "payment" and len(self.parking):
            for i, (rows, _who) in per.items():
                txids = [d.get("transaction_id") if isinstance(d, dict) else None for d in rows]
                after[i] = self._waiting([t if isinstance(t, str) else "" for t in txids])
        msgs = {i: SUBMIT + orjson.dumps([kind, rows, after.get(i, [])])
                for i, (rows, _who) in per.items()}
        answers: dict[int, list[Outcome]] = {j: [] for j, r in enumerate(res) if r is None}
        for i, body in self._ask(msgs).items():
            outs, after_outs = orjson.loads(body)
            for j, row in zip(per[i][1], outs, strict=True):
                answers[j].append(outcome_of(row))
            self._settle(after.get(i, []), [[outcome_of(r) for r in a] for a in after_outs])
        for j, outs in answers.items():
            res[j] = combine(outs)
        assert all(r is not None for r in res)
        return res  # type: ignore[return-value]

    def _targets(self, kind: str, datas: Sequence[Any], routes: list[tuple[str, str]]
                 ) -> list[list[int] | Outcome]:
        """The shards each input goes to, or its Outcome when no shard takes it."""
        n = self.shards
        holders: dict[tuple[str, str], list[int]] = {}
        named = sorted({(d.get("program"), k) for d, (how, k) in zip(datas, routes, strict=True)
                        if how == BY_UNIONID and isinstance(d.get("program"), str)})
        if named and n > 1:
            has = self._ask_all(HOLDERS, named)
            holders = {w: [i for i in range(n) if has[i][k]] for k, w in enumerate(named)}
        located: dict[str, int] = {}
        txids = sorted({k for how, k in routes if how == BY_TRANSACTION})
        if txids:
            found = self._ask_all(LOCATE, txids)
            for k, t in enumerate(txids):
                for i in range(n):
                    if found[i][k]:
                        located[t] = i
        out: list[list[int] | Outcome] = []
        for d, (how, key) in zip(datas, routes, strict=True):
            if how == BY_OPENID:
                out.append([self.fwd.shard(d.get("appid"), key)])
            elif how == BY_UNIONID:
                # Enrollment reaches every account of the unionid; a spend or a coupon one
                # account: the lowest-numbered shard's (docs/sharding.md).
                held = holders.get((d.get("program"), key)) or [shard_of(key, n)]
                out.append(held if kind == "enrollment" else held[:1])
            elif how == BY_TRANSACTION:
                i = located.get(key)
                out.append([i] if i is not None else self._park(d))
            elif how == EVERY_SHARD:
                out.append(list(range(n)))
            else:
                out.append([0])
        self.parking.flush()
        return out

    def _park(self, data: Any) -> Outcome:
        """A refund whose payment no shard has: its rejection, DUPLICATE, or HELD (parked)."""
        r = parse("refund", data)
        if type(r) is Outcome:
            return r
        assert isinstance(r, Refund)
        seen = self.parking.seen(r)
        if seen is not None:
            return seen
        out = self.scratch.refund(r)  # an engine with no payments: HELD or the rejection
        if out.code is not Code.HELD:
            return out
        self.scratch = Engine(self.programs)
        return self.parking.park(data)

    def _hand_over_parked(self) -> None:
        """Hand parked refunds whose payment a shard has to it (after recovery)."""
        if not len(self.parking):
            return
        txids = sorted(self.parking.by_txid)
        found = self._ask_all(LOCATE, txids)
        for i in range(self.shards):
            datas = [d for k, t in enumerate(txids) if found[i][k] for d in self.parking.pop(t)]
            if datas:
                self._settle([(0, datas)], [self._submit_round("refund", datas)])
        self.parking.checkpoint()

    # ------------------------------------------------------------------ queries
    def balance(self, program: str, unionid: str = "", appid: str = "",
                openid: str = "") -> Balance | None:
        """Balances of a shopper: by (appid, openid), its shard's account; by unionid, the
        sum of the unionid's accounts on every shard (highest tier). None if unknown."""
        ask = [program, unionid, appid, openid]
        if unionid or not openid:
            parts = [Balance(**b) for b in self._ask_all(BALANCE, ask) if b is not None]
            return sum_balances(parts, self.tiers[program]) if parts else None
        i = self.fwd.shard(appid, openid)
        self._send(i, BALANCE + orjson.dumps(ask))
        b = orjson.loads(self._reply(i))
        return None if b is None else Balance(**b)

    def stats(self) -> dict[str, Any]:
        """`Engine.stats()` summed over shards (accounts counted per shard), plus the router's
        parked refunds in `refunds_held` and `idempotency_keys` (their refund_ids are keys
        the router remembers, as `Engine` remembers a held refund's), and its counters."""
        out = sum_stats([*self._ask_all(STATS, None), {"counts": self.counts}])
        out["refunds_held"] = out.get("refunds_held", 0) + len(self.parking)
        out["idempotency_keys"] = out.get("idempotency_keys", 0) + len(self.parking)
        out["shards"] = self.shards
        return out

    def check_invariants(self) -> list[str]:
        """Every shard's `check_invariants` findings, named by shard, and the router's: no
        parked refund's payment is on a shard. [] when all hold."""
        bad = [f"shard {i}: {m}" for i, ms in enumerate(self._ask_all(INVARIANTS, None))
               for m in ms]
        if self.shards > 1:
            bad += [f"shard {i}: move {mid} exported and not confirmed imported"
                    for i, r in enumerate(self._ask_all(MOVES, None)) for mid, _, _ in r["outbox"]]
        if len(self.parking):
            txids = sorted(self.parking.by_txid)
            for i, found in enumerate(self._ask_all(LOCATE, txids)):
                bad += [f"router: refund for {t} parked but shard {i} has the payment"
                        for t, f in zip(txids, found, strict=True) if f]
        return bad

    @property
    def moved(self) -> int:
        """Accounts (or forwarding entries) moved by this router."""
        return self.moves.moved

    def worker_pids(self) -> list[int]:
        """The process id each shard reports for itself."""
        return [pid for pid, _ in self._ask_all(PID, None)]

    def recovered_inputs(self) -> int:
        """Inputs the shards replayed from their journals when they started."""
        return sum(k for _, k in self._ask_all(PID, None))

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop the workers gracefully (each makes its journal durable and exits), close the
        router's journal and join; a second call does nothing.

        Raises ShardError if a worker fails to quit (it is killed); not if one had died
        and was reported already.
        """
        if self.closed:
            return
        self.closed = True
        error = None
        try:
            self.pool.quit()
        except ShardError as e:
            error = e
        finally:
            self.parking.close()
            self._stop_all()
        if error is not None:
            raise error

    def _stop_all(self) -> None:
        self.pool.stop()
        self.closed = True

    def __enter__(self) -> ShardedEngine:
        """Use as `with ShardedEngine(...) as eng:`."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the engine."""
        self.close()


__all__ = ["ShardError", "ShardedEngine"]
