"""Open-loop pacing for closed-loop users: each send has an intended time on a schedule.

A user offering `rate` requests/s sends request k at start + k/rate. When a
response comes late the next send is already due and goes at once, but its
latency is still measured from its intended time, which is what corrects for
coordinated omission. A rate of 0 means closed loop (send when the last ends).
"""

from __future__ import annotations


class Pacer:
    """The schedule of one user; `lag_s_max` bounds how far behind it may fall."""

    def __init__(self, start_s: float, lag_s_max: float = 60.0) -> None:
        self.intended_s = start_s
        self.lag_s_max = lag_s_max

    def due(self, now_s: float) -> float:
        """Return the intended time of the next send (now, in closed loop)."""
        return self.intended_s if self.intended_s > 0 else now_s

    def advance(self, now_s: float, rate_per_s: float) -> float:
        """Move the schedule one send on at `rate_per_s`; return how long to sleep from now."""
        if rate_per_s <= 0:
            self.intended_s = 0.0
            return 0.0
        if self.intended_s <= 0:
            self.intended_s = now_s
        self.intended_s += 1.0 / rate_per_s
        # A generator that falls minutes behind measures itself, not the
        # service: drop the backlog beyond the bound (it shows as latency).
        self.intended_s = max(self.intended_s, now_s - self.lag_s_max)
        return max(0.0, self.intended_s - now_s)
