# cython: language_level=3
"""The widening write of core/_cols.pxd's columns, out of line."""

from cpython cimport array


cdef int col_widen_set(object acc, str name, Py_ssize_t i, long long v) except -1:
    """Column `name` of the accounts `acc` widened to int64 (Accounts.widen, which points
    every kernel at the new column), then its entry `i` = `v`."""
    (<array.array>acc.widen(name)).data.as_longlongs[i] = v
    return 0
