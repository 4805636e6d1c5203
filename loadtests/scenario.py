"""Load scenarios (scenarios/load_*.toml): the mix, the stages of offered load, and the SLO.

Read strictly: an unknown key or a bad value is a ConfigError naming file and key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from core.config import ConfigError, between, load_toml, non_negative, positive
from loadtests import env, limits

MIX_KINDS = ("payment", "duplicate", "refund", "binding", "enrollment", "balance", "batch")
GENERATORS = ("locust", "fast")


@dataclass(frozen=True, slots=True)
class Stage:
    """`duration_s` seconds at `users` users offering `rate_per_s` requests/s (0: closed loop)."""

    duration_s: float
    users: int
    rate_per_s: float


@dataclass(frozen=True, slots=True)
class Slo:
    """The service-level objective a stage must meet to count as sustainable."""

    latency_ms_p99: float = 5.0
    error_rate_max: float = 0.001


@dataclass(frozen=True, slots=True)
class TraceReplay:
    """Replay `file` (loadtests/trace.py format) at its timestamps divided by `speedup`."""

    file: str
    speedup: float = 1.0
    users: int = 64


@dataclass(frozen=True, slots=True)
class Scenario:
    """One load scenario; `programs` are program TOML paths, `mix` weights by MIX_KINDS."""

    name: str
    file: str
    programs: tuple[str, ...]
    shards: int
    processes: int
    members: int
    mix: dict[str, int]
    batch_size: int
    time_compression: float
    stages: tuple[Stage, ...]
    slo: Slo
    trace: TraceReplay | None
    generator: str = "locust"  # "locust" or "fast" (loadtests.fastgen): both send the mix

    @property
    def duration_s(self) -> float:
        """Total duration of the stages, in seconds."""
        return sum(s.duration_s for s in self.stages)

    def with_duration(self, duration_s: float) -> Scenario:
        """Return this scenario with every stage scaled so that they last `duration_s` in all."""
        k = duration_s / self.duration_s
        return replace(self, stages=tuple(replace(s, duration_s=s.duration_s * k)
                                          for s in self.stages))

    def stage_at(self, elapsed_s: float) -> tuple[int, Stage] | None:
        """Return (index, stage) running `elapsed_s` after the start, or None after the end."""
        end = 0.0
        for i, s in enumerate(self.stages):
            end += s.duration_s
            if elapsed_s < end:
                return i, s
        return None


def load_scenario(path: str | Path) -> Scenario:
    """Read a load scenario TOML; relative paths in it are relative to the current directory.

    Raises ConfigError naming the file, the key and the reason.
    """
    root = load_toml(path)
    s = root.table("load", required=True)
    name = s.get("name", str, Path(path).stem)
    programs = tuple(s.get("programs", list, ["scenarios/load_program.toml"]))
    if not programs or not all(isinstance(p, str) for p in programs):
        raise s.error("programs", "expected a non-empty list of program file paths")
    shards = s.get("shards", int, 1, check=between(1, limits.SHARDS_MAX))
    processes = s.get("processes", int, 1, check=between(0, 64))
    members = s.get("members", int, 10_000, check=between(1, 100_000_000))
    compression = s.get("time_compression", float, 60.0, check=positive)
    generator = s.get("generator", str, "locust")
    if generator not in GENERATORS:
        raise s.error("generator", f"expected one of {', '.join(GENERATORS)}")
    m = s.table("mix")
    mix = {k: m.get(k, int, 0, check=non_negative) for k in MIX_KINDS}
    m.done()
    if not any(mix.values()):
        mix["payment"] = 1
    b = s.table("batch")
    batch_size = b.get("size", int, 1000, check=between(1, limits.BATCH_EVENTS_MAX))
    b.done()
    stages = []
    for st in s.tables("stages"):
        stages.append(Stage(
            st.get("duration_s", float, check=between(0.1, limits.LOADTEST_DURATION_S_MAX)),
            st.get("users", int, check=between(1, limits.LOADTEST_USERS_MAX)),
            st.get("rate_per_s", float, 0.0, check=between(0, limits.LOADTEST_RATE_PER_S_MAX))))
        st.done()
    sl = s.table("slo")
    slo = Slo(sl.get("latency_ms_p99", float, 5.0, check=positive),
              sl.get("error_rate_max", float, 0.001, check=between(0, 1)))
    sl.done()
    trace = None
    if s.has("trace"):
        t = s.table("trace")
        trace = TraceReplay(t.get("file", str), t.get("speedup", float, 1.0, check=positive),
                            t.get("users", int, 64, check=between(1, limits.LOADTEST_USERS_MAX)))
        t.done()
    s.done()
    root.done()
    if not stages and trace is None:
        raise ConfigError(str(path), "load.stages", "at least one stage (or a trace) is required")
    if generator == "fast" and (trace is not None or any(st.rate_per_s == 0 for st in stages)):
        raise ConfigError(str(path), "load.generator", "the fast generator replays no trace "
                          "and runs open-loop stages only (rate_per_s > 0)")
    if sum(st.duration_s for st in stages) > limits.LOADTEST_DURATION_S_MAX:
        raise ConfigError(str(path), "load.stages", "stages last longer than the maximum")
    return Scenario(name, str(path), programs, shards, processes, members, mix, batch_size,
                    compression, tuple(stages), slo, trace, generator)


def scenario_from_env(environ: dict[str, str] | os._Environ[str]) -> Scenario:
    """The scenario a generator process runs: the file named in the environment, with the
    runner's overrides of duration and member population applied."""
    scenario = load_scenario(environ[env.SCENARIO])
    if environ.get(env.DURATION) and scenario.stages:
        scenario = scenario.with_duration(float(environ[env.DURATION]))
    if environ.get(env.MEMBERS):
        scenario = replace(scenario, members=int(environ[env.MEMBERS]))
    return scenario
