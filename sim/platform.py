"""The payment platform and the engine's capacity, tick by tick.

Each tick, the deliveries due in it (first notifications, retries, duplicates and
direct inputs) reach the engine. The engine is `workers` FIFO shards (routed with
core's `shard_of`), each taking `service_us` per input; completion times follow
the Lindley recursion in closed form, C_k = (k+1)s + max(C_0, max_{j<=k}(a_j - js)).
A notification not answered within the ack timeout, or rejected, is sent again
after the documented retry schedule; answered ones are sometimes sent again anyway.
The engine's answers drive shoppers' reactions (joining, logins).

The model handles a tick's answers one tick late (`LAG_TICKS`): right after handing
the engine the next tick's deliveries. So an engine in its own process (sim.link)
applies one tick while the model prepares the next; a run is the same either way.
Timeouts need no answer (they are retried at once, on schedule); rejections are
retried, and acknowledged notifications duplicated, when the answer is handled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from core import Code
from core.limits import RETRY_SCHEDULE_S
from sim._tick import complete, react_known, route_shards
from sim.feed import CODE_INDEX, CODES, INVITE, OFFER, OK_CODES
from sim.inputs import batch_of
from sim.model import DUPLICATE
from sim.tables import BIND, COUPON, ENROLL, PAY, REFUND

if TYPE_CHECKING:
    from sim.model import Model

_APPLIED = CODE_INDEX[Code.APPLIED]
_DUPLICATE = CODE_INDEX[Code.DUPLICATE]
RETRIES = np.array(RETRY_SCHEDULE_S, np.float64)
_NO_PROGS = np.zeros(0, np.int64)
LAG_TICKS = 1  # a tick's engine answers are handled after the next tick is handed over
assert (PAY, REFUND) == (0, 1) and min(BIND, COUPON, ENROLL) > REFUND


class PlatformStage:
    """Delivers due inputs to the engine each tick and handles acknowledgements."""

    def __init__(self, m: Model) -> None:
        """Attach to model `m` with idle engine shards."""
        self.m = m
        self.workers = m.sc.engine.workers
        self.service_s = m.sc.engine.service_us / 1e6
        self.free = np.zeros(self.workers)
        self.tick_s = m.sc.tick_s
        self.free[:] = m.begin_s
        # Shard of each (program, app, shopper), computed once: -1 = not yet.
        self.shard_cache = np.full((len(m.sc.programs), 2, m.pop.n if self.workers > 1 else 0),
                                   -1, np.int16)
        self._flat_cache = self.shard_cache.reshape(-1)  # a view: one index per openid

    def run(self, progress: Callable[[float], None] | None) -> Any:
        """SimPy process: at the end of each tick, process the deliveries due in it."""
        m = self.m
        k = int(m.begin_s // self.tick_s)
        m.cal.floor_tick = k
        while True:
            yield m.env.timeout((k + 1) * self.tick_s - m.env.now)
            if m.mode == "reference":
                from sim.reference import flush

                flush(m)
            self.tick(k)
            k += 1
            if progress is not None:
                progress(m.env.now)

    def route(self, prog: int | np.ndarray, app: int, shopper: np.ndarray) -> np.ndarray | int:
        """Shard of each input of `shopper`s in app `app` of program(s) `prog`: core's
        `shard_of` of the shopper's openid there, computed once per openid (in batches, as
        the model files inputs, in sim._tick) and then looked up, so ticks read a routed
        column."""
        if self.workers == 1:
            return 0
        if isinstance(prog, np.ndarray):
            return route_shards(self._flat_cache, self.m.pop.n, -1,
                                np.ascontiguousarray(prog, np.int64), app,
                                np.ascontiguousarray(shopper, np.int64), self.workers)
        return route_shards(self._flat_cache, self.m.pop.n, prog, _NO_PROGS, app,
                            np.ascontiguousarray(shopper, np.int64), self.workers)

    def complete(self, shard: np.ndarray, due: np.ndarray) -> np.ndarray:
        """Completion time of each input (in due order per shard), updating shard state
        (in sim._tick)."""
        return complete(np.ascontiguousarray(shard, np.int16),
                        np.ascontiguousarray(due, np.float64), self.free, self.service_s)

    def tick(self, k: int) -> None:
        """Process the deliveries due in tick `k` (at simulated time (k+1)·tick)."""
        m = self.m
        rec, tab, cal, pf = m.rec, m.tab, m.cal, m.sc.platform
        now = (k + 1) * self.tick_s
        rows, att, due = cal.pop(k)
        cal.floor_tick = k + 1
        if len(rows):
            kind = tab.cols["kind"][rows]
            notif = kind <= REFUND  # PAY or REFUND (kinds are small non-negative ints)
            lost = notif & (m.rng_plat.random(len(rows)) < pf.lost_prob)
            if np.count_nonzero(lost):
                rec.lost += int(np.count_nonzero(lost))
                self._retry(rows[lost], att[lost], due[lost])
                keep = ~lost
                rows, att, due, kind, notif = rows[keep], att[keep], due[keep], kind[keep], \
                    notif[keep]
        if len(rows):
            done = self.complete(tab.cols["shard"][rows], due)
            order = done.argsort(kind="stable")
            rows, att, due, done, kind, notif = (rows[order], att[order], due[order], done[order],
                                                 kind[order], notif[order])
            on_input = None
            if m.trace is not None:
                tr = m.trace
                due_l, att_l = due.tolist(), att.tolist()

                def on_input(j: int, x: Any) -> None:
                    tr.write(due_l[j], att_l[j], x)

            rec.engine(due, done)
            rec.attempts += np.bincount(att[notif], minlength=len(rec.attempts))
            rec.duplicates_delivered += int(np.count_nonzero(notif & tab.done[rows]))
            tab.done[rows] = True
            # An answer later than the ack timeout is no acknowledgement whatever the engine
            # says: those retries are filed now, on the platform's schedule to the second.
            in_time = done - due <= pf.ack_timeout_s
            late = notif & ~in_time
            if np.count_nonzero(late):
                self._retry(rows[late], att[late], due[late])
            sent = (rows, att, due, done, kind, notif, in_time)

            def answered(out: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
                self._answered(sent, *out)

            # A null engine reads only the batch's length (unless it traces).
            b = ({"row": rows} if m.link.null and on_input is None
                 else batch_of(tab, rows, kind=kind))
            m.link.tick(b, answered, on_input)
        m.link.settle(LAG_TICKS)
        backlog = np.ceil(np.maximum(self.free - now, 0) / self.service_s - 1e-9)
        rec.backlog(now, int(backlog.sum()))

    def _answered(self, sent: tuple[np.ndarray, ...], code: np.ndarray, pts: np.ndarray,
                  flags: np.ndarray) -> None:
        """Handle the engine's answers to deliveries `sent` (rows, attempts, due and done
        times, kinds, notification mask, answered in time): acknowledgements, retries of
        rejections (a tick late: they may start the first open tick), reactions."""
        rows, att, due, done, kind, notif, in_time = sent
        self.m.rec.codes += np.bincount(code, minlength=len(CODES))
        ok = OK_CODES[code]
        rejected = notif & in_time & ~ok
        if np.count_nonzero(rejected):
            self._retry(rows[rejected], att[rejected], due[rejected])
        ack = ok & in_time
        self._acks(rows[notif], att[notif], done[notif], ack[notif])
        self._react(rows, kind, code, pts, flags, done)

    def _retry(self, rows: np.ndarray, att: np.ndarray, due: np.ndarray) -> None:
        """Schedule the next attempt of unacknowledged notifications, or give them up."""
        more = att < len(RETRIES)
        self.m.rec.abandoned += int(np.count_nonzero(~more & (att != DUPLICATE)))
        # A spontaneous duplicate is not retried: the original was acknowledged.
        more &= att != DUPLICATE
        r, a, d = rows[more], att[more], due[more]
        self.m.cal.add(r, a + 1, d + RETRIES[np.minimum(a, len(RETRIES) - 1)])

    def _acks(self, rows: np.ndarray, att: np.ndarray, done: np.ndarray, ack: np.ndarray,
              ) -> None:
        """Record first acknowledgements; the platform sends some acknowledged ones again."""
        m = self.m
        tab = m.tab
        first = ack & np.isnan(tab.first_ack_s[rows])
        tab.first_ack_s[rows[first]] = done[first]
        pf = m.sc.platform
        dup = ack & (att != DUPLICATE) & (m.rng_plat.random(len(rows)) < pf.duplicate_prob)
        if np.count_nonzero(dup):
            n = int(np.count_nonzero(dup))
            m.rec.duplicates_sent += n
            m.cal.add(rows[dup], DUPLICATE, done[dup] + pf.duplicate_delay.sample(m.rng_plat, n))

    def _react(self, rows: np.ndarray, kind: np.ndarray, code: np.ndarray, pts: np.ndarray,
               flags: np.ndarray, done: np.ndarray) -> None:
        """Update what the model knows of shoppers and let them react to the engine."""
        m = self.m
        pop, c, rng = m.pop, m.tab.cols, m.rng_react
        # Points, memberships and coupons learnt, and the applied payments' (position,
        # shopper, program, flat (program, shopper) key), in one pass in C.
        pay, s, q, key, enrolled, enrolled_applied = react_known(
            rows, kind, code, pts, c["shopper"], c["prog"], pop.n, pop.points.reshape(-1),
            pop.member.reshape(-1).view(np.uint8), pop.joining.reshape(-1).view(np.uint8),
            pop.coupon.reshape(-1), _APPLIED, _DUPLICATE, PAY, ENROLL, COUPON)
        if enrolled:
            m.rec.count("enrolled", enrolled_applied)
        n = len(pay)
        if not n:
            return
        t = done[pay]
        seg = pop.segment[s]
        # The draws for accepting an offer and an invitation, in one call (the same
        # numbers as two calls of n each).
        u = rng.random(2 * n)
        fl = flags[pay]
        if np.count_nonzero(fl):
            # Pay to become a member: the platform offers the card; some accept.
            not_member = ~pop.member.reshape(-1)[key]
            offer = (fl & OFFER).astype(bool) & not_member
            pop.offered.reshape(-1)[key[offer]] = True  # (again, for some: no change)
            offers = int(np.count_nonzero(offer))
            m.rec.count("offers", offers)
            if offers:
                p = m.join_prob[seg] * (1 + m.bonus_lift[seg] * (t >= m.bonus_from_s[q]))
                p = p * (1 + m.shadow_lift[seg] * (pop.points.reshape(-1)[key] > pts[pay]))
                accept = offer & (u[:n] < np.minimum(p, 1.0))
            else:
                accept = offer
            # Friend Membership: the merchant invites once its campaign has started.
            invite = (fl & INVITE).astype(bool) & not_member & (t >= m.friend_from_s[q])
            if np.count_nonzero(invite):
                friend = invite & (u[n:] < m.friend_prob[seg])
                pop.invited.reshape(-1)[key[invite]] = True
                m.rec.count("friend_invites", int(np.count_nonzero(invite)))
                m.rec.count("friend_accepts", int(np.count_nonzero(friend)))
                accept = accept | friend
            joins = accept.nonzero()[0]
            if len(joins):
                # All programs at once, ascending (as joining one program after another).
                m.join(q[joins], s[joins], t[joins])
        else:
            m.rec.count("offers", 0)
        # Identity arrives after the payments it explains: a post-payment lookup.
        look = ~pop.bound.reshape(-1)[key] & (rng.random(n) < m.login_prob[seg])
        if not np.count_nonzero(look):
            return
        at = look.nonzero()[0]
        q, s, t, key = q[at], s[at], t[at], key[at]
        # Per program, two payments of one shopper in a tick look up once: each (program,
        # shopper)'s first payment, programs ascending, shoppers ascending within one (the
        # order of filing one program after another).
        first = key.argsort(kind="stable")
        key = key[first]
        keep = np.empty(len(key), bool)
        keep[0] = True
        np.not_equal(key[1:], key[:-1], out=keep[1:])
        first = first[keep]
        q, s = q[first], s[first]
        # Delays drawn per program, then per segment within it: groups (program, segment).
        delay = m.binding_delay_by_prog.sample(rng, q * len(m.sc.segments) + pop.segment[s])
        pop.bound.reshape(-1)[key[keep]] = True
        m.direct(BIND, s, q, t[first] + delay)

    def finish(self) -> None:
        """Handle the engine's last answers, then count what the platform still had to
        deliver when the horizon ended."""
        m = self.m
        m.link.settle(0)
        m.rec.count("deliveries_pending_at_end", m.cal.size)
        m.rec.count("engine_backlog_at_end",
                    int(np.ceil(np.maximum(self.free - m.horizon_s, 0) / self.service_s
                                - 1e-9).sum()))

