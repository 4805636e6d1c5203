# The account columns that are int32 until a value does not fit (core.accounts BALANCES,
# and `root` past 2**31 accounts), then int64 for good: read and written here by their
# width, never wrapped. A write that does not fit widens the column (Accounts.widen,
# which also points every kernel at the new one) and goes to the new column.
# The `_at` forms take the column as a borrowed reference (no reference counting, for
# loops that hold the columns themselves: core/_lean.pyx).
from cpython cimport array
from cpython.ref cimport PyObject
from libc.limits cimport INT_MAX, INT_MIN


cdef inline long long col_get_at(PyObject* o, Py_ssize_t i) noexcept:
    if (<array.array>o).ob_descr.itemsize == 4:
        return (<array.array>o).data.as_ints[i]
    return (<array.array>o).data.as_longlongs[i]


cdef inline long long col_get(array.array c, Py_ssize_t i) noexcept:
    return col_get_at(<PyObject*>c, i)


# The widening write, out of line (core/_cols.pyx): rare, and a Python call, it would
# make every inline writer below too large for the compiler to inline in turn.
cdef int col_widen_set(object acc, str name, Py_ssize_t i, long long v) except -1


cdef inline int col_set(object acc, array.array c, str name, Py_ssize_t i,
                        long long v) except -1:
    """Column `name` (the column `c` of `acc`) of account `i` = `v`."""
    if c.ob_descr.itemsize != 4:
        c.data.as_longlongs[i] = v
    elif INT_MIN <= v <= INT_MAX:
        c.data.as_ints[i] = <int>v
    else:
        return col_widen_set(acc, name, i, v)
    return 0


cdef inline int col_add_at(PyObject* acc, PyObject* o, str name, Py_ssize_t i,
                           long long d) except -1:
    """Add `d` to entry `i` of column `name` (`o`) of the accounts `acc` (both borrowed)."""
    cdef long long v
    if (<array.array>o).ob_descr.itemsize != 4:
        (<array.array>o).data.as_longlongs[i] += d
        return 0
    v = <long long>(<array.array>o).data.as_ints[i] + d
    if INT_MIN <= v <= INT_MAX:
        (<array.array>o).data.as_ints[i] = <int>v
        return 0
    return col_widen_set(<object>acc, name, i, v)


cdef inline int col_add(object acc, array.array c, str name, Py_ssize_t i,
                        long long d) except -1:
    return col_add_at(<PyObject*>acc, <PyObject*>c, name, i, d)


cdef inline const char* col_at(array.array c, Py_ssize_t i) noexcept:
    """The address of entry `i` (for prefetching)."""
    return c.data.as_chars + i * c.ob_descr.itemsize
