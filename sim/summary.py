"""The run summary: the figures `summary.json` holds, computed from a finished model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.feed import CODES
from sim.metrics import little, percentiles
from sim.tables import PAY, REFUND

if TYPE_CHECKING:
    from sim.model import Model

def tiers(m: Model, st: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Members per tier of each program, as the engine counts them in its `stats()` `st`."""
    if m.link.null:
        return {}
    counts = st["tiers"]
    return {p.id: {t.name: int(counts[p.id].get(t.name, 0)) for t in p.tiers}
            for p in m.sc.programs}


def summarize(m: Model, wall_s: float) -> dict[str, Any]:
    """Return the summary of finished model `m` (`wall_s`: the run's wall-clock seconds)."""
    rec, tab, pop, sc = m.rec, m.tab, m.pop, m.sc
    kind = tab.kind
    pay = np.flatnonzero(kind == PAY)
    real = not m.link.null
    payers = int(pop.paid.any(axis=0).sum())
    lat = tab.first_ack_s[pay] - tab.t_s[pay]
    acked = ~np.isnan(lat)
    waits = {p.name: percentiles(p.wait_all()) for p in rec.places}
    queues = {p.name: {"served": p.served, "balked": p.balked, "reneged": p.reneged}
              for p in rec.places}
    laws: dict[str, Any] = {}
    for p in rec.places:
        laws[p.name] = little(p.q_in, p.q_out, p.queue_time_s, p.joined, m.horizon_s)
    laws["engine"] = little(rec.e_in, rec.e_out, rec.engine_time_s, rec.engine_inputs,
                            m.horizon_s)
    # The engine's stats and invariant check (the model waits for it here, after its own
    # work above; an engine process has been checking meanwhile).
    t0 = time.perf_counter()
    st, errors = m.link.final()
    m.wall.invariants_s += time.perf_counter() - t0
    enrolled = int(st["members"]) if real else rec.funnel.get("enrolled", 0)
    busy = rec.engine_inputs * sc.engine.service_us / 1e6
    return {
        "scenario": sc.name,
        "seed": m.seed,
        "mode": m.mode,
        "shoppers": pop.n,
        "payments": len(pay),
        "refunds": int((kind == REFUND).sum()),
        "duplicates_delivered": rec.duplicates_delivered,
        "members_enrolled": enrolled,
        "shadow_members": int(st.get("shadow_members", 0)),
        "payers": payers,
        "enrollment_rate": round(enrolled / payers, 5) if payers else 0.0,
        "points_issued": int(st.get("points_issued", 0)),
        "points_outstanding": int(st.get("points_outstanding", 0)),
        "peak_payments_per_s": int(rec.payments_per_s.max()),
        "queue_wait_s": waits,
        "queues": queues,
        "notify_latency_s": {**{k: v for k, v in percentiles(lat[acked], (50, 99)).items()},
                             "unacknowledged": int((~acked).sum())},
        "engine_backlog_max": rec.backlog_max,
        "engine": {
            "workers": sc.engine.workers, "service_us": sc.engine.service_us,
            "capacity_per_s": round(m.capacity_per_s, 1), "inputs": rec.engine_inputs,
            "utilization": round(busy / (sc.engine.workers * m.horizon_s), 5),
            "codes": {CODES[i].value: int(n) for i, n in enumerate(rec.codes) if n},
        },
        "platform": {
            "lost": rec.lost,
            "retries": int(rec.attempts[1:16].sum()),
            "abandoned": rec.abandoned,
            "duplicates_sent": rec.duplicates_sent,
            "deliveries_by_attempt": [int(x) for x in rec.attempts[:16]],
            "deliveries_pending_at_end": rec.funnel.get("deliveries_pending_at_end", 0),
            "late_reactions_moved": m.cal.clamped,
        },
        "funnel": {"payers": payers, "offered": int(pop.offered.any(axis=0).sum()),
                   "friend_invited": int(pop.invited.any(axis=0).sum()),
                   **{k: v for k, v in sorted(rec.funnel.items())
                      if k not in ("deliveries_pending_at_end",)}},
        "tiers": tiers(m, st),
        "littles_law": laws,
        "little_ok": all(v["ok"] for v in laws.values()),
        "invariants_ok": not errors,
        "invariant_errors": errors[:5],
        "wall_s": round(wall_s, 3),
    }
