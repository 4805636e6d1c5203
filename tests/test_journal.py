"""The journal: framing, group commit, fsync policies, torn tails, corruption, segments."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from core import limits
from core.journal import FsyncPolicy, Journal, JournalFailed, RecordTooLarge
from core.journal_format import FRAME, JournalCorrupt, Record, list_segments
from core.recovery import replay
from core.types import Payment


def pay(i: int) -> Payment:
    """Payment number `i` of the tests' stream."""
    return Payment(f"tx{i:08d}", "wxapp", "1230000109", f"o{i % 17:027d}", 100 + i,
                   1_700_000_000 + i, -1, "CNY", "MICROPAY", f"out{i}", "dev1",
                   ("c1",) if i % 5 == 0 else ())


def write_stream(directory: Path, n: int, every: int = 3, **kw: object) -> Journal:
    """Journal inputs 0..n-1 (every `every`-th an event, the rest payments), committing often."""
    j = Journal.open(directory, "off", **kw)  # type: ignore[arg-type]
    for i in range(n):
        if i % every == 0:
            j.append("event", orjson.dumps({"event_id": f"e{i}", "i": i}))
        else:
            j.append_payment(pay(i))
        if i % 5 == 4:
            j.commit()
    j.commit()
    return j


def read_all(directory: Path, from_seq: int = 0) -> list[object]:
    """Replay `directory` into a flat list: payments as Payment, events as their `i`."""
    out: list[object] = []

    def apply(rec: Record) -> None:
        assert rec.seq == from_seq + len(out)
        if rec.kind == "payments":
            out.extend(rec.payments().rows())
        else:
            out.append(orjson.loads(rec.payload)["i"])

    replay(directory, from_seq, apply)
    return out


def expected(n: int, every: int = 3) -> list[object]:
    """What `read_all` returns for `write_stream(n, every)`."""
    return [i if i % every == 0 else pay(i) for i in range(n)]


def last_segment(directory: Path) -> Path:
    """The newest segment file."""
    return list_segments(directory)[-1][1]


def record_offsets(directory: Path) -> list[int]:
    """Byte offsets of the records in the newest segment."""
    offsets: list[int] = []
    replay(directory, 0, lambda rec: offsets.append(rec.offset))
    return offsets


def test_round_trip_keeps_order_and_seqs(tmp_path: Path) -> None:
    """Events and compact payments replay in append order with consecutive seqs."""
    j = write_stream(tmp_path, 200)
    assert j.next_seq == j.durable_seq == 200
    j.close()
    assert read_all(tmp_path) == expected(200)


def test_append_returns_seqs_and_payments_batch(tmp_path: Path) -> None:
    """append/append_payment/append_payments hand out consecutive seqs from 0."""
    from core.payment_columns import from_payments

    with Journal.open(tmp_path) as j:
        assert j.append("advance", b'{"now_s": 1700000000, "i": 0}') == 0
        assert j.append_payment(pay(1)) == 1
        assert j.append_payments(from_payments([pay(i) for i in range(2, 5000)])) == 2
        assert j.append_payment(pay(5000)) == 5000
        assert j.commit() == 5001
    got = read_all(tmp_path)
    assert got[1:] == [pay(i) for i in range(1, 5001)]


def test_reopen_continues_after_last_record(tmp_path: Path) -> None:
    """Reopening a journal continues the seqs where the file ends."""
    write_stream(tmp_path, 50).close()
    j = Journal.open(tmp_path)
    assert j.next_seq == 50
    for i in range(50, 80):
        j.append_payment(pay(i)) if i % 3 else j.append("event", orjson.dumps({"i": i}))
    j.close()
    assert read_all(tmp_path) == expected(80)


