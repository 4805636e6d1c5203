"""Engine state <-> bytes: a pickle whose large buffers travel out of band.

A plain pickle copies every integer column and id table into the pickle stream
and out again. Here the columns (`array.array`) and the KeyIndex tables leave the
pickle as out-of-band buffers (pickle protocol 5), laid end to end after it, and
come back as views of the loaded bytes: one copy each way fewer, which is most of
a 10M-member restart.

Layout: `<4sQQ` (magic, pickle length, buffer count), the buffers' lengths
(`<Q` each), the pickle, then the buffers.
"""

from __future__ import annotations

import io
import pickle
import struct
from array import array
from typing import Any

MAGIC = b"PMS2"
_HEAD = struct.Struct("<4sQQ")


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is array:
            return _array, (obj.typecode, pickle.PickleBuffer(obj))
        return NotImplemented


def _array(typecode: str, data: Any) -> array:
    a = array(typecode)
    a.frombytes(data)
    return a


def dumps(state: object) -> bytes:
    """`state` as bytes (protocol 5, buffers out of band)."""
    buffers: list[pickle.PickleBuffer] = []
    f = io.BytesIO()
    _Pickler(f, protocol=5, buffer_callback=buffers.append).dump(state)
    raws = [b.raw() for b in buffers]
    head = _HEAD.pack(MAGIC, f.tell(), len(raws)) + struct.pack(
        f"<{len(raws)}Q", *(r.nbytes for r in raws))
    return b"".join([head, f.getbuffer(), *raws])


def loads(data: bytes | memoryview) -> Any:
    """The state `dumps` wrote; raises ValueError when `data` is not one."""
    view = memoryview(data).cast("B")
    if len(view) < _HEAD.size:
        raise ValueError("too short for a state")
    magic, size, count = _HEAD.unpack_from(view)
    at = _HEAD.size + 8 * count
    if magic != MAGIC or at > len(view):
        raise ValueError("not a state written by state_codec.dumps")
    lengths = struct.unpack_from(f"<{count}Q", view, _HEAD.size)
    body = view[at:at + size]
    at += size
    buffers = []
    for n in lengths:
        buffers.append(view[at:at + n])
        at += n
    if at != len(view):
        raise ValueError("state length does not match its buffers")
    return pickle.loads(body, buffers=buffers)
