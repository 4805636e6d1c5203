"""Our own latency recording: HdrHistograms in microseconds, corrected for coordinated omission.

Locust's percentiles are bucketed to 2 significant digits and its users are
closed-loop, so each request is also timed here from the moment it was *meant*
to be sent (its intended time on the schedule): when the generator falls
behind, the wait counts as latency (corrected). The same request timed from
its actual send is kept beside it (uncorrected), and the two are reported.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from loadtests import limits

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
WINDOW_DIGITS = 2  # per-second windows: small, 1% precision is enough for a chart


def new_histogram(digits: int = limits.LATENCY_DIGITS) -> HdrHistogram:
    """Return an empty histogram of 1 us .. 60 s at `digits` significant digits."""
    return HdrHistogram(limits.LATENCY_US_MIN, limits.LATENCY_US_MAX, digits)


def _us(seconds: float) -> int:
    return min(max(int(seconds * 1e6), limits.LATENCY_US_MIN), limits.LATENCY_US_MAX)


def summarize(h: HdrHistogram) -> dict[str, float]:
    """Return count, mean, p50/p90/p99/p99.9 and max of `h`, in milliseconds."""
    out: dict[str, float] = {"count": h.get_total_count()}
    if out["count"] == 0:
        return {"count": 0, "mean_ms": 0.0, "max_ms": 0.0,
                **{_pname(p): 0.0 for p in PERCENTILES}}
    out["mean_ms"] = round(h.get_mean_value() / 1000, 3)
    for p in PERCENTILES:
        out[_pname(p)] = round(h.get_value_at_percentile(p) / 1000, 3)
    out["max_ms"] = round(h.get_max_value() / 1000, 3)
    return out


def _pname(p: float) -> str:
    return "p" + (f"{p:g}".replace(".", "")) + "_ms"


class Window:
    """One second of results: requests, errors, events, offered sends, a latency histogram."""

    __slots__ = ("errors", "events", "hist", "offered", "requests")

    def __init__(self) -> None:
        self.requests = self.errors = self.events = self.offered = 0
        self.hist = new_histogram(WINDOW_DIGITS)


class LatencyRecorder:
    """Records each request's corrected and uncorrected latency, overall and per second."""

    def __init__(self) -> None:
        self.corrected = new_histogram()
        self.uncorrected = new_histogram()
        self.windows: dict[int, Window] = {}

    def _window(self, t_s: float) -> Window:
        key = int(t_s)
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = Window()
        return w

    def offered(self, intended_s: float) -> None:
        """Count one send that the schedule asked for at `intended_s` (epoch seconds)."""
        self._window(intended_s).offered += 1

    def record(self, intended_s: float, sent_s: float, done_s: float, ok: bool,
               events: int = 1) -> None:
        """Record one request meant for `intended_s`, sent at `sent_s`, answered at `done_s`."""
        corrected = _us(done_s - min(intended_s, sent_s))
        self.corrected.record_value(corrected)
        self.uncorrected.record_value(_us(done_s - sent_s))
        w = self._window(done_s)
        w.requests += 1
        w.hist.record_value(corrected)
        if ok:
            w.events += events
        else:
            w.errors += 1

    def to_dict(self) -> dict[str, Any]:
        """Return the recorder as JSON-able data (histograms HdrHistogram-encoded)."""
        return {
            "corrected": self.corrected.encode().decode(),
            "uncorrected": self.uncorrected.encode().decode(),
            "windows": {str(t): [w.requests, w.errors, w.events, w.offered,
                                 w.hist.encode().decode() if w.requests else ""]
                        for t, w in sorted(self.windows.items())},
        }

    def merge_dict(self, data: dict[str, Any]) -> None:
        """Add a recorder's `to_dict()` data (from another process) into this one."""
        self.corrected.decode_and_add(data["corrected"])
        self.uncorrected.decode_and_add(data["uncorrected"])
        for t, (req, err, ev, off, enc) in data["windows"].items():
            w = self._window(int(t))
            w.requests += req
            w.errors += err
            w.events += ev
            w.offered += off
            if enc:
                w.hist.decode_and_add(enc)
