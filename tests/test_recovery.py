"""Snapshots and recovery: newest valid snapshot + journal tail, exactly once."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from core.journal import Journal
from core.journal_format import JournalCorrupt, Record, list_segments
from core.recovery import checkpoint, recover, replay
from core.snapshot import (
    list_snapshots,
    newest_snapshot,
    prune_snapshots,
    read_snapshot,
    write_snapshot,
)
from core.types import Payment


class Sums:
    """A state that is wrong if any input is lost, repeated or reordered."""

    def __init__(self, body: bytes | None) -> None:
        """Start empty, or from snapshot `body`."""
        d = orjson.loads(body) if body else {"n": 0, "total": 0}
        self.n: int = d["n"]
        self.total: int = d["total"]

    def apply(self, rec: Record) -> None:
        """Fold record `rec` in; its seq must be the next one."""
        assert rec.seq == self.n, (rec.seq, self.n)
        for i in orjson.loads(rec.payload)["i"]:
            self.total = (self.total * 31 + i + 1) % (1 << 61)
        self.n += rec.count

    def body(self) -> bytes:
        """The state as snapshot bytes."""
        return orjson.dumps({"n": self.n, "total": self.total})


def fold(n: int) -> int:
    """The `total` of Sums after inputs 0..n-1."""
    total = 0
    for i in range(n):
        total = (total * 31 + i + 1) % (1 << 61)
    return total


def load(body: bytes | None) -> Sums:
    """Sums from a snapshot body or from nothing."""
    return Sums(body)


def feed(j: Journal, state: Sums, start: int, stop: int) -> None:
    """Append and apply inputs start..stop-1, committing every 7."""
    for i in range(start, stop):
        j.append("event", orjson.dumps({"i": [i]}))
        state.apply(Record(i, "event", 1, memoryview(orjson.dumps({"i": [i]})), 0))
        if i % 7 == 6:
            j.commit()
    j.commit()


def test_snapshot_round_trip(tmp_path: Path) -> None:
    """A written snapshot reads back with its seq and body."""
    body = os.urandom(100_000)
    path = write_snapshot(tmp_path, 42, body)
    snap = read_snapshot(path)
    assert (snap.seq, snap.body) == (42, body)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["body", "header", "short", "long"])
def test_damaged_snapshot_is_skipped_for_an_older_one(tmp_path: Path, damage: str) -> None:
    """The newest snapshot that fails its checks is skipped, named, for the one before."""
    write_snapshot(tmp_path, 10, b"old state")
    path = write_snapshot(tmp_path, 20, b"new state" * 100)
    data = bytearray(path.read_bytes())
    if damage == "body":
        data[-3] ^= 1
    elif damage == "header":
        data[20] ^= 1
    elif damage == "short":
        data = data[:-1]
    else:
        data += b"x"
    path.write_bytes(bytes(data))
    scan = newest_snapshot(tmp_path)
    assert scan.newest is not None
    assert (scan.newest.seq, scan.newest.body) == (10, b"old state")
    assert [p for p, _ in scan.skipped] == [str(path)]


def test_temporary_snapshot_is_ignored_and_pruned(tmp_path: Path) -> None:
    """A snapshot cut off before its rename is never read, and pruning removes it."""
    write_snapshot(tmp_path, 5, b"five")
    (tmp_path / "00000000000000000009.snapshot.tmp").write_bytes(b"PMSNAP01 half")
    scan = newest_snapshot(tmp_path)
    assert scan.newest is not None and scan.newest.seq == 5
    assert prune_snapshots(tmp_path) == 5
    assert not list(tmp_path.glob("*.tmp"))


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    """Pruning keeps the newest `keep` snapshots and returns the oldest kept seq."""
    for seq in (1, 2, 3, 4):
        write_snapshot(tmp_path, seq, b"s")
    assert prune_snapshots(tmp_path, keep=2) == 3
    assert [s for s, _ in list_snapshots(tmp_path)] == [3, 4]


def test_recover_without_snapshot_replays_everything(tmp_path: Path) -> None:
    """With no snapshot, recovery replays the whole journal from seq 0."""
    j = Journal.open(tmp_path)
    feed(j, Sums(None), 0, 100)
    j.close()
    state, report = recover(tmp_path, load, Sums.apply)
    assert (state.n, state.total) == (100, fold(100))
    assert report.snapshot_seq is None and report.inputs == 100 and report.end_seq == 100


def test_recover_from_checkpoint_and_tail(tmp_path: Path) -> None:
    """Recovery loads the newest checkpoint and replays only the inputs after it."""
    j = Journal.open(tmp_path, segment_bytes_max=1024)
    live = Sums(None)
    for stop in (40, 90, 150, 230):
        feed(j, live, live.n, stop)
        checkpoint(j, live.body())
    feed(j, live, live.n, 260)
    j.close()
    assert len(list_snapshots(tmp_path)) == 2
    state, report = recover(tmp_path, load, Sums.apply)
    assert (state.n, state.total) == (260, fold(260))
    assert report.snapshot_seq == 230 and report.inputs == 30


def test_recover_falls_back_when_newest_snapshot_is_bad(tmp_path: Path) -> None:
    """A corrupt newest snapshot is skipped; the older one plus a longer tail gives the same."""
    j = Journal.open(tmp_path, segment_bytes_max=1024)
    live = Sums(None)
    for stop in (50, 120):
        feed(j, live, live.n, stop)
        checkpoint(j, live.body())
    feed(j, live, live.n, 140)
    j.close()
    newest = list_snapshots(tmp_path)[-1][1]
    newest.write_bytes(newest.read_bytes()[:-1])
    state, report = recover(tmp_path, load, Sums.apply)
    assert (state.n, state.total) == (140, fold(140))
    assert report.snapshot_seq == 50 and len(report.snapshots_skipped) == 1


def test_journal_shorter_than_snapshot_is_an_error(tmp_path: Path) -> None:
    """A snapshot claiming inputs the journal never had stops recovery with a clear error."""
    j = Journal.open(tmp_path)
    feed(j, Sums(None), 0, 10)
    j.close()
    write_snapshot(tmp_path, 50, Sums(None).body())
    with pytest.raises(JournalCorrupt, match="ends at seq 10, before 50"):
        recover(tmp_path, load, Sums.apply)


def test_replay_from_inside_a_record_is_an_error(tmp_path: Path) -> None:
    """A start seq in the middle of a many-input record is refused, naming the record."""
    with Journal.open(tmp_path) as j:
        j.append("event", orjson.dumps({"i": [0]}))
        for i in range(1, 6):
            j.append_payment(Payment(f"tx{i}", "wxapp", "m1", "o1", 100, 1_700_000_000))
    with pytest.raises(JournalCorrupt, match="replay must begin at 3"):
        replay(tmp_path, 3, lambda rec: None)


def test_reopen_after_recovery_continues_seqs(tmp_path: Path) -> None:
    """After recovery the journal reopens at report.end_seq and the next recovery sees both."""
    j = Journal.open(tmp_path, segment_bytes_max=1024)
    live = Sums(None)
    feed(j, live, 0, 60)
    checkpoint(j, live.body())
    j.close()
    state, report = recover(tmp_path, load, Sums.apply)
    j = Journal.open(tmp_path, start_seq=report.end_seq)
    feed(j, state, report.end_seq, 80)
    j.close()
    again, _ = recover(tmp_path, load, Sums.apply)
    assert (again.n, again.total) == (80, fold(80))
    assert list_segments(tmp_path)


def test_mapped_snapshot_reads_the_same_and_refuses_damage(tmp_path: Path) -> None:
    body = bytes(range(256)) * 5000
    path = write_snapshot(tmp_path, 7, body)
    mapped = read_snapshot(path, mapped=True)
    assert isinstance(mapped.body, memoryview) and mapped.body == body and mapped.seq == 7
    del mapped
    raw = path.read_bytes()
    for damaged in (raw[:-1], raw + b"x", raw[:-10] + bytes(10)):
        path.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"bytes|checksum"):
            read_snapshot(path, mapped=True)
