"""`paymember loadtest` end to end: service and Locust as subprocesses, checking correctness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def loadtest_clean(scenario: Path | str, out: Path, *args: str) -> dict:
    """Run `paymember loadtest` on `scenario` into `out`; check it ended with exit status 0,
    no errors and the invariants holding; return its summary."""
    proc = subprocess.run([sys.executable, "-m", "paymember", "loadtest", str(scenario),
                           *args, "--out", str(out)], capture_output=True, text=True,
                          timeout=170)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == 0 and summary["errors_by_code"] == {}
    assert summary["invariants_ok"] and summary["invariant_violations"] == []
    return summary


@pytest.mark.slow
def test_smoke_loadtest_runs_clean_and_writes_reports(tmp_path: Path) -> None:
    """A short smoke run has no errors, holds the invariants and writes every report file."""
    out = tmp_path / "run"
    summary = loadtest_clean("scenarios/load_smoke.toml", out, "--duration", "4")
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


def write_trace(path: Path, start: float) -> None:
    """Write a small trace: payments, a redelivery, refunds (keyed), a binding, an event."""
    from loadtests import binding_data, payment_data, refund_data
    from loadtests.population import openid_of, unionid_of

    lines = []
    t = start
    for i in range(60):
        data = payment_data(f"TR{i:08d}", "wxload00000000001", "1900000001", openid_of(i % 9),
                            1000 + i, int(start))
        lines.append({"t": t, "kind": "payment", "data": data})
        if i % 5 == 0:  # redelivered later, as the platform retries
            lines.append({"t": t + 0.5, "kind": "payment", "data": data})
        if i % 7 == 0:
            lines.append({"t": t + 0.3, "kind": "refund", "key": openid_of(i % 9),
                          "data": refund_data(f"RR{i:08d}", f"TR{i:08d}", "1900000001", 100,
                                              1000 + i, int(start))})
        t += 0.05
    lines.append({"t": t, "kind": "binding",
                  "data": binding_data("wxload00000000001", openid_of(1), unionid_of(1),
                                       int(start))})
    lines.sort(key=lambda d: d["t"])
    path.write_text("".join(json.dumps(d) + "\n" for d in lines))


@pytest.mark.slow
def test_trace_replay_runs_clean(tmp_path: Path) -> None:
    """Replaying a trace open-loop has no errors, books match the engine, reports are written."""
    import time

    trace = tmp_path / "trace.jsonl"
    write_trace(trace, time.time())
    scenario = tmp_path / "load_trace.toml"
    scenario.write_text(f'[load]\nname = "trace"\nshards = 2\nprocesses = 1\n'
                        f'[load.trace]\nfile = "{trace}"\nspeedup = 2.0\nusers = 8\n')
    out = tmp_path / "run"
    summary = loadtest_clean(scenario, out)
    assert summary["books"]["payments_acked"] == summary["engine"]["payments"] == 60
    assert summary["books"]["refunds_acked"] == summary["engine"]["refunds"] == 9
    assert (out / "report.html").exists()


SIM_PROGRAMS = ("corner_store", "metro", "citymart")  # those of weekday_city.toml


@pytest.mark.slow
def test_replay_of_a_trace_written_by_paymember_simulate(tmp_path: Path) -> None:
    """`paymember simulate --trace` on a tiny day writes lines the replayer takes as they are
    (`t_s`, `attempt`, no `key`); replayed against 2 shards, every input is accepted once."""
    root = Path.cwd()
    city = (root / "scenarios/weekday_city.toml").read_text()
    assert "shoppers = 100000" in city
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(city.replace("shoppers = 100000", "shoppers = 300").replace(
        'file = "programs/', f'file = "{root}/scenarios/programs/'))
    trace = tmp_path / "trace.jsonl"
    sim = subprocess.run([sys.executable, "-m", "paymember", "simulate", str(tiny), "--out",
                          str(tmp_path / "sim"), "--trace", str(trace), "--no-progress"],
                         capture_output=True, text=True, timeout=170)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert lines and all(set(d) == {"t_s", "attempt", "kind", "data"} for d in lines)
    assert {"payment", "refund", "binding", "enrollment"} <= {d["kind"] for d in lines}
    txids = {d["data"]["transaction_id"] for d in lines if d["kind"] == "payment"}
    refunds = {d["data"]["refund_id"] for d in lines if d["kind"] == "refund"}
    span_s = lines[-1]["t_s"] - lines[0]["t_s"]
    programs = ", ".join(f'"scenarios/programs/{p}.toml"' for p in SIM_PROGRAMS)
    scenario = tmp_path / "load_simtrace.toml"
    scenario.write_text(f'[load]\nname = "simtrace"\nprograms = [{programs}]\nshards = 2\n'
                        f'processes = 1\n[load.trace]\nfile = "{trace}"\n'
                        f'speedup = {span_s / 3:.1f}\nusers = 8\n')
    summary = loadtest_clean(scenario, tmp_path / "run")
    assert summary["requests"] == len(lines)
    assert summary["books"]["payments_acked"] == summary["engine"]["payments"] == len(txids)
    assert summary["books"]["refunds_acked"] == summary["engine"]["refunds"] == len(refunds)
