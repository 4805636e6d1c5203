# Per-input records in C: a payment's record (core.payments) and a ledger entry
# (core.ledger), shared by the modules that write or read them, and the growth of
# their arrays.
from cpython cimport array
from cpython.object cimport Py_SIZE
from cpython.ref cimport PyObject
from libc.stdint cimport INT32_MAX, INT32_MIN, int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memset

cdef extern from *:
    ctypedef struct pm_arrayobject "arrayobject":
        Py_ssize_t allocated
        Py_ssize_t ob_exports
    void pm_set_size "Py_SET_SIZE"(object o, Py_ssize_t n)

# Times are stored as int32 seconds from TIME_BASE_S (core.payments.TIME_BASE_S =
# limits.TIME_S_MIN + 2**31): every time from 2000 to 2100 fits.
cdef extern from *:
    """
    #define PM_TIME_BASE_S 3094168448LL
    """
    const long long TIME_BASE_S "PM_TIME_BASE_S"

# A payment record: PF int32 at the P_* offsets (core.payments). A record whose P_PROG
# is negative holds none of its values: they are PF int64 in `pays_wide`, at record
# number -1 - P_PROG, with the time as it is.
cdef enum:
    PF = 9
    P_ACCT = 0
    P_PROG = 1
    P_TIME = 2
    P_TOTAL = 3
    P_BASIS = 4
    P_POINTS = 5
    P_REFUNDED = 6
    P_REVERSED = 7
    P_PENDING = 8

# A ledger entry: 24 bytes, three int64 words of `Ledger.rows` (core.ledger.ROW).
ctypedef struct LRow:
    int64_t points
    uint32_t idx  # cause >> 3
    int32_t account
    int32_t time  # time_s - TIME_BASE_S
    uint8_t kind
    uint8_t bucket
    uint8_t tag  # cause & 7
    uint8_t pad

cdef enum:
    ROW_WORDS = 3


cdef inline int room(array.array arr, Py_ssize_t n) except -1:
    """Size `arr` to `n` items, its capacity grown by an eighth when short (glibc moves a
    large block with mremap, without copying; array's own resize_smart grows by half)."""
    cdef pm_arrayobject* o = <pm_arrayobject*><PyObject*>arr
    cdef Py_ssize_t cap
    if n <= o.allocated:
        pm_set_size(arr, n)
        return 0
    if o.ob_exports > 0:
        raise BufferError("cannot resize an array that is exporting buffers")
    cap = n + n // 8 + 1024
    array.resize(arr, cap)
    pm_set_size(arr, n)
    return 0


cdef inline int push_row(array.array rows, long long kind, long long bucket, long long a,
                         long long pts, long long t, long long cause) except -1:
    """Append a ledger entry; OverflowError (nothing appended) when a field does not fit."""
    cdef long long rt = t - TIME_BASE_S, idx = cause >> 3
    if (not 0 <= a <= INT32_MAX or not INT32_MIN <= rt <= INT32_MAX
            or not 0 <= idx <= <long long>0xFFFFFFFF or not 0 <= kind < 256
            or not 0 <= bucket < 256):
        raise OverflowError(f"a ledger entry holds an account below 2**31, a cause number "
                            f"below 2**35 and a time of 2000..2100: not {a}, {cause}, {t}")
    cdef Py_ssize_t n = Py_SIZE(rows)
    room(rows, n + ROW_WORDS)
    cdef LRow* r = <LRow*>(rows.data.as_longlongs + n)
    r.points = pts
    r.idx = <uint32_t>idx
    r.account = <int32_t>a
    r.time = <int32_t>rt
    r.kind = <uint8_t>kind
    r.bucket = <uint8_t>bucket
    r.tag = <uint8_t>(cause & 7)
    r.pad = 0
    return 0


cdef inline int pay_append(array.array pays, array.array wide, long long a, long long pi,
                           long long t, long long total, long long basis, long long pts,
                           long long pending) except -1:
    """Append a payment's record: narrow when every value fits an int32, else in `wide`."""
    cdef Py_ssize_t n = Py_SIZE(pays), m
    cdef long long rt = t - TIME_BASE_S
    room(pays, n + PF)
    cdef int* q = pays.data.as_ints + n
    cdef long long* w
    if (0 <= a <= INT32_MAX and 0 <= pi <= INT32_MAX and INT32_MIN <= rt <= INT32_MAX
            and INT32_MIN <= total <= INT32_MAX and INT32_MIN <= basis <= INT32_MAX
            and INT32_MIN <= pts <= INT32_MAX and INT32_MIN <= pending <= INT32_MAX):
        q[P_ACCT] = <int>a; q[P_PROG] = <int>pi; q[P_TIME] = <int>rt; q[P_TOTAL] = <int>total
        q[P_BASIS] = <int>basis; q[P_POINTS] = <int>pts; q[P_REFUNDED] = 0
        q[P_REVERSED] = 0; q[P_PENDING] = <int>pending
        return 0
    m = Py_SIZE(wide)
    try:
        room(wide, m + PF)
    except BaseException:
        pm_set_size(pays, n)
        raise
    w = wide.data.as_longlongs + m
    w[P_ACCT] = a; w[P_PROG] = pi; w[P_TIME] = t; w[P_TOTAL] = total; w[P_BASIS] = basis
    w[P_POINTS] = pts; w[P_REFUNDED] = 0; w[P_REVERSED] = 0; w[P_PENDING] = pending
    memset(q, 0, PF * sizeof(int))
    q[P_PROG] = <int>(-1 - m // PF)  # the wide record's number, as -1 - n
    return 0
