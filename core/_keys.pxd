from libc.stdint cimport int64_t, uint64_t


cdef class KeyIndex:
    cdef uint64_t* slots
    cdef size_t mask
    cdef int shift
    cdef Py_ssize_t n
    cdef unsigned char* arena
    cdef size_t used, acap
    cdef int64_t* offs
    cdef int64_t* vals
    cdef Py_ssize_t ocap
    cdef readonly bint has_values

    cdef Py_ssize_t _find(self, const unsigned char* p, Py_ssize_t n, uint64_t h) noexcept
    cdef Py_ssize_t _insert(self, const unsigned char* p, Py_ssize_t n, uint64_t h,
                            int64_t value) except -1
    cdef inline void _place(self, uint64_t h, Py_ssize_t i) noexcept
    cdef int _grow_slots(self) except -1
    cdef int _grow_numbers(self) except -1
    cdef int _grow_arena(self, Py_ssize_t need) except -1
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
        return self.vals[i] if self.has_values else i
