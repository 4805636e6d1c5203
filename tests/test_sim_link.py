"""The engine behind a link (sim.link): in the model's process or in its own, a run is the
same; the process's failures reach the model; the wall split adds up."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import run_scenario
from sim.feed import NullEngine
from sim.inputs import FeedContext
from sim.link import ProcessLink, _Outbox
from sim.model import Model
from sim.timing import WallSplit
from sim.wire import PIPE_BYTES, dumps, pipe, pipe_max
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


def test_pipes_are_large_and_a_bad_command_is_reported() -> None:
    """Both pipes get a buffer as large as the kernel grants (a tick crosses in one
    write); a command the engine process cannot read ends in RuntimeError, not a hang."""
    sc = small(shoppers=2000, hours=0.5)
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        want = min(PIPE_BYTES, max(pipe_max(), 1 << 16))
        for end in (link._out, link._in):
            assert fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) >= want
        got: list[Any] = []
        link.stats(got.append)
        link.settle(0)
        assert got and isinstance(got[0], dict)
        link._out.send_bytes(b"not a pickle")
        link.stats(got.append)
        with pytest.raises(RuntimeError, match="reading a command failed"):
            link.settle(0)
    finally:
        link.close()
    assert not link._proc.is_alive()


def test_outbox_sends_a_result_larger_than_the_pipe_without_blocking() -> None:
    """A result past the outbox's limit goes out from a thread: `send` returns with nobody
    reading yet, and the results arrive whole and in order."""
    r, w = pipe(mp.get_context("fork"))
    try:
        out = _Outbox(w)
        big = np.arange(1 << 19)  # 4 MiB pickled: more than any pipe buffer here
        out.send(("big", big))  # returns at once although nobody reads yet
        got = [pickle.loads(r.recv_bytes())]
        out.send("small")
        out.drain()
        got.append(pickle.loads(r.recv_bytes()))
        assert got[0][0] == "big" and np.array_equal(got[0][1], big) and got[1] == "small"
    finally:
        r.close()
        w.close()


def test_arrays_cross_with_their_own_dtypes() -> None:
    # int64 ("l") must not come back as long long ("q"): equal dtypes, but another type,
    # on which numpy's add.at takes a slower casting loop.
    arrays = [np.arange(5, dtype=np.int64), np.arange(3, dtype=np.longlong),
              np.arange(4, dtype=">i8"), np.ones((2, 3), np.uint8), np.array([True, False]),
              np.arange(6, dtype=np.int16)[::2]]
    for a in arrays:
        back = pickle.loads(dumps(a))
        assert back.dtype.type is a.dtype.type and back.dtype == a.dtype
        assert back.shape == a.shape and (back == a).all()
