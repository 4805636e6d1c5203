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


cdef inline int col_set(object acc, array.array c, str name, Py_ssize_t i,
                        long long v) except -1:
    """Column `name` (the column `c` of `acc`) of account `i` = `v`."""
    if c.ob_descr.itemsize != 4:
        c.data.as_longlongs[i] = v
    elif INT_MIN <= v <= INT_MAX:
        c.data.as_ints[i] = <int>v
    else:
        (<array.array>acc.widen(name)).data.as_longlongs[i] = v
    return 0


cdef inline bint col_try_add(PyObject* o, Py_ssize_t i, long long d) noexcept:
    """Add `d` to entry `i` of the column `o` (borrowed) unless that needs the column
    widened: True when added, False (nothing changed) when it does. Small enough to be
    inlined where `col_add_at`, which widens, is not (core/_lean.pyx's hot path)."""
    cdef long long v
    if (<array.array>o).ob_descr.itemsize != 4:
        (<array.array>o).data.as_longlongs[i] += d
        return True
    v = <long long>(<array.array>o).data.as_ints[i] + d
    if INT_MIN <= v <= INT_MAX:
        (<array.array>o).data.as_ints[i] = <int>v
        return True
    return False


cdef inline int col_add_at(PyObject* acc, PyObject* o, str name, Py_ssize_t i,
                           long long d) except -1:
    """Add `d` to entry `i` of column `name` (`o`) of the accounts `acc` (both borrowed)."""
    if col_try_add(o, i, d):
        return 0
    return col_set(<object>acc, <array.array>o, name, i,  # widens the column
                   <long long>(<array.array>o).data.as_ints[i] + d)


cdef inline int col_add(object acc, array.array c, str name, Py_ssize_t i,
                        long long d) except -1:
    return col_add_at(<PyObject*>acc, <PyObject*>c, name, i, d)


cdef inline const char* col_at(array.array c, Py_ssize_t i) noexcept:
    """The address of entry `i` (for prefetching)."""
    return c.data.as_chars + i * c.ob_descr.itemsize
