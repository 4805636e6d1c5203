"""The simulation model: a SimPy environment holding the shoppers, places, platform,
engine and campaigns of one scenario run.

Shoppers are numpy columns (sim.population). In "fast" mode their visits are
superposed Poisson arrivals per place type and time block, served by exact queue
recursions (sim.shopping); in "reference" mode each shopper is a SimPy process and
each station a SimPy resource (sim.reference). Both hand payments to the same
platform and engine stage (sim.platform), which runs in ticks of simulated time.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter, process_time
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.dists import Dist, GroupSampler
from sim.feed import EngineLike
from sim.inputs import FeedContext
from sim.link import LocalLink, ProcessLink
from sim.metrics import PlaceStats, Recorder
from sim.population import Population
from sim.scenario import HABITS, Scenario
from sim.tables import BIND, COUPON, ENROLL, EVENT, PAY, REFUND, Calendar, Inputs
from sim.timing import WallSplit
from sim.trace import TraceWriter

if TYPE_CHECKING:
    from sim.platform import PlatformStage

# Card activation after accepting a membership offer: seconds, exponential.
ACTIVATION_DELAY = Dist("exponential", 60.0)
# Within this fraction below the next tier's threshold a shopper counts as "near".
NEAR_TIER_FRACTION = 0.2
# Attempt numbers: 0 is the first delivery, 1..15 the retries; these two mark the rest.
DUPLICATE = 16  # a platform's spontaneous duplicate of an acknowledged notification
DIRECT = 17  # an input that is not a platform notification (never retried)


class Model:
    """One run of `scenario` with `seed` against engine `eng` (core.Engine or NullEngine),
    or with `eng` None against a real engine in a process of its own (sim.link)."""

    def __init__(self, scenario: Scenario, seed: int, eng: EngineLike | None,
                 trace: TraceWriter | None = None, mode: str | None = None) -> None:
        """Build the population, stations and processes; nothing runs until `run()`.
        Raises ValueError for a trace with an engine process."""
        self.sc = sc = scenario
        self.seed = seed
        self.mode = mode or sc.mode
        self.wall = WallSplit()  # where the run's wall time goes (benchmarks only)
        self.currencies = tuple(sorted({"CNY"} | {p.home_currency for p in sc.programs}
                                       | {g.currency for g in sc.segments}))
        self.ctx = FeedContext.of(sc, self.currencies)
        if eng is None and trace is not None:
            raise ValueError("a traced run applies its inputs in this process: pass an engine")
        # The engine process forks first, while this process is still small.
        self.link = (LocalLink(eng, self.ctx, self.wall) if eng is not None
                     else ProcessLink(sc.programs, self.ctx, self.wall))
        self.eng = eng
        streams = np.random.SeedSequence(seed).spawn(5)
        self.rng_pop, self.rng_arr, self.rng_pay, self.rng_plat, self.rng_react = (
            np.random.default_rng(s) for s in streams)
        self.begin_s = int(sc.start_hour * 3600)
        self.env = simpy.Environment(initial_time=self.begin_s)
        self.trace = trace
        self.stage: PlatformStage | None = None  # set by run()
        self.pop = Population(sc, self.rng_pop)
        # About four inputs a shopper in a day: room for six, so the table rarely grows
        # (growing copies every column into fresh memory).
        self.tab = Inputs(capacity=1 << max(16, (6 * sc.shoppers - 1).bit_length()))
        self.cal = Calendar(sc.tick_s)
        self.active_s = self.begin_s + int(sc.hours * 3600)  # activity ends
        self.horizon_s = self.active_s + int(sc.drain_hours * 3600)  # the run ends
        self.capacity_per_s = sc.engine.workers / (sc.engine.service_us / 1e6)
        self.rec = Recorder(self.horizon_s, [PlaceStats(p.name, self.horizon_s)
                                             for p in sc.places], self.capacity_per_s)
        self.prog_of_place = np.array([[p.id for p in sc.programs].index(pl.program)
                                       for pl in sc.places])
        self._segment_tables()
        self._coupon_tables()

    # ------------------------------------------------------------------ set-up
    def _segment_tables(self) -> None:
        sc = self.sc
        m = [g.membership for g in sc.segments]
        self.join_prob = np.array([x.join_prob for x in m])
        self.bonus_lift = np.array([x.bonus_lift for x in m])
        self.shadow_lift = np.array([x.shadow_lift for x in m])
        self.friend_prob = np.array([x.friend_accept_prob for x in m])
        self.redeem_prob = np.array([x.coupon_redeem_prob for x in m])
        self.tier_sens = np.array([x.tier_sensitivity for x in m])
        self.login_prob = np.array([x.login_prob for x in m])
        # Binding delay of each (program, segment): group number program * segments + segment.
        self.binding_delay_by_prog = GroupSampler([x.binding_delay for _ in sc.programs
                                                   for x in m])
        # Per place type: each segment's basket there (None where it never goes).
        self.basket = [GroupSampler([g.basket.get(p.name) for g in sc.segments])
                       for p in sc.places]
        self.seg_currency = np.array([self.currencies.index(g.currency) for g in sc.segments],
                                     np.int8)
        # Per program: apps, from when a welcome bonus applies (model seconds), next-tier
        # thresholds.
        self.n_apps = [len(p.appids) for p in sc.programs]
        self.bonus_from_s = np.array([np.inf if not p.welcome_bonus else
                                      -np.inf if not p.welcome_bonus_from_s else
                                      float(p.welcome_bonus_from_s - sc.start_s)
                                      for p in sc.programs])
        self.thresholds = [np.array([t.threshold for t in p.tiers] + [np.iinfo(np.int64).max])
                           for p in sc.programs]
        self.home_ccy = [self.currencies.index(p.home_currency) for p in sc.programs]
        self.friend_from_s = np.array([min((c.at_hour * 3600 for c in sc.campaigns
                                   if c.kind == "friend_invites" and c.program == p.id),
                                  default=np.inf) for p in sc.programs])

    def _coupon_tables(self) -> None:
        self.stock_value = [np.array([s.value_fen for s in p.coupons.values()] or [0], np.int64)
                            for p in self.sc.programs]
        self.stock_min = [np.array([s.min_order_fen for s in p.coupons.values()] or [0], np.int64)
                          for p in self.sc.programs]

    # ------------------------------------------------------------ rates, tiers
    def visit_rate(self, place: int, seg: int, t_s: float) -> float:
        """Visits per second per shopper of segment `seg` to place type `place` at `t_s`."""
        sc = self.sc
        g = sc.segments[seg]
        name = sc.places[place].name
        per_day = g.visits_per_day.get(name, 0.0)
        if not per_day or t_s >= self.active_s:
            return 0.0
        hour = int(t_s // 3600) % 24
        rate = per_day * g.profile[hour] / 3600.0
        for c in sc.campaigns:
            if c.kind == "promotion" and c.place == name and c.at_hour * 3600 <= t_s < (
                    c.until_hour * 3600):
                rate *= 1 + c.visit_lift
        return rate

    def near_tier(self, prog: int, shopper: np.ndarray) -> np.ndarray:
        """True for members of program `prog` within reach of their next tier."""
        pts = self.pop.points[prog, shopper]
        thr = self.thresholds[prog]
        nxt = thr[np.searchsorted(thr, pts, side="right")]
        near = (pts >= nxt * (1 - NEAR_TIER_FRACTION)) & (nxt < np.iinfo(np.int64).max)
        return near & self.pop.member[prog, shopper]

    # ---------------------------------------------------------------- payments
    def emit_payments(self, shopper: np.ndarray, place: int, station: np.ndarray,
                      success_s: np.ndarray) -> None:
        """Create payments (and their refunds) of `shopper`s at `station`s of place type
        `place`, succeeding at `success_s`, and file their notifications."""
        n = len(shopper)
        if not n:
            return
        rng, sc, pop = self.rng_pay, self.sc, self.pop
        q = int(self.prog_of_place[place])
        seg = pop.segment[shopper]
        amount = np.maximum(1, np.rint(self.basket[place].sample(rng, seg))
                            ).astype(np.int64)
        cur = self.seg_currency[seg]
        # Coupon redemption: a member holding a coupon uses it on a large enough basket.
        held = pop.coupon[q, shopper]
        use = (held >= 0) & (cur == self.home_ccy[q]) & (rng.random(n) < self.redeem_prob[seg])
        payer = amount.copy()
        ref = np.full(n, -1, np.int64)
        if use.any():
            stock = self.tab.cols["ref"][held[use]]
            ok = amount[use] >= np.maximum(self.stock_min[q][stock], self.stock_value[q][stock] + 1)
            idx = np.flatnonzero(use)[ok]
            payer[idx] -= self.stock_value[q][stock[ok]]
            ref[idx] = held[idx]
            pop.coupon[q, shopper[idx]] = -1
            self.rec.count("coupons_redeemed", len(idx))
        rows = self.tab.append(kind=np.full(n, PAY, np.int8), shopper=shopper, prog=q,
                               place=place, station=station, t_s=success_s, amount=amount,
                               payer=payer, ref=ref, currency=cur, app=0,
                               shard=self.route(q, 0, shopper))
        due = success_s + sc.platform.notify_delay.sample(rng, n)
        self._emit_refunds(rows, amount, success_s, due)
        self.cal.add(rows, 0, due)
        self.rec.payments(success_s)
        pop.paid[q, shopper] = True

    def _emit_refunds(self, pay_rows: np.ndarray, amount: np.ndarray, t_s: np.ndarray,
                      pay_due: np.ndarray) -> None:
        """Refund some payments, partly or fully, later; for a share of them the payment's
        own notification is held up (`pay_due` is moved) until after the refund's."""
        pf, rng = self.sc.platform, self.rng_pay
        pick = np.flatnonzero(rng.random(len(pay_rows)) < pf.refund_prob)
        if not len(pick):
            return
        total = amount[pick]
        partial = (rng.random(len(pick)) < pf.refund_partial_prob) & (total > 1)
        first = np.where(partial, 1 + np.floor(rng.random(len(pick)) * (total - 1)), total)
        first = first.astype(np.int64)
        when = t_s[pick] + pf.refund_delay.sample(rng, len(pick))
        self._refund_rows(pay_rows[pick], first, total, when)
        early = np.flatnonzero(rng.random(len(pick)) < pf.refund_first_prob)
        if len(early):
            refund_due = self._refund_due[early]
            pay_due[pick[early]] = np.maximum(pay_due[pick[early]], refund_due
                                              + pf.notify_delay.sample(rng, len(early)))
            self.rec.count("refunds_before_payment", len(early))
        again = np.flatnonzero(partial & (rng.random(len(pick)) < pf.refund_second_prob))
        if len(again):
            left = total[again] - first[again]
            second = (1 + np.floor(rng.random(len(again)) * left)).astype(np.int64)
            self._refund_rows(pay_rows[pick][again], np.minimum(second, left), total[again],
                              when[again] + pf.refund_delay.sample(rng, len(again)))

    def _refund_rows(self, pay_rows: np.ndarray, refund: np.ndarray, total: np.ndarray,
                     when: np.ndarray) -> np.ndarray:
        c = self.tab.cols
        rows = self.tab.append(kind=np.full(len(pay_rows), REFUND, np.int8),
                               shopper=c["shopper"][pay_rows], prog=c["prog"][pay_rows],
                               place=c["place"][pay_rows], station=c["station"][pay_rows],
                               t_s=when, amount=refund, payer=total, ref=pay_rows,
                               currency=c["currency"][pay_rows], app=0,
                               shard=c["shard"][pay_rows])
        due = when + self.sc.platform.notify_delay.sample(self.rng_pay, len(rows))
        self.cal.add(rows, 0, due)
        self._refund_due = due  # for _emit_refunds: when these refunds are delivered
        self.rec.count("refunds", len(rows))
        return rows

    # -------------------------------------------------------------- engagement
    def emit_engagement(self, t0: float, t1: float) -> None:
        """Create the engagement events (and mini-program logins) of block [t0, t1)."""
        sc, pop, rng = self.sc, self.pop, self.rng_arr
        if t0 >= self.active_s:
            return
        hour = int(t0 // 3600) % 24
        # Filed after the draws, in the same order, once their shards are routed in one
        # batch per (program, app).
        inputs: list[tuple[int, np.ndarray, int, np.ndarray, int, int]] = []
        for gi, g in enumerate(sc.segments):
            for kind, per_day in g.engagement.items():
                progs = [i for i, p in enumerate(sc.programs) if kind in p.events]
                if not per_day or not progs:
                    continue
                lam = pop.seg_size[gi] * per_day * g.profile[hour] * (t1 - t0) / 3600.0
                k = int(rng.poisson(lam))
                if not k:
                    continue
                who = pop.seg_lo[gi] + rng.integers(0, pop.seg_size[gi], k)
                when = rng.uniform(t0, t1, k)
                prog = np.asarray(progs)[rng.integers(0, len(progs), k)]
                for q in sorted(set(prog.tolist())):
                    m = prog == q
                    app = min(1, self.n_apps[q] - 1)
                    w, t = who[m], when[m]
                    login = (~pop.mini_bound[q, w]) & (rng.random(len(w)) < g.membership.login_prob)
                    if app and login.any():
                        pop.mini_bound[q, w[login]] = True
                        inputs.append((BIND, w[login], q, t[login] - 1e-3, app, -1))
                    inputs.append((EVENT, w, q, t, app, HABITS.index(kind)))
        for q, app in sorted({(x[2], x[4]) for x in inputs}):
            self.route(q, app, np.concatenate([x[1] for x in inputs if x[2:5:2] == (q, app)]))
        for kind_, w, q, t, app, ref in inputs:
            self.direct(kind_, w, q, t, app=app, ref=ref)

    def direct(self, kind: int, shopper: np.ndarray, prog: int | np.ndarray, t_s: np.ndarray,
               app: int = 0, ref: np.ndarray | int = -1) -> np.ndarray:
        """File non-notification inputs (bindings, enrollments, events, coupons) at `t_s`."""
        rows = self.tab.append(kind=kind, shopper=shopper, prog=prog, t_s=t_s, app=app, ref=ref,
                               shard=self.route(prog, app, shopper))
        self.cal.add(rows, DIRECT, t_s)
        return rows

    def route(self, prog: int | np.ndarray, app: int, shopper: np.ndarray) -> np.ndarray | int:
        """The engine shard of inputs of `shopper`s in app `app` of `prog` (PlatformStage.route)."""
        return 0 if self.stage is None else self.stage.route(prog, app, shopper)

    def join(self, prog: int | np.ndarray, shopper: np.ndarray, t_s: np.ndarray) -> None:
        """Shoppers accept membership of `prog` (one program, or one per shopper) at `t_s`:
        card activation binds, then enrolls. Per-shopper programs are taken in ascending
        order (stably), as joining one program after another would draw and file them."""
        pop = self.pop
        if isinstance(prog, np.ndarray):
            order = prog.argsort(kind="stable")
            prog, shopper, t_s = prog[order], shopper[order], t_s[order]
        key = prog * pop.n + shopper
        joining, member, bound = (pop.joining.reshape(-1), pop.member.reshape(-1),
                                  pop.bound.reshape(-1))
        fresh = ~(joining[key] | member[key])
        if not fresh.all():
            shopper, t_s, key = shopper[fresh], t_s[fresh], key[fresh]
            if isinstance(prog, np.ndarray):
                prog = prog[fresh]
        if not len(shopper):
            return
        t_s = t_s + ACTIVATION_DELAY.sample(self.rng_react, len(shopper))
        unbound = ~bound[key]
        if unbound.any():
            self.direct(BIND, shopper[unbound],
                        prog[unbound] if isinstance(prog, np.ndarray) else prog,
                        t_s[unbound] - 1e-3)
        bound[key] = True
        joining[key] = True
        self.direct(ENROLL, shopper, prog, t_s)
        self.rec.count("joins_sent", len(shopper))

    # -------------------------------------------------------------- processes
    def _campaigns(self) -> Any:
        sc = self.sc
        for c in sorted(sc.campaigns, key=lambda c: c.at_hour):
            if c.kind != "coupon_push":
                continue
            at = c.at_hour * 3600
            if at < self.begin_s:
                continue
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            q = [p.id for p in sc.programs].index(c.program)
            members = np.flatnonzero(self.pop.member[q])
            chosen = members[self.rng_react.random(len(members)) < c.share]
            stock = list(sc.programs[q].coupons).index(c.stock_id)
            when = at + self.rng_react.uniform(0, 60, len(chosen))
            self.direct(COUPON, chosen, q, when, ref=stock)
            self.rec.count("coupons_pushed", len(chosen))

    def _advance(self) -> Any:
        every = self.sc.engine.advance_every_s
        while True:
            yield self.env.timeout(every)
            self.link.advance(self.sc.start_s + int(self.env.now))

    def sample_stats(self) -> None:
        """Take the engine's point totals now for the run's timeline (appended when the
        engine's answer is settled, in order)."""
        t_s = float(self.env.now)
        timeline = self.rec.timeline

        def add(st: dict[str, Any]) -> None:
            timeline.append({"t_s": t_s, **{k: v for k, v in st.items() if isinstance(v, int)}})

        self.link.stats(add)

    def _stats(self) -> Any:
        every = self.sc.engine.stats_every_s
        while True:
            self.sample_stats()
            yield self.env.timeout(every)

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Run the whole horizon; `progress(seconds)` is called as simulated time passes."""
        from sim.platform import PlatformStage

        env = self.env
        self.stage = stage = PlatformStage(self)
        if self.mode == "fast":
            from sim.shopping import places_fast

            env.process(places_fast(self))
        else:
            from sim.reference import start_reference

            start_reference(self, stage)
        env.process(self._engagement())
        env.process(self._campaigns())
        env.process(self._advance())
        env.process(self._stats())
        env.process(stage.run(progress))
        t0, c0 = perf_counter(), process_time()
        env.run(until=self.horizon_s + self.sc.tick_s)
        stage.finish()
        self.link.request_final()  # an engine process checks while this one summarises
        self.rec.flush()
        self.wall.run_s += perf_counter() - t0
        self.wall.run_cpu_s += process_time() - c0

    def _engagement(self) -> Any:
        b = self.sc.block_s
        t = self.begin_s
        while t < self.active_s:
            self.emit_engagement(t, min(t + b, self.active_s))
            t += b
            yield self.env.timeout(b)
