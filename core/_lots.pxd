# The compiled `Lots.add` (core/_lots.pyx), for the compiled payment path.
cdef int add_c(lots, long long ai, long long d, long long p) except -1
