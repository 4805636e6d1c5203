"""Restart at scale for `paymember bench restart [--members N]`.

Builds an engine of N members (one payment each, through the batch path and the
journal), checkpoints it, journals a tail of further payments, then times what a
restart after a crash does: newest snapshot loaded and the tail replayed. The
population is made of numpy-drawn ids, so 10M members take about a minute, not
the workload generator's Payment objects.

The restarted engine then takes payments by shoppers it already knows, drawn at
random over the N, through `pay_block` in blocks of 10,000: the batch path over N
members as issue 3 states its target, where the engine bench's own batch figure is
taken on an engine that grows its population as it goes.

Timing is measurement, not engine logic, so this module reads the clock.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.bench import kernel_seconds, kernel_share, member_bytes_by_part
from core.invariants import check_invariants
from core.journal_format import list_segments
from core.payment_block import from_columns
from core.payment_columns import PaymentColumns
from core.program import Program
from core.recovery import checkpoint, recover_engine
from core.workload import baskets, random_ids

CHUNK = 100_000
REPEAT_BLOCK = 10_000


def population(program: Program, rng: np.random.Generator, first: int, n: int,
               start_s: int, span_s: int) -> PaymentColumns:
    """`n` payments, each by a new shopper of `program` (transaction numbers from `first`),
    in time order over `span_s` seconds from `start_s`, as columns."""
    return _payments(program, rng, "4200", first, random_ids(rng, n), start_s, span_s)


def repeat_payments(program: Program, rng: np.random.Generator, first: int,
                    openids: list[str], start_s: int, span_s: int) -> PaymentColumns:
    """One payment by each of `openids` (shoppers the engine knows; repeats allowed), in
    the given order, at times sorted over `span_s` seconds from `start_s`, transaction
    numbers from `first` (prefix 4300, apart from `population`'s), as columns."""
    return _payments(program, rng, "4300", first, openids, start_s, span_s)


def _payments(program: Program, rng: np.random.Generator, prefix: str, first: int,
              openids: list[str], start_s: int, span_s: int) -> PaymentColumns:
    # One payment by each of `openids` at a drawn merchant, basket and time (sorted), in
    # the program's first app and home currency; transaction ids prefix + first, first + 1 ...
    n = len(openids)
    mchids = list(program.merchants)
    mch = rng.integers(0, len(mchids), size=n).tolist()
    totals = baskets(rng, n)
    times = (start_s + np.sort(rng.integers(0, span_s, size=n))).astype(np.int64)
    return PaymentColumns(
        [f"{prefix}{first + k:028d}" for k in range(n)], [program.appids[0]] * n,
        [mchids[m] for m in mch], openids, totals, times, np.full(n, -1, dtype=np.int64),
        [program.home_currency] * n, ["MICROPAY"] * n, [""] * n, [""] * n, [()] * n)


def _time_repeats(eng: Any, cols: PaymentColumns) -> tuple[float, float]:
    """(seconds inside `eng.pay_block`, of them in the kernel) for `cols` in blocks of
    REPEAT_BLOCK, the blocks built beforehand (not timed)."""
    n = len(cols)
    blocks = [from_columns(cols.slice(lo, lo + REPEAT_BLOCK))
              for lo in range(0, n, REPEAT_BLOCK)]
    spent = kernel = 0.0
    for block in blocks:
        k0, t0 = kernel_seconds(), time.perf_counter()
        eng.pay_block(block)
        spent += time.perf_counter() - t0
        kernel += kernel_seconds() - k0
    return spent, kernel


def measure(program: Program, members: int, start_s: int, tail: int = 100_000, seed: int = 1,
            say: Callable[[str], None] = lambda m: None,
            repeat: int = 1_000_000) -> dict[str, Any]:
    """Build an engine of `members` shoppers (fsync off), checkpoint it, journal `tail` more
    payments, and time the restart. Returns members, tail, snapshot_bytes, snapshot_write_s,
    restart_s, journal_bytes, build_s, build_batch_payments_per_s (time inside
    pay_columns only), bytes_per_member and member_bytes_by_part (engine memory per member
    after the build: `Engine.acc`, capacity included, in all and by part, as
    `paymember bench engine` counts it) and peak_rss_bytes (of this process).

    Then `repeat` payments by known shoppers (drawn uniformly over the `members`) go to
    the restarted engine through `pay_block`: repeat_payments, repeat_batch_payments_per_s
    and repeat_kernel_share (time inside pay_block only), repeat_applied and
    repeat_new_accounts (0: every shopper was known); none when `repeat` is 0.
    `invariants_ok` is checked after them."""
    if members < 1 or tail < 0 or repeat < 0:
        raise ValueError("members must be >= 1, tail and repeat >= 0")
    rng = np.random.default_rng(seed)
    # which built shoppers pay again, drawn apart so that the build is the same with or
    # without them; only their openids are kept through the build
    who = np.random.default_rng(seed + 1).integers(0, members, size=repeat)
    wanted = np.unique(who)
    known: dict[int, str] = {}
    out: dict[str, Any] = {"members": members, "tail": tail, "repeat_payments": repeat}
    with tempfile.TemporaryDirectory(prefix="paymember-restart-") as tmp:
        directory = Path(tmp)
        eng, journal, _ = recover_engine(directory, [program], "off")
        t0 = time.perf_counter()
        apply_s = 0.0
        for lo in range(0, members, CHUNK):
            n = min(CHUNK, members - lo)
            # members arrive over a day, chunk after chunk, as a live feed would
            cols = population(program, rng, lo, n, start_s + lo * 86_400 // members,
                              max(1, n * 86_400 // members))
            here = wanted[np.searchsorted(wanted, lo):np.searchsorted(wanted, lo + n)]
            known.update((m, cols.openid[m - lo]) for m in here.tolist())
            t1 = time.perf_counter()
            eng.pay_columns(cols)  # type: ignore[attr-defined]
            apply_s += time.perf_counter() - t1
            journal.append_payments(cols)
            journal.commit()
            if lo // CHUNK % 10 == 9:
                say(f"  {lo + n:,} of {members:,} members ...")
        out["build_s"] = round(time.perf_counter() - t0, 1)
        # every payment of the build is a new shopper: the batch path's costliest case
        out["build_batch_payments_per_s"] = round(members / apply_s)
        say("measuring engine memory ...")
        parts = member_bytes_by_part(eng)
        out["bytes_per_member"] = round(sum(parts.values()) / members, 1)
        out["member_bytes_by_part"] = {k: round(v / members, 2) for k, v in parts.items()}
        say("snapshot ...")
        t0 = time.perf_counter()
        body = eng.snapshot()  # type: ignore[attr-defined]
        checkpoint(journal, body)
        out["snapshot_write_s"] = round(time.perf_counter() - t0, 3)
        out["snapshot_bytes"] = len(body)
        del body
        cols = population(program, rng, members, tail, start_s + 86_400, 3_600)
        eng.pay_columns(cols)  # type: ignore[attr-defined]
        journal.append_payments(cols)
        journal.commit()
        journal.close()
        expected = eng.stats()  # type: ignore[attr-defined]
        del eng, cols
        out["journal_bytes"] = sum(p.stat().st_size for _, p in list_segments(directory))
        say("restart: newest snapshot + journal tail ...")
        t0 = time.perf_counter()
        back, journal, report = recover_engine(directory, [program], "off")
        out["restart_s"] = round(time.perf_counter() - t0, 3)
        journal.close()
        out["restart_tail_events"] = report.inputs
        out["restart_same_state"] = back.stats() == expected  # type: ignore[attr-defined]
        if repeat:
            say(f"batch path: {repeat:,} payments by known shoppers ...")
            cols = repeat_payments(program, rng, 0, [known[m] for m in who.tolist()],
                                   start_s + 2 * 86_400, 86_400)
            del known
            accounts = len(back.acc)  # type: ignore[attr-defined]
            spent, kernel = _time_repeats(back, cols)
            out["repeat_new_accounts"] = len(back.acc) - accounts  # type: ignore[attr-defined]
            out["repeat_batch_payments_per_s"] = round(repeat / spent)
            out["repeat_kernel_share"] = kernel_share(kernel, spent)
            stats = back.stats()  # type: ignore[attr-defined]
            out["repeat_applied"] = stats["payments"] - expected["payments"]
        say("checking invariants of the restarted engine ...")
        out["invariants_ok"] = out["restart_same_state"] and not check_invariants(back)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def format_report(r: dict[str, Any]) -> str:
    """Human-readable lines for a `measure()` result."""
    return "\n".join([
        f"restart bench: {r['members']:,} members (one payment each) + a tail of "
        f"{r['tail']:,} payments",
        f"  build              {r['build_s']:>12} s (batch path + journal, fsync off; batch "
        f"path {r['build_batch_payments_per_s']:,} payments/s, each a new shopper)",
        f"  engine memory      {r['bytes_per_member']:>12} bytes/member (accounts, id maps), "
        f"by part: " + ", ".join(f"{k} {v}" for k, v in r["member_bytes_by_part"].items()
                                 if v >= 0.05),
        f"  snapshot           {r['snapshot_bytes'] / 2**20:>12,.1f} MiB written in "
        f"{r['snapshot_write_s']} s",
        f"  restart            {r['restart_s']:>12} s (snapshot load + {r['restart_tail_events']:,}"
        f" journal inputs replayed; same state: {r['restart_same_state']})",
        *([f"  batch path         {r['repeat_batch_payments_per_s']:>12,} payments/s over the "
           f"{r['members']:,} members ({r['repeat_payments']:,} payments by shoppers it knows, "
           f"{r['repeat_applied']:,} applied; blocks of {REPEAT_BLOCK:,}; "
           f"{r['repeat_kernel_share']:.0%} in the kernel)"]
          if r.get("repeat_payments") else []),
        f"  peak RSS           {r['peak_rss_bytes'] / 2**30:>12,.2f} GiB",
        f"  invariants         {'ok' if r['invariants_ok'] else 'VIOLATED'}",
    ])
