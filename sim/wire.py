"""How messages cross between the model's process and the engine's (sim.link): one-way
pipes with large buffers, and a pickling that sends numpy arrays as raw buffers and a
payment block's ten arrays as two.

A message is a frame: a 16-byte head (a magic number, the count k of out-of-band
buffers, the body's size), then the body: a table of k + 1 sizes, the pickle (protocol 5)
and the k buffers it refers to (the bulk: arrays and a payment block's id bytes), each
starting at a multiple of 64 bytes. The sender writes the frame straight from the arrays'
memory (one `writev`, no copy into a pickle); the receiver (`Inbox`) reads each body into
one buffer that it keeps and reuses, and the arrays unpickled are views on that buffer:
no fresh memory per message, no copy. A buffer still in use when the next message comes
(something kept a view on it) is left to its holders and replaced."""

from __future__ import annotations

import copyreg
import fcntl
import io
import os
import pickle
import struct
from typing import Any

import numpy as np

from core import PaymentBlock

PIPE_BYTES = 1 << 22  # asked for each pipe's buffer (see pipe)

__all__ = ["PIPE_BYTES", "Inbox", "frame", "pipe", "pipe_max", "send", "write"]


def pipe(mpc: Any) -> tuple[Any, Any]:
    """A one-way pipe (reader, writer) with as large a buffer as the kernel grants (up to
    PIPE_BYTES). With the default 64 KiB, a tick's inputs (hundreds of KiB) crossed in
    chunks, and each chunk waited for the engine process's reader thread to get the GIL
    from the thread applying the previous tick: the model sat in `write` for a quarter
    of its time, and the engine, likewise, waited to hand back outcomes."""
    r, w = mpc.Pipe(duplex=False)
    for size in (PIPE_BYTES, pipe_max()):
        try:
            fcntl.fcntl(w.fileno(), fcntl.F_SETPIPE_SZ, size)
            break
        except OSError:  # above the limit for this process: the next size, or the default
            continue
    return r, w


def pipe_max() -> int:
    """The largest pipe buffer an unprivileged process may ask for (64 KiB if unknown)."""
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 16


def send(conn: Any, obj: Any) -> None:
    """Send `obj` over `conn` (a pipe's writing end) as a frame (see the module), for an
    `Inbox` to read."""
    write(conn, frame(obj))


def frame(obj: Any) -> list[Any]:
    """`obj` framed for the link: the pieces to write in turn (bytes and buffers; the
    buffers are `obj`'s own memory: keep `obj` unchanged until they are written).
    Numpy arrays go as raw buffers (`_reduce_array`; `Connection.send`'s pickler copies
    its dispatch table for every message, and these messages need none of its reducers)."""
    raws: list[pickle.PickleBuffer] = []
    f = io.BytesIO()
    p = pickle.Pickler(f, 5, buffer_callback=raws.append)
    p.dispatch_table = _DISPATCH
    p.dump(obj)
    views = [f.getbuffer()]
    views += [b.raw() for b in raws]
    sizes = [v.nbytes for v in views]
    parts: list[Any] = [b"", struct.pack(f"<{len(sizes)}Q", *sizes)]
    body = 8 * len(sizes)
    for v, n in zip(views, sizes, strict=True):
        pad = -body % _ALIGN
        if pad:
            parts.append(_ZEROS[:pad])
        parts.append(v)
        body += pad + n
    parts[0] = _HEAD.pack(_MAGIC, len(raws), body)
    return parts


def write(conn: Any, parts: list[Any]) -> None:
    """Write `parts` (bytes and byte buffers, as `frame` makes them) whole to `conn`, in
    one system call unless the pipe takes them in pieces."""
    fd = conn.fileno()
    left = sum(map(len, parts))
    n = os.writev(fd, parts) if len(parts) <= _IOV_MAX else 0
    if n == left:
        return
    views = [memoryview(x).cast("B") for x in parts]
    i = 0
    while True:
        while i < len(views) and n >= views[i].nbytes:
            n -= views[i].nbytes
            i += 1
        if i == len(views):
            return
        views[i] = views[i][n:]
        n = os.writev(fd, views[i:i + _IOV_MAX])


