"""`paymember bench shards`: payments/s of `ShardedEngine.pay_columns` for several shard
counts over the same seeded payments, beside one in-process Engine and the machine's own
two-process scaling measured in the same run (a shared machine rarely gives two free cores),
and the cost of moving an account between shards (a binding across shards) beside a
binding that moves nothing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.engine import Engine
from core.invariants import check_invariants
from core.payment_columns import PaymentColumns, from_payments
from core.program import Program
from core.routing import shard_of, shards_of
from core.sharded import ShardedEngine
from core.sharded_feed import START_S
from core.sharded_wire import take
from core.types import Code, Payment
from core.workload import payment_stream

_BURN_STEPS = 3_000_000


def _burn(steps: int) -> int:
    s = 0
    for i in range(steps):
        s += i
    return s


def machine_scaling() -> float:
    """How many times the work of one CPU-bound process two processes get done in the same
    wall time here and now (2.0 on two idle cores)."""
    t = time.perf_counter()
    _burn(_BURN_STEPS)
    one = time.perf_counter() - t
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_burn, args=(_BURN_STEPS,)) for _ in range(2)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return 2 * one / (time.perf_counter() - t)


def _batches(cols: PaymentColumns, size: int) -> list[PaymentColumns]:
    return [cols.slice(a, a + size) for a in range(0, len(cols), size)]


def _time_sharded(program: Program, shards: int, batches: list[PaymentColumns]
                  ) -> tuple[float, bool]:
    with ShardedEngine([program], shards) as eng:
        t = time.perf_counter()
        for b in batches:
            eng.pay_columns(b)
        elapsed = time.perf_counter() - t
        ok = not eng.check_invariants()
    return elapsed, ok


def _routed_worker(program: Program, batches: list[PaymentColumns], barrier: Any,
                   conn: Any) -> None:
    eng = Engine([program])
    barrier.wait()
    for b in batches:
        eng.pay_columns(b)
    conn.send(not check_invariants(eng))
    conn.close()


def _time_routed(program: Program, shards: int, cols: PaymentColumns, size: int
                 ) -> tuple[float, bool]:
    """Wall seconds for `shards` engine processes to apply `cols` when each is handed its
    own part (routed by `shards_of` beforehand, as the service's clients route), from a
    common start to the last one done; and whether every engine's invariants held."""
    sh = shards_of(cols.openid, shards)
    parts = [take(cols, np.flatnonzero(sh == i)) for i in range(shards)]
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(shards + 1)
    pipes = [ctx.Pipe(duplex=False) for _ in range(shards)]
    procs = [ctx.Process(target=_routed_worker, args=(program, _batches(part, size), barrier,
                                                      send))
             for part, (_recv, send) in zip(parts, pipes, strict=True)]
    for p in procs:
        p.start()
    barrier.wait()
    t = time.perf_counter()
    oks = [recv.recv() for recv, _send in pipes]
    elapsed = time.perf_counter() - t
    for p in procs:
        p.join()
    return elapsed, all(oks) and all(p.exitcode == 0 for p in procs)


def move_cost(program: Program, accounts: int = 2000, batch: int = 500) -> dict[str, Any]:
    """Time bindings on a two-shard engine: `accounts` whose openid (with three payments of
    history) lives on another shard than its unionid, so each moves, and as many whose
    openid shares its unionid's shard, fed alternately in chunks of `batch`; returns the
    microseconds per binding of each kind and their difference, the cost of a move."""
    appid, mchid = program.appids[0], sorted(program.merchants)[0]
    stay: list[dict[str, Any]] = []
    move: list[dict[str, Any]] = []
    i = 0
    while len(stay) < accounts or len(move) < accounts:
        o, u = f"oMOVE{i:023d}", f"uMOVE{i * 2_654_435_761 % 10**15:023d}"
        i += 1
        side = move if shard_of(o, 2) != shard_of(u, 2) else stay
        if len(side) < accounts:
            side.append({"appid": appid, "openid": o, "unionid": u, "time_s": START_S + 600})
    pays = [Payment(f"44{k:030d}", appid, mchid, d["openid"], 1000 + k % 5000, START_S + k % 500)
            for k, d in enumerate(p for side in (stay, move) for p in side for _ in range(3))]
    spent = {"stay": 0.0, "move": 0.0}
    with ShardedEngine([program], 2) as eng:
        eng.pay_columns(from_payments(pays))
        ok = True
        for a in range(0, accounts, batch):
            for name, side in (("stay", stay), ("move", move)):
                t = time.perf_counter()
                outs = eng.submit_many("binding", side[a:a + batch])
                spent[name] += time.perf_counter() - t
                ok = ok and all(o.code is Code.APPLIED for o in outs)
        ok = ok and eng.moved == accounts and not eng.check_invariants()
    us = {k: v / accounts * 1e6 for k, v in spent.items()}
    return {"accounts": accounts, "batch": batch, "us_per_binding_staying": round(us["stay"], 1),
            "us_per_binding_moving": round(us["move"], 1),
            "us_per_move": round(us["move"] - us["stay"], 1), "ok": ok}


def run(program: Program, shard_counts: Sequence[int] = (1, 2), events: int = 400_000,
        members: int = 200_000, batch_size: int = 20_000, seed: int = 1, rounds: int = 2,
        moves: int = 2000) -> dict[str, Any]:
    """Measure every shard count in `shard_counts` `rounds` times, interleaved (the best
    round counts), over `events` seeded payments by `members` shoppers fed in batches of
    `batch_size`; then, with `moves`, the cost of moving that many accounts (`move_cost`);
    returns the figures as a dict.

    Raises ValueError for a bad shard count, ShardError if a worker fails.
    """
    if not shard_counts or min(shard_counts) < 1:
        raise ValueError("shard counts must be >= 1")
    wl = payment_stream(program, np.random.default_rng(seed), members, events, START_S)
    cols = from_payments(wl.payments)
    batches = _batches(cols, batch_size)
    best: dict[int, float] = {}
    routed: dict[int, float] = {}
    engine_s = float("inf")
    ok = True
    for _ in range(rounds):
        eng = Engine([program])
        t = time.perf_counter()
        for b in batches:
            eng.pay_columns(b)
        engine_s = min(engine_s, time.perf_counter() - t)
        ok = ok and not check_invariants(eng)
        del eng
        for n in shard_counts:
            s, good = _time_sharded(program, n, batches)
            best[n] = min(best.get(n, s), s)
            ok = ok and good
            s, good = _time_routed(program, n, cols, batch_size)
            routed[n] = min(routed.get(n, s), s)
            ok = ok and good
    rate = {str(n): round(events / s) for n, s in sorted(best.items())}
    out: dict[str, Any] = {
        "events": events, "members": members, "batch_size": batch_size, "cpus": os.cpu_count(),
        "payments_per_s": rate, "engine_payments_per_s": round(events / engine_s),
        "machine_scaling_2_processes": round(machine_scaling(), 2), "invariants_ok": ok}
    lo = min(shard_counts)
    out["scaling"] = {str(n): round(best[lo] / best[n], 2) for n in sorted(best)}
    out["routed_payments_per_s"] = {str(n): round(events / s) for n, s in sorted(routed.items())}
    out["routed_scaling"] = {str(n): round(routed[lo] / routed[n], 2) for n in sorted(routed)}
    if moves:
        out["moves"] = move_cost(program, moves, min(500, moves))
        out["invariants_ok"] = ok and out["moves"]["ok"]
    return out


def format_report(r: dict[str, Any]) -> str:
    """The figures of `run` as lines of text."""
    lo = min(int(k) for k in r["payments_per_s"])
    lines = [f"bench shards: {r['events']:,} payments by {r['members']:,} shoppers, batches of "
             f"{r['batch_size']:,}, {r['cpus']} CPUs",
             f"  one Engine in this process     {r['engine_payments_per_s']:>12,} payments/s"]
    for k, v in r["payments_per_s"].items():
        lines.append(f"  ShardedEngine, {k:>2} shard(s)     {v:>12,} payments/s   "
                     f"x{r['scaling'][k]:.2f} vs {lo} shard(s)")
    for k, v in r["routed_payments_per_s"].items():
        lines.append(f"  {k:>2} engine process(es), pre-routed {v:>10,} payments/s   "
                     f"x{r['routed_scaling'][k]:.2f} vs {lo} (each fed its own part, "
                     f"as the service's shards are)")
    lines.append(f"  this machine's own 2-process scaling right now: "
                 f"x{r['machine_scaling_2_processes']:.2f} (2.00 = two idle cores)")
    m = r.get("moves")
    if m:
        lines.append(f"  bindings on 2 shards, {m['accounts']:,} of each kind in chunks of "
                     f"{m['batch']}: {m['us_per_binding_moving']:,.1f} us moving an account "
                     f"(3 payments of history), {m['us_per_binding_staying']:,.1f} us not: "
                     f"a move costs {m['us_per_move']:,.1f} us")
    lines.append(f"  invariants {'ok' if r['invariants_ok'] else 'VIOLATED'}")
    return "\n".join(lines)


__all__ = ["format_report", "machine_scaling", "move_cost", "run"]
