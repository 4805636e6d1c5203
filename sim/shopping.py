"""The fast places model: each block, every place type's visits are drawn as superposed
Poisson arrivals (sim.arrivals) and served by exact FCFS queue recursions (sim.queues)
whose state carries over from block to block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.queues import SERVED, QueueBank

if TYPE_CHECKING:
    from sim.model import Model


def places_fast(m: Model) -> Any:
    """SimPy process: at each block start, serve that block's visits and emit payments."""
    from sim.arrivals import block_visits

    sc = m.sc
    banks = [QueueBank(p.count, p.lanes, p.balk_queue_len) for p in sc.places]
    rng = m.rng_arr
    t0 = m.begin_s
    while t0 < m.active_s:
        t1 = min(t0 + sc.block_s, m.active_s)
        for pi, place in enumerate(sc.places):
            shopper, station, arrive = block_visits(m, pi, t0, t1)
            n = len(shopper)
            service = place.service.sample(rng, n)
            patience = rng.exponential(place.patience_s, n) if place.patience_s else None
            res = banks[pi].serve(station, arrive, service, patience)
            m.rec.places[pi].record(arrive, res)
            ok = res.outcome == SERVED
            success = res.start_s[ok] + service[ok] + place.settle.sample(rng, int(ok.sum()))
            m.emit_payments(shopper[ok], pi, station[ok], success)
        yield m.env.timeout(t1 - t0)
        t0 = t1
