"""Run reports of the simulation: charts (PNG) and a self-contained HTML page.

Run output goes to `reports/runs/` (git-ignored).
"""

from reports.charts import CHARTS
from reports.html import write_report

__all__ = ["CHARTS", "write_report"]
