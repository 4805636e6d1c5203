# The kernel of core/_inputs.pyx, shared with core/_engage.pyx and core/_identity.pyx.
from cpython cimport array
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._amap cimport AccountMap, RootMap
from core._keys cimport KeyIndex


cdef enum:
    TIERS_MAX = 16
    PROGS_MAX = 64
    # Entry kinds, buckets (core.types) and cause tags (core.ledger).
    E_EARN = 1
    E_MERGE_OUT = 7
    E_MERGE_IN = 8
    E_CONVERT = 9
    E_BONUS = 10
    E_FORFEIT = 11
    B_AV = 0
    B_PE = 1
    B_SH = 2
    B_SP = 3
    CAUSE_EVENT = 2
    CAUSE_OTHER = 3


cdef struct Prog:
    bint fast  # every number below fits; else the kernel leaves the program to Python
    long long off_s
    long long lookback_days
    bint keep_lots
    bint rolling  # expiry = "rolling": a lot's expiry day is day + expiry_days
    long long expiry_days
    bint spend_basis
    long long bonus
    long long bonus_from_s
    bint enroll_coupons
    int ntiers
    long long tier_next[TIERS_MAX]


cdef class Rule:
    cdef long long points, cap_day, cap_week, cap_month
    cdef int who
    # The cap keys of the last day an event of this rule came on (events come in time
    # order mostly): ((kind, level, period), cap) of each capped level.
    cdef long long keys_day
    cdef list keys


# The column entry points' look-ahead: a ring of RING rows; a row's ids are hashed AHEAD1
# rows ahead, its slot peeked AHEAD2 ahead, its account touched AHEAD3 and its newest lot
# AHEAD4 ahead (core/_engage.pyx, core/_identity.pyx).
cdef enum:
    RING = 16
    AHEAD1 = 12
    AHEAD2 = 6
    AHEAD3 = 3
    AHEAD4 = 1


# A row's id some rows ahead of its turn: its index, hash and (unverified) number, for
# prefetching (core/_batch.pyx's stages for payments).
cdef struct Ahead:
    PyObject* ix  # the KeyIndex (borrowed: the kernel's maps hold it), or NULL
    uint64_t h  # the id's hash_ascii, 0 for none
    Py_ssize_t c  # its number from peek, or -1
    long long a  # the account that number holds (unverified), or -1
    int pi  # the row's program, when ix is set (looked up as the row's own lookup would)


cdef class Kernel:
    cdef object eng, acc, lots, ledger, idem
    cdef dict app_prog, prog_index, by_app, caps, counts, merged_from
    cdef list by_union, compiled, rules, notes, event_ids, expiry_heap
    cdef set event_seen, invited
    cdef array.array rows, scal, prog, bal, bal_pend, qual, member, tier
    cdef RootMap root
    cdef array.array lot_day, lot_pts
    cdef Prog progs[PROGS_MAX]
    # expiry_day of the last lot day pushed, per program (calendar expiry only)
    cdef long long exp_in[PROGS_MAX]
    cdef long long exp_out[PROGS_MAX]


cdef Kernel _kernel(eng)
cdef bint _valid_id(str s)
cdef bint _valid_id_bytes(const unsigned char* c, Py_ssize_t n) noexcept
cdef long long create_account(object acc, array.array prog, int pi) except -1
cdef int set_unionid(Kernel k, long long a, KeyIndex unions, str unionid,
                     uint64_t h) except -1
cdef int _push(array.array arr, long long a, long long b, long long c, long long d,
               long long e, long long f) except -1
cdef long long _get(array.array arr, Py_ssize_t i)
cdef void _set(array.array arr, Py_ssize_t i, long long v)
cdef long long _find(Kernel k, long long a) except -1
cdef void _upgrade(Kernel k, long long a, Prog* p)
cdef long long _month(long long day)
cdef object _expiry_key(Kernel k, int pi, long long day, long long a)
cdef bint _lots_add(Kernel k, long long a, long long day, long long pts) except -1
cdef int _lots_pop_oldest(Kernel k, AccountMap tail, array.array nxt, long long a) except -1
cdef int _credit_member(Kernel k, int pi, long long a, long long t, long long pts) except -1
cdef void ahead_hash(Ahead* r, KeyIndex ix, str key) noexcept
cdef void ahead_peek(Ahead* r) noexcept
cdef void ahead_account(Kernel k, Ahead* r, array.array uno, AccountMap tail) noexcept
cdef void prefetch_account(Kernel k, long long a, array.array uno, AccountMap tail) noexcept
cdef void ahead_lots(Kernel k, Ahead* r, AccountMap tail, array.array nxt) noexcept
cdef void ahead_later(Kernel k, Ahead* ring, Py_ssize_t i, Py_ssize_t n, array.array uno,
                      AccountMap tail, array.array nxt) noexcept
cdef object applied(long long pts)
cdef int decode_outcome(object o, short* c, long long* p, signed char* f) except -1


cdef inline signed char outcome_flags(bint offer, bint invite) noexcept:
    """An outcome's flags column: bit 0 offer_membership, bit 1 friend_invite."""
    return (1 if offer else 0) | (2 if invite else 0)