def test_every_torn_tail_is_dropped(tmp_path: Path) -> None:
    """Cutting the file anywhere inside its last two records drops exactly the cut record."""
    write_stream(tmp_path, 40).close()
    seg = last_segment(tmp_path)
    whole = seg.read_bytes()
    offsets = record_offsets(tmp_path)
    full = read_all(tmp_path)
    counts = []
    replay(tmp_path, 0, lambda rec: counts.append(rec.count))
    for cut in range(offsets[-2] + 1, len(whole)):
        seg.write_bytes(whole[:cut])
        kept = len(offsets) - 1 if cut >= offsets[-1] else len(offsets) - 2
        assert read_all(tmp_path) == full[:sum(counts[:kept])]
    seg.write_bytes(whole)


def test_open_truncates_torn_tail_and_appends_after_it(tmp_path: Path) -> None:
    """Journal.open cuts a torn tail off; new records follow the last whole one."""
    write_stream(tmp_path, 30).close()
    seg = last_segment(tmp_path)
    offsets = record_offsets(tmp_path)
    seg.write_bytes(seg.read_bytes()[:offsets[-1] + FRAME.size + 3])
    survivors = read_all(tmp_path)
    j = Journal.open(tmp_path)
    assert seg.stat().st_size == offsets[-1]
    assert j.next_seq == len(survivors)
    j.append("event", orjson.dumps({"i": -1}))
    j.close()
    assert read_all(tmp_path) == [*survivors, -1]


def test_zero_filled_tail_is_torn(tmp_path: Path) -> None:
    """Zeros after the last record (a file extended but never written) count as torn."""
    write_stream(tmp_path, 20).close()
    seg = last_segment(tmp_path)
    seg.write_bytes(seg.read_bytes() + bytes(100))
    assert read_all(tmp_path) == expected(20)


