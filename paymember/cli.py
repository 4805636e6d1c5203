"""`paymember` console command; each package registers its own subcommands.

A package that offers commands has a `cli` module with `register(subparsers, bench)`:
`subparsers` takes top-level commands, `bench` takes `paymember bench <what>`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from paymember.hugepages import reexec_with_huge_pages

# Each module's register() adds its subcommands; missing packages are skipped so
# a partial checkout still runs what it has.
COMMAND_MODULES = ("core.cli", "sim.cli", "loadtests.cli", "reports.cli")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every package's subcommands registered."""
    parser = argparse.ArgumentParser(
        prog="paymember",
        description="Payment-to-membership engine, simulation and load tests.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = sub.add_parser("bench", help="benchmarks (engine, sim, ...)")
    bench_sub = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.register(sub, bench_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default sys.argv[1:]); returns the exit status.
    Run as the program (no `argv`), it first re-executes itself with malloc on huge pages
    (paymember.hugepages)."""
    if argv is None:
        reexec_with_huge_pages()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
