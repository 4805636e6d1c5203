"""Subcommands of core: `ingest`, `bench engine`, and `demo` (until the simulation lands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from core import limits
from core.bench import DEFAULT_PROGRAM, START_S, format_report, run
from core.config import ConfigError
from core.engine import Engine
from core.ingest import ingest_file
from core.program import Program, load_program

EXAMPLE_FEED = Path(__file__).resolve().parent.parent / "scenarios/example_feed.jsonl"


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add core's commands to the `paymember` parser."""
    p = sub.add_parser("ingest", help="feed a JSON-lines file through a fresh engine")
    p.add_argument("file", type=Path, help="JSON lines: {\"kind\": ..., \"data\": {...}}")
    p.add_argument("--program", type=Path, action="append", default=None,
                   help="program TOML (repeat for several brands; default: the example)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=_ingest)
    b = bench.add_parser("engine", help="per-event throughput and memory of the engine")
    b.add_argument("--members", type=int, default=1_200_000,
                   help="shoppers drawn (about 1M of them end up with accounts)")
    b.add_argument("--events", type=int, default=2_000_000)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--batch-size", type=int, default=10_000)
    b.add_argument("--peers", action="store_true",
                   help="also run the peers (naive Python, Redis-Lua, SQLite) on a prefix")
    b.add_argument("--peer-events", type=int, default=200_000)
    b.add_argument("--durability-events", type=int, default=1_000_000)
    b.add_argument("--program", type=Path, default=DEFAULT_PROGRAM)
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_bench_engine)
    r = bench.add_parser("restart", help="restart time (snapshot + journal tail) at N members")
    r.add_argument("--members", type=int, default=10_000_000)
    r.add_argument("--tail", type=int, default=100_000,
                   help="payments journaled after the snapshot")
    r.add_argument("--repeat", type=int, default=1_000_000,
                   help="payments by known shoppers then timed on the restarted engine's "
                        "batch path (0: none)")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--program", type=Path, default=DEFAULT_PROGRAM)
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=_bench_restart)
    s = bench.add_parser("shards", help="payments/s of ShardedEngine's batch path by shard count")
    s.add_argument("--shards", default="1,2", help="comma-separated shard counts (default 1,2)")
    s.add_argument("--events", type=int, default=400_000)
    s.add_argument("--members", type=int, default=200_000)
    s.add_argument("--batch-size", type=int, default=20_000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--program", type=Path, default=DEFAULT_PROGRAM)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_bench_shards)
    i = bench.add_parser("idempotency",
                         help="memory of the idempotency window over simulated days")
    i.add_argument("--days", type=int, default=6)
    i.add_argument("--per-hour", type=int, default=2000, help="inputs an hour")
    i.add_argument("--window-s", type=int, default=limits.IDEMPOTENCY_WINDOW_S)
    i.add_argument("--seed", type=int, default=1)
    i.add_argument("--program", type=Path, default=DEFAULT_PROGRAM)
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=_bench_idempotency)


def load_programs(paths: list[Path] | None) -> list | None:
    """Load program files, printing a ConfigError (file, key, reason) to stderr on failure."""
    try:
        return [load_program(p) for p in (paths or [DEFAULT_PROGRAM])]
    except ConfigError as e:
        print(f"paymember: {e}", file=sys.stderr)
        return None


def _ingest(args: argparse.Namespace) -> int:
    programs = load_programs(args.program)
    if programs is None:
        return 2
    try:
        engine = Engine(programs)
    except ValueError as e:
        print(f"paymember: programs conflict: {e}", file=sys.stderr)
        return 2
    try:
        rep = ingest_file(engine, args.file)
    except OSError as e:
        print(f"paymember: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    s = rep.summary()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(s) + b"\n")
    else:
        for n, reason in rep.bad_lines:
            print(f"{args.file}:{n}: {reason}", file=sys.stderr)
        print(f"{args.file}: {s['lines']} lines")
        print(f"  applied {s['applied']}, duplicates {s['duplicates']}, held {s['held']}, "
              f"ignored {s['ignored']}, malformed lines {s['malformed_lines']}")
        for code, k in s["rejections"].items():
            print(f"  rejected {code}: {k}")
        print(f"  members {s['members']}, shadow members {s['shadow_members']}")
        print(f"  points issued {s['points_issued']}, outstanding {s['points_outstanding']}, "
              f"shadow {s['shadow_points']}")
        print(f"  invariants {'ok' if s['invariants_ok'] else 'VIOLATED'}")
    return 0 if s["invariants_ok"] else 1


def _bench(args: argparse.Namespace, measure: Callable[[Program], dict[str, Any]],
           report: Callable[[dict[str, Any]], str]) -> int:
    """Run a benchmark on `--program`, print its report (or one JSON object with --json);
    exit 2 on a bad program or size, 1 if the engine's invariants failed."""
    programs = load_programs([args.program])
    if programs is None:
        return 2
    try:
        r = measure(programs[0])
    except ValueError as e:
        print(f"paymember: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(r) + b"\n")
    else:
        print(report(r))
    return 0 if r["invariants_ok"] else 1


def _bench_engine(args: argparse.Namespace) -> int:
    return _bench(args, lambda prog: run(
        args.members, args.events, args.seed, prog, batch_size=args.batch_size,
        peers=args.peers, peer_events=args.peer_events,
        durability_events=args.durability_events, progress=not args.json), format_report)


def _bench_restart(args: argparse.Namespace) -> int:
    from core import restart_bench

    def say(m: str) -> None:
        if not args.json:
            print(m, file=sys.stderr, flush=True)

    return _bench(args, lambda prog: restart_bench.measure(
        prog, args.members, START_S, args.tail, args.seed, say, args.repeat),
        restart_bench.format_report)


def _bench_shards(args: argparse.Namespace) -> int:
    from core import sharded_bench  # only this command starts worker processes

    def measure(prog: Program) -> dict[str, Any]:
        counts = [int(x) for x in args.shards.split(",")]
        return sharded_bench.run(prog, counts, args.events, args.members, args.batch_size,
                                 args.seed)

    return _bench(args, measure, sharded_bench.format_report)


def _bench_idempotency(args: argparse.Namespace) -> int:
    from core import idempotency_bench

    return _bench(args, lambda prog: idempotency_bench.measure(
        prog, args.days, args.per_hour, args.seed, args.window_s),
        idempotency_bench.format_report)
