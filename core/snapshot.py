"""Snapshots: the engine's state bytes and the journal seq they cover, written atomically.

A snapshot file `<seq:020d>.snapshot` holds a 40-byte header

    8s magic "PMSNAP01", u32 version, u32 flags, u64 seq (inputs below it are in the
    state), u64 body length, u32 body crc32, u32 crc32 of the 36 bytes before it

then the body. It is written to a temporary name, fsynced, renamed into place and
the directory fsynced, so a crash leaves either the whole snapshot or none.
Loading takes the newest snapshot that verifies and reports the ones skipped.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from core import limits
from core.journal import fsync_dir

MAGIC = b"PMSNAP01"
VERSION = 7  # 2: ids in KeyIndex tables, lots pooled, tier months sparse; 3: idempotency window;
# 4: compact KeyIndex (fixed-width keys without offsets, int32 values, any table size);
# 5: payment records of int32 (core.payments), ledger entries of 24 bytes (core.ledger);
# 6: balances and roots int32 until a value does not fit, visit days uint16 and visit
# counts uint8 (core.accounts); 7: one balance pair (bal, bal_pend) for members and
# shadow accounts alike instead of avail/pend and shad/shad_pend, root and the lots' tail
# sparse (core.accounts, core/_amap.pyx), the member maps' KeyIndex tables of 4-byte slots.
# Versions read: 4 to 6 as well, converted on loading (Engine.from_snapshot): 4's records
# and entries, 4's and 5's account columns (Accounts.narrow_v5), 4's to 6's two balance
# pairs (Accounts.pair_v6, refusing one that breaks the pairing), dense root and tail
# (Accounts.sparse_v6) and member maps (Accounts.reslot_v6: their tables of 8-byte slots
# re-hashed into 4-byte ones).
VERSIONS_READ = (4, 5, 6, VERSION)
HEAD = struct.Struct("<8sIIQQII")
assert HEAD.size == 40
NAME_RE = re.compile(r"(\d{20})\.snapshot\Z")
_CHUNK = 16 * 1024 * 1024


@dataclass(slots=True)
class Snapshot:
    """A verified snapshot: the state `body` and the `seq` of the first input not in it."""

    seq: int
    body: bytes | memoryview  # a view of the mapped file when read with mapped=True
    path: Path


@dataclass(slots=True)
class SnapshotScan:
    """The newest valid snapshot (or None) and the newer ones skipped as (path, reason)."""

    newest: Snapshot | None
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _crc32(view: memoryview) -> int:
    """crc32 of `view`, in chunks of a view (no copies)."""
    crc = 0
    for start in range(0, len(view), _CHUNK):
        crc = zlib.crc32(view[start:start + _CHUNK], crc)
    return crc


def snapshot_name(seq: int) -> str:
    """The file name of the snapshot covering inputs below `seq`."""
    return f"{seq:020d}.snapshot"


def write_snapshot(directory: str | Path, seq: int, body: bytes | memoryview) -> Path:
    """Write `body` as the snapshot covering inputs below `seq`, atomically; returns its path.

    The caller must have made the journal durable through `seq` first (`Journal.sync`).
    Raises ValueError when the body exceeds limits.SNAPSHOT_BYTES_MAX.
    """
    directory = Path(directory)
    if len(body) > limits.SNAPSHOT_BYTES_MAX:
        raise ValueError(f"snapshot of {len(body)} bytes > {limits.SNAPSHOT_BYTES_MAX}")
    assert seq >= 0
    view = memoryview(body).cast("B")
    crc = _crc32(view)
    head = HEAD.pack(MAGIC, VERSION, 0, seq, len(view), crc, 0)[:36]
    head += struct.pack("<I", zlib.crc32(head))
    path = directory / snapshot_name(seq)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, head)
        pos = 0
        while pos < len(view):
            pos += os.write(fd, view[pos:pos + _CHUNK])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    fsync_dir(directory)
    return path


def read_snapshot(path: Path, mapped: bool = False) -> Snapshot:
    """Read and verify snapshot `path`; raises ValueError naming what is wrong.

    `mapped`: the body is a read-only view of the file mapped into memory instead of a
    copy (a 10M-member engine's snapshot is 3 GiB); it lives as long as the view."""
    with open(path, "rb") as f:
        head = f.read(HEAD.size)
        if len(head) < HEAD.size:
            raise ValueError("header is incomplete")
        magic, version, _flags, seq, size, crc, head_crc = HEAD.unpack(head)
        if magic != MAGIC or head_crc != zlib.crc32(head[:36]):
            raise ValueError("header checksum or magic is wrong")
        if version not in VERSIONS_READ:
            raise ValueError(f"version {version} is not one of {VERSIONS_READ}")
        if size > limits.SNAPSHOT_BYTES_MAX:
            raise ValueError(f"body length {size} exceeds the limit")
        m = NAME_RE.match(path.name)
        if m and int(m.group(1)) != seq:
            raise ValueError(f"header says seq {seq}, file name disagrees")
        if mapped and size:
            whole = os.fstat(f.fileno()).st_size
            if whole != HEAD.size + size:
                raise ValueError(f"body is not {size} bytes")
            body: bytes | memoryview = memoryview(
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))[HEAD.size:]
        else:
            body = f.read(size)
            if len(body) != size or f.read(1):
                raise ValueError(f"body is not {size} bytes")
    if _crc32(memoryview(body)) != crc:
        raise ValueError("body checksum mismatch")
    return Snapshot(seq, body, path)


def list_snapshots(directory: str | Path) -> list[tuple[int, Path]]:
    """The snapshot files in `directory` as (seq, path), oldest first."""
    found = []
    for p in Path(directory).iterdir():
        m = NAME_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    found.sort()
    return found


def newest_snapshot(directory: str | Path, mapped: bool = False) -> SnapshotScan:
    """The newest snapshot in `directory` that verifies, and the newer ones that did not
    (`mapped` as for read_snapshot)."""
    scan = SnapshotScan(None)
    for _seq, path in reversed(list_snapshots(directory)):
        try:
            scan.newest = read_snapshot(path, mapped)
            break
        except ValueError as e:
            scan.skipped.append((str(path), str(e)))
    return scan


def prune_snapshots(directory: str | Path, keep: int = limits.SNAPSHOTS_KEPT) -> int | None:
    """Delete all but the newest `keep` snapshots and stray temporary files.

    Returns the seq of the oldest snapshot kept (the journal must be kept from there),
    or None when there is none.
    """
    assert keep >= 1
    directory = Path(directory)
    for stray in directory.glob("*.snapshot.tmp"):
        stray.unlink()
    snaps = list_snapshots(directory)
    for _seq, path in snaps[:-keep]:
        path.unlink()
    kept = snaps[-keep:]
    return kept[0][0] if kept else None


__all__ = ["Snapshot", "SnapshotScan", "list_snapshots", "newest_snapshot", "prune_snapshots",
           "read_snapshot", "write_snapshot"]
