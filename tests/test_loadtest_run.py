"""`paymember loadtest` end to end: service and Locust as subprocesses, checking correctness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_smoke_loadtest_runs_clean_and_writes_reports(tmp_path: Path) -> None:
    """A short smoke run has no errors, holds the invariants and writes every report file."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "paymember", "loadtest", "scenarios/load_smoke.toml",
         "--duration", "4", "--out", str(out)],
        capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == 0 and summary["errors_by_code"] == {}
    assert summary["invariants_ok"] and summary["invariant_violations"] == []
    assert summary["requests"] > 0 and summary["events"] >= summary["requests"]
    assert summary["books"]["payments_acked"] <= summary["engine"]["payments"]
    assert summary["generator_processes_reporting"] == 2
    kinds = set(summary["requests_by_kind"])
    assert {"payment", "refund", "binding", "balance", "batch"} <= kinds
    for f in ("report.html", "locust.html", "locust_stats.csv", "locust_stats_history.csv"):
        assert (out / f).stat().st_size > 0, f
    for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
        assert key in summary["latency_ms"] and key in summary["latency_ms_uncorrected"]


def test_bad_scenario_is_exit_2(tmp_path: Path) -> None:
    """A scenario with an unknown key is refused with exit 2 naming the key."""
    bad = tmp_path / "load_bad.toml"
    bad.write_text('[load]\nname = "x"\nbogus = 1\n[[load.stages]]\nduration_s = 1\nusers = 1\n')
    proc = subprocess.run([sys.executable, "-m", "paymember", "loadtest", str(bad),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "load.bogus" in proc.stderr
