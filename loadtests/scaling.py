"""`paymember loadtest SCENARIO --scaling`: one scenario at several shard counts and members.

Runs the scenario once per shard count (at the first member population) and once
per further member population (at one shard), each into DIR/shards-S-members-M/,
then writes DIR/scaling.json and DIR/scaling.html: throughput (the sustainable
rate and the highest achieved) and p99 (at the first stage's load, the same in
every run) against shards and against members.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson

from loadtests.report import png
from loadtests.runner import passed, run_summary


def point(summary: dict[str, Any], shards: int, members: int) -> dict[str, Any]:
    """The figures of one run that the scaling charts plot."""
    stages = summary["stages"]
    first = stages[0] if stages else {"latency_ms": {"p99_ms": 0.0}, "offered_per_s": 0.0}
    return {"shards": shards, "members": members,
            "sustainable_per_s": summary["sustainable_per_s"],
            "peak_achieved_per_s": max((r["achieved_per_s"] for r in stages), default=0.0),
            "p99_ms_first_stage": first["latency_ms"]["p99_ms"],
            "first_stage_offered_per_s": first["offered_per_s"],
            "p99_ms_overall": summary["latency_ms"]["p99_ms"],
            "bottleneck": summary.get("bottleneck", "none"), "errors": summary["errors"],
            "invariants_ok": summary["invariants_ok"]}


def run_scaling(scenario_path: str, out: str, shards_list: list[int], members_list: list[int],
                duration_s: float | None = None, processes: int | None = None,
                generator: str | None = None) -> int:
    """Run the sweep and write the scaling report; returns 0 when every run passed."""
    if not shards_list or not members_list:
        print("paymember loadtest --scaling: give at least one shard count and one population")
        return 2
    root = Path(out)
    runs = [(s, members_list[0]) for s in shards_list]
    runs += [(shards_list[0], m) for m in members_list[1:]]
    points, ok = [], True
    for shards, members in runs:
        run_dir = root / f"shards-{shards}-members-{members}"
        summary = run_summary(scenario_path, str(run_dir), duration_s, shards, processes,
                              members, generator)
        if summary is None:
            return 2
        ok = ok and passed(summary)
        points.append(point(summary, shards, members))
    doc = {"scenario": scenario_path, "runs": points}
    (root / "scaling.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    write_scaling_report(root / "scaling.html", doc, shards_list[0], members_list[0])
    for p in points:
        print(f"scaling: shards {p['shards']} members {p['members']}: sustainable "
              f"{p['sustainable_per_s']}/s, peak {p['peak_achieved_per_s']}/s, p99 at "
              f"{p['first_stage_offered_per_s']}/s {p['p99_ms_first_stage']} ms, bottleneck "
              f"{p['bottleneck']}")
    return 0 if ok else 1


def _chart(xs: list[int], series: dict[str, list[float]], xlabel: str, ylabel: str,
           title: str, logx: bool = False) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend()
    out = png(fig)
    plt.close(fig)
    return out


def write_scaling_report(path: Path, doc: dict[str, Any], base_shards: int,
                         base_members: int) -> None:
    """Write the charts of throughput and p99 against shards and against members."""
    runs = doc["runs"]
    by_shards = [r for r in runs if r["members"] == base_members]
    by_members = [r for r in runs if r["shards"] == base_shards]
    pngs = []
    for rows, key, label, logx in ((by_shards, "shards", "shards", False),
                                   (by_members, "members", "members", True)):
        xs = [r[key] for r in rows]
        pngs.append(_chart(xs, {"sustainable/s": [r["sustainable_per_s"] for r in rows],
                                "peak achieved/s": [r["peak_achieved_per_s"] for r in rows]},
                           label, "requests/s", f"Throughput against {label}", logx))
        pngs.append(_chart(xs, {"p99 at the first stage": [r["p99_ms_first_stage"]
                                                           for r in rows]},
                           label, "ms", f"p99 against {label}", logx))
    table = "".join(
        f"<tr><td>{r['shards']}</td><td>{r['members']}</td><td>{r['sustainable_per_s']}</td>"
        f"<td>{r['peak_achieved_per_s']}</td><td>{r['p99_ms_first_stage']}</td>"
        f"<td>{r['bottleneck']}</td><td>{r['errors']}</td><td>{r['invariants_ok']}</td></tr>"
        for r in runs)
    imgs = "".join(f'<img src="data:image/png;base64,{p}">' for p in pngs)
    path.write_text(f"""<!doctype html><meta charset="utf-8"><title>scaling</title>
<h1>Scaling: {html.escape(doc['scenario'])}</h1>
<p>Each run is in its own directory (shards-S-members-M/) with its summary and report.</p>
{imgs}
<table border="1" cellpadding="4"><tr><th>shards</th><th>members</th><th>sustainable/s</th>
<th>peak achieved/s</th><th>p99 ms (first stage)</th><th>bottleneck</th><th>errors</th>
<th>invariants ok</th></tr>{table}</table>
""")
