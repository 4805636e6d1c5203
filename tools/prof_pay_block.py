"""Drive `Engine.pay_block` over the bench's workload, for profilers (not a benchmark).

    python tools/prof_pay_block.py MEMBERS EVENTS [--batch N] [--stop]

Builds the `bench engine` workload (seed 1: `EVENTS` payments by `MEMBERS` shoppers, the
engine prepared as the bench prepares it) and its blocks, then applies them with
`pay_block` and prints payments/s, CPU and kernel time and page faults of that loop.
With `--stop` it stops itself (SIGSTOP) before the loop, so that a sampling profiler can
attach to the loop alone, and exits without tearing the engine down. The instruction
counts in docs/memory.md were taken as

    valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect='__pyx_pw_4core_6_batch_*pay_block*' \\
        .venv/bin/python tools/prof_pay_block.py 200000 200000

and the kernel's share by `perf record -e cpu-clock -g -p PID` on a `--stop`ped run,
continued with `kill -CONT PID`.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import signal
import time

import numpy as np

from core import bench
from core.engine import Engine
from core.payment_block import from_columns
from core.payment_columns import from_payments
from core.program import load_program
from core.workload import payment_stream


def main(argv: list[str] | None = None) -> int:
    """Run the loop as the module's text says; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("members", type=int)
    ap.add_argument("events", type=int)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--stop", action="store_true", help="SIGSTOP before the loop")
    args = ap.parse_args(argv)
    if args.members < 1 or args.events < 1 or args.batch < 1:
        ap.error("members, events and --batch must be >= 1")
    prog = load_program(bench.DEFAULT_PROGRAM)
    wl = payment_stream(prog, np.random.default_rng(1), args.members, args.events,
                        bench.START_S)
    cols = from_payments(wl.payments)
    blocks = [from_columns(cols.slice(lo, lo + args.batch))
              for lo in range(0, args.events, args.batch)]
    eng = Engine([prog])
    bench._prepare(wl, prog)(eng)
    gc.collect()
    gc.disable()
    if args.stop:
        os.kill(os.getpid(), signal.SIGSTOP)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    c0, t0 = time.process_time(), time.perf_counter()
    for b in blocks:
        eng.pay_block(b)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{args.events / wall:,.0f} payments/s, {args.events / cpu:,.0f} a CPU-second, "
          f"kernel {ru1.ru_stime - ru0.ru_stime:.3f} s of {cpu:.3f} s, "
          f"page faults {ru1.ru_minflt - ru0.ru_minflt:,}", flush=True)
    if args.stop:
        os._exit(0)  # the profiler saw the loop; tearing the engine down is not its business
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
