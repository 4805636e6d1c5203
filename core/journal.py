"""The append-only journal of accepted inputs, with group commit and an fsync policy.

Use: apply an input to the engine, `append` it (JSON data as `Engine.submit` took it,
or `append_payment(s)` for the compact form), and after a group of inputs call
`commit()`; acknowledge an input only once `durable_seq` has passed its seq. With
policy "always" that is when `commit()` returns; with "<N>ms" the journal fsyncs
at most every N ms (call `poll()` from the host's loop so a quiet journal still
syncs); with "off" the data is written to the OS (safe from a process crash, not
from a power loss). A duplicate answered from memory must also wait for the
`durable_seq` of the moment it was answered, or a crash could lose the original.

The on-disk form is in `core.journal_format`; see docs/durability.md.
"""

from __future__ import annotations

import itertools
import mmap
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import limits
from core.journal_format import (
    KIND_CODE,
    PAYMENTS_CODE,
    SEGMENT_HEAD,
    JournalCorrupt,
    SegmentScan,
    frame,
    list_segments,
    map_segment,
    read_segment_head,
    segment_head,
    segment_name,
)
from core.payment_columns import PaymentColumns, encode, from_payments
from core.types import Payment


class RecordTooLarge(ValueError):
    """An input's payload exceeds limits.JOURNAL_RECORD_BYTES_MAX."""


class JournalFailed(OSError):
    """A write or fsync failed: the journal takes nothing more, nothing unsynced may be acked.

    After a failed fsync the kernel may have dropped the dirty pages, so retrying could
    "succeed" over lost data; the process must stop and recover from disk.
    """


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """When the journal fsyncs: "always" (each commit), every `interval_ms`, or "off"."""

    mode: str  # "always" | "interval" | "off"
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        """Read "always", "off" or "<N>ms" (N up to the limit); raises ValueError otherwise."""
        if text in ("always", "off"):
            return cls(text)
        if text.endswith("ms") and text[:-2].isdigit():
            n = int(text[:-2])
            if 0 < n <= limits.JOURNAL_FSYNC_INTERVAL_MS_MAX:
                return cls("interval", n)
        raise ValueError(f"fsync policy must be always, off or <N>ms "
                         f"(1..{limits.JOURNAL_FSYNC_INTERVAL_MS_MAX}), got {text!r}")


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync = getattr(os, "fdatasync", os.fsync)


