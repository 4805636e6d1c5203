"""The reference model: one SimPy process per shopper and per customer, one SimPy
resource per station. Slow, simple and obviously right; tests check that the fast
model agrees with it, and `paymember bench sim` measures how much faster that is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.queues import BALKED, RENEGED, SERVED, Served

if TYPE_CHECKING:
    from sim.model import Model
    from sim.platform import PlatformStage


class _Ref:
    """Per-run state of the reference model: stations and buffers flushed every tick."""

    def __init__(self, m: Model) -> None:
        self.stations: dict[tuple[int, int], simpy.Resource] = {}
        self.customers: list[list[tuple[float, float, float, int]]] = [[] for _ in m.sc.places]
        self.payments: list[list[tuple[int, int, float]]] = [[] for _ in m.sc.places]


def start_reference(m: Model, stage: PlatformStage) -> None:
    """Start one SimPy process per shopper of `m`'s population."""
    m.ref = _Ref(m)  # type: ignore[attr-defined]
    for i in range(m.pop.n):
        m.env.process(_shopper(m, i))


def _max_rate(m: Model, seg: int) -> float:
    sc = m.sc
    g = sc.segments[seg]
    top = 0.0
    for p, place in enumerate(sc.places):
        lift = max([1 + c.visit_lift for c in sc.campaigns
                    if c.kind == "promotion" and c.place == place.name] + [1.0])
        top += g.visits_per_day.get(place.name, 0.0) * max(g.profile) / 3600 * lift
        del p
    return top * (1 + float(m.tier_sens[seg]))


def _shopper(m: Model, i: int) -> Any:
    env, rng, sc = m.env, m.rng_arr, m.sc
    seg = int(m.pop.segment[i])
    top = _max_rate(m, seg)
    if top <= 0:
        return
    sens = float(m.tier_sens[seg])
    who = np.array([i])
    while True:
        yield env.timeout(rng.exponential(1 / top))
        t = env.now
        if t >= m.active_s:
            return
        u = rng.random() * top
        for p in range(len(sc.places)):
            r = m.visit_rate(p, seg, t)
            if sens and r:
                r *= 1 + sens * bool(m.near_tier(int(m.prog_of_place[p]), who)[0])
            if u < r:
                env.process(_customer(m, i, seg, p, t))
                break
            u -= r


def _customer(m: Model, i: int, seg: int, p: int, t: float) -> Any:
    env, rng, sc = m.env, m.rng_arr, m.sc
    ref: _Ref = m.ref  # type: ignore[attr-defined]
    place = sc.places[p]
    home = rng.random() < sc.segments[seg].home_prob
    station = int(m.pop.home[p][i]) if home else int(rng.integers(0, place.count))
    res = ref.stations.get((p, station))
    if res is None:
        res = ref.stations[(p, station)] = simpy.Resource(env, capacity=place.lanes)
    if place.balk_queue_len and len(res.queue) >= place.balk_queue_len:
        ref.customers[p].append((t, 0.0, t, BALKED))
        return
    req = res.request()
    if place.patience_s:
        patience = rng.exponential(place.patience_s)
        got = yield req | env.timeout(patience)
        if req not in got:
            req.cancel()
            ref.customers[p].append((t, patience, t + patience, RENEGED))
            return
    else:
        yield req
    start = env.now
    service = float(place.service.sample(rng, 1)[0])
    yield env.timeout(service)
    res.release(req)
    ref.customers[p].append((t, start - t, start, SERVED))
    ref.payments[p].append((i, station, env.now + float(place.settle.sample(rng, 1)[0])))


def flush(m: Model) -> None:
    """Hand the customers and payments buffered since the last tick to the shared stages."""
    ref: _Ref = m.ref  # type: ignore[attr-defined]
    for p in range(len(m.sc.places)):
        cust = ref.customers[p]
        if cust:
            a = np.array(cust)
            m.rec.places[p].record(a[:, 0], Served(a[:, 1], a[:, 2], a[:, 3].astype(np.int8)))
            cust.clear()
        pays = ref.payments[p]
        if pays:
            b = np.array(pays)
            m.emit_payments(b[:, 0].astype(np.int64), p, b[:, 1].astype(np.int32), b[:, 2])
            pays.clear()
