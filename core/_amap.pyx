# cython: language_level=3, boundscheck=False, wraparound=False
"""Sparse int columns by account.

`AccountMap`: account -> number, 0 for the accounts without one (core.accounts'
`union_no`: most accounts of a large engine have no unionid; core.lots' `tail`: most
have no lots). An open-addressing table of (account + 1, number) slots, at most 80% full,
doubled when it would be fuller; 8 bytes a slot while accounts and numbers fit int32, then
16 (both arrays widened for good). 0 bytes while no account has a number. A map told the
number of accounts (`grow`) turns into a dense column (`vals` by account, `keys` empty)
once the table would take more bytes than the column, and back into a table when the
accounts grow and a table would take at most half the column's bytes.

`RootMap`: core.accounts' `root`, an AccountMap of account -> its root + 1 for the merged
accounts only, and a bitmap (a bit an account, up to the highest merged one) telling an
unmerged account without probing; nothing while no account was merged.
"""

from cpython cimport array

from array import array as _array

cdef long long I32_MAX = 2**31 - 1


cdef inline void _wr(array.array c, Py_ssize_t i, long long v) noexcept:
    if c.ob_descr.itemsize == 4:
        c.data.as_ints[i] = <int>v
    else:
        c.data.as_longlongs[i] = v


cdef inline void _put_new(array.array keys, array.array vals, long long k, long long v) noexcept:
    # Key k (account + 1, absent from the table) with number v into its first empty slot.
    cdef Py_ssize_t size = len(keys)
    cdef Py_ssize_t i = amap_home(k - 1, size)
    while amap_rd(keys, i):
        i = (i + 1) & (size - 1)
    _wr(keys, i, k)
    _wr(vals, i, v)


