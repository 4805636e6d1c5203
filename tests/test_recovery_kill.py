"""Crash safety: a real child process journals inputs and is SIGKILLed at random moments.

The child (this file run as a script) recovers, then appends groups of inputs under
fsync "always", acknowledging each group on stdout only after `commit()` returned,
and checkpoints now and then (so kills also land inside snapshot writes). After
each kill the parent recovers and checks the state holds every acknowledged
input exactly once, in order: `Folded.apply` asserts each record's seq is the next,
and the folded value is compared with the fold of inputs 0..n-1.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from core.journal import Journal
from core.journal_format import Record
from core.recovery import checkpoint, recover
from core.types import Payment

_MOD = (1 << 61) - 1
SEGMENT_BYTES = 256 * 1024


def value(i: int) -> int:
    """The value input `i` carries (a pure function of i)."""
    return (i * 2_654_435_761) % 1_000_003 + 1


def step(total: int, i: int, v: int) -> int:
    """Fold input `i` with value `v` into `total`; order- and repeat-sensitive."""
    return (total * 1_000_033 + v * (i + 7)) % _MOD


class Folded:
    """The child's state: how many inputs, and their order-sensitive fold."""

    def __init__(self, body: bytes | None) -> None:
        """Start empty, or from a snapshot `body` (JSON head, then padding)."""
        head = orjson.loads(body.split(b"\n", 1)[0]) if body else {"n": 0, "total": 0}
        self.n: int = head["n"]
        self.total: int = head["total"]

    def apply(self, rec: Record) -> None:
        """Fold record `rec` in; asserts it holds exactly the next inputs."""
        assert rec.seq == self.n, f"record seq {rec.seq}, state expects {self.n}"
        if rec.kind == "payments":
            cols = rec.payments()
            for i, txid, total in zip(range(rec.seq, rec.seq + rec.count), cols.transaction_id,
                                      cols.total_fen.tolist(), strict=True):
                assert txid == f"tx{i}", (txid, i)
                self.total = step(self.total, i, total)
        else:
            d = orjson.loads(rec.payload)
            assert d["i"] == rec.seq, (d["i"], rec.seq)
            self.total = step(self.total, rec.seq, d["v"])
        self.n += rec.count

    def body(self, pad: int) -> bytes:
        """Snapshot bytes: the state as a JSON line, then `pad` filler bytes."""
        return orjson.dumps({"n": self.n, "total": self.total}) + b"\n" + b"#" * pad


def child(directory: str, seed: int, policy: str) -> None:
    """Recover, then journal and acknowledge inputs (those below durable_seq) until killed."""
    state, report = recover(directory, Folded, Folded.apply)
    j = Journal.open(directory, policy, start_seq=report.end_seq,
                     segment_bytes_max=SEGMENT_BYTES)
    assert j.next_seq == state.n
    out = sys.stdout
    out.write(f"ready {state.n}\n")
    out.flush()
    commits = 0
    while True:
        rng = random.Random(seed * 1_000_003 + state.n)
        for _ in range(rng.choice((1, 2, 5, 50, 400))):
            i = j.next_seq
            v = value(i)
            if rng.random() < 0.7:
                j.append_payment(Payment(f"tx{i}", "wxapp", "1230000109", f"o{i % 97}", v,
                                         1_700_000_000 + i))
            else:
                pad = "x" * rng.choice((0, 10, 3000, 60_000))
                j.append("event", orjson.dumps({"i": i, "v": v, "pad": pad}))
            state.total = step(state.total, i, v)
            state.n += 1
        j.commit()
        out.write(f"{j.durable_seq}\n")
        out.flush()
        commits += 1
        if commits % 25 == 0:
            checkpoint(j, state.body(rng.choice((10, 2_000_000))))


def expected_total(n: int, cache: dict[int, int]) -> int:
    """The fold of inputs 0..n-1, extended from the longest cached prefix."""
    start = max((k for k in cache if k <= n), default=0)
    total = cache.get(start, 0)
    for i in range(start, n):
        total = step(total, i, value(i))
    cache[n] = total
    return total


def run_and_kill(directory: Path, seed: int, policy: str,
                 rng: random.Random) -> tuple[int, int]:
    """Start a child, let it run a random while, SIGKILL it; returns (recovered at start, acked)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, __file__, str(directory), str(seed), policy],
                            stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    start_n = -1
    acked = 0
    deadline = None
    try:
        while True:
            timeout = 30.0 if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                assert deadline is not None, "child did not start"
                break
            chunk = os.read(fd, 65536)
            assert chunk, f"child exited early with {proc.wait()}"
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.startswith(b"ready "):
                    start_n = int(line[6:])
                    acked = start_n
                    deadline = time.monotonic() + rng.uniform(0.02, 0.6)
                else:
                    acked = max(acked, int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
    for line in (buf + rest).split(b"\n"):
        if line.strip() and not line.startswith(b"ready"):
            acked = max(acked, int(line))
    return start_n, acked


@pytest.mark.parametrize(("policy", "kills"), [("always", 10), ("2ms", 4), ("off", 3)])
def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path, policy: str,
                                                             kills: int) -> None:
    """After each SIGKILL, recovery holds every acknowledged input exactly once, in order."""
    rng = random.Random(20261123)
    cache: dict[int, int] = {}
    acked = 0
    torn = 0
    for cycle in range(kills):
        start_n, acked_now = run_and_kill(tmp_path, cycle, policy, rng)
        assert start_n >= acked, f"cycle {cycle}: restart at {start_n} lost acked {acked}"
        acked = acked_now
        state, report = recover(tmp_path, Folded, Folded.apply)
        assert state.n >= acked, f"cycle {cycle}: recovered {state.n} < acknowledged {acked}"
        assert state.total == expected_total(state.n, cache), f"cycle {cycle}: wrong state"
        torn += report.torn_bytes > 0
    assert acked > 0
    print(f"{policy}: {kills} kills, last acknowledged seq {acked}, {torn} torn tails dropped")


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
