"""Memory of the idempotency window, for `paymember bench idempotency`: keys and bytes
per input inside the window, day by day over several simulated days of steady traffic.

Every hour of simulated time brings `per_hour` inputs (half engagement events, a
quarter refunds of fresh payments, a quarter spends), then an hourly `advance`. If
keys were kept forever, they would grow by `per_hour * 24` a day; with the window
they stop growing after the first two days. Seeded: the figures are a pure function
of the arguments (the byte counts of the Python build aside).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np

from core import limits
from core.bench import START_S, deep_size
from core.engine import Engine
from core.invariants import check_invariants
from core.program import Program
from core.types import Binding, Code, Engagement, Enrollment, Payment, Refund, Spend
from core.workload import random_ids

HOUR_S = 3600
_EVENT_KINDS = ("visit", "ad", "checkin", "ugc", "follow", "livestream")


def measure(program: Program, days: int = 6, per_hour: int = 2000, seed: int = 1,
            window_s: int = limits.IDEMPOTENCY_WINDOW_S) -> dict[str, Any]:
    """Feed `days` days of `per_hour` inputs an hour through an engine with idempotency
    window `window_s`, advancing hourly; returns the window's keys and bytes at the end
    of each day (`by_day`) and per key, and whether the invariants held.

    Raises ValueError for a size out of range or a bad window.
    """
    if not 1 <= days <= 60 or not 4 <= per_hour <= 100_000:
        raise ValueError("days must be 1..60 and per_hour 4..100,000")
    prog = dataclasses.replace(program, allow_negative=True)  # spends never run short
    eng = Engine([prog], idempotency_window_s=window_s)
    rng = np.random.default_rng(seed)
    app, mch = prog.appids[0], next(iter(prog.merchants))
    kinds = [k for k in _EVENT_KINDS if k in prog.events] or list(prog.events)
    shoppers = random_ids(rng, max(1000, per_hour * 4))
    members = shoppers[:200]
    for oid in members:
        eng.bind(Binding(app, oid, "u" + oid[1:], START_S))
        eng.enroll(Enrollment(prog.id, START_S, unionid="u" + oid[1:]))
    eng.advance(START_S)
    by_day: list[dict[str, int]] = []
    n = applied = 0
    for hour in range(days * 24):
        t0 = START_S + hour * HOUR_S
        who = rng.integers(0, len(shoppers), per_hour).tolist()
        kind = rng.integers(0, len(kinds), per_hour).tolist()
        for k in range(per_hour):
            n += 1
            t = t0 + k * HOUR_S // per_hour
            if k % 4 < 2:
                out = eng.engage(Engagement(f"ev{n:026d}", app, shoppers[who[k]],
                                            kinds[kind[k]], t))
            elif k % 4 == 2:
                txid = f"42{n:030d}"
                eng.pay(Payment(txid, app, mch, shoppers[who[k]], 2000, t))
                out = eng.refund(Refund(f"50{n:030d}", txid, mch, 500, 2000, t + 1))
            else:
                oid = members[who[k] % len(members)]
                out = eng.spend(Spend(f"sp{n:026d}", prog.id, 1, t, unionid="u" + oid[1:]))
            applied += out.code is Code.APPLIED
        eng.advance(t0 + HOUR_S)
        if hour % 24 == 23:
            by_day.append(_sizes(eng, hour // 24 + 1, n, applied))
    last = by_day[-1]
    return {
        "window_s": window_s, "bucket_s": eng.idem.bucket_s, "days": days,
        "per_hour": per_hour, "seed": seed, "by_day": by_day,
        "keys_in_window": last["keys"],
        "bytes_per_key": round(last["bytes"] / max(1, last["keys"]), 1),
        "structure_bytes_per_key": round(
            (last["bytes"] - last["key_str_bytes"]) / max(1, last["keys"]), 1),
        "keys_if_kept_forever": applied,
        # each map with its keys and values, per key (the generations' lists come on top)
        "bytes_per_key_by_kind": {
            kind: round(last[f"{kind[:-1]}_map_bytes"] / max(1, last[kind]), 1)
            for kind in ("events", "refunds", "spends")},
        "invariants_ok": not check_invariants(eng),
    }


def _sizes(eng: Engine, day: int, inputs: int, applied: int) -> dict[str, int]:
    """The window's keys and bytes now (its maps, generations, values and key strings)."""
    idem = eng.idem
    key_str = sum(map(sys.getsizeof, idem.events)) + sum(map(sys.getsizeof, idem.refunds)) \
        + sum(map(sys.getsizeof, idem.spends))
    return {"day": day, "inputs": inputs, "applied": applied, "keys": len(idem),
            "forgotten": idem.forgotten, "generations": len(idem.gens),
            "bytes": deep_size(idem), "key_str_bytes": key_str,
            "events": len(idem.events), "event_map_bytes": deep_size(idem.events),
            "refunds": len(idem.refunds), "refund_map_bytes": deep_size(idem.refunds),
            "spends": len(idem.spends), "spend_map_bytes": deep_size(idem.spends)}


def format_report(r: dict[str, Any]) -> str:
    """The human-readable report of `measure`'s result."""
    w = r["window_s"]
    lines = [f"idempotency window {w // 3600}h{w % 3600 // 60:02d}m (retry span "
             f"{limits.RETRY_WINDOW_S // 3600}h{limits.RETRY_WINDOW_S % 3600 // 60:02d}m "
             f"+ margin), generations of {r['bucket_s']} s; {r['per_hour']:,} inputs an "
             f"hour for {r['days']} days, advance hourly (seed {r['seed']})",
             "  day     inputs    applied   keys in window   forgotten  generations"
             "      bytes  bytes/key"]
    for d in r["by_day"]:
        lines.append(f"  {d['day']:>3} {d['inputs']:>10,} {d['applied']:>10,} "
                     f"{d['keys']:>16,} {d['forgotten']:>11,} {d['generations']:>12,} "
                     f"{d['bytes']:>10,} {d['bytes'] / max(1, d['keys']):>10.1f}")
    lines.append(f"  per key inside the window: {r['bytes_per_key']} bytes "
                 f"({r['structure_bytes_per_key']} of maps and generations, the rest the "
                 f"id string)")
    lines.append("  per key of each map (keys and values): " + ", ".join(
        f"{kind} {v} bytes" for kind, v in r["bytes_per_key_by_kind"].items()))
    lines.append(f"  kept forever it would be {r['keys_if_kept_forever']:,} keys; "
                 f"the window holds {r['keys_in_window']:,}")
    lines.append(f"  invariants         {'ok' if r['invariants_ok'] else 'VIOLATED'}")
    return "\n".join(lines)


__all__ = ["format_report", "measure"]
