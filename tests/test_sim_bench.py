"""`paymember bench sim` on a tiny population: it prints both models, the ratio and the
real-engine run's wall split, and its JSON carries the same figures."""

from __future__ import annotations

import argparse

import orjson
import pytest

from sim.bench import main


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"shoppers": 3000, "hours": 0.25, "city": False,
                                 "json": False, **kw})


def test_bench_sim_prints_ratio_and_wall_split(capsys: pytest.CaptureFixture[str]) -> None:
    """The text output names each run, the ratio against its target, and the split."""
    assert main(_args()) == 0
    out = capsys.readouterr().out
    for key in ("fast_null_engine", "reference_null_engine", "fast_real_engine",
                "fast / reference (model only)", "fast_real_engine wall split: model"):
        assert key in out


def test_bench_sim_json_split_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON split's parts are non-negative and sum to the run's wall time (the model's
    own time, its waits for the engine, the final check, set-up and summary)."""
    assert main(_args(json=True)) == 0
    r = orjson.loads(capsys.readouterr().out)
    x = r["fast_real_engine"]
    sp = x["split"]
    parts = ("model_s", "engine_wait_s", "invariants_s", "setup_and_summary_s")
    assert all(sp[k] >= 0 for k in parts)
    assert sum(sp[k] for k in parts) == pytest.approx(x["wall_s"], abs=0.01)
    assert sp["engine_s"] == pytest.approx(sp["engine_inputs_s"] + sp["engine_advance_stats_s"],
                                           abs=0.002)
    assert x["invariants_ok"] and r["fast_null_engine"]["payments"] > 0
