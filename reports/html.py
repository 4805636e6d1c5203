"""The self-contained run report: charts embedded as data URIs, readable offline."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from reports.charts import CHARTS, plt

if TYPE_CHECKING:
    from sim.model import Model

_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}"""

_KEYS = ("shoppers", "payments", "refunds", "duplicates_delivered", "members_enrolled",
         "shadow_members", "enrollment_rate", "points_issued", "points_outstanding",
         "peak_payments_per_s", "engine_backlog_max", "little_ok", "invariants_ok", "wall_s")


def write_report(m: Model, summary: dict[str, Any], out: Path) -> list[Path]:
    """Write each chart as `out/<name>.png` and `out/report.html`; returns the files written.

    Raises OSError when `out` is not writable.
    """
    written = []
    sections = []
    for name, title, draw in CHARTS:
        fig = draw(m, summary)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        png = buf.getvalue()
        path = out / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
        data = base64.b64encode(png).decode()
        sections.append(f"<h2>{html.escape(title)}</h2>"
                        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
    rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(summary[k]))}</td></tr>"
                   for k in _KEYS)
    waits = "".join(
        f"<tr><td>{html.escape(p)}</td>" + "".join(f"<td>{v[k]}</td>" for k in
                                                   ("mean", "p50", "p95", "p99")) + "</tr>"
        for p, v in summary["queue_wait_s"].items())
    sc = m.sc
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>paymember simulation: {html.escape(sc.name)}</title><style>{_STYLE}</style></head><body>
<h1>Simulation report: {html.escape(sc.name)}</h1>
<p>{html.escape(sc.description)}</p>
<p>Seed {m.seed}, mode {m.mode}, {sc.shoppers:,} shoppers, {sc.hours:g} h from
{sc.start_hour:g}:00 plus {sc.drain_hours:g} h drain.</p>
<h2>Key figures</h2><table>{rows}</table>
<h2>Queue waits (s)</h2><table><tr><th>place</th><th>mean</th><th>p50</th><th>p95</th>
<th>p99</th></tr>{waits}</table>
{''.join(sections)}
<h2>Summary</h2><pre>{html.escape(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())}</pre>
</body></html>
"""
    path = out / "report.html"
    path.write_text(doc, encoding="utf-8")
    written.append(path)
    return written
