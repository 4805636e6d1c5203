"""The journal's on-disk form: segment files of checksummed records, and reading them back.

A segment file `<base_seq:020d>.journal` starts with a 32-byte header
(magic, version, base_seq, header crc32) and holds records back to back. A record
is a 24-byte frame header then its payload:

    u32 header_crc  crc32 of the next 20 bytes, so a length is never trusted unchecked
    u32 payload_crc crc32 of the payload
    u32 length      payload bytes
    u8  kind        1..10: a submit kind (or a move) with a JSON payload; 32: compact payments
    u8[3] zero
    u32 count       inputs in the record (1, or the payments in a compact record)
    u32 zero

Inputs are numbered from 0 (`seq`); a record holds seq .. seq+count-1 and a segment
starts at its base_seq. Reading tells a torn tail (the last write of a crash, never
acknowledged) from corruption: only the last segment may end torn, and only in its
last record; anything else bad raises JournalCorrupt naming the file and byte offset.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from core import limits
from core._journal import crc32 as payload_crc32
from core.payment_block import PaymentBlock, decode_run
from core.payment_columns import PaymentColumns, concat, count_of, decode

SEGMENT_MAGIC = b"PMJOURN1"
SEGMENT_VERSION = 1
SEGMENT_HEAD = struct.Struct("<8sQII4xI")  # magic, base_seq, version, flags, crc
assert SEGMENT_HEAD.size == 32
FRAME = struct.Struct("<IIIB3xI4x")  # header_crc, payload_crc, length, kind, count
assert FRAME.size == 24
SEGMENT_RE = re.compile(r"(\d{20})\.journal\Z")

# Record kinds: the kinds of Engine.submit (JSON payloads), and compact payments.
SUBMIT_KINDS = ("payment", "refund", "event", "binding", "enrollment", "spend", "coupon",
                "advance", "export", "import")  # the last two: core/migrate.py's moves
KIND_CODE = {k: i + 1 for i, k in enumerate(SUBMIT_KINDS)}
PAYMENTS = "payments"
PAYMENTS_CODE = 32
KIND_NAME = {**{v: k for k, v in KIND_CODE.items()}, PAYMENTS_CODE: PAYMENTS}


class JournalCorrupt(Exception):
    """The journal is damaged where a crash cannot have left it; recovery must stop."""

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        """Name the damaged file `path`, the byte `offset` in it, and the `reason`."""
        super().__init__(f"journal corrupt: {path} at byte offset {offset}: {reason}")
        self.path = str(path)
        self.offset = offset
        self.reason = reason


class Record(NamedTuple):
    """One journal record: inputs seq..seq+count-1 of `kind` ("payments" or a submit kind).

    When replay merges consecutive payments records, one Record stands for all of them:
    `payload` is the first one's, `more` the others', and `count` covers them all.
    """

    seq: int
    kind: str
    count: int
    payload: memoryview  # JSON bytes of the submit data, or compact payments
    offset: int  # of the frame in its segment file
    more: tuple[memoryview, ...] = ()  # the payloads of payments records merged into this

    def payments(self) -> PaymentColumns:
        """The payments of a compact "payments" record as columns."""
        assert self.kind == PAYMENTS
        if self.more:
            return concat([decode(p) for p in (self.payload, *self.more)])
        return decode(self.payload)

    def payment_block(self) -> PaymentBlock:
        """The payments of a compact "payments" record (or of a merged run of them) as one
        block whose ids stay in the journal's bytes."""
        assert self.kind == PAYMENTS
        return decode_run((self.payload, *self.more))


def segment_name(base_seq: int) -> str:
    """The file name of the segment whose first input is `base_seq`."""
    return f"{base_seq:020d}.journal"


def segment_head(base_seq: int) -> bytes:
    """The 32-byte header of a segment starting at `base_seq`."""
    body = SEGMENT_HEAD.pack(SEGMENT_MAGIC, base_seq, SEGMENT_VERSION, 0, 0)[:28]
    return body + struct.pack("<I", zlib.crc32(body))


