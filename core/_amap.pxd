# core/_amap.pyx: a sparse int column (account -> number, 0 for most accounts).
from cpython cimport array


cdef class AccountMap:
    cdef public array.array keys  # per slot: account + 1, 0 for an empty slot
    cdef public array.array vals  # per slot: the account's number (never 0)
    cdef public Py_ssize_t n  # accounts with a number
    cpdef long long get(self, long long a) except -1
    cpdef int set(self, long long a, long long v) except -1


cdef inline Py_ssize_t amap_home(long long a, Py_ssize_t size) noexcept:
    """The first slot to look at for account `a` in a table of `size` (a power of 2)."""
    cdef unsigned long long h = <unsigned long long>(a + 1) * 0x9E3779B97F4A7C15ULL
    return <Py_ssize_t>((h ^ (h >> 29)) & <unsigned long long>(size - 1))
