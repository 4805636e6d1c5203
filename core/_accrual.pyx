# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""The payment hot path, compiled: `pay` (per event) and `pay_columns` (a batch).

Both run one C function per payment over the engine's own `array.array` columns
(read and written in place through their C buffers, never copied), so the batch
path has exactly the per-event semantics by construction. Anything unusual
(a rejection, a foreign currency, a coupon, a held refund, a tier change, a new
expiry lot) is handed to the engine's Python methods, which stay the reference.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

from cpython cimport array
from libc.limits cimport LLONG_MAX

from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._inputs cimport _push, _valid_id  # a ledger row; the compiled id check
from core._keys cimport KeyIndex

cdef extern from *:
    """
    #define pm_prefetch_row(p) __builtin_prefetch((const void*)(p))
    """
    void pm_prefetch_row(const void* p) noexcept nogil

from core import limits
from core.rules import campaign_pct_memo
from core.types import Code, Outcome, Payment

cdef object _APPLIED = Code.APPLIED
cdef object _DUP = Outcome(Code.DUPLICATE, 0, "already applied")
cdef object _new = tuple.__new__
cdef long long AMOUNT_MAX = limits.AMOUNT_FEN_MAX
cdef long long POINTS_MAX = limits.POINTS_PER_INPUT_MAX
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef Py_ssize_t REF_MAX = limits.REF_LEN_MAX
cdef long long DAY_S = 86400
# Entry kinds and buckets (core.types.Entry / Bucket).
cdef long long E_EARN = 1, E_PENDING = 2
cdef long long B_AV = 0, B_PE = 1, B_SH = 2, B_SP = 3
DEF TIERS_MAX = 16
DEF PF = 9
DEF CACHED_POINTS = 2048
# Outcomes are immutable tuples: the common APPLIED ones are made once and shared.
# _CACHE[pts * 4 + offer * 2 + invite] for 0 <= pts < CACHED_POINTS.
cdef list _CACHE = [_new(Outcome, (_APPLIED, k >> 2, "", bool(k & 2), bool(k & 1)))
                    for k in range(CACHED_POINTS * 4)]


cdef inline object _applied(long long pts, bint offer, bint invite):
    if 0 <= pts < CACHED_POINTS:
        return _CACHE[pts * 4 + offer * 2 + invite]
    return _new(Outcome, (_APPLIED, pts, "", offer, invite))


cdef struct Prog:
    long long min_order
    long long camp_lo
    long long camp_hi
    long long off_s
    long long cap
    long long window_s
    bint spend_basis
    bint keep_lots
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


