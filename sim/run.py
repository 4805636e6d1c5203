"""Running a scenario end to end: model, engine, summary, report and trace files."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from core import Engine
from sim.feed import EngineLike, NullEngine
from sim.model import Model
from sim.scenario import Scenario
from sim.summary import summarize
from sim.trace import TraceWriter

RUNS_DIR = Path("reports/runs")
# From this many shoppers a real engine runs in its own process (sim.link) when the
# machine has a second core. Each tick costs about a millisecond of fixed work in each
# process (9,000 ticks a day): for the default 100,000 shoppers the overlap only breaks
# even on an idle machine (and loses on a busy one), for millions it wins.
PROCESS_MIN_SHOPPERS = 1_000_000


def default_out(scenario: Scenario, seed: int) -> Path:
    """Return the default run folder: reports/runs/<scenario>-seed<seed> (git-ignored)."""
    return RUNS_DIR / f"{scenario.name}-seed{seed}"


def _without_gc(run: Callable[..., None], *args: Any) -> None:
    """Call `run(*args)` with the cyclic collector off: the engine and model hold millions
    of objects but make few cycles, and each full collection would walk them all."""
    was = gc.isenabled()
    gc.disable()
    try:
        run(*args)
    finally:
        if was:
            gc.enable()


def run_scenario(scenario: Scenario, seed: int | None = None, out: Path | None = None,
                 trace: Path | None = None, progress: bool = False, engine: str = "real",
                 mode: str | None = None, report: bool = True, process: bool | None = None,
                 ) -> tuple[dict[str, Any], Model]:
    """Run `scenario` with `seed` (default: the scenario's) and return (summary, model).

    With `out`, writes summary.json (and report.html and charts when `report`); with
    `trace`, writes the delivered inputs as JSON lines. `engine` is "real" (core.Engine)
    or "null" (acknowledges everything: the model's own cost). `process` runs the real
    engine in its own process (default: from PROCESS_MIN_SHOPPERS shoppers on a machine
    with two cores, never with a trace); the summary is the same either way. Raises
    OSError on files, ValueError for a null engine or a trace in a process.
    """
    seed = scenario.seed if seed is None else seed
    if process is None:
        process = (engine == "real" and trace is None and (os.cpu_count() or 1) > 1
                   and scenario.shoppers >= PROCESS_MIN_SHOPPERS)
    if process and engine != "real":
        raise ValueError("only a real engine runs in its own process")
    eng: EngineLike | None = (None if process else Engine(list(scenario.programs))
                              if engine == "real" else NullEngine())
    t0 = time.perf_counter()
    with ExitStack() as stack:
        writer = None
        if trace is not None:
            trace.parent.mkdir(parents=True, exist_ok=True)
            f = stack.enter_context(trace.open("wb"))
            writer = TraceWriter(f, scenario.start_s, scenario.utc_offset_s)
        model = Model(scenario, seed, eng, writer, mode)
        stack.callback(model.link.close)
        if progress:
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(total=model.horizon_s - model.begin_s, unit="sim-s",
                                           file=sys.stderr, desc=scenario.name, leave=False))

            def tick(now: float) -> None:
                bar.update(int(now) - model.begin_s - bar.n)

            _without_gc(model.run, tick)
        else:
            _without_gc(model.run)
        summary = summarize(model, time.perf_counter() - t0)
    model.wall.total_s = time.perf_counter() - t0
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_bytes(
            orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        if report:
            from reports import write_report

            write_report(model, summary, out)
    return summary, model
