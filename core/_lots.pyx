# cython: language_level=3, boundscheck=False, wraparound=False
"""`Lots.add` compiled (core/lots.py): the common cases of adding points to an account's
lots run in C over the pool's arrays; an out-of-order day and the columns' widening past
2**31 - 1 lots go to the Python reference `Lots._add_py`, as does an account number out
of range (which raises there)."""

from cpython cimport array

cdef long long LOTS_TOP = 2**31 - 2  # core.lots widens its columns past 2**31 - 1 lots


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
            or not 0 <= a < len(lots.tail) or not -2**31 <= day < 2**31
            or not -2**62 <= points < 2**62):
        return lots._add_py(a, day, points)
    return bool(add_c(lots, a, day, points))


cdef int add_c(lots, long long ai, long long d, long long p) except -1:
    """`add` for C callers (core/_accrual.pyx): 1 when a new lot started, else 0."""
    cdef array.array tail = lots.tail, nxt = lots.nxt, days = lots.day, pps = lots.pts
    if not (0 <= ai < len(tail) and -2**31 <= d < 2**31 and -2**62 <= p < 2**62):
        return 1 if lots._add_py(ai, d, p) else 0
    cdef long long t = _get(tail, ai), last, n
    cdef long long j = lots.free
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
    _set(tail, ai, j)
    return 1
