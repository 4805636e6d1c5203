"""Where a run's wall time goes: the model's own work against time spent inside the engine.

Only `paymember bench sim` reads these figures; they are wall-clock measurements, so
they never enter the run's summary (a run stays a pure function of scenario, seed and
commit). The clock is read once per engine call or batch, never per input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any


@dataclass(slots=True)
class WallSplit:
    """Seconds of wall time of one run, by part (filled as the run goes)."""

    engine_inputs_s: float = 0.0  # inside the engine's input methods (pay_columns, bind, ...)
    engine_clock_s: float = 0.0  # inside `advance` and `stats`
    invariants_s: float = 0.0  # the invariant check after the run (the model waiting for it)
    # With the engine in its own process (sim.link.ProcessLink):
    process: bool = False
    wait_s: float = 0.0  # the model waiting for the engine process's results
    engine_busy_s: float = 0.0  # the engine process at work (inputs made, applied, decoded)
    engine_invariants_s: float = 0.0  # the check itself, in the engine process
    engine_cpu_s: float = 0.0  # CPU time of the engine process (below busy: other load)
    run_cpu_s: float = 0.0  # CPU time of the model's process during `Model.run`
    run_s: float = 0.0  # the whole of `Model.run`
    total_s: float = 0.0  # build, run, summary and report
    calls: int = 0  # engine calls and batches timed
    _t: float = field(default=0.0, repr=False)

    def start(self) -> None:
        """Start timing an engine call (ended by `inputs_done` or `clock_done`)."""
        self._t = perf_counter()

    def inputs_done(self) -> None:
        """End an engine input call or batch begun with `start`."""
        self.engine_inputs_s += perf_counter() - self._t
        self.calls += 1

    def clock_done(self) -> None:
        """End an `advance` or `stats` call begun with `start`."""
        self.engine_clock_s += perf_counter() - self._t

    def as_dict(self) -> dict[str, Any]:
        """The split as plain data. `model_s + engine_wait_s + invariants_s +
        setup_and_summary_s` is the whole wall time: `engine_wait_s` is the run's time
        inside engine calls when the engine runs in the model's process, and the time the
        model waited for the engine process's results when it runs in its own (its
        `engine_s` then overlaps the model's)."""
        engine_s = self.engine_inputs_s + self.engine_clock_s
        wait_s = self.wait_s if self.process else engine_s
        model_s = self.run_s - wait_s
        rest_s = self.total_s - self.run_s - self.invariants_s
        total = self.total_s or 1.0
        return {
            "model_s": round(model_s, 3), "engine_s": round(engine_s, 3),
            "engine_inputs_s": round(self.engine_inputs_s, 3),
            "engine_advance_stats_s": round(self.engine_clock_s, 3),
            "engine_process": self.process,
            "engine_wait_s": round(wait_s, 3),
            "engine_process_busy_s": round(self.engine_busy_s, 3),
            "engine_process_invariants_s": round(self.engine_invariants_s, 3),
            "engine_process_cpu_s": round(self.engine_cpu_s, 3),
            "run_cpu_s": round(self.run_cpu_s, 3),
            "invariants_s": round(self.invariants_s, 3),
            "setup_and_summary_s": round(rest_s, 3),
            "model_share": round(model_s / total, 3), "engine_share": round(engine_s / total, 3),
            "engine_calls": self.calls,
        }