class Journal:
    """Writes inputs to segment files in one directory; open it with `Journal.open`."""

    def __init__(self, directory: Path, policy: FsyncPolicy, fd: int, base_seq: int,
                 offset: int, next_seq: int, segment_bytes_max: int,
                 clock: Callable[[], float]) -> None:
        """Wrap an open segment; use `Journal.open` instead."""
        self.directory = directory
        self.policy = policy
        self._fd = fd
        self._base_seq = base_seq
        self._offset = offset
        self._segment_bytes_max = segment_bytes_max
        self._clock = clock
        self._frames: list[bytes] = []
        self._frames_bytes = 0
        self._run: list[Payment] = []  # payments not yet framed, coalesced into one record
        self._framed_seq = next_seq  # inputs below this are in _frames or written
        self.next_seq = next_seq  # the seq the next input gets
        self.written_seq = next_seq  # inputs below this are written to the OS
        self.durable_seq = next_seq  # inputs below this survive a crash under the policy
        self._synced_at = clock()
        self._failed: OSError | None = None

    @classmethod
    def open(cls, directory: str | Path, policy: FsyncPolicy | str = "always", *,
             start_seq: int = 0, segment_bytes_max: int = limits.JOURNAL_SEGMENT_BYTES_MAX,
             clock: Callable[[], float] = time.monotonic) -> Journal:
        """Open the journal in `directory` for appending after its last whole record.

        A torn tail is cut off. An empty directory starts at `start_seq`; a journal that
        ends before `start_seq` (all of it covered by a snapshot) continues in a new
        segment at `start_seq`. `clock` (seconds) paces the "<N>ms" policy.
        Raises JournalCorrupt on damage that a crash cannot leave, ValueError on a bad policy.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(policy, str):
            policy = FsyncPolicy.parse(policy)
        assert 0 < segment_bytes_max <= limits.JOURNAL_SEGMENT_BYTES_MAX
        for stray in directory.glob("*.journal.tmp"):
            stray.unlink()
        segments = list_segments(directory)
        if segments:
            base, path = segments[-1]
            data = map_segment(path)
            read_segment_head(path, data)
            scan = SegmentScan(path, data, base, last=True)
            deque(scan, maxlen=0)  # every record checked, none kept
            if isinstance(data, mmap.mmap):
                data.close()  # unmapped before a torn tail is cut off
            fd = os.open(path, os.O_WRONLY)
            if scan.torn:
                os.ftruncate(fd, scan.end_offset)
                os.fsync(fd)
            if scan.end_seq >= start_seq:
                os.lseek(fd, scan.end_offset, os.SEEK_SET)
                return cls(directory, policy, fd, base, scan.end_offset, scan.end_seq,
                           segment_bytes_max, clock)
            os.close(fd)
        fd = cls._create_segment(directory, start_seq)
        return cls(directory, policy, fd, start_seq, SEGMENT_HEAD.size, start_seq,
                   segment_bytes_max, clock)

    @staticmethod
    def _create_segment(directory: Path, base_seq: int) -> int:
        """Create segment `base_seq` atomically (header written, synced, renamed); its fd."""
        path = directory / segment_name(base_seq)
        if path.exists():
            raise JournalCorrupt(path, 0, "a segment with this base_seq already exists")
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, segment_head(base_seq))
        os.fsync(fd)
        os.rename(tmp, path)
        fsync_dir(directory)
        return fd

    # ------------------------------------------------------------------ appending
    def append(self, kind: str, payload: bytes) -> int:
        """Add one input of submit `kind` with its JSON `payload`; returns its seq.

        Raises RecordTooLarge past limits.JOURNAL_RECORD_BYTES_MAX, KeyError on an unknown kind.
        """
        code = KIND_CODE[kind]
        if len(payload) > limits.JOURNAL_RECORD_BYTES_MAX:
            raise RecordTooLarge(f"{len(payload)} bytes > {limits.JOURNAL_RECORD_BYTES_MAX}")
        if self._run:
            self._frame_run()
        seq = self.next_seq
        self.next_seq += 1
        self._add_frame(frame(code, 1, payload), 1)
        return seq

    def append_payment(self, p: Payment) -> int:
        """Add payment `p` in the compact form (coalesced with its neighbours); returns its seq."""
        self._run.append(p)
        seq = self.next_seq
        self.next_seq += 1
        if len(self._run) >= limits.JOURNAL_PAYMENTS_PER_RECORD_MAX:
            self._frame_run()
        return seq

    def append_payments(self, cols: PaymentColumns) -> int:
        """Add the payments `cols` in order in the compact form; returns the first one's seq."""
        if self._run:
            self._frame_run()
        first = self.next_seq
        self.next_seq += len(cols)
        step = limits.JOURNAL_PAYMENTS_PER_RECORD_MAX
        for start in range(0, len(cols), step):
            part = cols if len(cols) <= step else cols.slice(start, start + step)
            self._add_frame(frame(PAYMENTS_CODE, len(part), encode(part)), len(part))
        return first

    def append_payments_record(self, payload: bytes | memoryview, count: int) -> int:
        """Add `count` payments already in the compact form (`payment_columns.encode`, e.g.
        a columnar request body that decoded) as one record; returns its first seq."""
        if not 0 < count <= limits.JOURNAL_PAYMENTS_PER_RECORD_MAX:
            raise ValueError(f"a payments record holds 1..{limits.JOURNAL_PAYMENTS_PER_RECORD_MAX}"
                             f" payments, not {count}")
        if self._run:
            self._frame_run()
        first = self.next_seq
        self.next_seq += count
        self._add_frame(frame(PAYMENTS_CODE, count, bytes(payload)), count)
        return first

    def _frame_run(self) -> None:
        run, self._run = self._run, []
        self._add_frame(frame(PAYMENTS_CODE, len(run), encode(from_payments(run))), len(run))

    def _add_frame(self, f: bytes, count: int) -> None:
        self._frames.append(f)
        self._frames_bytes += len(f)
        self._framed_seq += count
        if self._frames_bytes >= limits.JOURNAL_GROUP_BYTES_MAX:
            self._write()

    # ------------------------------------------------------------------ committing
    def commit(self) -> int:
        """Write the group appended since the last commit and fsync as the policy says.

        Returns `durable_seq`: inputs below it may be acknowledged.
        """
        if self._run:
            self._frame_run()
        self._write()
        assert self.written_seq == self.next_seq
        mode = self.policy.mode
        if mode == "always":
            self._fsync()
        elif mode == "off":
            self.durable_seq = self.written_seq
        else:
            self.poll()
        return self.durable_seq

    def poll(self) -> int:
        """Fsync if the "<N>ms" policy is due; call it every few ms. Returns `durable_seq`."""
        if (self.policy.mode == "interval" and self.written_seq > self.durable_seq
                and (self._clock() - self._synced_at) * 1000 >= self.policy.interval_ms):
            self._fsync()
        return self.durable_seq

    def sync(self) -> int:
        """Write and fsync everything appended, whatever the policy (before a snapshot)."""
        if self._run:
            self._frame_run()
        self._write()
        self._fsync()
        return self.durable_seq

    def _write(self) -> None:
        if self._failed:
            raise JournalFailed(f"journal failed earlier: {self._failed}")
        if not self._frames:
            return
        data = b"".join(self._frames)
        try:
            if (self._offset + len(data) > self._segment_bytes_max
                    and self._offset > SEGMENT_HEAD.size):
                self._rotate()
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            self._failed = e
            raise JournalFailed(f"journal write failed: {e}") from e
        self._offset += len(data)
        self._frames.clear()
        self._frames_bytes = 0
        self.written_seq = self._framed_seq

    def _rotate(self) -> None:
        """Close the current segment, synced whatever the policy, and start the next.

        Syncing here means a newer segment on disk always follows a whole older one.
        """
        _sync(self._fd)
        self.durable_seq = self.written_seq
        os.close(self._fd)
        self._base_seq = self.written_seq
        self._fd = self._create_segment(self.directory, self._base_seq)
        self._offset = SEGMENT_HEAD.size

    def _fsync(self) -> None:
        if self._failed:
            raise JournalFailed(f"journal failed earlier: {self._failed}")
        try:
            _sync(self._fd)
        except OSError as e:
            self._failed = e
            raise JournalFailed(f"journal fsync failed: {e}") from e
        self.durable_seq = self.written_seq
        self._synced_at = self._clock()

    # ------------------------------------------------------------------ retention
    def drop_before(self, seq: int) -> int:
        """Delete segments holding only inputs below `seq` (in a snapshot); returns how many."""
        segments = list_segments(self.directory)
        dropped = 0
        for (_base, path), (next_base, _) in itertools.pairwise(segments):
            if next_base <= seq:
                path.unlink()
                dropped += 1
        if dropped:
            fsync_dir(self.directory)
        return dropped

    def close(self) -> None:
        """Commit what is pending and close the segment file."""
        if self._fd >= 0:
            try:
                if self._failed is None:
                    self.commit() if self.policy.mode == "off" else self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Journal:
        """Return the journal itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the journal."""
        self.close()


__all__ = ["FsyncPolicy", "Journal", "JournalFailed", "RecordTooLarge", "fsync_dir"]
