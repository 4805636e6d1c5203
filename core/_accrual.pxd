# The compiled payment path (core/_accrual.pyx), shared with its batch drivers
# (core/_batch.pyx): one payment is a `Row` of C fields, applied by `_pay_core`.
from cpython cimport array
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._amap cimport AccountMap, RootMap
from core._keys cimport KeyIndex

DEF TIERS_MAX = 16

# Whether a * b overflows an int64, its product in *p when not: the points product's test
# (basis times the multipliers) of `_pay_core` and of the batch path's lean core.
cdef extern from *:
    """
    #define pm_mul_overflow(a, b, p) __builtin_mul_overflow((a), (b), (p))
    """
    bint pm_mul_overflow(long long a, long long b, long long* p) noexcept nogil

cdef struct Prog:
    long long min_order
    long long camp_lo
    long long camp_hi
    long long off_s
    long long cap
    long long window_s
    bint spend_basis
    bint keep_lots
    bint allow_neg  # the program's allow_negative
    bint ptj
    long long ptj_min
    long long friend_k
    long long friend_days
    int ntiers
    long long tier_pct[TIERS_MAX]
    long long tier_next[TIERS_MAX]


cdef struct Merchant:
    int prog
    long long rate  # points_per_unit * channel pct
    long long memo_hour  # the last campaign hour looked up for this merchant, or -1
    long long memo_pct


cdef struct Row:
    # One payment. Ids are UTF-8 bytes (an ASCII str's own characters, or a block's
    # buffer); the Python objects are borrowed and only read when a payment leaves
    # the fast path (a rejection, a coupon, a held refund ...).
    const unsigned char* tx
    Py_ssize_t txn  # bytes
    Py_ssize_t txchars  # characters: the length limit counts characters
    uint64_t htx  # the KeyIndex hash of tx, or 0: not hashed yet
    const unsigned char* op
    Py_ssize_t opn
    uint64_t hop  # the hash of op in its app's KeyIndex, or 0
    long long total, payer, t
    int mno  # merchant number, or -1: unknown
    PyObject* apps  # the app's openid KeyIndex (app_of[appid][1]), or NULL: unknown app
    int aprog  # the app's program number (app_of[appid][0])
    PyObject* appid
    PyObject* mchid
    PyObject* currency
    PyObject* coupons
    PyObject* txs  # the id strs, or NULL: made from the bytes when needed
    PyObject* ops
    PyObject* p  # the Payment, or NULL: made when needed


cdef class Kernel:
    cdef object eng
    cdef KeyIndex pay_index
    cdef dict mch_no, app_of, held
    cdef list homes, channels, memos, compiled, pending_heap, fxs
    cdef set invited
    cdef array.array pays, pays_wide, rows, fifo, scal
    cdef array.array prog, bal, bal_pend, qual, member, tier
    cdef RootMap root
    cdef array.array visit_ring, visit_n
    cdef long long visit_slots
    cdef bint lots_c  # a member's lot by the compiled _credit_member (else Engine._credit_lot)
    cdef object inputs  # core._inputs' kernel of the same engine (its _credit_member takes it)
    cdef Prog progs[64]
    cdef Merchant merchants[4096]
    cdef int nprogs, nmerchants
    cdef object acc, lots


cdef Kernel kernel_of(eng)
cdef object _pay_core(Kernel k, Row* r)
cdef object _applied(long long pts, bint offer, bint invite)  # the APPLIED Outcome
cdef void _prefetch_account(Kernel k, long long a, int pi, AccountMap tail) noexcept
cdef void _prefetch_lot(Kernel k, long long a, AccountMap tail, array.array day,
                        array.array pts) noexcept
cdef object fill_ids(Row* r, str txid, str openid)
cdef void fill_names(Kernel k, Row* r, object appid, object mchid, object currency,
                     object coupons)
