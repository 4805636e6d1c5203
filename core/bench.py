"""`paymember bench engine`: per-event throughput and memory, beside a reference loop.

Machines here are noisy, so every figure comes with a reference measured in the
same run: a minimal dict-update loop over the same payments.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core import journal_bench
from core.engine import Engine
from core.invariants import check_invariants
from core.payment_block import from_columns as block_from_columns
from core.payment_columns import from_payments
from core.peers import measure as measure_peers
from core.program import Program, load_program
from core.types import Binding, Engagement, Enrollment, Payment, Refund
from core.workload import Workload, payment_stream, random_ids

DEFAULT_PROGRAM = Path(__file__).resolve().parent.parent / "scenarios/programs/convenience.toml"
START_S = 1_772_409_600  # 2026-03-02T08:00:00+08:00, a Monday, inside the lunch campaign


def deep_size(root: object, seen: set[int] | None = None) -> int:
    """Bytes held by `root` and everything reachable through containers, each object once
    (and none whose id is in `seen`, which collects the ids of those counted)."""
    if seen is None:
        seen = set()
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
        elif isinstance(obj, array | str | int | bytes | float | type):
            continue  # a class (a key of Accounts.kernels): its __dict__ is a fresh proxy
            # each time, whose id a later one may reuse, so descending would count by chance
        elif hasattr(obj, "__dict__"):
            stack.append(obj.__dict__)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
    return total


def _engine_bytes(eng: Engine) -> tuple[int, int]:
    """(member state bytes, everything else): accounts with their id maps and lots, and
    the per-input state (payment records and index, ledger, queues). Programs are
    configuration and not counted. What the accounts hold is counted once, with them (the
    appid map `app_of` refers to their openid maps)."""
    seen = {id(k) for k in eng.acc.kernels.values()}  # caches, as _kernel below
    members = deep_size(eng.acc, seen)
    return members, sum(_input_parts(eng, seen).values())


def _input_parts(eng: Engine, seen: set[int]) -> dict[str, int]:
    # Bytes of each engine attribute but the accounts and configuration, in attribute
    # order (what two share is counted with the first); `seen` holds what the accounts do.
    return {k: deep_size(v, seen) for k, v in eng.__dict__.items()
            if k not in ("programs", "rules", "acc", "_kernel")}


def _member_parts(eng: Engine, seen: set[int]) -> dict[str, int]:
    # Bytes of each slot of `eng.acc` and of the object itself; fills `seen` as
    # deep_size(eng.acc, seen) would.
    seen.add(id(eng.acc))
    parts = {s: deep_size(getattr(eng.acc, s), seen) for s in eng.acc.__slots__}
    parts["(object)"] = sys.getsizeof(eng.acc)
    return parts


def _largest_first(parts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def member_bytes_by_part(eng: Engine) -> dict[str, int]:
    """Bytes of each part of `eng.acc` (its columns, id maps and lots, by slot name),
    capacity included, largest first; they add up to `_engine_bytes(eng)[0]`."""
    return _largest_first(_member_parts(eng, {id(k) for k in eng.acc.kernels.values()}))


def bytes_by_part(eng: Engine) -> tuple[dict[str, int], dict[str, int]]:
    """`member_bytes_by_part(eng)`, and the bytes of each other part of the engine's state
    (payment records, their index, the ledger, queues, coupons, by attribute name),
    capacity included, largest first, adding up to `_engine_bytes(eng)[1]`: the engine
    walked once."""
    seen = {id(k) for k in eng.acc.kernels.values()}
    members = _member_parts(eng, seen)
    return _largest_first(members), _largest_first(_input_parts(eng, seen))


def to_dict(p: Payment) -> dict[str, Any]:
    """Payment `p` as the decrypted transaction resource a notification carries."""
    return {"appid": p.appid, "mchid": p.mchid, "transaction_id": p.transaction_id,
            "out_trade_no": p.transaction_id, "trade_type": p.trade_type,
            "trade_state": "SUCCESS",
            "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(p.time_s)),
            "payer": {"openid": p.openid},
            "amount": {"total": p.total_fen, "payer_total": p.total_fen,
                       "currency": p.currency, "payer_currency": p.currency}}


def _prepare(wl: Workload, prog: Program) -> Callable[[Engine], None]:
    """Part of the population joined before the day: bind and enroll them."""
    def prepare(eng: Engine) -> None:
        for k in range(wl.member_count):
            oid = wl.openids[k]
            eng.bind(Binding(wl.appid, oid, "u" + oid[1:], START_S - 86_400))
            eng.enroll(Enrollment(prog.id, START_S - 86_400, unionid="u" + oid[1:]))
        eng.advance(START_S - 86_400)
    return prepare


# Inputs other than payments, per run: (kind, how many at most). Each is clipped to the
# run's payment count so that a quick run stays quick.
INPUT_SIZES = (("binding", 100_000), ("enrollment", 50_000), ("event", 100_000),
               ("refund", 50_000))
_EVENT_KINDS = ("follow", "visit", "livestream", "ugc", "checkin", "ad", "referral")


def _other_inputs(wl: Workload, prog: Program, rng: np.random.Generator,
                  events: int) -> dict[str, list[Any]]:
    """Seeded bindings, enrollments, engagement events and refunds over workload `wl`'s
    shoppers: new shoppers, shadow shoppers with history (merges), repeats, partial refunds."""
    n = {kind: min(size, events) for kind, size in INPUT_SIZES}
    apps = prog.appids
    shadow = wl.openids[wl.member_count:] or wl.openids
    fresh = random_ids(rng, n["binding"], prefix="n")
    unions = random_ids(rng, n["binding"], prefix="u")
    pick = rng.integers(0, 1 << 30, size=(4, max(n.values()))).tolist()
    t0 = START_S + 86_400
    binds = []
    for k in range(n["binding"]):
        case, r = k % 4, pick[0][k]
        if case == 0:  # a new shopper
            binds.append(Binding(apps[0], fresh[k], unions[k], t0 + k))
        elif case == 1:  # the second app of an earlier binding's shopper
            binds.append(Binding(apps[-1], fresh[k], unions[r % k], t0 + k))
        elif case == 2:  # a shadow shopper with payments gets a unionid
            binds.append(Binding(apps[0], shadow[r % len(shadow)], unions[k], t0 + k))
        else:  # a shadow shopper joins an existing unionid: histories merge
            binds.append(Binding(apps[0], shadow[r % len(shadow)], unions[k - 1], t0 + k))
    enrolls = []
    for k in range(n["enrollment"]):
        r = pick[1][k]
        if k % 2:
            enrolls.append(Enrollment(prog.id, t0 + 100_000 + k, unionid=unions[r % len(unions)]))
        else:
            enrolls.append(Enrollment(prog.id, t0 + 100_000 + k, appid=apps[0],
                                      openid=shadow[r % len(shadow)]))
    kinds = [k for k in _EVENT_KINDS if k in prog.events]
    evs = []
    for k in range(n["event"]):
        r = pick[2][k]
        kind = kinds[r % len(kinds)]
        oid = wl.openids[r % len(wl.openids)]
        ref = wl.openids[(r // 7 + 1) % len(wl.openids)] if kind == "referral" else ""
        evs.append(Engagement(f"ev{k}", apps[0], oid, kind, t0 + 200_000 + (r % 2_000_000),
                              referred_openid=ref if ref != oid else "x" + oid))
    refunds = []
    for k in range(n["refund"]):
        p = wl.payments[pick[3][k] % len(wl.payments)]
        refunds.append(Refund(f"rf{k}", p.transaction_id, p.mchid,
                              max(1, p.total_fen // 4), p.total_fen, t0 + 300_000 + k))
    return {"binding": binds, "enrollment": enrolls, "event": evs, "refund": refunds}


# The calling thread's own figure where the platform has one: a process's would also
# count other threads' kernel time (a journal's writer, say) against the timed loop.
_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def kernel_seconds() -> float:
    """CPU seconds the calling thread (else this process) has spent in the kernel."""
    return resource.getrusage(_WHO).ru_stime


def kernel_share(kernel_s: float, spent_s: float) -> float:
    """`kernel_s` of kernel time as a share of `spent_s` seconds timed around the same
    work, to 3 places and at most 1: the kernel times are read just outside the timed
    span, and over a few milliseconds that edge can be all there is; 0 when nothing was
    timed."""
    return round(min(1.0, kernel_s / spent_s), 3) if spent_s > 0 else 0.0


def _time_inputs(eng: Engine, inputs: dict[str, list[Any]]) -> dict[str, float]:
    """Seconds spent applying each kind of `inputs` to `eng`, kinds in INPUT_SIZES order."""
    methods = {"binding": eng.bind, "enrollment": eng.enroll, "event": eng.engage,
               "refund": eng.refund}
    spent = {}
    for kind, _ in INPUT_SIZES:
        apply = methods[kind]
        t0 = time.perf_counter()
        for x in inputs[kind]:
            apply(x)
        spent[kind] = time.perf_counter() - t0
    return spent


def run(members: int, events: int, seed: int = 1, program: Program | None = None,
        dict_events: int = 200_000, batch_size: int = 10_000, peers: bool = False,
        peer_events: int = 200_000, durability_events: int = 1_000_000,
        progress: bool = True) -> dict[str, Any]:
    """Measure the per-event and batch paths on `events` payments by `members` shoppers,
    the dict path, durability (replay, restart) and optionally the peers; returns figures.

    Raises ValueError for non-positive sizes.
    """
    if members < 1 or events < 1 or batch_size < 1:
        raise ValueError("members, events and batch size must be >= 1")
    prog = program or load_program(DEFAULT_PROGRAM)
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    say(f"generating {events:,} payments over {members:,} shoppers (seed {seed}) ...")
    wl = payment_stream(prog, np.random.default_rng(seed), members, events, START_S)
    prepare = _prepare(wl, prog)
    pays = wl.payments
    cols = from_payments(pays)
    eng = Engine([prog])
    prepare(eng)
    beng = Engine([prog])
    prepare(beng)
    keng = Engine([prog])
    prepare(keng)
    others = _other_inputs(wl, prog, np.random.default_rng(seed + 1), events)
    ieng = Engine([prog])
    prepare(ieng)
    ieng.pay_columns(cols)
    gc.collect()
    gc.disable()  # the engine allocates few cycles; keep the collector out of the timing
    try:
        # Engine paths and the reference alternate over the same chunks, so that noise
        # from other processes falls on all of them alike.
        say("per-event path, batch path and reference loop, interleaved ...")
        pay = eng.pay
        pay_columns, pay_block = beng.pay_columns, keng.pay_block
        bal: dict[str, int] = {}
        get = bal.get
        engine_s = batch_s = block_s = build_s = ref_s = block_kernel_s = 0.0
        for lo in range(0, len(pays), batch_size):
            part = pays[lo:lo + batch_size]
            part_cols = cols.slice(lo, lo + batch_size)
            t0 = time.perf_counter()
            part_block = block_from_columns(part_cols)
            t1 = time.perf_counter()
            for p in part:
                pay(p)
            t2 = time.perf_counter()
            pay_columns(part_cols)
            k0 = kernel_seconds()
            t3 = time.perf_counter()
            pay_block(part_block)
            t4 = time.perf_counter()
            block_kernel_s += kernel_seconds() - k0
            for p in part:
                bal[p.openid] = get(p.openid, 0) + p.total_fen // 100
            build_s += t1 - t0
            engine_s += t2 - t1
            batch_s += t3 - t2
            block_s += t4 - t3
            ref_s += time.perf_counter() - t4
        n_dict = min(dict_events, events)
        dicts = [to_dict(p) for p in pays[:n_dict]]
        eng2 = Engine([prog])
        submit = eng2.submit
        say(f"dict path on {n_dict:,} payments ...")
        t0 = time.perf_counter()
        for d in dicts:
            submit("payment", d)
        dict_s = time.perf_counter() - t0
        say("bindings, enrollments, engagement events and refunds ...")
        input_s = _time_inputs(ieng, others)
    finally:
        gc.enable()
    say("measuring memory and checking invariants ...")
    stats = eng.stats()
    accounts = len(eng.acc)
    parts, input_parts = bytes_by_part(eng)
    mem_members, mem_inputs = sum(parts.values()), sum(input_parts.values())
    bad = (check_invariants(eng) + check_invariants(beng) + check_invariants(keng)
           + check_invariants(ieng))
    same = stats == beng.stats() == keng.stats()
    input_n = {kind: len(xs) for kind, xs in others.items()}
    del eng, beng, keng, eng2, dicts, ieng, others
    gc.collect()
    n_dur = min(durability_events, events)
    say(f"durability: journal, replay and restart on {n_dur:,} payments ...")
    dur = journal_bench.measure([prog], pays[:n_dur], prepare=prepare)
    out: dict[str, Any] = {
        "members": accounts,
        "events": events,
        "payments_applied": stats["payments"],
        "per_event_payments_per_s": round(events / engine_s),
        "batch_payments_per_s": round(events / block_s),
        "columns_payments_per_s": round(events / batch_s),
        "block_build_payments_per_s": round(events / build_s),
        "batch_size": batch_size,
        "batch_kernel_share": kernel_share(block_kernel_s, block_s),
        "reference_loop_per_s": round(events / ref_s),
        "per_event_vs_reference": round(ref_s / engine_s, 3),
        "batch_vs_reference": round(ref_s / block_s, 3),
        "columns_vs_reference": round(ref_s / batch_s, 3),
        "batch_equals_per_event": same,
        "dict_path_payments_per_s": round(n_dict / dict_s),
        "payment_us": round(engine_s / events * 1e6, 2),
        "inputs": {kind: {"count": input_n[kind],
                          "us": round(input_s[kind] / input_n[kind] * 1e6, 2)}
                   for kind, _ in INPUT_SIZES},
        "bytes_per_member": round(mem_members / accounts),
        "member_bytes_by_part": {k: round(v / accounts, 2) for k, v in parts.items()},
        "bytes_per_payment": round(mem_inputs / stats["payments"]),
        "payment_bytes_by_part": {k: round(v / stats["payments"], 2)
                                  for k, v in input_parts.items()},
        "engine_bytes": mem_members + mem_inputs,
        "ledger_entries": stats["ledger_entries"],
        "points_outstanding": stats["points_outstanding"],
        "replay_events_per_s": round(dur["replay_events_per_s"]),
        "replay_apply_events_per_s": dur["replay_apply_events_per_s"],
        "replay_apply_share": dur["replay_apply_share"],
        "replay_decode_events_per_s": dur["replay_decode_events_per_s"],
        "restart_s": round(dur["restart_s"], 3),
        "journal_bytes_per_payment": round(dur["journal_bytes_per_payment"], 1),
        "durability_events": n_dur,
        "invariants_ok": not bad and same,
        "seed": seed,
    }
    if peers:
        n_peer = min(peer_events, events)
        rates = measure_peers(prog, pays[:n_peer], say=say)
        out["peer_events"] = n_peer
        out["peers"] = {k: round(v) for k, v in rates.items()}
        out["ratios"] = {
            f"{path}_vs_{name}": round(out[f"{path}_payments_per_s"] / v, 2)
            for name, v in rates.items() if v for path in ("batch", "per_event")}
    return out


def format_report(r: dict[str, Any]) -> str:
    """Human-readable lines for a `run()` result."""
    lines = [
        f"engine bench: {r['events']:,} payments over {r['members']:,} members (seed {r['seed']})",
        f"  per-event path     {r['per_event_payments_per_s']:>12,} payments/s",
        f"  batch path         {r['batch_payments_per_s']:>12,} payments/s "
        f"(blocks of {r['batch_size']:,}; same final state: {r['batch_equals_per_event']})",
        f"    in the kernel    {r['batch_kernel_share']:>12.0%} of its time (page faults: "
        f"first touches of the memory the engine grows into)",
        f"    from columns     {r['columns_payments_per_s']:>12,} payments/s "
        f"(lists of str; building a block from them: "
        f"{r['block_build_payments_per_s']:,} payments/s)",
        f"  reference loop     {r['reference_loop_per_s']:>12,} updates/s   "
        f"(per-event/reference = {r['per_event_vs_reference']:.3f}, "
        f"batch/reference = {r['batch_vs_reference']:.3f}, "
        f"columns/reference = {r['columns_vs_reference']:.3f})",
        f"  dict (JSON) path   {r['dict_path_payments_per_s']:>12,} payments/s",
        f"  per input          {r['payment_us']:>12.2f} us/payment (per-event path)",
        *(f"    {kind:<16} {v['us']:>12.2f} us/input  x{v['us'] / r['payment_us']:.1f} "
          f"a payment ({v['count']:,} inputs)" for kind, v in r["inputs"].items()),
        f"  engine memory      {r['bytes_per_member']:>12,} bytes/member (accounts, id maps)"
        f" + {r['bytes_per_payment']:,} bytes/payment (records, index, ledger); "
        f"{r['engine_bytes'] / 2**20:,.1f} MiB in all",
        "    a member, by part " + ", ".join(
            f"{k} {v}" for k, v in r["member_bytes_by_part"].items() if v >= 0.05),
        "    a payment, by part " + ", ".join(
            f"{k} {v}" for k, v in r["payment_bytes_by_part"].items() if v >= 0.05),
        f"  replay             {r['replay_events_per_s']:>12,} events/s "
        f"(journal {r['journal_bytes_per_payment']} bytes/payment)",
        f"    of which apply {r['replay_apply_events_per_s']:>12,} events/s "
        f"(the batch path on the decoded blocks: {r['replay_apply_share']:.0%} of replay; "
        f"read, verify and decode alone: {r['replay_decode_events_per_s']:,} events/s)",
        f"  restart            {r['restart_s']:>12} s (snapshot + tail, "
        f"{r['durability_events']:,} payments)",
        f"  ledger entries     {r['ledger_entries']:>12,}",
    ]
    if "peers" in r:
        lines.append(f"  peers on {r['peer_events']:,} payments:")
        for name, v in r["peers"].items():
            ratio = r['ratios']
            lines.append(f"    {name:<16} {v:>12,} payments/s   batch x{ratio[f'batch_vs_{name}']}"
                         f", per-event x{ratio[f'per_event_vs_{name}']}")
    lines.append(f"  invariants         {'ok' if r['invariants_ok'] else 'VIOLATED'}")
    return "\n".join(lines)
