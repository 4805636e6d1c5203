# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""The kernel of the compiled non-payment inputs: engagement events (core/_engage.pyx),
bindings and enrollments (core/_identity.pyx), and the outcome decoder.

Each input's common case runs in C over the engine's own columns and maps (as
core/_accrual.pyx does for payments); anything unusual goes to the Python reference
method (`Engine._engage_py`, `_bind_py`, `_enroll_py`) before anything has changed:
a rejection, a field of the wrong type, a rule or program the kernel does not cover.
Lots are added and taken in C for the common cases (core.lots' layout) and by the
`Lots` methods otherwise; coupons and cap clean-ups call the reference's helpers.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

import heapq

from cpython cimport array
from libc.limits cimport LLONG_MAX, LLONG_MIN
from libc.stdint cimport uint64_t

from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from core._keypack cimport pack6
from core._keys cimport KeyIndex
from core._lots cimport add_c
from core._amap cimport AccountMap, amap_addr, amap_get, amap_home, amap_put, root_addr, root_of
from core._cols cimport col_at, col_get
from core._rows cimport push_row
from core._slots cimport slot_at, slot_offset

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    PyObject* PyList_GET_ITEM(object lst, Py_ssize_t i)

cdef extern from *:
    """
    #define pm_pf(p) __builtin_prefetch((const void*)(p))
    /* Touch the slot of set `s` where a lookup of an int key of hash `h` starts (a
       non-negative int is its own hash). */
    static inline void pm_prefetch_set_hash(PyObject* s, size_t h) {
        PySetObject* so = (PySetObject*)s;
        __builtin_prefetch((const void*)(so->table + (h & (size_t)so->mask)));
    }
    """
    void pm_pf(const void* p) noexcept nogil
    void pm_prefetch_set_hash(PyObject* s, size_t h) noexcept

from core import limits
from core.accounts import Accounts
from core.types import Code, Outcome

import numpy as np

cdef object _APPLIED_CODE = Code.APPLIED
cdef object _heappush = heapq.heappush
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef Py_ssize_t ID_MAX = limits.ID_LEN_MAX
cdef long long VALUE_MAX = limits.POINTS_PER_INPUT_MAX
cdef long long DAY_S = 86400
# Outcome(APPLIED, points, "") of small point counts, made once each (outcomes are
# immutable): enrollments' outcomes.
cdef Py_ssize_t _SMALL = 4096
cdef list _APPLIED_SMALL = [None] * _SMALL
# An id is checked by the packer's classifier (core/_keypack.pxd: its alphabet is an id's
# characters), which takes ids of up to 64 characters.
assert limits.ID_LEN_MAX <= 64, "ids longer than the packer takes: check them byte by byte"
# Entry kinds, buckets (core.types) and the cause tags (core.ledger).


cdef class Rule:
    """An event rule's numbers: points, caps, and who a referral rewards (bit 0 the
    referrer, bit 1 the referred)."""

    def __init__(self, r, bint referral):
        self.points, self.cap_day, self.cap_week, self.cap_month = (
            r.points, r.cap_day, r.cap_week, r.cap_month)
        self.who = ({"referrer": 1, "referred": 2, "both": 3}.get(r.reward, 0)
                    if referral else 1)
        self.keys_day, self.keys = LLONG_MIN, None


cdef class Kernel:
    """Typed references to one engine's structures (rebuilt after a snapshot load)."""

    def __init__(self, eng):
        cdef Prog* p
        acc = eng.acc
        self.eng, self.acc, self.lots, self.ledger = eng, acc, acc.lots, eng.ledger
        self.idem = eng.idem  # core.idempotency.KeyWindow: event_seen is its set of ids
        self.app_prog, self.prog_index, self.by_app = eng.app_prog, eng.prog_index, acc.by_app
        self.by_union, self.caps, self.counts = acc.by_union, eng.caps, eng.counts
        self.merged_from = eng.merged_from
        self.compiled, self.notes, self.event_ids = list(eng.rules), eng.ledger.notes, eng.event_ids
        self.expiry_heap, self.event_seen, self.invited = eng.expiry_heap, eng.event_seen, eng.invited
        self.rows, self.scal = eng.ledger.rows, eng.scalars
        self.refresh()
        acc.kernels[Kernel] = self
        self.lot_day, self.lot_pts = acc.lots.day, acc.lots.pts
        if len(eng.rules) > PROGS_MAX:
            raise ValueError(f"the compiled path takes at most {PROGS_MAX} programs")
        self.rules = []
        for pi, c in enumerate(eng.rules):
            pr = c.program
            p = &self.progs[pi]
            self.exp_in[pi] = LLONG_MIN
            nums = (c.off_s, pr.lookback_days, pr.expiry_days, pr.welcome_bonus,
                    pr.welcome_bonus_from_s)
            p.fast = (all(type(x) is int and -VALUE_MAX <= x <= VALUE_MAX for x in nums)
                      and 0 < len(c.tier_next) <= TIERS_MAX
                      and all(type(x) is int and x >= 0 for x in c.tier_next))
            self.rules.append({kind: Rule(r, kind == "referral")
                               for kind, r in pr.events.items()
                               if 0 <= min(r.points, r.cap_day, r.cap_week, r.cap_month)
                               and max(r.points, r.cap_day, r.cap_week, r.cap_month)
                               <= VALUE_MAX} if p.fast else {})
            if not p.fast:
                continue
            p.off_s, p.lookback_days, p.expiry_days, p.bonus, p.bonus_from_s = nums
            p.keep_lots, p.spend_basis = c.keep_member_lots, c.spend_basis
            p.rolling = pr.expiry == "rolling"
            p.enroll_coupons = any(s.trigger == "enroll" for s in pr.coupons.values())
            p.ntiers = len(c.tier_next)
            for j in range(p.ntiers):
                p.tier_next[j] = min(c.tier_next[j], LLONG_MAX)


    def refresh(self):
        """Take the account columns from the accounts again (Accounts.widen replaced one)."""
        acc = self.acc
        self.prog, self.bal, self.bal_pend = acc.prog, acc.bal, acc.bal_pend
        self.qual, self.member = acc.qual, acc.member
        self.tier, self.root = acc.tier, acc.root


cdef Kernel _kernel(eng):
    k = eng._inputs_kernel
    if k is None:
        k = eng._inputs_kernel = Kernel(eng)
    return <Kernel>k


# ------------------------------------------------------------------ small helpers
cdef bint _valid_id(str s):
    # The same test as core.ids.valid_id: 1..ID_LEN_MAX characters of [A-Za-z0-9_-],
    # read straight from an ASCII string's bytes.
    if not PyUnicode_IS_ASCII(s):
        return False
    return _valid_id_bytes(<const unsigned char*>PyUnicode_DATA(s), len(s))


cdef bint _valid_id_bytes(const unsigned char* c, Py_ssize_t n) noexcept:
    # The same test on an id's UTF-8 bytes (any byte past ASCII fails it): the packer's
    # own classifier, 16 or 32 characters at a time (a new shopper's openid is checked
    # here on every compiled path; byte by byte it cost ~9 instructions each).
    cdef unsigned char q[48]  # a packed id of ID_MAX <= 64 characters at most
    if n == 0 or n > ID_MAX:
        return False
    return pack6(c, n, q) >= 0


# Accounts.n and .cap by slot offset (core/_slots.pxd): `create_account` runs once per
# new account on every compiled path, and attribute lookups were most of its cost.
cdef type _ACCOUNTS = Accounts
cdef Py_ssize_t _ACC_N = slot_offset(Accounts, "n")
cdef Py_ssize_t _ACC_CAP = slot_offset(Accounts, "cap")


cdef long long create_account(object acc, array.array prog, int pi) except -1:
    """Accounts.create(pi), inline while the columns have room (they are allocated ahead);
    an exact Accounts' `n` and `cap` are read and written by slot offset."""
    cdef PyObject** np
    cdef PyObject* cp
    cdef PyObject* old
    cdef long long a
    if type(acc) is _ACCOUNTS:
        np, cp = slot_at(acc, _ACC_N), slot_at(acc, _ACC_CAP)[0]
        if (np[0] != NULL and cp != NULL and type(<object>np[0]) is int
                and type(<object>cp) is int):
            a = <long long>(<object>np[0])
            if a >= <long long>(<object>cp):
                return acc.create(pi)
            fresh = PyLong_FromLongLong(a + 1)
            Py_INCREF(fresh)  # the slot's reference
            old = np[0]
            np[0] = <PyObject*>fresh
            Py_DECREF(<object>old)  # the slot's reference to the old value
            prog.data.as_schars[a] = <signed char>pi
            return a
    a = acc.n
    if a >= <long long>acc.cap:
        return acc.create(pi)
    acc.n = a + 1
    prog.data.as_schars[a] = <signed char>pi
    return a


cdef int set_unionid(Kernel k, long long a, KeyIndex unions, str unionid,
                      uint64_t h) except -1:
    """Accounts.set_unionid of a unionid new to `unions`, account `a`'s program's map
    (`h`, when not 0, is the unionid's hash_ascii)."""
    cdef Py_ssize_t no = unions.add(unionid, a, h)
    (<AccountMap>k.acc.union_no).set(a, no + 1)
    return 0


cdef int _push(array.array arr, long long a, long long b, long long c, long long d,
               long long e, long long f) except -1:
    # A ledger entry (kind, bucket, account, points, time_s, cause): core/_rows.pxd
    return push_row(arr, a, b, c, d, e, f)


cdef long long _get(array.array arr, Py_ssize_t i):
    # An int column that core widens from 'i' to 'q' past 2**31 - 1 entries.
    if arr.ob_descr.typecode == b'i':
        return arr.data.as_ints[i]
    return arr.data.as_longlongs[i]


cdef void _set(array.array arr, Py_ssize_t i, long long v):
    if arr.ob_descr.typecode == b'i':
        arr.data.as_ints[i] = <int>v
    else:
        arr.data.as_longlongs[i] = v


cdef long long _find(Kernel k, long long a) except -1:
    if root_of(k.root, a) == a:
        return a
    return k.root.find(a)


cdef void _upgrade(Kernel k, long long a, Prog* p):
    cdef int tier = k.tier.data.as_schars[a]
    while col_get(k.qual, a) >= p.tier_next[tier]:
        tier += 1
    k.tier.data.as_schars[a] = tier


cdef long long _month(long long day):
    # Months since 1970-01 of day number `day` (Howard Hinnant's civil_from_days).
    cdef long long z = day + 719468
    cdef long long era = (z if z >= 0 else z - 146096) // 146097
    cdef long long doe = z - era * 146097
    cdef long long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long long mp = (5 * doy + 2) // 153
    cdef long long m = mp + 3 if mp < 10 else mp - 9
    return (yoe + era * 400 + (m <= 2)) * 12 + m - 1


cdef object _expiry_key(Kernel k, int pi, long long day, long long a):
    cdef Prog* p = &k.progs[pi]
    if p.rolling:
        return (day + p.expiry_days, a)
    if k.exp_in[pi] != day:  # Engine.expiry_day: a function of the program and the day
        k.exp_out[pi] = k.eng.expiry_day(k.compiled[pi], day)
        k.exp_in[pi] = day
    return (k.exp_out[pi], a)


cdef object applied(long long pts):
    """Outcome(APPLIED, pts, "")."""
    if not 0 <= pts < _SMALL:
        return Outcome(_APPLIED_CODE, pts, "")
    o = <object>PyList_GET_ITEM(_APPLIED_SMALL, pts)
    if o is None:
        o = _APPLIED_SMALL[pts] = Outcome(_APPLIED_CODE, pts, "")
    return o


# ------------------------------------------------------------------ prefetching
# The column entry points look rows up some rows ahead of their turn, as core/_batch.pyx
# does for payments: AHEAD1 rows ahead an id is hashed and its table slot touched,
# AHEAD2 ahead the slot is read and its entry touched, AHEAD3 ahead its key and its
# account's columns. Only memory is touched: every row is then applied as it would be.
cdef void ahead_hash(Ahead* r, KeyIndex ix, str key) noexcept:
    r.ix, r.c, r.a = <PyObject*>ix, -1, -1
    r.h = ix.hash_ascii(key)  # 0 for a non-ASCII key: not prefetched
    if r.h:
        ix.prefetch_slot(r.h)


cdef void ahead_peek(Ahead* r) noexcept:
    if r.ix != NULL and r.h:
        r.c = (<KeyIndex>r.ix).peek(r.h)
        if r.c >= 0:
            (<KeyIndex>r.ix).prefetch_entry(r.c)


cdef void ahead_account(Kernel k, Ahead* r, array.array uno, AccountMap tail) noexcept:
    if r.ix == NULL or r.c < 0:
        return
    ix = <KeyIndex>r.ix
    ix.prefetch_key(r.c)
    r.a = ix.value_at(r.c)
    prefetch_account(k, r.a, uno, tail)


cdef void ahead_lots(Kernel k, Ahead* r, AccountMap tail, array.array nxt) noexcept:
    """Touch the newest lot of the row's account (its tail entry was touched before)."""
    cdef long long t
    if r.ix == NULL or r.a < 0:
        return
    t = amap_get(tail, r.a)
    if 0 < t < len(k.lot_pts):
        pm_pf(k.lot_pts.data.as_longlongs + t)
        pm_pf(k.lot_day.data.as_ints + t)
        if t < len(nxt):
            pm_pf(nxt.data.as_chars + t * nxt.ob_descr.itemsize)


cdef void ahead_later(Kernel k, Ahead* ring, Py_ssize_t i, Py_ssize_t n, array.array uno,
                      AccountMap tail, array.array nxt) noexcept:
    """The later stages for row `i` of `n`: peek the slot of the row AHEAD2 ahead, touch
    the account of the row AHEAD3 ahead and the newest lot of the row AHEAD4 ahead."""
    cdef Py_ssize_t j = i + AHEAD2
    if 0 <= j < n:
        ahead_peek(&ring[j % RING])
    j = i + AHEAD3
    if 0 <= j < n:
        ahead_account(k, &ring[j % RING], uno, tail)
    j = i + AHEAD4
    if 0 <= j < n:
        ahead_lots(k, &ring[j % RING], tail, nxt)


cdef void prefetch_account(Kernel k, long long a, array.array uno, AccountMap tail) noexcept:
    """Touch account `a`'s entries in the columns an input reads (`uno` is the keys of the
    union_no map, which may be replaced as it grows; `tail` the lots' tail map)."""
    cdef const char* p
    if not 0 <= a < len(k.prog):
        return
    p = root_addr(k.root, a)
    if p != NULL:
        pm_pf(p)
    pm_pf(k.prog.data.as_schars + a)
    pm_pf(k.member.data.as_schars + a)
    pm_pf(k.tier.data.as_schars + a)
    pm_pf(col_at(k.bal, a))
    pm_pf(col_at(k.qual, a))
    if len(uno):
        pm_pf(uno.data.as_chars + amap_home(a, len(uno)) * uno.ob_descr.itemsize)
    p = amap_addr(tail, a)
    if p != NULL:
        pm_pf(p)
    if k.invited:
        pm_prefetch_set_hash(<PyObject*>k.invited, <size_t>a)


# ------------------------------------------------------------------ lots (core.lots)
cdef bint _lots_add(Kernel k, long long a, long long day, long long pts) except -1:
    """Lots.add: `pts` arriving on `day` to account `a`; True when a new lot started."""
    return add_c(k.lots, a, day, pts)  # the compiled Lots.add (core/_lots.pyx)


cdef int _lots_pop_oldest(Kernel k, AccountMap tail, array.array nxt, long long a) except -1:
    """Lots.pop_oldest of account `a`, which has lots."""
    cdef long long t = amap_get(tail, a)
    cdef long long j = _get(nxt, t)
    if j == t:
        amap_put(tail, a, 0)
    else:
        _set(nxt, t, _get(nxt, j))
    _set(nxt, j, k.lots.free)
    k.lots.free = j
    return 0


cdef int _credit_member(Kernel k, int pi, long long a, long long t, long long pts) except -1:
    """Engine._credit_lot for a member whose available balance already holds `pts`."""
    cdef long long new = col_get(k.bal, a), day
    pts = max(0, new) - max(0, new - pts)
    if pts:
        day = (t + k.progs[pi].off_s) // DAY_S
        if _lots_add(k, a, day, pts):
            _heappush(k.expiry_heap, _expiry_key(k, pi, day, a))
    return 0


# ------------------------------------------------------------------ outcomes as columns
cdef list _CODES = list(Code)  # keeps the members alive for the pointers below
cdef dict _CODE_INDEX = {c: i for i, c in enumerate(_CODES)}
cdef PyObject* _CODE_PTR[256]
cdef Py_ssize_t _NCODES = len(_CODES)
assert _NCODES <= 256
for _j, _code in enumerate(_CODES):
    _CODE_PTR[_j] = <PyObject*>_code


cdef int decode_outcome(object o, short* c, long long* p, signed char* f) except -1:
    """Outcome `o` as its columns: the index of its code in tuple(Code), its points, its
    flags (bit 0 offer_membership, bit 1 friend_invite). TypeError if `o` is not an
    Outcome, ValueError if its code is not one of `Code`'s."""
    cdef Py_ssize_t j
    if type(o) is not Outcome:
        raise TypeError(f"not an Outcome: {o!r}")
    cdef PyObject* cp = <PyObject*>(<tuple>o)[0]
    for j in range(_NCODES):
        if _CODE_PTR[j] == cp:
            c[0] = <short>j
            break
    else:
        c[0] = _CODE_INDEX[Code((<tuple>o)[0])]
    p[0] = (<tuple>o)[1]
    f[0] = outcome_flags((<tuple>o)[3], (<tuple>o)[4])
    return 0


def outcome_columns(list outs):
    """The outcomes `outs` as columns (code index, points, flags): int16 positions in
    `tuple(Code)`, int64 points, int8 flags (bit 0 offer_membership, bit 1
    friend_invite). Raises TypeError on an item that is not an `Outcome`, ValueError on
    a code that is not one of `Code`'s."""
    cdef Py_ssize_t i, n = len(outs)
    code_col = np.empty(n, np.int16)
    pts_col = np.empty(n, np.int64)
    flags_col = np.empty(n, np.int8)
    cdef short[:] code = code_col
    cdef long long[:] pts = pts_col
    cdef signed char[:] flags = flags_col
    cdef object last = None  # outcomes are often one shared object: decode it once
    cdef short c = 0
    cdef long long p = 0
    cdef signed char f = 0
    for i in range(n):
        o = outs[i]
        if o is not last:
            decode_outcome(o, &c, &p, &f)
            last = o
        code[i] = c
        pts[i] = p
        flags[i] = f
    return code_col, pts_col, flags_col
