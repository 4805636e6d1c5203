"""Durability figures for `paymember bench engine`: journal size, replay rate, restart time.

Timing is measurement, not engine logic, so this module reads the clock.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core import limits
from core.journal_format import list_segments
from core.recovery import apply_to_engine, checkpoint, recover_engine, replay
from core.types import Payment

MERGE = limits.JOURNAL_REPLAY_RUN_PAYMENTS_MAX  # payments records merged as recovery does


class _Timed:
    """An engine whose `pay_block` and `submit` add up the time they take."""

    def __init__(self, engine: Any) -> None:
        """Time calls into `engine`."""
        self.engine = engine
        self.seconds = 0.0

    def pay_block(self, block: Any) -> Any:
        """`engine.pay_block(block)`, timed."""
        t0 = time.perf_counter()
        out = self.engine.pay_block(block)
        self.seconds += time.perf_counter() - t0
        return out

    def submit(self, kind: str, data: Any) -> Any:
        """`engine.submit(kind, data)`, timed."""
        t0 = time.perf_counter()
        out = self.engine.submit(kind, data)
        self.seconds += time.perf_counter() - t0
        return out


def measure(programs: Sequence[object], payments: Sequence[Payment],
            prepare: Callable[[Any], None] = lambda eng: None, group: int = 1000,
            tail_share: float = 0.1) -> dict[str, Any]:
    """Journal `payments` (groups of `group`, fsync off) applied to an engine made by
    `recover_engine` (and `prepare`d, e.g. members enrolled, without journaling that),
    snapshot it `1 - tail_share` of the way through, then measure replay and restart.

    Returns replay_events_per_s (the whole journal into a fresh engine),
    replay_apply_events_per_s and replay_apply_share (the engine's own part of that
    replay: its batch path on the decoded blocks, and its share of the replay's time),
    replay_decode_events_per_s (the journal's part alone: read, verify, decode),
    journal_bytes_per_payment, snapshot_bytes, snapshot_write_s and restart_s (newest
    snapshot loaded + the tail replayed, as after a crash).
    """
    assert payments and 0 <= tail_share < 1
    with tempfile.TemporaryDirectory(prefix="paymember-journal-") as tmp:
        full, snap = Path(tmp) / "full", Path(tmp) / "snap"
        cut = int(len(payments) * (1 - tail_share))
        out: dict[str, Any] = {}
        for directory, snapshot_at in ((full, -1), (snap, cut)):
            eng, j, _ = recover_engine(directory, programs, "off")
            prepare(eng)
            for k in range(0, len(payments), group):
                if k <= snapshot_at < k + group:
                    t0 = time.perf_counter()
                    body = eng.snapshot()  # type: ignore[attr-defined]
                    checkpoint(j, body)
                    out["snapshot_write_s"] = round(time.perf_counter() - t0, 3)
                    out["snapshot_bytes"] = len(body)
                for p in payments[k:k + group]:
                    eng.pay(p)  # type: ignore[attr-defined]
                    j.append_payment(p)
                j.commit()
            j.close()
        size = sum(p.stat().st_size for _, p in list_segments(full))
        out["journal_bytes_per_payment"] = round(size / len(payments), 1)
        t0 = time.perf_counter()
        replay(full, 0, lambda rec: rec.payment_block(), merge_payments=MERGE)
        out["replay_decode_events_per_s"] = round(len(payments) / (time.perf_counter() - t0))
        # The full replay starts from an engine prepared like the live one.
        eng, j, _ = recover_engine(Path(tmp) / "empty", programs, "off")
        j.close()
        prepare(eng)
        timed = _Timed(eng)
        t0 = time.perf_counter()
        replay(full, 0, lambda rec: apply_to_engine(timed, rec), merge_payments=MERGE)
        replay_s = time.perf_counter() - t0
        out["replay_events_per_s"] = round(len(payments) / replay_s)
        out["replay_apply_events_per_s"] = round(len(payments) / timed.seconds)
        out["replay_apply_share"] = round(timed.seconds / replay_s, 3)
        t0 = time.perf_counter()
        _, j, report = recover_engine(snap, programs, "off")
        out["restart_s"] = round(time.perf_counter() - t0, 3)
        out["restart_tail_events"] = report.inputs
        j.close()
    return out


__all__ = ["measure"]
