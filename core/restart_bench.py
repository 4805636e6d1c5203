"""Restart at scale for `paymember bench engine --restart-members N`.

Builds an engine of N members (one payment each, through the batch path and the
journal), checkpoints it, journals a tail of further payments, then times what a
restart after a crash does: newest snapshot loaded and the tail replayed. The
population is made of numpy-drawn ids, so 10M members take about a minute, not
the workload generator's Payment objects.

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

from core.bench import member_bytes_by_part
from core.invariants import check_invariants
from core.journal_format import list_segments
from core.payment_columns import PaymentColumns
from core.program import Program
from core.recovery import checkpoint, recover_engine
from core.workload import baskets, random_ids

CHUNK = 100_000


def population(program: Program, rng: np.random.Generator, first: int, n: int,
               start_s: int, span_s: int) -> PaymentColumns:
    """`n` payments, each by a new shopper of `program` (transaction numbers from `first`),
    in time order over `span_s` seconds from `start_s`, as columns."""
    openids = random_ids(rng, n)
    mchids = list(program.merchants)
    mch = rng.integers(0, len(mchids), size=n).tolist()
    totals = baskets(rng, n)
    times = (start_s + np.sort(rng.integers(0, span_s, size=n))).astype(np.int64)
    appid = program.appids[0]
    return PaymentColumns(
        [f"4200{first + k:028d}" for k in range(n)], [appid] * n, [mchids[m] for m in mch],
        openids, totals, times, np.full(n, -1, dtype=np.int64), [program.home_currency] * n,
        ["MICROPAY"] * n, [""] * n, [""] * n, [()] * n)


def measure(program: Program, members: int, start_s: int, tail: int = 100_000, seed: int = 1,
            say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Build an engine of `members` shoppers (fsync off), checkpoint it, journal `tail` more
    payments, and time the restart. Returns members, tail, snapshot_bytes, snapshot_write_s,
    restart_s, journal_bytes, build_s, build_batch_payments_per_s (time inside
    pay_columns only), bytes_per_member and member_bytes_by_part (engine memory per member
    after the build: `Engine.acc`, capacity included, in all and by part, as
    `paymember bench engine` counts it) and peak_rss_bytes (of this process)."""
    if members < 1 or tail < 0:
        raise ValueError("members must be >= 1 and tail >= 0")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"members": members, "tail": tail}
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
        f"  peak RSS           {r['peak_rss_bytes'] / 2**30:>12,.2f} GiB",
        f"  invariants         {'ok' if r['invariants_ok'] else 'VIOLATED'}",
    ])