cdef class Kernel:
    """Typed references to one engine's structures (rebuilt after a snapshot load)."""

    cdef object eng
    cdef KeyIndex pay_index
    cdef dict mch_no, app_of, held
    cdef list homes, channels, memos, compiled, pending_heap, fxs
    cdef set invited
    cdef array.array pays, rows, fifo, scal
    cdef array.array prog, avail, pend, shad, shad_pend, qual, member, tier, root
    cdef array.array visit_ring, visit_n
    cdef long long visit_slots
    cdef Prog progs[64]
    cdef Merchant merchants[4096]
    cdef int nprogs, nmerchants
    cdef object acc

    def __init__(self, eng):
        cdef int pi, k
        cdef Prog* p
        self.eng = eng
        acc = eng.acc
        self.acc = acc
        self.pay_index = eng.pay_index
        self.pays = eng.pays
        self.rows = eng.ledger.rows
        self.fifo = eng.pending_fifo
        self.pending_heap = eng.pending_heap
        self.scal = eng.scalars
        self.held = eng.held
        self.invited = eng.invited
        self.app_of = eng.app_of
        self.prog, self.avail, self.pend = acc.prog, acc.avail, acc.pend
        self.shad, self.shad_pend, self.qual = acc.shad, acc.shad_pend, acc.qual
        self.member, self.tier, self.root = acc.member, acc.tier, acc.root
        self.visit_ring, self.visit_n = acc.visit_ring, acc.visit_n
        self.visit_slots = acc.visit_slots
        if len(eng.rules) > 64 or len(eng.mch) > 4096:
            raise ValueError("the compiled path takes at most 64 programs, 4096 merchants")
        self.compiled = list(eng.rules)
        self.fxs = [dict(c.fx) for c in eng.rules]
        self.homes = []
        self.nprogs = len(eng.rules)
        for pi, c in enumerate(eng.rules):
            p = &self.progs[pi]
            p.min_order = c.min_order_fen
            p.camp_lo = c.camp_lo
            p.camp_hi = c.camp_hi
            p.off_s = c.off_s
            p.cap = c.cap
            p.window_s = c.window_s
            p.spend_basis = c.spend_basis
            p.keep_lots = c.keep_member_lots
            p.ptj = c.program.pay_to_join
            p.ptj_min = c.program.pay_to_join_min_fen
            p.friend_k = c.friend_k
            p.friend_days = c.friend_days
            p.ntiers = len(c.tier_pct)
            for k in range(p.ntiers):
                p.tier_pct[k] = c.tier_pct[k]
                p.tier_next[k] = min(c.tier_next[k], LLONG_MAX)
            self.homes.append(c.home)
        self.mch_no = {}
        self.channels = []
        self.memos = []
        for k, (mchid, m) in enumerate(eng.mch.items()):
            self.mch_no[mchid] = k
            self.merchants[k].prog = m[0]
            self.merchants[k].rate = m[4]
            self.channels.append(m[1])
            self.memos.append(m[5])
        self.nmerchants = len(self.mch_no)


