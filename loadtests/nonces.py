"""A bounded replay cache: each nonce is accepted once within the timestamp window."""

from __future__ import annotations

from collections import deque

from loadtests import limits

STALE = "stale timestamp"
REPLAYED = "replayed nonce"


class NonceCache:
    """Remembers nonces seen within `window_s` of now, at most `capacity` of them.

    When full, the oldest are forgotten and `floor_s` rises to their timestamp:
    requests signed at or before `floor_s` are then refused as stale, so a
    forgotten nonce can never be replayed (the window shrinks instead).
    """

    def __init__(self, window_s: int = limits.TIMESTAMP_WINDOW_S,
                 capacity: int = limits.NONCE_CACHE_MAX) -> None:
        assert window_s > 0 and capacity > 0
        self.window_s, self.capacity = window_s, capacity
        self.floor_s = 0
        self._seen: set[str | bytes] = set()
        self._order: deque[tuple[int, str | bytes]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, nonce: str | bytes, timestamp_s: int, now_s: int) -> str | None:
        """Record `nonce` signed at `timestamp_s`; return None if fresh, else the reason.

        Reasons: "stale timestamp" (outside the window, or at/below the floor)
        and "replayed nonce".
        """
        if abs(now_s - timestamp_s) > self.window_s or timestamp_s <= self.floor_s:
            return STALE
        seen = self._seen
        if nonce in seen:
            return REPLAYED
        order = self._order
        if order and order[0][0] < now_s - self.window_s:
            self._expire(now_s)
        if len(seen) >= self.capacity:
            ts, old = order.popleft()
            seen.discard(old)
            self.floor_s = max(self.floor_s, ts)
            if timestamp_s <= self.floor_s:
                return STALE
        seen.add(nonce)
        order.append((timestamp_s, nonce))
        return None

    def _expire(self, now_s: int) -> None:
        # Entries arrive roughly in timestamp order; dropping from the front
        # while they are out of the window is enough to bound the work.
        order, seen, oldest = self._order, self._seen, now_s - self.window_s
        while order and order[0][0] < oldest:
            seen.discard(order.popleft()[1])
