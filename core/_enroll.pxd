from core._inputs cimport Kernel

cdef long long convert(Kernel k, int pi, long long a, long long t, long long cause) except -1
