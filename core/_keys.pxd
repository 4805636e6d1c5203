from libc.stdint cimport int32_t, int64_t, uint64_t


cdef class KeyIndex:
    cdef uint64_t* slots
    cdef size_t cap
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

    cdef Py_ssize_t _find(self, const unsigned char* p, Py_ssize_t n, uint64_t h) noexcept
    cdef Py_ssize_t _insert(self, const unsigned char* p, Py_ssize_t n, uint64_t h,
                            int64_t value) except -1
    cdef inline void _place(self, uint64_t h, Py_ssize_t i) noexcept
    cdef int _grow_slots(self) except -1
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
    cdef Py_ssize_t peek(self, uint64_t h) noexcept
    cdef void prefetch_entry(self, Py_ssize_t i) noexcept
    cdef void prefetch_key(self, Py_ssize_t i) noexcept
    cdef inline int64_t value_at(self, Py_ssize_t i) noexcept:
        if not self.has_values:
            return i
        if self.wide:
            return (<int64_t*>self.vals)[i]
        return (<int32_t*>self.vals)[i]