cdef object _pay_one(Kernel k, str txid, str appid, str mchid, str openid, long long total,
                     long long payer, long long t, str currency, tuple coupons, object p,
                     uint64_t htx=0, uint64_t hop=0, object app=None):
    """Apply one payment given by fields; `p` is the Payment (or None: built on demand);
    `htx` and `hop`, when not 0, are the ids' `KeyIndex.hash_ascii`, and `app`, when not
    None, is `app_of[appid]` (the batch pipeline has them already)."""
    cdef object eng = k.eng
    cdef Py_ssize_t i
    cdef long long a, pts, camp, mult, pending, basis, home, hour, n, base, day, kk
    cdef int pi, mno, member, tier
    cdef Prog* pr
    cdef object obj
    if htx == 0:  # hashed once here, for the lookup and for the insert below
        htx = k.pay_index.hash_ascii(txid)
    i = k.pay_index.find(txid, htx)
    if i >= 0:
        if k.pays.data.as_longlongs[i * PF + 3] != total:
            return eng._check_duplicate(_payment(p, txid, appid, mchid, openid, total, payer,
                                                 t, currency, coupons), i)
        return _DUP
    m = k.mch_no.get(mchid)
    if app is None:
        app = k.app_of.get(appid)
    if (m is None or app is None or total <= 0 or total > AMOUNT_MAX or t < T_MIN
            or t >= T_MAX or len(txid) == 0 or len(txid) > REF_MAX
            or (payer != -1 and (payer < 0 or payer > total))):
        return eng._check_payment(_payment(p, txid, appid, mchid, openid, total, payer, t,
                                           currency, coupons))
    mno = m
    pi = k.merchants[mno].prog
    if (<tuple>app)[0] != pi:
        return eng._check_payment(_payment(p, txid, appid, mchid, openid, total, payer, t,
                                           currency, coupons))
    pr = &k.progs[pi]
    basis = total if payer == -1 else payer
    if currency == k.homes[pi]:
        home = total
    else:
        fx = (<dict>k.fxs[pi]).get(currency)
        if fx is None or (<tuple>fx)[0] > 100_000_000:  # unknown, or a rate to check in Python
            checked = eng._check_payment(_payment(p, txid, appid, mchid, openid, total, payer,
                                                  t, currency, coupons))
            if type(checked) is Outcome:
                return checked
            home = checked[3]
            basis = checked[4]
        else:
            home = total * <long long>(<tuple>fx)[0] // <long long>(<tuple>fx)[1]
            basis = basis * <long long>(<tuple>fx)[0] // <long long>(<tuple>fx)[1]
    apps = <KeyIndex>(<tuple>app)[1]
    if hop == 0:
        hop = apps.hash_ascii(openid)
    i = apps.find(openid, hop)
    if i < 0:
        if not _valid_id(openid):
            return eng._check_payment(_payment(p, txid, appid, mchid, openid, total, payer, t,
                                               currency, coupons))
        a = k.acc.create(pi)
        apps.add(openid, a, hop)
    else:
        a = apps.value_at(i)
        if k.root.data.as_longlongs[a] != a:
            a = k.acc.find(a)
    member = k.member.data.as_schars[a]
    if basis < pr.min_order:
        pts = 0
    else:
        camp = 100
        if pr.camp_lo <= t < pr.camp_hi:
            hour = (t + pr.off_s) // 3600
            obj = (<dict>k.memos[mno]).get(hour)
            if obj is None or obj == 0:
                camp = campaign_pct_memo(k.compiled[pi], k.channels[mno], t)
            else:
                camp = obj
        tier = k.tier.data.as_schars[a]
        mult = k.merchants[mno].rate * (pr.tier_pct[tier] if member else 100) * camp
        if mult != 0 and basis > LLONG_MAX // mult:
            # exact, in Python ints, then held to the per-input bound
            pts = min((basis * <object>mult) // 100_000_000, POINTS_MAX + 1)
        else:
            pts = basis * mult // 100_000_000
        if pr.cap and pts > pr.cap:
            pts = pr.cap
        elif pts > POINTS_MAX:
            pts = POINTS_MAX
    i = k.pay_index.add(txid, 0, htx)  # payment numbers are the index's insertion order
    pending = pts if pr.window_s else 0
    n = len(k.pays)
    array.resize_smart(k.pays, n + PF)
    cdef long long* rec = k.pays.data.as_longlongs + n
    rec[0] = a; rec[1] = pi; rec[2] = t; rec[3] = total; rec[4] = basis; rec[5] = pts
    rec[6] = 0; rec[7] = 0; rec[8] = pending
    cdef long long cause = i << 3
    if pts:
        k.scal.data.as_longlongs[1] += pts
        if pr.window_s:
            if t + pr.window_s >= k.scal.data.as_longlongs[0]:
                n = len(k.fifo)
                array.resize_smart(k.fifo, n + 1)
                k.fifo.data.as_longlongs[n] = i
                k.scal.data.as_longlongs[0] = t + pr.window_s
            else:
                eng._push_pending(t + pr.window_s, i)
            if member:
                k.pend.data.as_longlongs[a] += pts
                _push(k.rows, E_PENDING, B_PE, a, pts, t, cause)
            else:
                k.shad_pend.data.as_longlongs[a] += pts
                _push(k.rows, E_PENDING, B_SP, a, pts, t, cause)
        elif member:
            k.avail.data.as_longlongs[a] += pts
            _push(k.rows, E_EARN, B_AV, a, pts, t, cause)
            if pr.keep_lots:
                eng._credit_lot(a, k.compiled[pi], t, pts)
        else:
            k.shad.data.as_longlongs[a] += pts
            _push(k.rows, E_EARN, B_SH, a, pts, t, cause)
            eng._credit_lot(a, k.compiled[pi], t, pts)
    cdef long long q = basis if pr.spend_basis else pts
    if q:
        k.qual.data.as_longlongs[a] += q
        if member and k.qual.data.as_longlongs[a] >= pr.tier_next[k.tier.data.as_schars[a]]:
            eng._upgrade(a, k.compiled[pi])
    if coupons:
        eng._redeem_coupons(a, _payment(p, txid, appid, mchid, openid, total, payer, t,
                                        currency, coupons), home)
    if k.held and txid in k.held:
        eng._release_held(txid, i)
    if member:
        return _applied(pts, False, False)
    cdef bint invite = False
    kk = pr.friend_k
    if kk:  # Friend Membership: is the k-th latest visit within d days?
        n = k.visit_n.data.as_ints[a]
        base = a * k.visit_slots
        day = (t + pr.off_s) // DAY_S
        k.visit_ring.data.as_ints[base + n % k.visit_slots] = day
        n += 1
        k.visit_n.data.as_ints[a] = n
        if (n >= kk and day - k.visit_ring.data.as_ints[base + (n - kk) % k.visit_slots]
                < pr.friend_days and a not in k.invited):
            invite = eng._invite(a)
    return _applied(pts, pr.ptj and basis >= pr.ptj_min, invite)


cdef object _payment(object p, str txid, str appid, str mchid, str openid, long long total,
                     long long payer, long long t, str currency, tuple coupons):
    if p is not None:
        return p
    return Payment(txid, appid, mchid, openid, total, t, payer, currency, coupon_ids=coupons)


# A Payment's fields are read from its slots by offset (the member descriptors' own
# offsets, taken once at import), which costs a load each instead of an attribute
# lookup through the type; anything but an exact Payment is read by attribute.
cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef tuple _FIELDS = ("transaction_id", "appid", "mchid", "openid", "total_fen", "time_s",
                      "payer_total_fen", "currency", "coupon_ids")
cdef Py_ssize_t _OFF[9]
for _i, _name in enumerate(_FIELDS):
    _OFF[_i] = (<PyMemberDescrObject*>Payment.__dict__[_name]).d_member.offset
cdef type _PAYMENT = Payment


cdef inline object _slot(object p, int i):
    cdef PyObject* v = (<PyObject**>((<char*><PyObject*>p) + _OFF[i]))[0]
    return None if v == NULL else <object>v  # None: an unset slot, refused below


def pay(eng, p):
    """Apply a successful payment `p` (see Engine.pay)."""
    cdef Kernel k = eng._kernel
    if k is None:
        k = eng._build_kernel()
    if type(p) is _PAYMENT:
        txid, appid, mchid, openid = _slot(p, 0), _slot(p, 1), _slot(p, 2), _slot(p, 3)
        total, t, payer = _slot(p, 4), _slot(p, 5), _slot(p, 6)
        currency, coupons = _slot(p, 7), _slot(p, 8)
    else:
        txid, appid, mchid, openid = p.transaction_id, p.appid, p.mchid, p.openid
        total, t, payer = p.total_fen, p.time_s, p.payer_total_fen
        currency, coupons = p.currency, p.coupon_ids
    if (type(total) is not int or type(payer) is not int or type(t) is not int
            or type(txid) is not str or type(appid) is not str
            or type(mchid) is not str or type(openid) is not str
            or type(currency) is not str or type(coupons) is not tuple
            or not (-AMOUNT_MAX <= total <= AMOUNT_MAX) or not (-1 <= payer <= AMOUNT_MAX)
            or not (0 <= t <= T_MAX)):
        dup = eng.pay_index.get(txid)
        if dup is not None:
            return eng._check_duplicate(p, dup)
        return eng._check_payment(p)
    for c in <tuple>coupons:
        if type(c) is not str:
            return eng._check_payment(p)
    return _pay_one(k, txid, appid, mchid, openid, total, payer, t, currency, coupons, p)


# The batch path walks rows in a pipeline so that the memory they need is already
# cached when a row is applied: AHEAD0 rows ahead it touches the row's id strings,
# AHEAD1 rows ahead it hashes the row's ids and touches
# their table slots, AHEAD2 rows ahead it reads the openid's slot and touches its entry,
# AHEAD3 rows ahead it touches the key bytes and the account's columns. These are
# hints only (prefetches): every row is then applied by the same `_pay_one` as `pay`.
DEF RING = 32
DEF AHEAD0 = 28
DEF AHEAD1 = 16
DEF AHEAD2 = 8
DEF AHEAD3 = 4


cdef inline void _prefetch_str(PyObject* s) noexcept:
    # a compact ASCII str: header and characters, two lines for ids up to 64 characters
    pm_prefetch_row(s)
    pm_prefetch_row(<char*>s + 64)


cdef inline void _prefetch_account(Kernel k, long long a) noexcept:
    pm_prefetch_row(k.root.data.as_longlongs + a)
    pm_prefetch_row(k.member.data.as_schars + a)
    pm_prefetch_row(k.tier.data.as_schars + a)
    pm_prefetch_row(k.qual.data.as_longlongs + a)
    pm_prefetch_row(k.pend.data.as_longlongs + a)
    pm_prefetch_row(k.shad_pend.data.as_longlongs + a)
    if k.visit_slots:
        pm_prefetch_row(k.visit_n.data.as_ints + a)
        pm_prefetch_row(k.visit_ring.data.as_ints + a * k.visit_slots)


def pay_columns(eng, cols):
    """Apply a batch of payments given as `PaymentColumns`, in order; returns the list of
    Outcomes. Exactly the per-event semantics: the same C function runs each row."""
    cdef Kernel k = eng._kernel
    if k is None:
        k = eng._build_kernel()
    cdef Py_ssize_t i, j, c, n = len(cols.transaction_id)
    cdef long long[:] totals = cols.total_fen
    cdef long long[:] payers = cols.payer_total_fen
    cdef long long[:] times = cols.time_s
    cdef list txids = cols.transaction_id, appids = cols.appid, mchids = cols.mchid
    cdef list openids = cols.openid, currencies = cols.currency, coupons = cols.coupon_ids
    cdef uint64_t htx[RING], hop[RING]
    cdef Py_ssize_t cand[RING]
    cdef PyObject* idx[RING]  # the openid's KeyIndex (owned by the engine), or NULL
    cdef PyObject* approw[RING]  # app_of[appid] (owned by the engine), or NULL
    cdef KeyIndex apps, pays = k.pay_index
    cdef uint64_t h
    cdef long long a, naccounts = len(k.root)
    for col in (appids, mchids, openids, currencies, coupons, cols.total_fen,
                cols.payer_total_fen, cols.time_s):
        if len(col) != n:  # rows are read below without bounds checks
            raise ValueError(f"payment columns differ in length: {len(col)} != {n}")
    out = [None] * n
    for i in range(-AHEAD0, n):
        j = i + AHEAD0
        if 0 <= j < n:
            _prefetch_str(PyList_GET_ITEM(txids, j))
            _prefetch_str(PyList_GET_ITEM(openids, j))
        j = i + AHEAD1
        if 0 <= j < n:
            x = txids[j]
            htx[j % RING] = hop[j % RING] = 0
            if type(x) is str:
                h = htx[j % RING] = pays.hash_ascii(x)
                if h:
                    pays.prefetch_slot(h)
            idx[j % RING] = NULL
            app = k.app_of.get(appids[j])
            approw[j % RING] = NULL if app is None else <PyObject*>app
            x = openids[j]
            if app is not None and type(x) is str:
                apps = <KeyIndex>(<tuple>app)[1]
                h = apps.hash_ascii(x)
                if h:
                    apps.prefetch_slot(h)
                    idx[j % RING] = <PyObject*>apps
                    hop[j % RING] = h
        j = i + AHEAD2
        if 0 <= j < n:
            cand[j % RING] = -1
            if idx[j % RING] != NULL:
                apps = <KeyIndex>idx[j % RING]
                c = apps.peek(hop[j % RING])
                cand[j % RING] = c
                if c >= 0:
                    apps.prefetch_entry(c)
        j = i + AHEAD3
        if 0 <= j < n and cand[j % RING] >= 0:
            apps = <KeyIndex>idx[j % RING]
            c = cand[j % RING]
            apps.prefetch_key(c)
            a = apps.value_at(c)
            if 0 <= a < naccounts:
                _prefetch_account(k, a)
        if i >= 0:
            app = None if approw[i % RING] == NULL else <object>approw[i % RING]
            out[i] = _pay_one(k, txids[i], appids[i], mchids[i], openids[i], totals[i],
                              payers[i], times[i], currencies[i], coupons[i], None,
                              htx[i % RING], hop[i % RING], app)
    return out
