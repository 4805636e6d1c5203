"""The engine behind a link (sim.link): in the model's process or in its own, a run is the
same; the process's failures reach the model; the wall split adds up."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import run_scenario
from sim.feed import NullEngine
from sim.inputs import FeedContext
from sim.link import ProcessLink
from sim.model import Model
from sim.timing import WallSplit
from tests.test_sim_model import _strip, small


def test_engine_process_gives_the_same_run(tmp_path: Path) -> None:
    """The same scenario and seed give the same summary and engine timeline with the engine
    in its own process, in the model's process (batches) and traced (one input at a time)."""
    sc = small(shoppers=4000, hours=2.0)
    local, ml = run_scenario(sc, seed=11, process=False, report=False)
    remote, mr = run_scenario(sc, seed=11, process=True, report=False)
    traced, mt = run_scenario(sc, seed=11, trace=tmp_path / "t.jsonl", report=False)
    assert _strip(local) == _strip(remote) == _strip(traced)
    assert ml.rec.timeline == mr.rec.timeline == mt.rec.timeline and len(ml.rec.timeline) > 2
    assert remote["invariants_ok"] and remote["payments"] > 0
    assert mr.wall.process and not ml.wall.process
    sp = mr.wall.as_dict()
    assert sp["engine_process_busy_s"] > 0 and sp["engine_inputs_s"] > 0
    assert (sp["model_s"] + sp["engine_wait_s"] + sp["invariants_s"]
            + sp["setup_and_summary_s"]) == pytest.approx(mr.wall.total_s, abs=0.01)


def test_engine_process_failure_reaches_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in the engine process ends the run with RuntimeError carrying the
    child's traceback, and the process is gone afterwards."""
    def broken(*_args: Any, **_kw: Any) -> None:
        raise KeyError("engine process broke")

    monkeypatch.setattr(sys.modules["sim.link"], "apply_prepared", broken)  # the child forks
    with pytest.raises(RuntimeError, match="engine process broke"):
        run_scenario(small(shoppers=2000, hours=0.5), seed=1, process=True, report=False)


def test_bad_links_are_refused(tmp_path: Path) -> None:
    """A trace or a null engine cannot go to an engine process: ValueError, nothing run."""
    sc = small(shoppers=2000, hours=0.5)
    with pytest.raises(ValueError, match="real engine"):
        run_scenario(sc, engine="null", process=True, report=False)
    with pytest.raises(ValueError, match="trace"):
        Model(sc, 1, None, trace=object())  # type: ignore[arg-type]
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        with pytest.raises(ValueError, match="trace"):
            link.tick({"row": np.zeros(0, np.int64)}, print, on_input=print)
    finally:
        link.close()
    assert not link._proc.is_alive()
    assert isinstance(Model(sc, 1, NullEngine()).link.eng, NullEngine)
