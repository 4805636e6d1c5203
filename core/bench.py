"""`paymember bench engine`: per-event throughput and memory, beside a reference loop.

Machines here are noisy, so every figure comes with a reference measured in the
same run: a minimal dict-update loop over the same payments.
"""

from __future__ import annotations

import gc
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from core.engine import Engine
from core.invariants import check_invariants
from core.program import Program, load_program
from core.types import Binding, Enrollment, Payment
from core.workload import payment_stream

DEFAULT_PROGRAM = Path(__file__).resolve().parent.parent / "scenarios/programs/convenience.toml"
START_S = 1_772_409_600  # 2026-03-02T08:00:00+08:00, a Monday, inside the lunch campaign


def deep_size(root: object) -> int:
    """Bytes held by `root` and everything reachable through containers, each object once."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, array | str | int | bytes | float):
            continue
        elif hasattr(obj, "__dict__"):
            stack.append(obj.__dict__)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
    return total


def _engine_bytes(eng: Engine) -> int:
    # Programs are configuration, not per-member state.
    return deep_size({k: v for k, v in eng.__dict__.items() if k not in ("programs", "rules")})


def _to_dict(p: Payment) -> dict[str, Any]:
    return {"appid": p.appid, "mchid": p.mchid, "transaction_id": p.transaction_id,
            "out_trade_no": p.transaction_id, "trade_type": p.trade_type,
            "trade_state": "SUCCESS",
            "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(p.time_s)),
            "payer": {"openid": p.openid},
            "amount": {"total": p.total_fen, "payer_total": p.total_fen,
                       "currency": p.currency, "payer_currency": p.currency}}


def run(members: int, events: int, seed: int = 1, program: Program | None = None,
        dict_events: int = 200_000, progress: bool = True) -> dict[str, Any]:
    """Measure the per-event path on `events` payments by `members` shoppers; returns figures.

    Raises ValueError for non-positive sizes.
    """
    if members < 1 or events < 1:
        raise ValueError("members and events must be >= 1")
    prog = program or load_program(DEFAULT_PROGRAM)
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    say(f"generating {events:,} payments over {members:,} shoppers (seed {seed}) ...")
    wl = payment_stream(prog, np.random.default_rng(seed), members, events, START_S)
    eng = Engine([prog])
    for k in range(wl.member_count):  # part of the population joined before the day
        oid = wl.openids[k]
        eng.bind(Binding(wl.appid, oid, "u" + oid[1:], START_S - 86_400))
        eng.enroll(Enrollment(prog.id, START_S - 86_400, unionid="u" + oid[1:]))
    eng.advance(START_S - 86_400)
    pays = wl.payments
    gc.collect()
    gc.disable()  # the engine allocates few cycles; keep the collector out of the timing
    try:
        # Engine and reference alternate over the same chunks, so that noise from
        # other processes falls on both alike.
        say("per-event path and reference loop, interleaved ...")
        pay = eng.pay
        bal: dict[str, int] = {}
        get = bal.get
        engine_s = ref_s = 0.0
        chunk = 50_000
        for lo in range(0, len(pays), chunk):
            part = pays[lo:lo + chunk]
            t0 = time.perf_counter()
            for p in part:
                pay(p)
            t1 = time.perf_counter()
            for p in part:
                bal[p.openid] = get(p.openid, 0) + p.total_fen // 100
            engine_s += t1 - t0
            ref_s += time.perf_counter() - t1
        n_dict = min(dict_events, events)
        dicts = [_to_dict(p) for p in pays[:n_dict]]
        eng2 = Engine([prog])
        submit = eng2.submit
        say(f"dict path on {n_dict:,} payments ...")
        t0 = time.perf_counter()
        for d in dicts:
            submit("payment", d)
        dict_s = time.perf_counter() - t0
    finally:
        gc.enable()
    say("measuring memory and checking invariants ...")
    stats = eng.stats()
    accounts = len(eng.acc)
    mem = _engine_bytes(eng)
    bad = check_invariants(eng)
    return {
        "members": accounts,
        "events": events,
        "payments_applied": stats["payments"],
        "per_event_payments_per_s": round(events / engine_s),
        "reference_loop_per_s": round(events / ref_s),
        "per_event_vs_reference": round(ref_s / engine_s, 3),
        "dict_path_payments_per_s": round(n_dict / dict_s),
        "bytes_per_member": round(mem / accounts),
        "engine_bytes": mem,
        "ledger_entries": stats["ledger_entries"],
        "points_outstanding": stats["points_outstanding"],
        "invariants_ok": not bad,
        "seed": seed,
    }


def format_report(r: dict[str, Any]) -> str:
    """Human-readable lines for a `run()` result."""
    return "\n".join([
        f"engine bench: {r['events']:,} payments over {r['members']:,} members (seed {r['seed']})",
        f"  per-event path     {r['per_event_payments_per_s']:>12,} payments/s",
        f"  reference loop     {r['reference_loop_per_s']:>12,} updates/s   "
        f"(engine/reference = {r['per_event_vs_reference']:.3f})",
        f"  dict (JSON) path   {r['dict_path_payments_per_s']:>12,} payments/s",
        f"  engine memory      {r['bytes_per_member']:>12,} bytes/member "
        f"({r['engine_bytes'] / 2**20:,.1f} MiB)",
        f"  ledger entries     {r['ledger_entries']:>12,}",
        f"  invariants         {'ok' if r['invariants_ok'] else 'VIOLATED'}",
    ])
