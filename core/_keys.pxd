from libc.stdint cimport INT32_MAX, INT32_MIN, int32_t, int64_t, uint32_t, uint64_t

from core._keypack cimport pack6


cdef class KeyIndex:
    cdef void* slots  # uint64_t or uint32_t slots (core/_keytable.pxd), by slot_bytes
    cdef size_t cap, tbytes  # slots; bytes of the table (cap * slot_bytes)
    cdef readonly int slot_bytes  # 8 or 4, fixed when the index is built
    cdef uint32_t nmask  # 4-byte slots: the number's bits (number_mask(cap))
    # The probe loops for slot_bytes (core/_keys.pyx _find4/_find8, _peek4/_peek8).
    cdef Py_ssize_t (*find_fn)(KeyIndex, const unsigned char*, Py_ssize_t, uint64_t) noexcept
    cdef Py_ssize_t (*peek_fn)(KeyIndex, uint64_t) noexcept
    cdef Py_ssize_t n
    cdef unsigned char* arena
    cdef size_t used, acap
    cdef Py_ssize_t width  # every key's byte length while all share one; -1: no key yet; -2: they vary
    cdef Py_ssize_t rec  # bytes a key takes in the arena while the width is fixed
    cdef bint packed  # keys packed 6 bits a character (core._keypack), while all are packable
    cdef int64_t* offs  # key i's bytes start at offs[i] (NULL while the width is fixed)
    cdef void* vals  # int32 values while every value fits, then int64 (`wide`)
    cdef bint wide
    cdef Py_ssize_t ocap
    cdef readonly bint has_values
    # Where the last unsuccessful `_find` stopped: the empty slot its key would take.
    cdef size_t miss_slot, miss_cap
    cdef uint64_t miss_h

    cdef inline Py_ssize_t _find(self, const unsigned char* p, Py_ssize_t n, uint64_t h) noexcept:
        # The number of the key p[:n] hashed h, or -1: the probe loop of this index's width.
        return self.find_fn(self, p, n, h)
    cdef Py_ssize_t _insert(self, const unsigned char* p, Py_ssize_t n, uint64_t h,
                            int64_t value) except -1

    cdef inline Py_ssize_t _insert_missed(self, const unsigned char* p, Py_ssize_t n,
                                          uint64_t h, int64_t value) except -1:
        # `_insert` of a key `_find` just missed, the common case in line: a packed key of
        # the index's width whose search stopped at an empty slot of this table, with room
        # for it everywhere (no growth), is packed straight into the arena and its slot
        # filled where the search stopped (as `_place` would: the slots from its home up
        # to there were taken then and are still). Anything else goes to `_insert`.
        cdef Py_ssize_t i = self.n
        cdef size_t j = self.miss_slot
        if (h != self.miss_h or self.cap != self.miss_cap or self.offs != NULL
                or not self.packed or n != self.width or i >= self.ocap
                or <size_t>(i + 1) * 5 > self.cap * 4
                or self.used + <size_t>self.rec > self.acap
                or (self.has_values and (self.wide or not INT32_MIN <= value <= INT32_MAX))):
            return self._insert(p, n, h, value)
        if self.slot_bytes == 8:
            if (<uint64_t*>self.slots)[j] != 0:
                return self._insert(p, n, h, value)
        elif (<uint32_t*>self.slots)[j] != 0:
            return self._insert(p, n, h, value)
        if pack6(p, n, self.arena + self.used) < 0:
            return self._insert(p, n, h, value)  # off the alphabet: `_insert` unpacks them all
        if self.has_values:
            (<int32_t*>self.vals)[i] = <int32_t>value
        self.used += <size_t>self.rec
        if self.slot_bytes == 8:
            (<uint64_t*>self.slots)[j] = ((h >> 32) << 32) | <uint64_t>(i + 1)
        else:
            (<uint32_t*>self.slots)[j] = (<uint32_t>h & ~self.nmask) | <uint32_t>(i + 1)
        self.n = i + 1
        return i
    cdef void _set_width(self, int slot_bytes) noexcept
    cdef inline void _place(self, uint64_t h, Py_ssize_t i) noexcept
    cdef int _grow_slots(self) except -1
    cdef int _rebuild(self, size_t cap) except -1
    cdef int _grow_numbers(self, Py_ssize_t need) except -1
    cdef int _grow_arena(self, Py_ssize_t need) except -1
    cdef int _vary(self) except -1
    cdef int _unpack_all(self) except -1
    cdef int _widen(self) except -1
    cdef int _set_value(self, Py_ssize_t i, int64_t value) except -1
    cdef Py_ssize_t _lookup(self, str key, bint insert, int64_t value, uint64_t h) except -2
    cdef Py_ssize_t find(self, str key, uint64_t h=*) except -2
    cdef Py_ssize_t add(self, str key, int64_t value, uint64_t h=*) except -1
    cdef uint64_t hash_ascii(self, str key) noexcept
    cdef uint64_t hash_bytes(self, const unsigned char* p, Py_ssize_t n) noexcept
    cdef void prefetch_slot(self, uint64_t h) noexcept
    cdef inline Py_ssize_t peek(self, uint64_t h) noexcept:
        # The number in the first slot whose tag matches `h` (unverified), or -1.
        return self.peek_fn(self, h)
    cdef void prefetch_entry(self, Py_ssize_t i) noexcept
    cdef void prefetch_key(self, Py_ssize_t i) noexcept
    cdef inline int64_t value_at(self, Py_ssize_t i) noexcept:
        if not self.has_values:
            return i
        if self.wide:
            return (<int64_t*>self.vals)[i]
        return (<int32_t*>self.vals)[i]