class Inbox:
    """The reading end of a link's pipe: `recv` reads and unpickles the next frame. Each
    body goes into one buffer, kept and grown as needed; what `recv` returns holds views
    on it (arrays, a block's id bytes): valid until they are dropped, since a buffer that
    still has views when the next frame comes is left to them and replaced (`fresh`
    counts buffers made)."""

    def __init__(self, conn: Any) -> None:
        """Read frames from `conn` (a pipe's reading end)."""
        self.conn = conn
        self.fresh = 0
        self._buf = bytearray()
        self._head = bytearray(_HEAD.size)

    def recv(self) -> Any:
        """The next message. Raises EOFError when the pipe ends before a frame,
        ValueError for a malformed frame (the stream cannot go on after one)."""
        fd = self.conn.fileno()
        if not _read_into(fd, memoryview(self._head)):
            raise EOFError
        magic, k, body = _HEAD.unpack(self._head)
        if magic != _MAGIC or body < 8 * (k + 1):
            raise ValueError(f"not a link frame (head {bytes(self._head)!r})")
        mv = memoryview(self._buffer(body))[:body]
        if _read_into(fd, mv) != body:
            raise ValueError("the pipe ended inside a frame")
        sizes = struct.unpack_from(f"<{k + 1}Q", mv)
        at = 8 * (k + 1)
        views = []
        for n in sizes:
            at += _pad(at)
            if at + n > body:
                raise ValueError("a frame's sizes exceed its body")
            views.append(mv[at:at + n])
            at += n
        return pickle.loads(views[0], buffers=views[1:])

    def _buffer(self, size: int) -> bytearray:
        """A buffer of at least `size` bytes that nothing else holds views on."""
        buf = self._buf
        if len(buf) < size or _exported(buf):
            buf = self._buf = bytearray(len(buf) if len(buf) >= size else max(size, 2 * len(buf)))
            self.fresh += 1
        return buf


def _exported(buf: bytearray) -> bool:
    """Whether something holds a view on `buf` (a bytearray with views cannot resize)."""
    if not buf:
        return True
    try:
        last = buf.pop()
    except BufferError:
        return True
    buf.append(last)
    return False


def _read_into(fd: int, mv: memoryview) -> int:
    """Fill `mv` from `fd`; the bytes read (fewer only at the end of the pipe)."""
    got, size = 0, mv.nbytes
    while got < size:
        n = os.readv(fd, [mv[got:]])
        if not n:
            break
        got += n
    return got


def _pad(n: int) -> int:
    return -n % _ALIGN


_HEAD = struct.Struct("<IIQ")  # magic, out-of-band buffers, body bytes
_MAGIC = 0x6B6E696C  # "link"
_ALIGN = 64
_ZEROS = bytes(_ALIGN)
_IOV_MAX = 512


# Dtypes whose one-character code says it all (in native byte order). The code sent is the
# array's own: int64 is "l" here, and "q" (long long), though equal to it, makes another
# type, with which numpy's ufuncs (add.at, ...) take slower, casting loops.
_PLAIN_CODES = frozenset("?bBhHiIlLqQfd")


def _array(buf: bytearray | bytes, code: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array `_reduce_array` pickled (writable when it was)."""
    return np.frombuffer(buf, code).reshape(shape)


def _reduce_array(a: np.ndarray) -> tuple[Any, ...]:
    """Pickle contiguous arrays of plain dtypes as their buffer, dtype code and shape: a
    quarter of numpy's own reduction's cost (which pickles each dtype in full)."""
    code = a.dtype.char
    if code in _PLAIN_CODES and a.dtype.isnative and a.flags.c_contiguous:
        return _array, (pickle.PickleBuffer(a), code, a.shape)
    return a.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


_BLOCK_INTS = ("tx_starts", "tx_ends", "openid_starts", "openid_ends", "total_fen", "time_s",
               "payer_total_fen")
_BLOCK_CODES = ("appid_codes", "mchid_codes", "currency_codes")


def _block(tx_data: bytes | memoryview, openid_data: bytes | memoryview, ints: np.ndarray,
           codes: np.ndarray, names: tuple[list[str], list[str], list[str]],
           coupon_ids: list[tuple[str, ...]] | None, ascii_ids: bool) -> PaymentBlock:
    """The payment block `_reduce_block` pickled (its arrays are rows of two)."""
    tx_lo, tx_hi, op_lo, op_hi, total, time_s, payer = ints
    app, mchid, currency = codes
    return PaymentBlock(tx_data, tx_lo, tx_hi, openid_data, op_lo, op_hi, app, names[0],
                        mchid, names[1], currency, names[2], total, time_s, payer, coupon_ids,
                        ascii_ids)


def _reduce_block(b: PaymentBlock) -> tuple[Any, ...]:
    """Pickle a payment block's ten arrays as two (int64 and uint16 rows): most of a
    tick's arrays are a block's, and each array pickles at a fixed cost."""
    ints = [getattr(b, k) for k in _BLOCK_INTS]
    codes = [getattr(b, k) for k in _BLOCK_CODES]
    if not (all(a.dtype == np.int64 and a.ndim == 1 for a in ints)
            and all(a.dtype == np.uint16 and a.ndim == 1 for a in codes)):
        return b.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    return _block, (pickle.PickleBuffer(b.tx_data), pickle.PickleBuffer(b.openid_data),
                    np.stack(ints), np.stack(codes),
                    (b.appids, b.mchids, b.currencies), b.coupon_ids, b.ascii)


_DISPATCH = {**copyreg.dispatch_table, np.ndarray: _reduce_array, PaymentBlock: _reduce_block}