def frame(kind_code: int, count: int, payload: bytes) -> bytes:
    """One record: its frame header followed by `payload`."""
    assert kind_code in KIND_NAME and count >= 1
    assert len(payload) <= limits.JOURNAL_RECORD_BYTES_MAX
    rest = FRAME.pack(0, payload_crc32(payload), len(payload), kind_code, count)[4:]
    return struct.pack("<I", zlib.crc32(rest)) + rest + payload


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segment files in `directory` as (base_seq, path), oldest first."""
    found = []
    for p in directory.iterdir():
        m = SEGMENT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    found.sort()
    return found


def map_segment(path: Path) -> bytes | mmap.mmap:
    """The bytes of segment file `path`, mapped read-only rather than copied.

    Replay hands out records as views of these bytes, so mapping saves a copy of the
    whole journal. A view stays valid while the file keeps its length at least up to
    it: the journal only ever cuts a torn tail off, after every record a view can hold.
    A file too short to map usefully (under one header) is read instead.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < SEGMENT_HEAD.size:
            return f.read()
        data = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
    data.madvise(mmap.MADV_SEQUENTIAL)
    return data


def read_segment_head(path: Path, data: bytes | mmap.mmap) -> int:
    """The base_seq of segment `path` whose bytes are `data`; raises JournalCorrupt."""
    if len(data) < SEGMENT_HEAD.size:
        raise JournalCorrupt(path, 0, "segment header is incomplete")
    magic, base, version, _flags, crc = SEGMENT_HEAD.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC or crc != zlib.crc32(data[:28]):
        raise JournalCorrupt(path, 0, "segment header checksum or magic is wrong")
    if version != SEGMENT_VERSION:
        raise JournalCorrupt(path, 0, f"segment version {version} is not {SEGMENT_VERSION}")
    expected = SEGMENT_RE.match(path.name)
    if expected and int(expected.group(1)) != base:
        raise JournalCorrupt(path, 0, f"header says base_seq {base}, file name disagrees")
    return base


@dataclass(slots=True)
class SegmentScan:
    """Reads one segment's records; after iteration `end_offset`, `end_seq` and `torn` hold."""

    path: Path
    data: bytes | mmap.mmap
    base_seq: int
    last: bool  # the newest segment: the only one that may end torn
    end_offset: int = SEGMENT_HEAD.size
    end_seq: int = 0
    torn: int = 0  # bytes of a torn tail after end_offset

    def __iter__(self) -> Iterator[Record]:
        """Yield the records in order; raises JournalCorrupt on damage that is not a torn tail."""
        data, path = self.data, self.path
        mv = memoryview(data)
        size = len(data)
        off = SEGMENT_HEAD.size
        seq = self.base_seq
        unpack, crc32, head, rmax = FRAME.unpack_from, zlib.crc32, FRAME.size, \
            limits.JOURNAL_RECORD_BYTES_MAX
        pcrc32 = payload_crc32
        while off < size:
            if size - off < head:
                self._torn_or_corrupt(off, "frame header is cut short")
                break
            hcrc, pcrc, length, kind, count = unpack(data, off)
            if hcrc != crc32(mv[off + 4:off + head]):
                self._torn_or_corrupt(off, "frame header checksum mismatch", zeros_only=True)
                break
            if kind not in KIND_NAME or length > rmax or count < 1:
                raise JournalCorrupt(path, off, f"frame says kind {kind}, length {length}, "
                                     f"count {count}")
            start = off + head
            stop = start + length
            if stop > size:
                self._torn_or_corrupt(off, "record payload is cut short")
                break
            payload = mv[start:stop]
            if pcrc != pcrc32(payload):
                if stop == size:
                    self._torn_or_corrupt(off, "payload checksum mismatch")
                    break
                raise JournalCorrupt(path, off, "payload checksum mismatch")
            if kind == PAYMENTS_CODE and count_of(payload) != count:
                raise JournalCorrupt(path, off, "payments record count disagrees with frame")
            yield Record(seq, KIND_NAME[kind], count, payload, off)
            seq += count
            off = stop
        self.end_offset = off
        self.end_seq = seq

    def _torn_or_corrupt(self, off: int, reason: str, zeros_only: bool = False) -> None:
        """Accept a torn tail at `off` in the last segment; raise JournalCorrupt otherwise."""
        tail = self.data[off:]
        if zeros_only and tail.count(0) != len(tail):
            # A frame header is written whole or not at all by one crash; a bad one
            # followed by non-zero bytes is damage, not a torn write.
            raise JournalCorrupt(self.path, off, reason)
        if not self.last:
            raise JournalCorrupt(self.path, off, f"{reason} in a segment that is not the last")
        self.torn = len(tail)


__all__ = ["KIND_CODE", "PAYMENTS", "SUBMIT_KINDS", "JournalCorrupt", "Record", "SegmentScan",
           "frame", "list_segments", "map_segment", "read_segment_head", "segment_head",
           "segment_name"]
