"""A journaled ShardedEngine killed with SIGKILL (router and workers) loses no acknowledged
input and applies none twice: its shards and its parked refunds recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from core import Engine, ShardedEngine, check_invariants
from core.sharded_feed import apply_step, mixed_feed
from tests.helpers import ROOT, program

PROGRAM = program()
FEED = dict(seed=11, members=2000, events=24_000, batch=400)
CHILD = """
import sys
from core import ShardedEngine
from core.sharded_feed import apply_step, mixed_feed
from tests.helpers import program
prog = program()
steps, _ = mixed_feed(prog, **{feed!r})
eng = ShardedEngine([prog], 2, journal_dir=sys.argv[1])
for k, s in enumerate(steps):
    apply_step(eng, s)
    print(k, s.kind, flush=True)  # acknowledged: the call returned
eng.close()
print("done", flush=True)
"""


def _run_and_kill(directory: Path, steps: list) -> int:
    """Run the feed in a child, SIGKILL its whole process group right after it acknowledged
    a batch of refunds parked for the next payment batch; return the last acknowledged step."""
    kill_from = len(steps) // 3
    acked = -1
    with subprocess.Popen([sys.executable, "-c", CHILD.format(feed=FEED), str(directory)],
                          cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          start_new_session=True) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                if line.strip() == "done":
                    break
                k, kind = line.split()
                acked = int(k)
                nxt = steps[acked + 1].kind if acked + 1 < len(steps) else ""
                if acked >= kill_from and kind == "refund" and nxt == "payments":
                    os.killpg(child.pid, signal.SIGKILL)
                    break
            rest = child.stdout.read()
        finally:
            child.wait(60)
    acked = max([acked, *(int(x.split()[0]) for x in rest.splitlines() if x[:1].isdigit())])
    assert acked + 1 < len(steps), "the child finished before it was killed"
    return acked


def test_sigkill_loses_no_acknowledged_input(tmp_path: Path) -> None:
    """After SIGKILL mid-feed, recovery holds every acknowledged input; replaying the whole
    feed then ends exactly where one Engine fed it once does."""
    steps, _ = mixed_feed(PROGRAM, **FEED)
    acked = _run_and_kill(tmp_path, steps)
    # The reference: the acknowledged prefix once, then the whole feed (redeliveries).
    plain = Engine([PROGRAM])
    for s in steps[:acked + 1]:
        apply_step(plain, s)
    at_crash = plain.stats()
    with ShardedEngine([PROGRAM], 2, journal_dir=tmp_path) as eng:
        assert eng.recovered_inputs() > 0
        got = eng.stats()
        assert got["payments"] >= at_crash["payments"]
        assert got["refunds"] + got["refunds_held"] >= at_crash["refunds"] + \
            at_crash["refunds_held"]
        assert eng.check_invariants() == []
        # Every acknowledged input is already there: redelivered, it is a duplicate.
        for s in steps[:acked + 1]:
            assert apply_step(eng, s) == apply_step(plain, s)
        for s in steps[acked + 1:]:
            apply_step(eng, s)
            apply_step(plain, s)
        want, have = plain.stats(), eng.stats()
        del have["shards"]
        assert have == want
        assert eng.check_invariants() == []
    assert not check_invariants(plain)
    # Closed cleanly, it reopens to the same state.
    with ShardedEngine([PROGRAM], 2, journal_dir=tmp_path) as again:
        have = again.stats()
        del have["shards"]
        assert {k: v for k, v in have.items() if k != "counts"} == \
            {k: v for k, v in want.items() if k != "counts"}
