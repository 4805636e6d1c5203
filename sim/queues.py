"""Exact FCFS multi-lane queues with balking and reneging, for many stations at once.

Each station has `lanes` identical servers taking customers first come, first served
(the Kiefer-Wolfowitz recursion: a customer takes the lane that frees first). A
customer balks when `balk` or more wait ahead of it, and reneges when its wait would
exceed its patience (it then leaves without taking a lane). Both rules are exact:
the queue never holds more than `balk` customers, so a fixed slot array per station
counts it. State carries over between calls, so a day is served block by block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim._tick import by_station

SERVED, BALKED, RENEGED = 0, 1, 2
# Below this many customers per recursion step the per-customer loop is faster.
VECTOR_MIN_WIDTH = 24


@dataclass(slots=True)
class Served:
    """What happened to each customer: wait in queue (s), service start (s), outcome code."""

    wait_s: np.ndarray
    start_s: np.ndarray
    outcome: np.ndarray  # SERVED, BALKED or RENEGED


class QueueBank:
    """`stations` stations of `lanes` lanes each, serving arrivals in time order per station."""

    def __init__(self, stations: int, lanes: int, balk: int = 0) -> None:
        """Create idle stations; `balk` = 0 means customers never balk. Raises ValueError."""
        if stations < 1 or lanes < 1 or balk < 0:
            raise ValueError("stations and lanes must be >= 1, balk >= 0")
        self.stations, self.lanes, self.balk = stations, lanes, balk
        self.free = np.zeros((stations, lanes))  # time each lane is next free
        # Times at which the customers now queued leave the queue (start or renege).
        self.slots = np.full((stations, max(balk, 1)), -np.inf)

    def serve(self, station: np.ndarray, arrive_s: np.ndarray, service_s: np.ndarray,
              patience_s: np.ndarray | None = None) -> Served:
        """Serve customers given by `station`, `arrive_s` (non-decreasing per station and not
        before earlier calls), `service_s` and optional `patience_s` (inf = never reneges).

        Returns a Served aligned with the inputs. Raises ValueError on mismatched lengths.
        """
        n = len(station)
        if not len(arrive_s) == len(service_s) == n or (
                patience_s is not None and len(patience_s) != n):
            raise ValueError("station, arrive_s, service_s and patience_s must align")
        if patience_s is None:
            patience_s = np.full(n, np.inf)
        # By station, then arrival (ties: input order), with each customer's rank within its
        # station (the recursion step that serves it): one counting pass in C.
        order, rank, steps = by_station(np.ascontiguousarray(station, np.int64),
                                        arrive_s.argsort(kind="stable"), self.stations)
        st = station[order].astype(np.int64)
        wait = np.empty(n)
        start = np.empty(n)
        outc = np.zeros(n, np.int8)
        a, s, p = arrive_s[order], service_s[order], patience_s[order]
        if n and n >= VECTOR_MIN_WIDTH * steps:
            self._vector(st, a, s, p, rank, steps, wait, start, outc)
        else:
            self._scalar(st, a, s, p, wait, start, outc)
        inv = np.empty(n, np.int64)
        inv[order] = np.arange(n)
        return Served(wait[inv], start[inv], outc[inv])

    def _vector(self, st: np.ndarray, a: np.ndarray, s: np.ndarray, p: np.ndarray,
                rank: np.ndarray, steps: int, wait: np.ndarray, start: np.ndarray,
                outc: np.ndarray) -> None:
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(rank, minlength=steps))]
        free, slots, balk = self.free, self.slots, self.balk
        for k in range(steps):
            idx = by_rank[bounds[k]:bounds[k + 1]]
            sk, t = st[idx], a[idx]
            fr = free[sk]
            lane = fr.argmin(axis=1)
            f = fr[np.arange(len(idx)), lane]
            w = np.maximum(f - t, 0.0)
            reneg = w > p[idx]
            w = np.where(reneg, p[idx], w)
            joined = np.ones(len(idx), bool)
            if balk:
                sl = slots[sk]
                balked = (sl > t[:, None]).sum(axis=1) >= balk
                joined = ~balked
                # Replace a slot whose customer has left (value <= t) with this one's leave time.
                j = sl.argmin(axis=1)
                slots[sk[joined], j[joined]] = (t + w)[joined]
                w = np.where(balked, 0.0, w)
                outc[idx[balked]] = BALKED
            served = joined & ~reneg
            outc[idx[joined & reneg]] = RENEGED
            begin = t + w
            free[sk[served], lane[served]] = begin[served] + s[idx[served]]
            wait[idx] = w
            start[idx] = begin

    def _scalar(self, st: np.ndarray, a: np.ndarray, s: np.ndarray, p: np.ndarray,
                wait: np.ndarray, start: np.ndarray, outc: np.ndarray) -> None:
        free, slots, balk = self.free, self.slots, self.balk
        lanes = self.lanes
        cur = -1
        fr: list[float] = []
        sl: list[float] = []
        a_l, s_l, p_l, st_l = a.tolist(), s.tolist(), p.tolist(), st.tolist()
        w_out, b_out, o_out = [0.0] * len(a_l), [0.0] * len(a_l), [0] * len(a_l)
        for i, sta in enumerate(st_l):
            if sta != cur:
                if cur >= 0:
                    free[cur] = fr
                    slots[cur] = sl
                cur = sta
                fr = free[sta].tolist()
                sl = slots[sta].tolist()
            t = a_l[i]
            if balk and sum(1 for x in sl if x > t) >= balk:
                b_out[i] = t
                o_out[i] = BALKED
                continue
            lane = 0 if lanes == 1 else fr.index(min(fr))
            w = fr[lane] - t
            if w < 0.0:
                w = 0.0
            if w > p_l[i]:
                w = p_l[i]
                o_out[i] = RENEGED
            else:
                fr[lane] = t + w + s_l[i]
            if balk:
                sl[sl.index(min(sl))] = t + w
            w_out[i] = w
            b_out[i] = t + w
        if cur >= 0:
            free[cur] = fr
            slots[cur] = sl
        wait[:] = w_out
        start[:] = b_out
        outc[:] = o_out
