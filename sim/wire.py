"""How messages cross between the model's process and the engine's (sim.link): one-way
pipes with large buffers, and a pickling that sends numpy arrays as raw buffers and a
payment block's ten arrays as two."""

from __future__ import annotations

import copyreg
import fcntl
import io
import pickle
from typing import Any

import numpy as np

from core import PaymentBlock

PIPE_BYTES = 1 << 22  # asked for each pipe's buffer (see pipe)

__all__ = ["PIPE_BYTES", "dumps", "pipe", "pipe_max", "send"]


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
    """Send `obj` pickled (`Connection.send`'s pickler copies its dispatch table for every
    message, and these messages need none of its reducers), numpy arrays as raw buffers."""
    conn.send_bytes(dumps(obj))


def dumps(obj: Any) -> memoryview:
    """`obj` pickled for the link (see `send`)."""
    f = io.BytesIO()
    p = pickle.Pickler(f, pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _DISPATCH
    p.dump(obj)
    return f.getbuffer()


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


def _block(tx_data: bytes, openid_data: bytes, ints: np.ndarray, codes: np.ndarray,
           names: tuple[list[str], list[str], list[str]],
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
    return _block, (b.tx_data, b.openid_data, np.stack(ints), np.stack(codes),
                    (b.appids, b.mchids, b.currencies), b.coupon_ids, b.ascii)


_DISPATCH = {**copyreg.dispatch_table, np.ndarray: _reduce_array, PaymentBlock: _reduce_block}
