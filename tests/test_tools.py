"""tools/: the profiling driver runs the bench's pay_block loop and reports it; the batch
floor (C) builds, applies every payment and checks its balances."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "prof_pay_block.py"
FLOOR = TOOL.parent / "batch_floor.c"


def test_prof_pay_block_reports_its_loop_and_refuses_bad_sizes() -> None:
    ok = subprocess.run([sys.executable, str(TOOL), "2000", "5000", "--batch", "1000"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(r"[\d,]+ payments/s, [\d,]+ a CPU-second, kernel [\d.]+ s of "
                        r"[\d.]+ s, page faults [\d,]+\n", ok.stdout)
    bad = subprocess.run([sys.executable, str(TOOL), "0", "5"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "must be >= 1" in bad.stderr


def test_batch_floor_builds_applies_every_payment_and_refuses_bad_sizes(tmp_path: Path) -> None:
    exe = tmp_path / "batch_floor"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(FLOOR)],
                   check=True, timeout=120)
    for extra, note in (([], ""), (["warm"], r" \(appended memory warm\)")):
        ok = subprocess.run([str(exe), "3000", "20000", *extra], capture_output=True,
                            text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert re.fullmatch(r"batch floor: 3000 members, 20000 payments" + note
                            + r": \d+ payments/s, \d+% in the kernel; applied 20000, "
                            r"duplicates 0, unknown 0, balances ok\n", ok.stdout), ok.stdout
    for args in (["0", "5"], ["5", "x"], ["5", "5", "cold"], ["5"]):
        bad = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and bad.stderr.startswith("usage: batch_floor"), args
