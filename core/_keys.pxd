from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t


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
