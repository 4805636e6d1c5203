from cpython cimport array
from libc.stdint cimport uint64_t

from core._accrual cimport Kernel, Row
from core._sink cimport Sink

cdef enum:
    SLOW = -1  # what `lean` answers for a row it leaves to `_pay_core`

cdef long long lean(Kernel k, Row* r, uint64_t homes, array.array pays, array.array wide,
                    array.array rows, array.array fifo) except -2
cdef int put_lean(list out, Py_ssize_t i, Sink* sink, long long res) except -1
