"""Recovery: the newest valid snapshot, then the journal's tail replayed in order.

`recover` is generic over the state (a callable builds it from snapshot bytes or
from nothing, another applies one record), so the engine and the crash tests share
one path; `recover_engine` and `checkpoint` are the engine's use of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import orjson

from core import limits
from core.journal import FsyncPolicy, Journal
from core.journal_format import (
    PAYMENTS,
    JournalCorrupt,
    Record,
    SegmentScan,
    list_segments,
    map_segment,
    read_segment_head,
)
from core.snapshot import newest_snapshot, prune_snapshots, write_snapshot

S = TypeVar("S")


@dataclass(slots=True)
class RecoveryReport:
    """What recovery found and did; `end_seq` is the seq the next input gets."""

    snapshot_seq: int | None = None
    snapshot_path: str = ""
    snapshots_skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    segments: int = 0
    records: int = 0
    inputs: int = 0  # replayed after the snapshot
    journal_bytes: int = 0
    torn_bytes: int = 0  # of a torn tail, dropped (the journal cuts it off when opened)
    end_seq: int = 0


def replay(directory: str | Path, from_seq: int, apply: Callable[[Record], None],
           report: RecoveryReport | None = None, merge_payments: int = 0) -> RecoveryReport:
    """Pass every journal record holding inputs from `from_seq` on to `apply`, in order.

    With `merge_payments`, consecutive payments records in a segment reach `apply` as one
    Record of up to that many payments (see `Record.more`); a state whose batch of
    payments means the same as those payments one by one (the engine's) is then rebuilt
    exactly, with far fewer calls when the records are small.

    Reads only. Raises JournalCorrupt naming the file and byte offset of damage that a
    crash cannot leave (a bad record before the last, a gap between segments, a
    journal that ends before `from_seq` or starts after it).
    """
    directory = Path(directory)
    report = report or RecoveryReport()
    segments = list_segments(directory)
    start = 0
    for i, (base, _) in enumerate(segments):
        if base <= from_seq:
            start = i
    segments = segments[start:]
    if segments and segments[0][0] > from_seq:
        raise JournalCorrupt(segments[0][1], 0, f"journal starts at seq {segments[0][0]}, "
                             f"after seq {from_seq} where replay must begin")
    seq = from_seq if not segments else segments[0][0]
    for k, (base, path) in enumerate(segments):
        data = map_segment(path)
        read_segment_head(path, data)
        if base != seq and k:
            raise JournalCorrupt(path, 0, f"segment starts at seq {base}, previous ended at {seq}")
        scan = SegmentScan(path, data, base, last=k == len(segments) - 1)
        run: list[Record] = []  # payments records not yet applied, to apply as one
        run_count = 0
        for rec in scan:
            if rec.seq + rec.count <= from_seq:
                continue
            if rec.seq < from_seq:
                raise JournalCorrupt(path, rec.offset, f"record holds seqs {rec.seq}.."
                                     f"{rec.seq + rec.count - 1}; replay must begin at {from_seq}")
            report.records += 1
            report.inputs += rec.count
            if rec.kind == PAYMENTS and merge_payments:
                if run and run_count + rec.count > merge_payments:
                    _apply_run(apply, run, run_count)
                    run, run_count = [], 0
                run.append(rec)
                run_count += rec.count
                continue
            if run:
                _apply_run(apply, run, run_count)
                run, run_count = [], 0
            apply(rec)
        if run:
            _apply_run(apply, run, run_count)
        report.segments += 1
        report.journal_bytes += scan.end_offset
        report.torn_bytes += scan.torn
        seq = scan.end_seq
    if seq < from_seq:
        where = segments[-1][1] if segments else directory
        raise JournalCorrupt(where, 0, f"journal ends at seq {seq}, before {from_seq}")
    report.end_seq = max(seq, from_seq)
    return report


def _apply_run(apply: Callable[[Record], None], run: list[Record], count: int) -> None:
    """Apply consecutive payments records `run` (`count` payments) as one Record."""
    first = run[0]
    apply(first if len(run) == 1 else
          first._replace(count=count, more=tuple(r.payload for r in run[1:])))


def recover(directory: str | Path, load: Callable[[bytes | None], S],
            apply: Callable[[S, Record], None], mapped: bool = False,
            merge_payments: int = 0) -> tuple[S, RecoveryReport]:
    """Rebuild a state from `directory`: `load(newest valid snapshot body or None)`, then
    `apply(state, record)` for each journal record after the snapshot (payments records
    merged up to `merge_payments`, as `replay` does). With `mapped`, the body `load`
    gets is a memoryview of the mapped snapshot file (no copy).

    Raises JournalCorrupt as `replay` does; what `load` raises on a bad body propagates.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    scan = newest_snapshot(directory, mapped)
    report = RecoveryReport(snapshots_skipped=scan.skipped)
    from_seq = 0
    body = None
    if scan.newest is not None:
        from_seq = scan.newest.seq
        body = scan.newest.body
        report.snapshot_seq = from_seq
        report.snapshot_path = str(scan.newest.path)
    state = load(body)
    replay(directory, from_seq, lambda rec: apply(state, rec), report, merge_payments)
    return state, report


def checkpoint(journal: Journal, body: bytes) -> Path:
    """Snapshot `body` (the state after every input appended to `journal` so far).

    Syncs the journal first, writes the snapshot atomically, keeps the newest
    limits.SNAPSHOTS_KEPT snapshots and drops journal segments older than all of them.
    """
    journal.sync()
    path = write_snapshot(journal.directory, journal.next_seq, body)
    oldest = prune_snapshots(journal.directory)
    assert oldest is not None
    journal.drop_before(oldest)
    return path


# ------------------------------------------------------------------ the engine's use
def apply_to_engine(engine: object, rec: Record) -> None:
    """Apply journal record `rec` to `engine` (an `Engine`) through its public API."""
    if rec.kind == PAYMENTS:
        if hasattr(engine, "pay_block"):  # the journal's ids, never made into str
            engine.pay_block(rec.payment_block())
        else:
            engine.pay_columns(rec.payments())  # type: ignore[attr-defined]
    elif rec.kind in ("export", "import"):  # an account moved between shards
        from core.migrate import replay_move

        replay_move(engine, rec.kind, orjson.loads(rec.payload))
    else:
        engine.submit(rec.kind, orjson.loads(rec.payload))  # type: ignore[attr-defined]


def recover_engine(directory: str | Path, programs: Sequence[object],
                   policy: FsyncPolicy | str = "always") -> tuple[object, Journal, RecoveryReport]:
    """Recover an Engine for `programs` from `directory` and open its journal for appending.

    Raises JournalCorrupt as `replay` does, ValueError when a snapshot does not load.
    """
    from core.engine import Engine  # here, so the journal does not import the engine

    def load(body: bytes | memoryview | None) -> Engine:
        return Engine(programs) if body is None else Engine.from_snapshot(body)  # type: ignore[arg-type]

    engine, report = recover(directory, load, apply_to_engine, mapped=True,
                             merge_payments=limits.JOURNAL_REPLAY_RUN_PAYMENTS_MAX)
    journal = Journal.open(directory, policy, start_seq=report.end_seq)
    assert journal.next_seq == report.end_seq, (journal.next_seq, report.end_seq)
    return engine, journal, report


__all__ = ["RecoveryReport", "apply_to_engine", "checkpoint", "recover", "recover_engine",
           "replay"]