@pytest.mark.parametrize("where", ["payload", "header", "length"])
def test_corrupt_middle_record_names_its_offset(tmp_path: Path, where: str) -> None:
    """A damaged record before the last stops replay with JournalCorrupt at its offset."""
    write_stream(tmp_path, 60).close()
    seg = last_segment(tmp_path)
    offsets = record_offsets(tmp_path)
    bad = offsets[len(offsets) // 2]
    data = bytearray(seg.read_bytes())
    data[bad + {"payload": FRAME.size + 2, "header": 1, "length": 9}[where]] ^= 0x40
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as e:
        read_all(tmp_path)
    assert e.value.offset == bad
    assert f"offset {bad}" in str(e.value)
    with pytest.raises(JournalCorrupt):
        Journal.open(tmp_path)


def test_garbage_tail_is_corruption(tmp_path: Path) -> None:
    """Non-zero bytes that are not a frame after the last record are damage, not a tear."""
    write_stream(tmp_path, 20).close()
    seg = last_segment(tmp_path)
    size = seg.stat().st_size
    seg.write_bytes(seg.read_bytes() + b"\x01" * 64)
    with pytest.raises(JournalCorrupt) as e:
        read_all(tmp_path)
    assert e.value.offset == size


def test_segments_rotate_and_replay_across_them(tmp_path: Path) -> None:
    """Small segments rotate at commits; replay from any seq crosses segment files."""
    write_stream(tmp_path, 300, segment_bytes_max=2048).close()
    segs = list_segments(tmp_path)
    assert len(segs) > 3
    assert read_all(tmp_path) == expected(300)
    base = segs[2][0]
    assert read_all(tmp_path, base) == expected(300)[base:]


def test_torn_tail_in_an_older_segment_is_corruption(tmp_path: Path) -> None:
    """Only the newest segment may end torn: a cut older one stops replay."""
    write_stream(tmp_path, 300, segment_bytes_max=2048).close()
    path = list_segments(tmp_path)[1][1]
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(JournalCorrupt, match="not the last"):
        read_all(tmp_path)


def test_missing_segment_is_a_gap(tmp_path: Path) -> None:
    """A segment missing from the middle is reported as a gap in seqs."""
    write_stream(tmp_path, 300, segment_bytes_max=2048).close()
    list_segments(tmp_path)[2][1].unlink()
    with pytest.raises(JournalCorrupt, match="previous ended at"):
        read_all(tmp_path)


def test_drop_before_keeps_what_replay_needs(tmp_path: Path) -> None:
    """drop_before(seq) deletes only segments wholly below seq; replay from seq still works."""
    j = write_stream(tmp_path, 300, segment_bytes_max=2048)
    seq = list_segments(tmp_path)[3][0] + 1
    assert j.drop_before(seq) == 3
    assert read_all(tmp_path, seq) == expected(300)[seq:]
    j.close()


def test_bad_segment_header_is_corruption(tmp_path: Path) -> None:
    """A segment whose header does not verify stops replay at offset 0."""
    write_stream(tmp_path, 10).close()
    seg = last_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[10] ^= 1
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as e:
        read_all(tmp_path)
    assert e.value.offset == 0


def test_fsync_policy_parse() -> None:
    """Policies are always, off, or <N>ms within the limit; anything else is a ValueError."""
    assert FsyncPolicy.parse("always") == FsyncPolicy("always")
    assert FsyncPolicy.parse("off") == FsyncPolicy("off")
    assert FsyncPolicy.parse("5ms") == FsyncPolicy("interval", 5)
    for bad in ("", "sometimes", "0ms", "-1ms", f"{limits.JOURNAL_FSYNC_INTERVAL_MS_MAX + 1}ms"):
        with pytest.raises(ValueError):
            FsyncPolicy.parse(bad)


def test_interval_policy_syncs_when_due(tmp_path: Path) -> None:
    """Under "<N>ms", durable_seq moves only once N ms have passed since the last fsync."""
    now = [0.0]
    j = Journal.open(tmp_path, "10ms", clock=lambda: now[0])
    j.append("event", b"{}")
    assert j.commit() == 0
    assert j.written_seq == 1
    now[0] = 0.005
    assert j.poll() == 0
    now[0] = 0.011
    assert j.poll() == 1
    j.append("event", b"{}")
    assert j.commit() == 1
    now[0] = 0.05
    assert j.commit() == 2
    j.close()


def test_always_policy_is_durable_at_commit(tmp_path: Path) -> None:
    """Under "always", commit returns the seq after the last input appended."""
    with Journal.open(tmp_path, "always") as j:
        j.append_payment(pay(0))
        assert j.durable_seq == 0
        assert j.commit() == 1


def test_record_too_large_is_refused(tmp_path: Path) -> None:
    """A payload over JOURNAL_RECORD_BYTES_MAX raises RecordTooLarge and appends nothing."""
    with Journal.open(tmp_path) as j:
        with pytest.raises(RecordTooLarge):
            j.append("event", b"x" * (limits.JOURNAL_RECORD_BYTES_MAX + 1))
        assert j.next_seq == 0


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    """An input kind that Engine.submit does not know is refused with KeyError."""
    with Journal.open(tmp_path) as j, pytest.raises(KeyError):
        j.append("teleport", b"{}")


def test_empty_journal_starts_at_start_seq(tmp_path: Path) -> None:
    """A new journal covered by a snapshot at seq N numbers its first input N."""
    with Journal.open(tmp_path, start_seq=77) as j:
        assert j.append("event", b'{"i": 5}') == 77
    assert list_segments(tmp_path)[0][0] == 77
    assert read_all(tmp_path, 77) == [5]


def test_failed_write_fails_the_journal_for_good(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """After a write error (disk full) commit raises JournalFailed now and ever after."""
    import errno
    import os

    j = Journal.open(tmp_path, "always")
    j.append_payment(pay(0))
    j.commit()

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    j.append_payment(pay(1))
    with pytest.raises(JournalFailed):
        j.commit()
    monkeypatch.undo()
    j.append_payment(pay(2))
    with pytest.raises(JournalFailed):
        j.commit()
    assert j.durable_seq == 1
    j.close()
    assert read_all(tmp_path) == [pay(0)]
