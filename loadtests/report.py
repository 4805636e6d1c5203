"""report.html: throughput and latency over time, latency distribution, latency against load."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from loadtests.latency import LatencyRecorder


def png(fig: Any) -> str:
    """Return `fig` as a base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def charts(summary: dict[str, Any], recorder: LatencyRecorder, start_s: float) -> list[str]:
    """Return the report's charts as base64 PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    ts = sorted(t for t, w in recorder.windows.items() if w.requests or w.offered)
    x = [t - start_s for t in ts]
    ws = [recorder.windows[t] for t in ts]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(x, [w.requests for w in ws], label="answered/s")
    ax.plot(x, [w.offered for w in ws], label="offered/s", linestyle="--")
    ax.plot(x, [w.errors for w in ws], label="errors/s")
    ax.set_xlabel("seconds")
    ax.set_title("Throughput over time")
    ax.legend()
    out.append(png(fig))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.2))
    for p in (50.0, 99.0):
        ax.plot(x, [w.hist.get_value_at_percentile(p) / 1000 if w.requests else None
                    for w in ws], label=f"p{p:g} (corrected)")
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("ms")
    ax.set_title("Latency over time")
    ax.legend()
    out.append(png(fig))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 3.2))
    for name, h in (("corrected", recorder.corrected), ("uncorrected", recorder.uncorrected)):
        if h.get_total_count() == 0:
            continue
        pts = [(it.percentile_level_iterated_to, it.value_iterated_to / 1000)
               for it in h.get_percentile_iterator(5)]
        pts = [(1 / max(1 - p / 100, 1e-6), v) for p, v in pts]
        ax.plot([p for p, _ in pts], [v for _, v in pts], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("1 / (1 - percentile)   (10 = p90, 100 = p99, 1000 = p99.9)")
    ax.set_ylabel("ms")
    ax.set_title("Latency distribution")
    ax.legend()
    out.append(png(fig))
    plt.close(fig)

    rows = summary["stages"]
    if rows:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.plot([r["offered_per_s"] for r in rows], [r["latency_ms"]["p99_ms"] for r in rows],
                marker="o", label="p99")
        ax.plot([r["offered_per_s"] for r in rows], [r["latency_ms"]["p50_ms"] for r in rows],
                marker="o", label="p50")
        ax.axhline(summary["slo"]["latency_ms_p99"], color="red", linestyle=":", label="SLO p99")
        ax.set_xlabel("offered requests/s")
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.set_title("Latency against offered load (per stage)")
        ax.legend()
        out.append(png(fig))
        plt.close(fig)
    return out


def _after_break(summary: dict[str, Any]) -> str:
    later = summary["passed_after_break"]
    if not later:
        return ""
    return (f"Stage(s) {', '.join(map(str, later))} met the SLO again after the break and "
            "are not counted.")


def write_report(path: Path, summary: dict[str, Any], recorder: LatencyRecorder,
                 start_s: float) -> None:
    """Write the HTML report of a run to `path`."""
    lat, unc = summary["latency_ms"], summary["latency_ms_uncorrected"]
    head = ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"]
    rows = "".join(
        f"<tr><td>{r['stage']}</td><td>{r['users']}</td><td>{r['offered_per_s']}</td>"
        f"<td>{r['achieved_per_s']}</td><td>{r['events_per_s']}</td>"
        f"<td>{r['latency_ms']['p50_ms']}</td><td>{r['latency_ms']['p99_ms']}</td>"
        f"<td>{r['error_rate']}</td>"
        f"<td>{'yes' if r['slo_ok'] else 'NO: ' + html.escape('; '.join(r['slo_broken_by']))}</td>"
        f"<td>{r.get('service_cpu_cores', '')}</td><td>{r.get('generator_cpu_cores', '')}</td>"
        "</tr>"
        for r in summary["stages"])
    imgs = "".join(f'<img src="data:image/png;base64,{c}"><br>'
                   for c in charts(summary, recorder, start_s))
    errors = html.escape(str(summary["errors_by_code"] or "none"))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>paymember load test: {html.escape(summary['scenario'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}</style>
</head><body><h1>Load test: {html.escape(summary['scenario'])}</h1>
<p>{summary['requests']} requests in {summary['duration_s']} s:
<b>{summary['requests_per_s']} requests/s</b>, {summary['events_per_s']} events/s,
{summary['shards']} shard(s), {summary['processes']} {summary.get('generator', 'locust')}
generator process(es), {summary.get('members', '')} members.
Sustainable throughput (the highest offered load meeting the SLO of p99 &le;
{summary['slo']['latency_ms_p99']} ms and errors &le; {summary['slo']['error_rate_max']},
below the first stage that broke it):
<b>{summary['sustainable_per_s']} requests/s</b> (stage {summary['sustainable_stage']},
offered {summary['sustainable_offered_per_s']}/s). Knee: {html.escape(summary['knee'])}.
{_after_break(summary)}
Invariants: <b>{'ok' if summary['invariants_ok'] else 'VIOLATED'}</b>. Errors: {errors}.
Bottleneck: <b>{summary.get('bottleneck', 'none')}</b> (service used
{summary['service_cpu_cores']} of {summary['shards']} core(s) over the run; per stage below:
"generator" when its processes were busy and the service was not, "machine" when
neither was: they share the machine's cores with each other and anything else on it).</p>
<table><tr><th></th>{''.join(f'<th>{h}</th>' for h in head)}</tr>
<tr><td>corrected</td>{''.join(f'<td>{lat[h]}</td>' for h in head)}</tr>
<tr><td>uncorrected</td>{''.join(f'<td>{unc[h]}</td>' for h in head)}</tr></table>
<h2>Stages</h2><table><tr><th>stage</th><th>users</th><th>offered/s</th><th>achieved/s</th>
<th>events/s</th><th>p50 ms</th><th>p99 ms</th><th>error rate</th><th>SLO</th>
<th>service cores</th><th>generator cores</th></tr>{rows}</table>
<h2>Charts</h2>{imgs}
<p>Locust's own report (Locust runs only): <a href="locust.html">locust.html</a>,
CSV: locust_stats.csv.</p>
</body></html>"""
    path.write_text(page, encoding="utf-8")
