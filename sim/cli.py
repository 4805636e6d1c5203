"""`paymember simulate` and `paymember bench sim`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import ConfigError


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add `simulate` to `sub` and `sim` to `bench`."""
    p = sub.add_parser("simulate", help="run a scenario: summary.json, report.html, charts")
    p.add_argument("scenario", metavar="SCENARIO.toml", type=Path)
    p.add_argument("--seed", type=int, default=None, help="default: the scenario's seed")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default: reports/runs/<scenario>-seed<seed>)")
    p.add_argument("--trace", type=Path, default=None, metavar="FILE",
                   help="write the delivered notifications as JSON lines")
    p.add_argument("--mode", choices=("fast", "reference"), default=None,
                   help="override the scenario's model mode")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=simulate)
    b = bench.add_parser("sim", help="fast vs process-per-shopper model, payments per wall s")
    b.add_argument("--json", action="store_true", help="print the figures as JSON")
    b.add_argument("--shoppers", type=int, default=None, help="population for the comparison")
    b.add_argument("--hours", type=float, default=None, help="simulated hours for the comparison")
    b.add_argument("--city", action="store_true",
                   help="also run the city-day target (>= 5M shoppers, real engine; minutes)")
    b.set_defaults(func=bench_sim)


def simulate(args: argparse.Namespace) -> int:
    """Run one scenario and write its run folder; exit 2 on a bad scenario file."""
    from sim.run import default_out, run_scenario
    from sim.scenario import load_scenario

    try:
        sc = load_scenario(args.scenario)
    except ConfigError as e:
        print(f"paymember simulate: bad scenario: {e}", file=sys.stderr)
        return 2
    seed = sc.seed if args.seed is None else args.seed
    out = args.out or default_out(sc, seed)
    summary, _ = run_scenario(sc, seed, out, args.trace, progress=not args.no_progress,
                              mode=args.mode)
    print(f"{sc.name}: {summary['payments']:,} payments, {summary['members_enrolled']:,} "
          f"members, peak {summary['peak_payments_per_s']}/s, invariants "
          f"{'ok' if summary['invariants_ok'] else 'BROKEN'}, Little's law "
          f"{'ok' if summary['little_ok'] else 'BROKEN'}, {summary['wall_s']:.1f} s wall")
    print(f"wrote {out / 'summary.json'}, {out / 'report.html'}")
    if args.trace:
        print(f"wrote {args.trace}")
    return 0 if summary["invariants_ok"] and summary["little_ok"] else 1


def bench_sim(args: argparse.Namespace) -> int:
    """Run the simulation benchmark and print its figures."""
    from sim.bench import main

    return main(args)
