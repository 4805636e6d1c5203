"""tools/: the profiling driver runs the bench's pay_block loop and reports it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "prof_pay_block.py"


def test_prof_pay_block_reports_its_loop_and_refuses_bad_sizes() -> None:
    ok = subprocess.run([sys.executable, str(TOOL), "2000", "5000", "--batch", "1000"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(r"[\d,]+ payments/s, [\d,]+ a CPU-second, kernel [\d.]+ s of "
                        r"[\d.]+ s, page faults [\d,]+\n", ok.stdout)
    bad = subprocess.run([sys.executable, str(TOOL), "0", "5"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "must be >= 1" in bad.stderr
