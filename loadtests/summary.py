"""The run's summary: throughput, latency from our histograms, errors, stages, the knee, checks."""

from __future__ import annotations

from typing import Any

from loadtests.latency import LatencyRecorder, new_histogram, summarize
from loadtests.scenario import Scenario, Slo


def stage_rows(scenario: Scenario, recorder: LatencyRecorder, start_s: float) -> list[dict]:
    """Return per-stage offered and achieved rates, latency, error rate and SLO verdict."""
    rows, t0 = [], start_s
    for i, st in enumerate(scenario.stages):
        t1 = t0 + st.duration_s
        # Leave out the first second of each stage (users are still spawning).
        lo, hi = int(t0) + 1, int(t1)
        hist = new_histogram(2)
        req = err = ev = off = 0
        for t in range(lo, hi):
            w = recorder.windows.get(t)
            if w is None:
                continue
            req, err, ev, off = req + w.requests, err + w.errors, ev + w.events, off + w.offered
            if w.requests:
                hist.add(w.hist)
        span = max(hi - lo, 1)
        lat = summarize(hist)
        error_rate = err / req if req else 0.0
        broken_by = slo_breaches(req, lat["p99_ms"], error_rate, scenario.slo)
        rows.append({"stage": i, "duration_s": st.duration_s, "users": st.users,
                     "target_per_s": st.rate_per_s,
                     "offered_per_s": round(off / span, 1),
                     "achieved_per_s": round(req / span, 1), "events_per_s": round(ev / span, 1),
                     "error_rate": round(error_rate, 6), "latency_ms": lat,
                     "slo_ok": not broken_by, "slo_broken_by": broken_by})
        t0 = t1
    return rows


def slo_breaches(requests: int, p99_ms: float, error_rate: float, slo: Slo) -> list[str]:
    """Return why a stage of `requests` answered with `p99_ms` and `error_rate` breaks `slo`
    (empty: it meets it)."""
    out = []
    if requests == 0:
        out.append("no requests answered")
    if p99_ms > slo.latency_ms_p99:
        out.append(f"p99 {p99_ms:g} ms > {slo.latency_ms_p99:g} ms")
    if error_rate > slo.error_rate_max:
        out.append(f"error rate {error_rate:.4g} > {slo.error_rate_max:g}")
    return out


def sustainable(rows: list[dict]) -> dict[str, Any]:
    """Return the knee of stages `rows` (in the order run): the stage with the highest offered
    load among those that met the SLO before the first stage that broke it, its achieved
    rate as the sustainable throughput, and which stage broke the SLO and why.

    Stages after the first break do not count even when they pass: a load the service
    has already failed to sustain is not made sustainable by a lucky later stage.
    """
    broke = next((r for r in rows if not r["slo_ok"]), None)
    before = rows if broke is None else rows[:rows.index(broke)]
    best = max(before, key=lambda r: (r["offered_per_s"], r["achieved_per_s"]), default=None)
    if broke is None:
        knee = "no stage broke the SLO"
    else:
        knee = (f"stage {broke['stage']} (offered {broke['offered_per_s']}/s) broke the SLO: "
                + "; ".join(broke.get("slo_broken_by") or ["SLO not met"]))
    return {"sustainable_per_s": best["achieved_per_s"] if best else 0.0,
            "sustainable_offered_per_s": best["offered_per_s"] if best else 0.0,
            "sustainable_stage": best["stage"] if best else None,
            "first_stage_breaking_slo": broke["stage"] if broke else None,
            "knee": knee,
            "passed_after_break": [r["stage"] for r in rows[len(before) + 1:] if r["slo_ok"]]}


def check_books(books: dict[str, Any], engine: dict[str, int]) -> list[str]:
    """Return violations of: everything acknowledged is in the engine, nothing unsent is."""
    out = []
    for what in ("payments", "refunds"):
        acked, sent = books[f"{what}_acked"], books[f"{what}_sent"]
        have = engine.get(what, 0)
        if not acked <= have <= sent:
            out.append(f"{what}: acknowledged {acked} <= engine {have} <= sent {sent} is false")
    return out


def build_summary(scenario: Scenario, recorder: LatencyRecorder, books: dict[str, Any],
                  start_s: float, engine: dict[str, Any], violations: list[str],
                  meta: dict[str, Any]) -> dict[str, Any]:
    """Return the summary.json document of a run."""
    ws = [t for t, w in recorder.windows.items() if w.requests]
    span = (max(ws) - min(ws) + 1) if ws else 1
    requests = sum(w.requests for w in recorder.windows.values())
    events = sum(w.events for w in recorder.windows.values())
    errors = sum(w.errors for w in recorder.windows.values())
    rows = stage_rows(scenario, recorder, start_s) if scenario.stages else []
    violations = violations + check_books(books, engine)
    return {
        "scenario": scenario.name, **meta,
        "duration_s": span, "requests": requests, "events": events, "errors": errors,
        "requests_per_s": round(requests / span, 1), "events_per_s": round(events / span, 1),
        "latency_ms": summarize(recorder.corrected),
        "latency_ms_uncorrected": summarize(recorder.uncorrected),
        "errors_by_code": books["errors"], "requests_by_kind": books["requests"],
        "books": {k: v for k, v in books.items() if not isinstance(v, dict)},
        "engine": engine, "stages": rows, **sustainable(rows),
        "slo": {"latency_ms_p99": scenario.slo.latency_ms_p99,
                "error_rate_max": scenario.slo.error_rate_max},
        "invariants_ok": not violations, "invariant_violations": violations[:50],
    }
