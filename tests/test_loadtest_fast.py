"""The fast generator, the scaling report, and traces as `paymember simulate` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import ConfigError
from loadtests.population import openid_of, unionid_of
from loadtests.scaling import write_scaling_report
from loadtests.scenario import MIX_KINDS, load_scenario
from loadtests.trace import read_trace
from tests.test_loadtest_run import loadtest_clean

FAST = """[load]
name = "fast"
generator = "fast"
shards = 2
processes = 1
members = 500
time_compression = 600
[load.mix]
payment = 50
duplicate = 15
refund = 10
binding = 10
enrollment = 5
balance = 8
batch = 2
[load.batch]
size = 20
[[load.stages]]
duration_s = 2
users = 1
rate_per_s = 150
[[load.stages]]
duration_s = 2
users = 1
rate_per_s = 300
"""


@pytest.mark.slow
def test_fast_generator_runs_clean_and_writes_reports(tmp_path: Path) -> None:
    """A short run of the fast generator's whole mix against 2 shards: every kind sent, no
    errors, books match the engine, per-stage CPU figures and the report are written."""
    scenario = tmp_path / "load_fast.toml"
    scenario.write_text(FAST)
    out = tmp_path / "run"
    summary = loadtest_clean(scenario, out)
    assert summary["generator"] == "fast" and summary["members"] == 500
    assert set(summary["requests_by_kind"]) == set(MIX_KINDS)
    assert sum(summary["requests_by_kind"].values()) == summary["requests"] > 0
    books, engine = summary["books"], summary["engine"]
    assert books["payments_acked"] == books["payments_sent"] == engine["payments"] > 0
    assert books["refunds_acked"] == books["refunds_sent"] == engine["refunds"] > 0
    assert all("service_cpu_cores" in r and "generator_cpu_cores" in r
               for r in summary["stages"])
    assert summary["bottleneck"] in ("none", "generator", "service", "machine")
    assert (out / "report.html").stat().st_size > 0


def test_fast_generator_scenario_is_checked(tmp_path: Path) -> None:
    """An unknown generator, or the fast one given a closed-loop stage, is a ConfigError."""
    bad = tmp_path / "load_bad.toml"
    bad.write_text(FAST.replace('generator = "fast"', 'generator = "wrk"'))
    with pytest.raises(ConfigError, match="generator"):
        load_scenario(bad)
    bad.write_text(FAST.replace("rate_per_s = 150", "rate_per_s = 0"))
    with pytest.raises(ConfigError, match="open-loop"):
        load_scenario(bad)


def test_scaling_report_has_charts_against_shards_and_members(tmp_path: Path) -> None:
    """The scaling report embeds throughput and p99 charts against shards and members."""
    run = {"sustainable_per_s": 1000.0, "peak_achieved_per_s": 1500.0,
           "p99_ms_first_stage": 1.5, "first_stage_offered_per_s": 500.0,
           "p99_ms_overall": 3.0, "bottleneck": "machine", "errors": 0, "invariants_ok": True}
    doc = {"scenario": "s.toml", "runs": [{**run, "shards": 1, "members": 1000},
                                          {**run, "shards": 2, "members": 1000},
                                          {**run, "shards": 1, "members": 100000}]}
    path = tmp_path / "scaling.html"
    write_scaling_report(path, doc, 1, 1000)
    page = path.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "<td>100000</td>" in page


def test_trace_in_the_simulators_format_is_read_and_routed(tmp_path: Path) -> None:
    """Lines with `t_s` and `attempt` and no `key` (sim/trace.py) are read; a refund is routed
    by its payment's openid and an enrollment by the openid bound to its unionid."""
    pay = {"transaction_id": "T1", "appid": "wx1", "mchid": "1900000001",
           "payer": {"openid": openid_of(3)}, "amount": {"total": 100}}
    lines = [
        {"t_s": 10.0, "attempt": 1, "kind": "refund",
         "data": {"transaction_id": "T1", "refund_id": "R1"}},
        {"t_s": 11.0, "attempt": 1, "kind": "payment", "data": pay},
        {"t_s": 11.5, "attempt": 2, "kind": "payment", "data": pay},
        {"t_s": 12.0, "attempt": 1, "kind": "binding",
         "data": {"appid": "wx1", "openid": openid_of(4), "unionid": unionid_of(4)}},
        {"t_s": 13.0, "attempt": 1, "kind": "enrollment",
         "data": {"program": "p", "unionid": unionid_of(4), "time_s": 13}},
    ]
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in lines))
    got = [(x.t, x.kind, x.key) for x in read_trace(path)]
    assert got == [(10.0, "refund", openid_of(3)), (11.0, "payment", openid_of(3)),
                   (11.5, "payment", openid_of(3)), (12.0, "binding", openid_of(4)),
                   (13.0, "enrollment", openid_of(4))]
