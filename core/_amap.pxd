# core/_amap.pyx: a sparse int column (account -> number, 0 for most accounts), and
# RootMap, the accounts' `root` (an account that was never merged is its own root).
from cpython cimport array
from cpython.object cimport Py_SIZE
from cpython.ref cimport PyObject


cdef class AccountMap:
    cdef public array.array keys  # per slot: account + 1, 0 for an empty slot (empty if dense)
    cdef public array.array vals  # per slot: the account's number (never 0); dense: by account
    cdef public Py_ssize_t n  # accounts with a number
    cdef public Py_ssize_t cap  # accounts (told by `grow`); -1: never dense
    cdef public bint dense  # vals is a column by account (for good), keys empty
    cpdef long long get(self, long long a) except -1
    cpdef int set(self, long long a, long long v) except -1
    cpdef int remove(self, long long a) except -1
    cdef void _fill(self, array.array out, long long less) noexcept
    cdef long long _index(self, a) except? -1


cdef class RootMap(AccountMap):
    # Account -> the account it was merged into, stored + 1; `bits` has bit a set once
    # account a has an entry, so that an unmerged account is told without probing.
    cdef public array.array bits
    cdef unsigned long long* bitp
    cdef Py_ssize_t nwords
    cpdef int put_root(self, long long a, long long r) except -1
    cdef int _mark(self, long long a) except -1
    cpdef long long find(self, long long a) except -1


cdef inline Py_ssize_t amap_home(long long a, Py_ssize_t size) noexcept:
    """The first slot to look at for account `a` in a table of `size` (a power of 2)."""
    cdef unsigned long long h = <unsigned long long>(a + 1) * 0x9E3779B97F4A7C15ULL
    return <Py_ssize_t>((h ^ (h >> 29)) & <unsigned long long>(size - 1))


cdef inline long long amap_rd(array.array c, Py_ssize_t i) noexcept:
    if c.ob_descr.itemsize == 4:
        return c.data.as_ints[i]
    return c.data.as_longlongs[i]


cdef inline long long amap_get(AccountMap m, long long a) noexcept:
    """Account `a`'s number, 0 for none (`a` >= 0)."""
    cdef Py_ssize_t size, i
    cdef long long k
    if m.dense:
        return amap_rd(m.vals, a) if a < Py_SIZE(m.vals) else 0
    size = Py_SIZE(m.keys)
    if size == 0:
        return 0
    i = amap_home(a, size)
    while True:
        k = amap_rd(m.keys, i)
        if k == a + 1:
            return amap_rd(m.vals, i)
        if k == 0:
            return 0
        i = (i + 1) & (size - 1)


cdef inline int amap_put(AccountMap m, long long a, long long v) except -1:
    """Account `a`'s number = `v`; 0 removes it."""
    if m.dense and a < Py_SIZE(m.vals) and (m.vals.ob_descr.itemsize == 8
                                            or -2147483647 <= v <= 2147483647):
        if m.vals.ob_descr.itemsize == 4:
            m.n += (v != 0) - (m.vals.data.as_ints[a] != 0)
            m.vals.data.as_ints[a] = <int>v
        else:
            m.n += (v != 0) - (m.vals.data.as_longlongs[a] != 0)
            m.vals.data.as_longlongs[a] = v
        return 0
    if v:
        return m.set(a, v)
    return m.remove(a)


cdef inline const char* amap_addr(AccountMap m, long long a) noexcept:
    """Where account `a`'s entry is, or would be looked for first (for prefetching);
    NULL while the map is empty."""
    cdef Py_ssize_t size
    if m.dense:
        return m.vals.data.as_chars + a * m.vals.ob_descr.itemsize if a < Py_SIZE(m.vals) else NULL
    size = Py_SIZE(m.keys)
    if size == 0:
        return NULL
    return m.keys.data.as_chars + amap_home(a, size) * m.keys.ob_descr.itemsize


cdef inline long long root_of(RootMap m, long long a) noexcept:
    """The account `a` (>= 0) was merged into, `a` itself if never merged (one step)."""
    cdef unsigned long long w = <unsigned long long>a >> 6
    cdef long long v
    if w < <unsigned long long>m.nwords and (m.bitp[w] >> (a & 63)) & 1:
        v = amap_get(m, a)
        return v - 1 if v else a
    return a


cdef inline const char* root_addr(RootMap m, long long a) noexcept:
    """Where `root_of` looks first (for prefetching), NULL when it reads nothing."""
    cdef unsigned long long w = <unsigned long long>a >> 6
    return <const char*>(m.bitp + w) if w < <unsigned long long>m.nwords else NULL


cdef inline long long root_of_at(PyObject* m, long long a) noexcept:
    """`root_of` of a borrowed RootMap (core/_lean.pyx)."""
    return root_of(<RootMap>m, a)
