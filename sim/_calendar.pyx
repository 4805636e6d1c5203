# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The platform's delivery calendar in C (sim.tables.Calendar): deliveries filed by tick,
each tick's in filing order, sorted stably by due time when the tick is taken."""

import numpy as np
from libc.math cimport floor, isfinite
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset


cdef struct _Delivery:
    double due
    long row
    signed char att


cdef struct _Bucket:
    _Delivery *d
    Py_ssize_t n, cap


DEF MINRUN = 32
MAX_TICK = 1 << 24  # the last tick a delivery may fall in (Buckets keeps one slot a tick)


cdef void _sort_by_due(_Delivery *a, _Delivery *tmp, Py_ssize_t n) noexcept nogil:
    """`a` sorted stably by due time (`tmp` has room for n): blocks of MINRUN by insertion,
    then merged pairwise (the left one first on ties) until one is left."""
    cdef Py_ssize_t lo, hi, i, j, w, mid, x, y, o
    cdef _Delivery v
    cdef _Delivery *src = a
    cdef _Delivery *dst = tmp
    cdef _Delivery *sw
    lo = 0
    while lo < n:
        hi = lo + MINRUN if lo + MINRUN < n else n
        for i in range(lo + 1, hi):
            if not a[i].due < a[i - 1].due:
                continue
            v = a[i]
            j = i
            while j > lo and v.due < a[j - 1].due:
                a[j] = a[j - 1]
                j -= 1
            a[j] = v
        lo = hi
    w = MINRUN
    while w < n:
        lo = 0
        while lo < n:
            mid = lo + w if lo + w < n else n
            hi = lo + 2 * w if lo + 2 * w < n else n
            x, y, o = lo, mid, lo
            if mid < hi and not src[mid].due < src[mid - 1].due:
                mid = y = hi  # already in order: a copy
            while x < mid and y < hi:
                if src[y].due < src[x].due:
                    dst[o] = src[y]
                    y += 1
                else:
                    dst[o] = src[x]
                    x += 1
                o += 1
            while x < mid:
                dst[o] = src[x]
                x += 1
                o += 1
            while y < hi:
                dst[o] = src[y]
                y += 1
                o += 1
            lo = hi
        sw = src
        src = dst
        dst = sw
        w *= 2
    if src != a:
        for i in range(n):
            a[i] = src[i]


cdef class Buckets:
    """Deliveries (row, attempt, due time) filed by tick, floor(due / tick_s), one growable
    array a tick in filing order (sim.tables.Calendar): `take(k)` removes those of ticks up
    to k and returns them sorted stably by due time, so ties keep the filing order (the
    order of the `file` calls, then of rows within one)."""

    cdef double tick_s
    cdef _Bucket *b
    cdef Py_ssize_t nb, low

    def __cinit__(self, double tick_s):
        if not tick_s > 0:
            raise ValueError(f"tick_s must be positive, got {tick_s}")
        self.tick_s = tick_s
        self.b = NULL
        self.nb = 0
        self.low = 0

    def __dealloc__(self):
        cdef Py_ssize_t t
        if self.b != NULL:
            for t in range(self.nb):
                free(self.b[t].d)
            free(self.b)

    cdef int _room(self, Py_ssize_t tick, Py_ssize_t more) except -1:
        cdef Py_ssize_t nb = self.nb, cap
        cdef _Bucket *b
        cdef _Delivery *d
        if tick >= nb:
            while nb <= tick:
                nb = nb * 2 if nb else 1024
            b = <_Bucket *>realloc(self.b, nb * sizeof(_Bucket))
            if b == NULL:
                raise MemoryError()
            memset(&b[self.nb], 0, (nb - self.nb) * sizeof(_Bucket))
            self.b, self.nb = b, nb
        if self.b[tick].n + more > self.b[tick].cap:
            cap = self.b[tick].cap if self.b[tick].cap else 16
            while cap < self.b[tick].n + more:
                cap *= 2
            d = <_Delivery *>realloc(self.b[tick].d, cap * sizeof(_Delivery))
            if d == NULL:
                raise MemoryError()
            self.b[tick].d, self.b[tick].cap = d, cap
        return 0

    def file(self, const long[:] rows, att, const double[:] due, double floor_s):
        """File deliveries of `rows` with attempt numbers `att` (an int8 array, or one int
        for all) due at `due`, those due before `floor_s` moved to it. Returns how many
        were moved. Raises ValueError, filing nothing, for lengths that disagree or a due
        time not finite or past tick MAX_TICK."""
        cdef Py_ssize_t n = rows.shape[0], i, tick
        cdef const signed char[:] at
        cdef signed char one = 0
        cdef bint each = not isinstance(att, int)
        cdef long moved = 0
        cdef double d, last = MAX_TICK
        cdef _Bucket *bk
        if each:
            at = att
            if at.shape[0] != n:
                raise ValueError(f"{n} rows but {at.shape[0]} attempts")
        else:
            one = att
        if due.shape[0] != n:
            raise ValueError(f"{n} rows but {due.shape[0]} due times")
        for i in range(n):
            d = due[i] if due[i] >= floor_s else floor_s
            if not (isfinite(due[i]) and d >= 0 and floor(d / self.tick_s) <= last):
                raise ValueError(f"due time {due[i]} outside ticks 0..{MAX_TICK}")
        for i in range(n):
            d = due[i]
            if d < floor_s:
                d = floor_s
                moved += 1
            tick = <Py_ssize_t>floor(d / self.tick_s)
            self._room(tick, 1)
            bk = &self.b[tick]
            bk.d[bk.n].due = d
            bk.d[bk.n].row = rows[i]
            bk.d[bk.n].att = at[i] if each else one
            bk.n += 1
            if tick < self.low:
                self.low = tick
        return moved

    def take(self, Py_ssize_t k):
        """Remove the deliveries of ticks up to `k`; returns their (rows, attempts, due
        times), sorted stably by due time."""
        cdef Py_ssize_t n = 0, t, i, o, lo = self.low
        cdef Py_ssize_t last = k if k < self.nb - 1 else self.nb - 1
        for t in range(lo, last + 1):
            n += self.b[t].n
        rows_a = np.empty(n, np.int64)
        att_a = np.empty(n, np.int8)
        due_a = np.empty(n, np.float64)
        if k + 1 > self.low:
            self.low = k + 1
        if not n:
            return rows_a, att_a, due_a
        cdef long[::1] rows = rows_a
        cdef signed char[::1] att = att_a
        cdef double[::1] due = due_a
        cdef _Delivery *all = <_Delivery *>malloc(2 * n * sizeof(_Delivery))
        if all == NULL:
            raise MemoryError()
        o = 0
        for t in range(lo, last + 1):
            for i in range(self.b[t].n):
                all[o] = self.b[t].d[i]
                o += 1
            free(self.b[t].d)
            self.b[t].d, self.b[t].n, self.b[t].cap = NULL, 0, 0
        _sort_by_due(all, &all[n], n)
        for i in range(n):
            rows[i] = all[i].row
            att[i] = all[i].att
            due[i] = all[i].due
        free(all)
        return rows_a, att_a, due_a
