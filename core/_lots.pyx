# cython: language_level=3, boundscheck=False, wraparound=False
"""`Lots.add` compiled (core/lots.py): the common cases of adding points to an account's
lots run in C over the pool's arrays; an out-of-order day and the columns' widening past
2**31 - 1 lots go to the Python reference `Lots._add_py`, as does an account number out
of range (which raises there)."""

from cpython cimport array
from cpython.ref cimport PyObject

from core._amap cimport AccountMap, amap_get, amap_put
from core._slots cimport slot_at, slot_offset

cdef long long LOTS_TOP = 2**31 - 2  # core.lots widens its columns past 2**31 - 1 lots
# add_c's bounds, as C numbers: a day fits 32 bits, points 63.
cdef long long DAY_LO = -(<long long>1 << 31), DAY_HI = <long long>1 << 31
cdef long long PTS_LO = -(<long long>1 << 62), PTS_HI = <long long>1 << 62

# core.lots.Lots (registered by core.lots) and the offsets of its slots in an instance:
# add_c reads an exact Lots' columns by offset, a load each instead of an attribute
# lookup through the type.
cdef type _LOTS = None
cdef Py_ssize_t _TAIL, _NXT, _DAY, _PTS, _FREE


def register(type cls):
    """Let `add_c` read the slots tail, nxt, day, pts and free of instances of `cls` by
    offset. Raises TypeError if one of them is not a slot."""
    global _LOTS, _TAIL, _NXT, _DAY, _PTS, _FREE
    _TAIL, _NXT, _DAY, _PTS, _FREE = [slot_offset(cls, n)
                                      for n in ("tail", "nxt", "day", "pts", "free")]
    _LOTS = cls


cdef inline object _slot(object o, Py_ssize_t off):
    cdef PyObject* v = slot_at(o, off)[0]
    if v == NULL:
        raise AttributeError("a Lots slot is not set")
    return <object>v


cdef inline long long _get(array.array arr, Py_ssize_t i):
    # An int column that core.lots widens from 'i' to 'q' past 2**31 - 1 entries.
    if arr.ob_descr.typecode == b'i':
        return arr.data.as_ints[i]
    return arr.data.as_longlongs[i]


cdef inline void _set(array.array arr, Py_ssize_t i, long long v):
    if arr.ob_descr.typecode == b'i':
        arr.data.as_ints[i] = <int>v
    else:
        arr.data.as_longlongs[i] = v


def add(lots, a, day, points):
    """Add `points` arriving on `day` to account `a`; True when a new lot started
    (exactly `Lots._add_py`)."""
    if (type(a) is not int or type(day) is not int or type(points) is not int
            or not 0 <= a < lots.tail.cap or not -2**31 <= day < 2**31
            or not -2**62 <= points < 2**62):
        return lots._add_py(a, day, points)
    return bool(add_c(lots, a, day, points))


cdef int add_c(lots, long long ai, long long d, long long p) except -1:
    """`add` for C callers (core/_accrual.pyx): 1 when a new lot started, else 0."""
    cdef AccountMap tail
    cdef array.array nxt, days, pps
    cdef long long j
    if type(lots) is _LOTS:
        tail, nxt = <AccountMap?>_slot(lots, _TAIL), <array.array?>_slot(lots, _NXT)
        days, pps = <array.array?>_slot(lots, _DAY), <array.array?>_slot(lots, _PTS)
        j = _slot(lots, _FREE)
    else:
        tail, nxt, days, pps, j = lots.tail, lots.nxt, lots.day, lots.pts, lots.free
    if not (0 <= ai < tail.cap and DAY_LO <= d < DAY_HI and PTS_LO <= p < PTS_HI):
        return 1 if lots._add_py(ai, d, p) else 0
    cdef long long t = amap_get(tail, ai), last, n
    if t:
        last = days.data.as_ints[t]
        if last == d:
            pps.data.as_longlongs[t] += p
            return 0
        if last > d:
            return 1 if lots._add_py(ai, d, p) else 0  # out of order: a sorted insert
    if not j and len(pps) >= LOTS_TOP:
        return 1 if lots._add_py(ai, d, p) else 0  # the columns widen
    if j:
        lots.free = _get(nxt, j)
        days.data.as_ints[j] = <int>d
        pps.data.as_longlongs[j] = p
    else:
        j = n = len(pps)
        array.resize_smart(days, n + 1)
        array.resize_smart(pps, n + 1)
        array.resize_smart(nxt, n + 1)
        days.data.as_ints[j] = <int>d
        pps.data.as_longlongs[j] = p
    if t:
        _set(nxt, j, _get(nxt, t))
        _set(nxt, t, j)
    else:
        _set(nxt, j, j)
    amap_put(tail, ai, j)
    return 1
