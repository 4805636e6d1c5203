"""`paymember loadtest`: start the service and Locust, run a scenario headless, report.

The runner never imports Locust: Locust runs in its own process (with
`--processes` workers), the service in another, both stopped by their ids.
Keys come from the environment or, when unset, are made fresh for the run.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from core import ConfigError
from loadtests import env, keys, procs
from loadtests.aead import Aead
from loadtests.client import ADMIN_STATE, Notifier
from loadtests.procs import RunError
from loadtests.report import write_report
from loadtests.results import merge_parts
from loadtests.scenario import Scenario, load_scenario
from loadtests.signing import HmacSigner
from loadtests.summary import build_summary

LOCUSTFILES = {"mix": "locustfile.py", "trace": "locustfile_trace.py"}
GENERATOR_BOUND_CORES = 0.7  # service busier than this per shard: the service is the limit
LOCUST_GRACE_S = 90.0  # Locust start-up, user stop timeout and shutdown, beyond the stages
FASTGEN_GRACE_S = 120.0  # building every request up front, the drain and the part file


def run_keys(base: dict[str, str]) -> dict[str, str]:
    """Return `base` with an HMAC and an APIv3 key added when it has none (fresh per run)."""
    out = dict(base)
    if keys.read_secret(keys.HMAC_KEY, out) is None:
        out[keys.HMAC_KEY] = secrets.token_hex(16)
    if keys.read_secret(keys.APIV3_KEY, out) is None:
        out[keys.APIV3_KEY] = secrets.token_hex(16)
    return out


def run_loadtest(scenario_path: str, out: str, duration_s: float | None = None,
                 shards: int | None = None, processes: int | None = None,
                 members: int | None = None, generator: str | None = None) -> int:
    """Run the scenario and write DIR/summary.json and DIR/report.html; return the exit code.

    `shards`, `processes`, `members` and `generator` override the scenario's.
    0: no errors and invariants hold; 1: errors or a failed check; 2: could not start.
    """
    summary = run_summary(scenario_path, out, duration_s, shards, processes, members,
                          generator)
    if summary is None:
        return 2
    return 0 if passed(summary) else 1


def passed(summary: dict[str, Any]) -> bool:
    """True when a run had requests, no errors, and every check held."""
    return bool(summary["invariants_ok"] and summary["errors"] == 0 and summary["requests"] > 0)


def run_summary(scenario_path: str, out: str, duration_s: float | None = None,
                shards: int | None = None, processes: int | None = None,
                members: int | None = None, generator: str | None = None
                ) -> dict[str, Any] | None:
    """Run the scenario as `run_loadtest` does; return its summary (None: could not start)."""
    try:
        scenario = load_scenario(scenario_path)
    except ConfigError as e:
        print(f"paymember loadtest: {e}", file=sys.stderr)
        return None
    if duration_s is not None:
        scenario = scenario.with_duration(duration_s) if scenario.stages else scenario
    if members is not None:
        scenario = replace(scenario, members=members)
    if generator is not None:
        if generator == "fast" and (scenario.trace is not None
                                    or any(st.rate_per_s == 0 for st in scenario.stages)):
            print("paymember loadtest: the fast generator replays no trace and runs "
                  "open-loop stages only (rate_per_s > 0)", file=sys.stderr)
            return None
        scenario = replace(scenario, generator=generator)
    shards = shards or scenario.shards
    processes = scenario.processes if processes is None else processes
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in (out_dir / "parts").glob("*.json"):
            stale.unlink()
    except OSError as e:
        print(f"paymember loadtest: --out {out}: {e.strerror}", file=sys.stderr)
        return None
    try:
        summary = _run(scenario, scenario_path, out_dir, duration_s, shards, processes)
    except RunError as e:
        print(f"paymember loadtest: {e}", file=sys.stderr)
        return None
    print(f"paymember loadtest: {summary['requests']} requests "
          f"({summary['requests_per_s']}/s, {summary['events_per_s']} events/s), "
          f"p99 {summary['latency_ms']['p99_ms']} ms (uncorrected "
          f"{summary['latency_ms_uncorrected']['p99_ms']} ms), errors {summary['errors']}, "
          f"invariants {'ok' if summary['invariants_ok'] else 'VIOLATED'}; "
          f"sustainable {summary['sustainable_per_s']}/s (bottleneck: "
          f"{summary.get('bottleneck', 'none')}; knee: {summary['knee']}); report in {out_dir}")
    return summary


def _run(scenario: Scenario, scenario_path: str, out_dir: Path, duration_s: float | None,
         shards: int, processes: int) -> dict[str, Any]:
    run_env = run_keys(dict(os.environ))
    urls_file = out_dir / "urls.json"
    urls_file.unlink(missing_ok=True)
    serve = [procs.python(), "-m", "paymember", "serve", "--port", "0", "--shards", str(shards),
             "--urls-file", str(urls_file)]
    for p in scenario.programs:
        serve += ["--program", p]
    service_log = out_dir / "service.log"
    service = procs.start(serve, service_log, run_env)
    try:
        urls = procs.wait_for_urls(service, urls_file, service_log)
        gen_env = {**run_env, env.SCENARIO: scenario_path, env.URLS: json.dumps(urls),
                   env.OUT: str(out_dir), env.PROCESSES: str(max(processes, 1)),
                   env.MEMBERS: str(scenario.members)}
        if duration_s is not None:
            gen_env[env.DURATION] = str(duration_s)
        t0, cpu0 = time.time(), procs.cpu_seconds(service.pid)
        sampler = procs.CpuSampler()
        sampler.watch("service", service.pid)
        sampler.start()
        try:
            if scenario.generator == "fast":
                run_fastgen(scenario, out_dir, gen_env, max(processes, 1), sampler)
            else:
                run_locust(scenario, out_dir, gen_env, urls, processes, sampler)
        finally:
            sampler.stop()
        wall_s, service_cpu = time.time() - t0, procs.cpu_seconds(service.pid) - cpu0
        engine, violations = engine_state(urls, run_env)
    finally:
        procs.stop(service)
    recorder, books, start_s, parts = merge_parts(out_dir)
    if parts == 0:
        logs = sorted(out_dir.glob("*.log"))
        raise RunError("the generator wrote no results:\n"
                       + "".join(f.read_text()[-1500:] for f in logs if f.name != "service.log"))
    meta = {"shards": shards, "processes": processes, "generator": scenario.generator,
            "members": scenario.members, "generator_processes_reporting": parts,
            "urls": urls, "service_cpu_cores": round(service_cpu / max(wall_s, 1e-9), 2),
            "service_cores_available": shards}
    summary = build_summary(scenario, recorder, books, start_s or t0, engine, violations, meta)
    judge(summary, sampler, start_s or t0, shards, max(processes, 1))
    (out_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    write_report(out_dir / "report.html", summary, recorder, start_s or t0)
    return summary


def run_locust(scenario: Scenario, out_dir: Path, locust_env: dict[str, str], urls: list[str],
               processes: int, sampler: procs.CpuSampler) -> None:
    """Run Locust headless (with `processes` workers) for the scenario; raises RunError."""
    kind = "trace" if scenario.trace is not None else "mix"
    locustfile = str(Path(__file__).with_name(LOCUSTFILES[kind]))
    cmd = [procs.python(), "-m", "locust", "-f", locustfile, "--headless", "-H", urls[0],
           "--csv", str(out_dir / "locust"), "--html", str(out_dir / "locust.html"),
           "--stop-timeout", "5", "--loglevel", "WARNING", "--only-summary",
           "--exit-code-on-error", "0"]
    if processes > 0:
        # Our own master port: Locust's default 5557 may belong to another run,
        # whose master would then hand our workers its users.
        port = str(procs.free_port())
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1",
                "--master-bind-port", port, "--master-host", "127.0.0.1",
                "--master-port", port]
    if kind == "trace":
        from loadtests.trace import replay_duration_s

        assert scenario.trace is not None
        run_s = replay_duration_s(scenario.trace.file, scenario.trace.speedup)
        cmd += ["--users", str(scenario.trace.users), "--spawn-rate",
                str(scenario.trace.users), "--run-time", f"{int(run_s) + 3}s"]
        locust_env[env.DURATION] = str(run_s)
    else:
        run_s = scenario.duration_s
    locust_log = out_dir / "locust.log"
    locust = procs.start(cmd, locust_log, locust_env)
    sampler.watch("generator", locust.pid)
    try:
        code = locust.wait(run_s + LOCUST_GRACE_S)
    except Exception:
        procs.stop(locust)
        raise RunError(f"Locust did not finish in {run_s + LOCUST_GRACE_S:.0f} s") from None
    if code not in (0, 1):
        raise RunError(f"Locust exited {code}:\n{locust_log.read_text()[-3000:]}")


def run_fastgen(scenario: Scenario, out_dir: Path, gen_env: dict[str, str],
                processes: int, sampler: procs.CpuSampler) -> None:
    """Run `processes` fast generator processes (loadtests.fastgen); raises RunError."""
    gens = [procs.start([procs.python(), "-m", "loadtests.fastgen", "--part", str(i),
                         "--of", str(processes)], out_dir / f"fastgen-{i}.log", gen_env)
            for i in range(processes)]
    for g in gens:
        sampler.watch("generator", g.pid)
    deadline = time.monotonic() + scenario.duration_s + FASTGEN_GRACE_S
    try:
        for i, g in enumerate(gens):
            code = g.wait(max(1.0, deadline - time.monotonic()))
            if code != 0:
                log = (out_dir / f"fastgen-{i}.log").read_text()[-3000:]
                raise RunError(f"fast generator {i} exited {code}:\n{log}")
    except Exception as e:
        for g in gens:
            procs.stop(g)
        if isinstance(e, RunError):
            raise
        raise RunError(f"the fast generator did not finish in time ({e})") from None


def judge(summary: dict[str, Any], sampler: procs.CpuSampler, start_s: float, shards: int,
          processes: int) -> None:
    """Add each stage's CPU use (service and generator, in cores) and name the run's limit.

    A stage that missed its offered rate or broke the SLO was limited by the generator
    when its processes were each busier than the service's shards; else by the service
    when a shard was busy (GENERATOR_BOUND_CORES of a core); else by the machine (the
    two share its cores with each other and with whatever else runs on it).
    """
    t = start_s
    verdict = "none"
    for row, stage in zip(summary["stages"], _stage_spans(summary), strict=True):
        lo, hi = t + 1, t + stage
        t += stage
        svc, gen = sampler.cores("service", lo, hi), sampler.cores("generator", lo, hi)
        row["service_cpu_cores"], row["generator_cpu_cores"] = round(svc, 2), round(gen, 2)
        strained = row["achieved_per_s"] < 0.95 * row["offered_per_s"] or not row["slo_ok"]
        if not strained or verdict != "none":
            continue
        if gen / processes > svc / shards:
            verdict = "generator"
        elif svc >= GENERATOR_BOUND_CORES * shards:
            verdict = "service"
        else:
            verdict = "machine"
    summary["bottleneck"] = verdict


def _stage_spans(summary: dict[str, Any]) -> list[float]:
    return [r["duration_s"] for r in summary["stages"]]


def engine_state(urls: list[str], run_env: dict[str, str]) -> tuple[dict[str, int], list[str]]:
    """Return the engine counters summed over shards and every shard's invariant violations."""
    k = keys.load_keys(run_env)
    assert k.hmac_key is not None and k.apiv3_key is not None
    notifier = Notifier(HmacSigner(k.hmac_key), Aead(k.apiv3_key))
    totals: dict[str, int] = {}
    violations: list[str] = []
    for i, url in enumerate(urls):
        req = urllib.request.Request(url + ADMIN_STATE,
                                     headers=notifier.api_headers("GET", ADMIN_STATE))
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                doc = orjson.loads(r.read())
        except OSError as e:
            raise RunError(f"shard {i} did not answer {ADMIN_STATE}: {e}") from None
        for key, v in doc["stats"].items():
            if isinstance(v, int):
                totals[key] = totals.get(key, 0) + v
        violations += [f"shard {i}: {v}" for v in doc["invariant_violations"]]
    return totals, violations
