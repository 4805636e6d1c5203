# cython: language_level=3, boundscheck=False, wraparound=False
"""A sparse int column: account -> number, 0 for the accounts without one (core.accounts'
`union_no`: most accounts of a large engine have no unionid).

An open-addressing table of (account + 1, number) slots, at most 80% full, doubled when
it would be fuller; 8 bytes a slot while accounts and numbers fit int32, then 16 (both
arrays widened for good). Numbers are never removed. 0 bytes while no account has one.
"""

from cpython cimport array

from array import array as _array

cdef long long I32_MAX = 2**31 - 1


cdef inline long long _rd(array.array c, Py_ssize_t i) noexcept:
    if c.ob_descr.itemsize == 4:
        return c.data.as_ints[i]
    return c.data.as_longlongs[i]


cdef inline void _wr(array.array c, Py_ssize_t i, long long v) noexcept:
    if c.ob_descr.itemsize == 4:
        c.data.as_ints[i] = <int>v
    else:
        c.data.as_longlongs[i] = v


cdef class AccountMap:
    """Account -> number (not 0); every other account reads 0."""

    def __init__(self, keys=None, vals=None, Py_ssize_t n=0):
        """Empty, or the table `keys`, `vals` holding `n` numbers (as `__reduce__` gives)."""
        self.keys = _array("i") if keys is None else keys
        self.vals = _array("i") if vals is None else vals
        self.n = n
        cdef Py_ssize_t size = len(self.keys)
        if (len(self.vals) != size or size & (size - 1) or self.keys.typecode != self.vals.typecode
                or self.keys.typecode not in "iq" or not 0 <= n <= size * 4 // 5):
            raise ValueError("not an AccountMap table")

    def __reduce__(self):
        return AccountMap, (self.keys, self.vals, self.n)

    def __sizeof__(self):
        return object.__sizeof__(self) + self.keys.__sizeof__() + self.vals.__sizeof__()

    def __len__(self):
        return self.n

    cpdef long long get(self, long long a) except -1:
        """Account `a`'s number, 0 for none."""
        cdef Py_ssize_t size = len(self.keys), i
        cdef long long k
        if size == 0:
            return 0
        i = amap_home(a, size)
        while True:
            k = _rd(self.keys, i)
            if k == a + 1:
                return _rd(self.vals, i)
            if k == 0:
                return 0
            i = (i + 1) & (size - 1)

    cpdef int set(self, long long a, long long v) except -1:
        """Give account `a` (>= 0) the number `v` (not 0)."""
        if a < 0 or v == 0:
            raise ValueError(f"account {a}, number {v}: an account >= 0 and a number not 0")
        if self.keys.typecode == "i" and (a + 1 > I32_MAX or not -I32_MAX <= v <= I32_MAX):
            self.keys, self.vals = _array("q", self.keys), _array("q", self.vals)
        if (self.n + 1) * 5 > len(self.keys) * 4:
            self._grow()
        cdef Py_ssize_t size = len(self.keys)
        cdef Py_ssize_t i = amap_home(a, size)
        cdef long long k
        while True:
            k = _rd(self.keys, i)
            if k == a + 1 or k == 0:
                break
            i = (i + 1) & (size - 1)
        if k == 0:
            _wr(self.keys, i, a + 1)
            self.n += 1
        _wr(self.vals, i, v)
        return 0

    def _grow(self):
        cdef array.array keys = self.keys, vals = self.vals
        cdef Py_ssize_t size = max(1024, 2 * len(keys)), j, i
        cdef long long k
        tc = keys.typecode
        self.keys = _array(tc, bytes(size * keys.itemsize))
        self.vals = _array(tc, bytes(size * keys.itemsize))
        for j in range(len(keys)):
            k = _rd(keys, j)
            if k:
                i = amap_home(k - 1, size)
                while _rd(self.keys, i):
                    i = (i + 1) & (size - 1)
                _wr(self.keys, i, k)
                _wr(self.vals, i, _rd(vals, j))

    def __getitem__(self, a):
        """Account `a`'s number (0 for none); a slice of accounts gives a list."""
        if isinstance(a, slice):
            if a.stop is None or a.stop < 0:
                raise ValueError("a slice of an AccountMap needs an end")
            return [self.get(x) for x in range(*a.indices(a.stop))]
        return self.get(a)

    def items(self):
        """(account, number) of every account with a number, by account."""
        return sorted((_rd(self.keys, j) - 1, _rd(self.vals, j))
                      for j in range(len(self.keys)) if _rd(self.keys, j))
