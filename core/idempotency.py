"""Idempotency keys with bounded memory: the ids of applied engagement events, refunds
and spends, remembered while their input's own time is inside the window.

The window ends at the engine's clock (`Engine.advance`; it never reads a wall clock)
and reaches `window_s` back: the horizon is `clock - window_s`. An input whose time is
before the horizon is rejected STALE before anything else is looked at, so a
redelivery of any applied input (same id, same time: the platform resends the same
body) is either a known key, DUPLICATE, or older than the horizon, STALE: never
applied twice. Keys are grouped in generations by their input's time (one generation
per `bucket_s`), and `advance` drops each generation whole once all of it is behind
the horizon: every key is added once and dropped once (amortised O(1) an input), and
memory follows the keys whose time is inside the window. See docs/idempotency.md.

Payments are not kept here: a transaction id stays in the payment store
(`Engine.pay_index`) as long as the payment record does, since refunds look it up.
"""

from __future__ import annotations

import heapq

from core import limits

# Where each kind's keys go in a generation: (event ids, refund ids, spend ids).
EVENTS, REFUNDS, SPENDS = 0, 1, 2


class KeyWindow:
    """The idempotency keys of events, refunds and spends, by generation of input time.

    `events` is a set of event ids; `refunds` maps a refund id to (transaction id,
    refund fen) and `spends` a spend id to (account, points), for the conflict checks.
    """

    __slots__ = (
        "bucket_s",
        "events",
        "forgotten",
        "gen_heap",
        "gens",
        "horizon_s",
        "refunds",
        "spends",
        "window_s",
    )

    def __init__(self, window_s: int = limits.IDEMPOTENCY_WINDOW_S,
                 bucket_s: int = limits.IDEMPOTENCY_BUCKET_S) -> None:
        """An empty window of `window_s` seconds, in generations of `bucket_s` seconds.

        Raises ValueError unless RETRY_WINDOW_S <= window_s <= IDEMPOTENCY_WINDOW_S_MAX
        and 1 <= bucket_s <= window_s (integers): a window shorter than the platform's
        retry span would turn an ordinary retry into a rejection.
        """
        if (type(window_s) is not int
                or not limits.RETRY_WINDOW_S <= window_s <= limits.IDEMPOTENCY_WINDOW_S_MAX):
            raise ValueError(f"idempotency window must be {limits.RETRY_WINDOW_S}.."
                             f"{limits.IDEMPOTENCY_WINDOW_S_MAX} s, got {window_s!r}")
        if type(bucket_s) is not int or not 1 <= bucket_s <= window_s:
            raise ValueError(f"generation must be 1..{window_s} s, got {bucket_s!r}")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.horizon_s = -window_s  # the clock starts at 0: nothing is stale yet
        self.events: set[str] = set()
        self.refunds: dict[str, tuple[str, int]] = {}
        self.spends: dict[str, tuple[int, int]] = {}
        # generation number (time // bucket_s) -> its keys, one list per kind
        self.gens: dict[int, tuple[list[str], list[str], list[str]]] = {}
        self.gen_heap: list[int] = []  # the generation numbers in `gens`, a min-heap
        self.forgotten = 0  # keys dropped so far

    def generation(self, time_s: int) -> tuple[list[str], list[str], list[str]]:
        """The key lists of the generation holding input time `time_s` (made if new)."""
        b = time_s // self.bucket_s
        g = self.gens.get(b)
        if g is None:
            g = self.gens[b] = ([], [], [])
            heapq.heappush(self.gen_heap, b)
        return g

    def add_event(self, event_id: str, time_s: int) -> None:
        """Remember applied event `event_id` of time `time_s`."""
        self.events.add(event_id)
        g = self.gens.get(time_s // self.bucket_s) or self.generation(time_s)
        g[EVENTS].append(event_id)

    def add_refund(self, refund_id: str, seen: tuple[str, int], time_s: int) -> None:
        """Remember refund `refund_id` of time `time_s` as `seen` (transaction id, fen)."""
        self.refunds[refund_id] = seen
        g = self.gens.get(time_s // self.bucket_s) or self.generation(time_s)
        g[REFUNDS].append(refund_id)

    def add_spend(self, spend_id: str, seen: tuple[int, int], time_s: int) -> None:
        """Remember spend `spend_id` of time `time_s` as `seen` (account, points)."""
        self.spends[spend_id] = seen
        g = self.gens.get(time_s // self.bucket_s) or self.generation(time_s)
        g[SPENDS].append(spend_id)

    def advance(self, now_s: int) -> int:
        """Move the horizon to `now_s - window_s` (never back) and drop the generations
        wholly before it; returns how many keys were dropped."""
        horizon = now_s - self.window_s
        if horizon <= self.horizon_s:
            return 0
        self.horizon_s = horizon
        heap, gens, bucket = self.gen_heap, self.gens, self.bucket_s
        dropped = 0
        while heap and (heap[0] + 1) * bucket <= horizon:
            events, refunds, spends = gens.pop(heapq.heappop(heap))
            self.events.difference_update(events)
            for k in refunds:
                del self.refunds[k]
            for k in spends:
                del self.spends[k]
            dropped += len(events) + len(refunds) + len(spends)
        self.forgotten += dropped
        return dropped

    def __len__(self) -> int:
        """Keys remembered now, all kinds."""
        return len(self.events) + len(self.refunds) + len(self.spends)

    def stale_message(self, time_s: int) -> str:
        """The message of a STALE rejection of an input of time `time_s`."""
        return (f"time {time_s} is older than the idempotency window: inputs before "
                f"{self.horizon_s} (clock - {self.window_s} s) are refused")


__all__ = ["EVENTS", "REFUNDS", "SPENDS", "KeyWindow"]
