# cython: language_level=3
"""Where the column entry points' `_into` forms write each row's outcome (no Outcome
list): row i at position at[i] of the code (index in tuple(Code)), points and flags
(bit 0 offer_membership, bit 1 friend_invite) columns, exactly as core.outcome_columns
of the list form's outcomes. Shared by core/_batch.pyx, _identity.pyx and _engage.pyx."""

from cpython.list cimport PyList_GET_ITEM, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from libc.stdint cimport int64_t

from core._inputs cimport decode_outcome


cdef struct Sink:
    short* code
    long long* pts
    signed char* flags
    const int64_t* at
    PyObject* last  # outcomes repeat: the last one decoded is kept
    short c
    long long p
    signed char f


cdef inline int sink_open(Sink* s, code, points, flags, at, Py_ssize_t n,
                          str what) except -1:
    """Point sink `s` at the columns `code` (int16), `points` (int64), `flags` (int8) and
    the positions `at` (int64) of `n` rows of `what`; raises TypeError or ValueError,
    before anything is written, for columns of other types, lengths or positions outside
    them. The caller keeps the arrays alive while it writes."""
    cdef short[::1] cv = code
    cdef long long[::1] pv = points
    cdef signed char[::1] fv = flags
    cdef const int64_t[::1] av = at
    cdef Py_ssize_t i, size = cv.shape[0]
    if pv.shape[0] != size or fv.shape[0] != size:
        raise ValueError(f"outcome columns differ in length: {size}, {pv.shape[0]}, "
                         f"{fv.shape[0]}")
    if av.shape[0] != n:
        raise ValueError(f"{av.shape[0]} positions for {n} {what}")
    for i in range(n):
        if not 0 <= av[i] < size:
            raise ValueError(f"position {av[i]} of row {i} of the {what} is outside the columns")
    s.code, s.pts, s.flags, s.at, s.last = NULL, NULL, NULL, NULL, NULL
    s.c, s.p, s.f = 0, 0, 0
    if size and n:
        s.code, s.pts, s.flags, s.at = &cv[0], &pv[0], &fv[0], &av[0]
    return 0


cdef inline void sink_write(Sink* s, Py_ssize_t i, short c, long long p,
                            signed char f) noexcept:
    """Row `i`'s outcome, as its columns (core._inputs.decode_outcome's), into the sink."""
    cdef Py_ssize_t pos = s.at[i]
    s.code[pos] = c
    s.pts[pos] = p
    s.flags[pos] = f


cdef inline int sink_put(Sink* s, Py_ssize_t i, object o) except -1:
    """Write outcome `o` of row `i` into the sink's columns (as core.outcome_columns); the
    caller keeps `o` alive until the next put (the sink holds it borrowed)."""
    if <PyObject*>o != s.last:
        decode_outcome(o, &s.c, &s.p, &s.f)
        s.last = <PyObject*>o
    sink_write(s, i, s.c, s.p, s.f)
    return 0


cdef inline int put_outcome(list out, Py_ssize_t i, Sink* sink, object o) except -1:
    """Row `i`'s outcome `o`: into out[i] when `sink` is NULL (the list form), else into
    the sink's columns, `out` (of one item) keeping `o` alive."""
    cdef PyObject* was
    if sink == NULL:  # out[i] = o, without the bounds and type checks (0 <= i < len(out))
        was = PyList_GET_ITEM(out, i)
        Py_INCREF(o)
        PyList_SET_ITEM(out, i, o)
        Py_XDECREF(was)
    else:
        sink_put(sink, i, o)
        out[0] = o
    return 0
