"""Service metrics in Prometheus text format: requests, latency, events applied, rejections.

The request path only counts and appends: a latency is appended to its route's
sample buffer, and the buffer is sorted into the histogram's buckets in bulk
(numpy) when it fills up or when the metrics are rendered.
"""

from __future__ import annotations

from array import array
from collections import defaultdict

import numpy as np

# Upper bounds in seconds; loopback requests take 50 us .. a few ms.
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                     0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BOUNDS = np.array(LATENCY_BUCKETS_S)
SAMPLES_PENDING_MAX = 4096  # latencies buffered per route before they are bucketed


class RouteLatency:
    """One route's latency histogram: `samples` are appended, then bucketed in bulk."""

    __slots__ = ("counts", "handler_s", "samples", "sum_s")

    def __init__(self) -> None:
        self.counts = np.zeros(len(LATENCY_BUCKETS_S) + 1, dtype=np.int64)
        self.sum_s = 0.0
        self.handler_s = 0.0  # time in the service's own handler, the HTTP server's excluded
        self.samples = array("d")

    def add(self, seconds: float) -> None:
        """Record one latency of `seconds`."""
        samples = self.samples
        samples.append(seconds)
        if len(samples) >= SAMPLES_PENDING_MAX:
            self.fold()

    def fold(self) -> None:
        """Move the pending samples into the buckets (le: a sample equal to a bound is in it)."""
        if not self.samples:
            return
        xs = np.frombuffer(self.samples, dtype=np.float64)
        self.counts += np.bincount(np.searchsorted(_BOUNDS, xs, side="left"),
                                   minlength=len(self.counts))
        self.sum_s += float(xs.sum())
        del xs  # release the buffer export before the array is resized
        self.samples = array("d")


class Metrics:
    """Counters and a latency histogram per route, rendered as Prometheus text."""

    def __init__(self, shard: int = 0) -> None:
        self.shard = shard
        self.requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self.events: defaultdict[tuple[str, str], int] = defaultdict(int)
        # The common results counted by kind alone: a Code (an enum) hashes in Python.
        self.applied: defaultdict[str, int] = defaultdict(int)
        self.duplicates: defaultdict[str, int] = defaultdict(int)
        self.rejections: defaultdict[str, int] = defaultdict(int)
        self.latency: dict[str, RouteLatency] = {}

    def route(self, name: str) -> RouteLatency:
        """Return the latency histogram of route `name` (created on first use)."""
        lat = self.latency.get(name)
        if lat is None:
            lat = self.latency[name] = RouteLatency()
        return lat

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one request to `route` answered with `status` after `seconds`."""
        self.requests[route, status] += 1
        self.route(route).add(seconds)

    def event(self, kind: str, code: str, n: int = 1) -> None:
        """Count `n` engine inputs of `kind` that ended with result `code`."""
        self.events[kind, code] += n

    def events_total(self) -> dict[tuple[str, str], int]:
        """Return engine inputs by (kind, result code), every way they were counted."""
        out: dict[tuple[str, str], int] = {(k, str(c)): n for (k, c), n in self.events.items()}
        for code, by_kind in (("applied", self.applied), ("duplicate", self.duplicates)):
            for kind, n in by_kind.items():
                out[kind, code] = out.get((kind, code), 0) + n
        return out

    def reject(self, reason: str) -> None:
        """Count one request refused before reaching the engine, for `reason`."""
        self.rejections[reason] += 1

    def render(self) -> str:
        """Return every metric in the Prometheus text exposition format (version 0.0.4)."""
        shard = f'shard="{self.shard}"'
        out = ["# HELP paymember_requests_total HTTP requests by route and status.",
               "# TYPE paymember_requests_total counter"]
        for (route, status), n in sorted(self.requests.items()):
            out.append(f'paymember_requests_total{{{shard},route="{route}",status="{status}"}} {n}')
        out += ["# HELP paymember_request_seconds Time from request to answer, in the service.",
                "# TYPE paymember_request_seconds histogram"]
        for route, lat in sorted(self.latency.items()):
            lat.fold()
            cum = 0
            for le, n in zip((*LATENCY_BUCKETS_S, "+Inf"), lat.counts.tolist(), strict=True):
                cum += n
                out.append(f'paymember_request_seconds_bucket{{{shard},route="{route}",'
                           f'le="{le}"}} {cum}')
            out.append(f'paymember_request_seconds_sum{{{shard},route="{route}"}} '
                       f'{lat.sum_s:.6f}')
            out.append(f'paymember_request_seconds_count{{{shard},route="{route}"}} {cum}')
        out += ["# HELP paymember_handler_seconds_total Time in the service's own handler "
                "(authentication, decoding, the engine), the HTTP server's excluded: CPU "
                "time for batch routes, wall time for the others.",
                "# TYPE paymember_handler_seconds_total counter"]
        for route, lat in sorted(self.latency.items()):
            out.append(f'paymember_handler_seconds_total{{{shard},route="{route}"}} '
                       f'{lat.handler_s:.6f}')
        out += ["# HELP paymember_events_total Engine inputs by kind and result code.",
                "# TYPE paymember_events_total counter"]
        for (kind, code), n in sorted(self.events_total().items()):
            out.append(f'paymember_events_total{{{shard},kind="{kind}",code="{code}"}} {n}')
        out += ["# HELP paymember_rejections_total Requests refused before the engine, by reason.",
                "# TYPE paymember_rejections_total counter"]
        for reason, n in sorted(self.rejections.items()):
            out.append(f'paymember_rejections_total{{{shard},reason="{reason}"}} {n}')
        return "\n".join(out) + "\n"