cdef class AccountMap:
    """Account -> number (not 0); every other account reads 0."""

    def __init__(self, keys=None, vals=None, Py_ssize_t n=0, Py_ssize_t cap=-1,
                 bint dense=False):
        """Empty, or the table `keys`, `vals` holding `n` numbers (as `__reduce__` gives)."""
        self.keys = _array("i") if keys is None else keys
        self.vals = _array("i") if vals is None else vals
        self.n, self.cap, self.dense = n, cap, dense
        cdef Py_ssize_t size = len(self.keys)
        if dense:
            ok = (size == 0 and self.keys.typecode == self.vals.typecode and cap >= 0
                  and 0 <= n <= len(self.vals) == cap)
        else:
            ok = (len(self.vals) == size and not size & (size - 1)
                  and self.keys.typecode == self.vals.typecode and 0 <= n <= size * 4 // 5)
        if not ok or self.keys.typecode not in "iq" or cap < -1:
            raise ValueError("not an AccountMap table")

    def __reduce__(self):
        return type(self), (self.keys, self.vals, self.n, self.cap, self.dense)

    def __sizeof__(self):
        return object.__sizeof__(self) + self.keys.__sizeof__() + self.vals.__sizeof__()

    def __len__(self):
        return self.n

    cpdef long long get(self, long long a) except -1:
        """Account `a`'s number, 0 for none."""
        return amap_get(self, a) if a >= 0 else 0

    cpdef int set(self, long long a, long long v) except -1:
        """Give account `a` (>= 0) the number `v` (not 0)."""
        if a < 0 or v == 0:
            raise ValueError(f"account {a}, number {v}: an account >= 0 and a number not 0")
        if self.vals.typecode == "i" and (a + 1 > I32_MAX or not -I32_MAX <= v <= I32_MAX):
            self.keys, self.vals = _array("q", self.keys), _array("q", self.vals)
        if self.dense:
            if a >= len(self.vals):
                self.vals.frombytes(bytes((a + 1 - len(self.vals)) * self.vals.itemsize))
                self.cap = len(self.vals)
            self.n += amap_rd(self.vals, a) == 0
            _wr(self.vals, a, v)
            return 0
        if (self.n + 1) * 5 > len(self.keys) * 4:
            self._grow()
            if self.dense:
                return self.set(a, v)
        cdef Py_ssize_t size = len(self.keys)
        cdef Py_ssize_t i = amap_home(a, size)
        cdef long long k
        while True:
            k = amap_rd(self.keys, i)
            if k == a + 1 or k == 0:
                break
            i = (i + 1) & (size - 1)
        if k == 0:
            _wr(self.keys, i, a + 1)
            self.n += 1
        _wr(self.vals, i, v)
        return 0

    cpdef int remove(self, long long a) except -1:
        """Account `a` has no number from now on (nothing if it had none)."""
        cdef Py_ssize_t size = len(self.keys), i, j, h
        cdef long long k
        if a < 0:
            return 0
        if self.dense:
            if a < len(self.vals) and amap_rd(self.vals, a):
                _wr(self.vals, a, 0)
                self.n -= 1
            return 0
        if size == 0:
            return 0
        i = amap_home(a, size)
        while True:
            k = amap_rd(self.keys, i)
            if k == 0:
                return 0
            if k == a + 1:
                break
            i = (i + 1) & (size - 1)
        j = i  # backward shift: no tombstones, every key stays reachable from its home
        while True:
            j = (j + 1) & (size - 1)
            k = amap_rd(self.keys, j)
            if k == 0:
                break
            h = amap_home(k - 1, size)
            if (i < h <= j) if i <= j else (h > i or h <= j):
                continue  # its home is after the hole: it stays
            _wr(self.keys, i, k)
            _wr(self.vals, i, amap_rd(self.vals, j))
            i = j
        _wr(self.keys, i, 0)
        _wr(self.vals, i, 0)
        self.n -= 1
        return 0

    def grow(self, Py_ssize_t accounts):
        """There are `accounts` more accounts: a sparse map compares its table with a
        column of that many accounts from now on; a dense one grows by them, or turns
        sparse again when a table of its numbers would take at most half the column's
        bytes (so that the numbers can double before it turns dense again)."""
        self.cap = max(self.cap, 0) + accounts
        if not self.dense:
            return
        cdef Py_ssize_t size = 1024 if self.n else 0
        while self.n * 5 > size * 4:
            size *= 2
        if 4 * size > self.cap:
            self.vals.frombytes(bytes(accounts * self.vals.itemsize))
            return
        cdef array.array col = self.vals
        cdef Py_ssize_t a
        cdef long long v
        tc = col.typecode
        self.keys = _array(tc, bytes(size * col.itemsize))
        self.vals = _array(tc, bytes(size * col.itemsize))
        self.dense = False
        for a in range(len(col)):
            v = amap_rd(col, a)
            if v:
                _put_new(self.keys, self.vals, a + 1, v)

    def _grow(self):
        cdef array.array keys = self.keys, vals = self.vals
        cdef Py_ssize_t size = max(1024, 2 * len(keys)), j
        cdef long long k
        tc = keys.typecode
        if 0 <= self.cap < 2 * size:  # the table would outweigh a column: dense
            top = max([self.cap] + [amap_rd(keys, j) for j in range(len(keys))])
            self.vals = _array(tc, bytes(top * keys.itemsize))
            for j in range(len(keys)):
                k = amap_rd(keys, j)
                if k:
                    _wr(self.vals, k - 1, amap_rd(vals, j))
            self.keys, self.dense, self.cap = _array(tc), True, top
            return
        self.keys = _array(tc, bytes(size * keys.itemsize))
        self.vals = _array(tc, bytes(size * keys.itemsize))
        for j in range(len(keys)):
            k = amap_rd(keys, j)
            if k:
                _put_new(self.keys, self.vals, k, amap_rd(vals, j))

    cdef long long _index(self, a) except? -1:
        # A column's index: past the accounts (when known) IndexError, negative from the end.
        cdef long long i = a
        if self.cap >= 0:
            if i < 0:
                i += self.cap
            if not 0 <= i < self.cap:
                raise IndexError("account out of range")
        elif i < 0:
            raise IndexError("account out of range")
        return i

    def __getitem__(self, a):
        """Account `a`'s number (0 for none); a slice of accounts gives a list."""
        if isinstance(a, slice):
            if a.stop is None or a.stop < 0:
                raise ValueError("a slice of an AccountMap needs an end")
            return [self.get(x) for x in range(*a.indices(a.stop))]
        return self.get(self._index(a))

    def __setitem__(self, a, v):
        """Account `a`'s number = `v` (0: none)."""
        amap_put(self, self._index(a), v)

    def __iter__(self):
        """The numbers of accounts 0..cap - 1 (a map told its accounts only)."""
        if self.cap < 0:
            raise TypeError("an AccountMap with no account count is not iterable: items()")
        return iter(self[:self.cap])

    def items(self):
        """(account, number) of every account with a number, by account."""
        if self.dense:
            return [(j, amap_rd(self.vals, j)) for j in range(len(self.vals))
                    if amap_rd(self.vals, j)]
        return sorted((amap_rd(self.keys, j) - 1, amap_rd(self.vals, j))
                      for j in range(len(self.keys)) if amap_rd(self.keys, j))

    def column(self, Py_ssize_t n):
        """The numbers of accounts 0..n - 1 as an int64 array."""
        cdef array.array out = _array("q", bytes(8 * n))
        self._fill(out, 0)
        return out

    cdef void _fill(self, array.array out, long long less) noexcept:
        # out[a] = a's number - `less`, for each account with a number below len(out).
        cdef Py_ssize_t j, n = len(out)
        cdef long long k
        if self.dense:
            for j in range(min(n, len(self.vals))):
                k = amap_rd(self.vals, j)
                if k:
                    out.data.as_longlongs[j] = k - less
            return
        for j in range(len(self.keys)):
            k = amap_rd(self.keys, j)
            if 0 < k <= n:
                out.data.as_longlongs[k - 1] = amap_rd(self.vals, j) - less


cdef class RootMap(AccountMap):
    """Account -> the account it was merged into; an account never merged reads itself.
    Only the merged accounts are stored (see the module's docstring)."""

    def __init__(self, keys=None, vals=None, Py_ssize_t n=0, Py_ssize_t cap=-1,
                 bint dense=False):
        AccountMap.__init__(self, keys, vals, n, cap, dense)
        self.bits = _array("Q")
        self.nwords = 0
        self.bitp = NULL
        for a, _ in AccountMap.items(self):
            self._mark(a)

    cdef int _mark(self, long long a) except -1:
        cdef Py_ssize_t w = a >> 6, more
        if w >= self.nwords:
            more = max(w + 1, self.nwords + self.nwords // 4) - self.nwords
            self.bits.frombytes(bytes(8 * more))
            self.nwords = len(self.bits)
            self.bitp = <unsigned long long*>self.bits.data.as_voidptr
        self.bitp[w] |= 1ULL << (a & 63)
        return 0

    def __sizeof__(self):
        return AccountMap.__sizeof__(self) + self.bits.__sizeof__()

    cpdef int put_root(self, long long a, long long r) except -1:
        """Account `a` (>= 0) was merged into `r` (`r` == `a`: it is its own root)."""
        if a < 0 or r < 0:
            raise ValueError(f"account {a}, root {r}: accounts >= 0")
        if r == a:
            return self.remove(a)
        self.set(a, r + 1)
        return self._mark(a)

    cpdef long long find(self, long long a) except -1:
        """The surviving account for `a` (>= 0), compressing the path of merges."""
        cdef long long r, up
        if a < 0:
            raise IndexError("account out of range")
        r = root_of(self, a)
        if r == a:
            return a
        up = root_of(self, r)
        while up != r:
            r, up = up, root_of(self, up)
        up = root_of(self, a)
        while up != r:
            self.put_root(a, r)
            a, up = up, root_of(self, up)
        return r

    def __getitem__(self, a):
        """Account `a`'s root (one step); a slice of accounts gives a list."""
        cdef long long x
        if isinstance(a, slice):
            if a.stop is None or a.stop < 0:
                raise ValueError("a slice of a RootMap needs an end")
            return [root_of(self, x) for x in range(*a.indices(a.stop))]
        x = a
        if x < 0:
            raise IndexError("account out of range")
        return root_of(self, x)

    def __setitem__(self, a, r):
        self.put_root(a, r)

    def __iter__(self):
        raise TypeError("a RootMap is not iterable: items() or column(n)")

    def items(self):
        """(account, root) of every merged account, by account."""
        return [(a, v - 1) for a, v in AccountMap.items(self)]

    def column(self, Py_ssize_t n):
        """The roots of accounts 0..n - 1 as an int64 array."""
        cdef array.array out = _array("q", bytes(8 * n))
        cdef Py_ssize_t j
        for j in range(n):
            out.data.as_longlongs[j] = j
        self._fill(out, 1)
        return out
