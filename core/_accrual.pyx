# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""The payment hot path, compiled: `pay` (per event; core/_batch.pyx drives batches).

Both run one C function per payment over the engine's own `array.array` columns
(read and written in place through their C buffers, never copied), so the batch
path has exactly the per-event semantics by construction. Anything unusual
(a rejection, a foreign currency, a coupon, a held refund, a tier change, a new
expiry lot) is handed to the engine's Python methods, which stay the reference.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

from cpython cimport array
from libc.limits cimport LLONG_MAX

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8

from core._inputs cimport Kernel as InputsKernel
from core._inputs cimport _credit_member, _kernel as inputs_kernel, _push, _valid_id_bytes, \
    create_account
from core._keys cimport KeyIndex
from core._rows cimport P_PROG, P_TOTAL, PF, TIME_BASE_S, pay_append, room
from core._slots cimport slot_offset
from core._lots cimport add_c as _lots_add
from core._amap cimport amap_addr, amap_get, root_addr, root_of
from core._cols cimport col_add, col_at, col_get

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

cdef extern from *:
    """
    #define pm_prefetch_row(p) __builtin_prefetch((const void*)(p))
    """
    void pm_prefetch_row(const void* p) noexcept nogil

from core import limits
from core.payments import TIME_BASE_S as _TIME_BASE_S
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
# core/_rows.pxd spells the time base out for C: it must be core.payments' own.
if TIME_BASE_S != _TIME_BASE_S:
    raise ImportError(f"core/_rows.pxd TIME_BASE_S {TIME_BASE_S} != core.payments' {_TIME_BASE_S}")
# Entry kinds and buckets (core.types.Entry / Bucket).
cdef long long E_EARN = 1, E_PENDING = 2
cdef long long B_AV = 0, B_PE = 1, B_SH = 2, B_SP = 3
DEF CACHED_POINTS = 2048
# Outcomes are immutable tuples: the common APPLIED ones are made once and shared.
# _CACHE[pts * 4 + offer * 2 + invite] for 0 <= pts < CACHED_POINTS.
cdef list _CACHE = [_new(Outcome, (_APPLIED, k >> 2, "", bool(k & 2), bool(k & 1)))
                    for k in range(CACHED_POINTS * 4)]


cdef inline long long pay_total(Kernel k, Py_ssize_t i) noexcept:
    cdef int* q = k.pays.data.as_ints + i * PF
    if q[P_PROG] < 0:
        return k.pays_wide.data.as_longlongs[(-1 - <long long>q[P_PROG]) * PF + P_TOTAL]
    return q[P_TOTAL]


cdef object _applied(long long pts, bint offer, bint invite):
    if 0 <= pts < CACHED_POINTS:
        return _CACHE[pts * 4 + offer * 2 + invite]
    return _new(Outcome, (_APPLIED, pts, "", offer, invite))


cdef class Kernel:
    """Typed references to one engine's structures (rebuilt after a snapshot load)."""

    def __init__(self, eng):
        cdef int pi, k
        cdef Prog* p
        self.eng = eng
        acc = eng.acc
        self.acc = acc
        self.lots = acc.lots
        self.pay_index = eng.pay_index
        self.pays = eng.pays
        self.pays_wide = eng.pays_wide
        self.rows = eng.ledger.rows
        self.fifo = eng.pending_fifo
        self.pending_heap = eng.pending_heap
        self.scal = eng.scalars
        self.held = eng.held
        self.invited = eng.invited
        self.app_of = eng.app_of
        self.refresh()
        acc.kernels[Kernel] = self
        self.visit_ring, self.visit_n = acc.visit_ring, acc.visit_n
        self.visit_slots = acc.visit_slots
        self.lots_c = eng.compiled_lots
        self.inputs = inputs_kernel(eng)
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
            p.allow_neg = c.program.allow_negative
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
            self.merchants[k].memo_hour = -1
            self.merchants[k].memo_pct = 0
            self.channels.append(m[1])
            self.memos.append(m[5])
        self.nmerchants = len(self.mch_no)


    def refresh(self):
        """Take the account columns from the accounts again (Accounts.widen replaced one)."""
        acc = self.acc
        self.prog, self.bal, self.bal_pend, self.qual = acc.prog, acc.bal, acc.bal_pend, acc.qual
        self.member, self.tier, self.root = acc.member, acc.tier, acc.root


cdef Kernel kernel_of(eng):
    k = eng._kernel
    if k is None:
        k = eng._build_kernel()
    return <Kernel>k


cdef object _txid(Row* r):
    if r.txs != NULL:
        return <object>r.txs
    return PyUnicode_DecodeUTF8(<const char*>r.tx, r.txn, "surrogatepass")


cdef object _payment(Row* r):
    """The row as a `Payment`, for the Python methods that take one."""
    if r.p != NULL:
        return <object>r.p
    openid = <object>r.ops if r.ops != NULL else PyUnicode_DecodeUTF8(
        <const char*>r.op, r.opn, "surrogatepass")
    return Payment(_txid(r), <object>r.appid, <object>r.mchid, openid, r.total, r.t,
                   r.payer, <object>r.currency, coupon_ids=<object>r.coupons)


cdef long long _campaign_pct(Kernel k, Prog* pr, int pi, int mno, long long t):
    cdef long long hour = (t + pr.off_s) // 3600
    cdef Merchant* m = &k.merchants[mno]
    if m.memo_hour == hour:
        return m.memo_pct
    obj = (<dict>k.memos[mno]).get(hour)
    if obj is None or obj == 0:
        return campaign_pct_memo(k.compiled[pi], k.channels[mno], t)
    m.memo_hour = hour  # a remembered hour's percentage never changes
    m.memo_pct = obj
    return m.memo_pct


cdef object _pay_core(Kernel k, Row* r):
    """Apply the payment `r` (see Engine.pay); returns its Outcome."""
    cdef object eng = k.eng
    cdef KeyIndex pays = k.pay_index, apps
    cdef Py_ssize_t i
    cdef long long a, pts, mult, pending, basis, home, n, base, day, kk, product
    cdef long long total = r.total, payer = r.payer, t = r.t
    cdef int pi, mno = r.mno, member, tier
    cdef Prog* pr
    cdef InputsKernel ik
    if r.htx == 0:
        r.htx = pays.hash_bytes(r.tx, r.txn)
    i = pays._find(r.tx, r.txn, r.htx)
    if i >= 0:
        if pay_total(k, i) != total:
            return eng._check_duplicate(_payment(r), i)
        return _DUP
    if (mno < 0 or r.apps == NULL or total <= 0 or total > AMOUNT_MAX or t < T_MIN
            or t >= T_MAX or r.txchars == 0 or r.txchars > REF_MAX
            or (payer != -1 and (payer < 0 or payer > total))):
        return eng._check_payment(_payment(r))
    pi = k.merchants[mno].prog
    if r.aprog != pi:
        return eng._check_payment(_payment(r))
    pr = &k.progs[pi]
    basis = total if payer == -1 else payer
    currency = <object>r.currency
    home_ccy = k.homes[pi]
    if currency is home_ccy or currency == home_ccy:
        home = total
    else:
        fx = (<dict>k.fxs[pi]).get(currency)
        if fx is None or (<tuple>fx)[0] > 100_000_000:  # unknown, or a rate to check in Python
            checked = eng._check_payment(_payment(r))
            if type(checked) is Outcome:
                return checked
            home = checked[3]
            basis = checked[4]
        else:
            home = total * <long long>(<tuple>fx)[0] // <long long>(<tuple>fx)[1]
            basis = basis * <long long>(<tuple>fx)[0] // <long long>(<tuple>fx)[1]
    apps = <KeyIndex>r.apps
    if r.hop == 0:
        r.hop = apps.hash_bytes(r.op, r.opn)
    i = apps._find(r.op, r.opn, r.hop)
    if i < 0:
        if not _valid_id_bytes(r.op, r.opn):
            return eng._check_payment(_payment(r))
        a = create_account(k.acc, k.prog, pi)
        apps._insert(r.op, r.opn, r.hop, a)
    else:
        a = apps.value_at(i)
        if root_of(k.root, a) != a:
            a = k.root.find(a)
    member = k.member.data.as_schars[a]
    if basis < pr.min_order:
        pts = 0
    else:
        mult = 100
        if pr.camp_lo <= t < pr.camp_hi:
            mult = _campaign_pct(k, pr, pi, mno, t)
        tier = k.tier.data.as_schars[a]
        mult *= k.merchants[mno].rate * (pr.tier_pct[tier] if member else 100)
        if pm_mul_overflow(basis, mult, &product):
            # exact, in Python ints, then held to the per-input bound
            pts = min((basis * <object>mult) // 100_000_000, POINTS_MAX + 1)
        else:
            pts = product // 100_000_000
        if pr.cap and pts > pr.cap:
            pts = pr.cap
        elif pts > POINTS_MAX:
            pts = POINTS_MAX
    i = pays._insert(r.tx, r.txn, r.htx, 0)  # payment numbers are the index's insertion order
    pending = pts if pr.window_s else 0
    pay_append(k.pays, k.pays_wide, a, pi, t, total, basis, pts, pending)
    cdef long long cause = i << 3
    if pts:
        k.scal.data.as_longlongs[1] += pts
        if pr.window_s:
            if t + pr.window_s >= k.scal.data.as_longlongs[0]:
                n = len(k.fifo)
                room(k.fifo, n + 1)
                k.fifo.data.as_uints[n] = <unsigned int>i
                k.scal.data.as_longlongs[0] = t + pr.window_s
            else:
                eng._push_pending(t + pr.window_s, i)
            col_add(k.acc, k.bal_pend, "bal_pend", a, pts)  # pending or shadow pending
            _push(k.rows, E_PENDING, B_PE if member else B_SP, a, pts, t, cause)
        elif member:
            col_add(k.acc, k.bal, "bal", a, pts)
            _push(k.rows, E_EARN, B_AV, a, pts, t, cause)
            if pr.keep_lots:
                ik = <InputsKernel>k.inputs
                if k.lots_c and ik.progs[pi].fast:  # Engine._credit_lot, compiled (core/_inputs.pyx)
                    _credit_member(ik, pi, a, t, pts)
                else:
                    eng._credit_lot(a, k.compiled[pi], t, pts)
        else:
            col_add(k.acc, k.bal, "bal", a, pts)
            _push(k.rows, E_EARN, B_SH, a, pts, t, cause)
            _lots_add(k.lots, a, (t + pr.off_s) // DAY_S, pts)  # Engine._credit_lot, a shadow
    cdef long long q = basis if pr.spend_basis else pts
    if q:
        col_add(k.acc, k.qual, "qual", a, q)
        if member and col_get(k.qual, a) >= pr.tier_next[k.tier.data.as_schars[a]]:
            eng._upgrade(a, k.compiled[pi])
    if <tuple>r.coupons:
        eng._redeem_coupons(a, _payment(r), home)
    if k.held:
        txid = _txid(r)
        if txid in k.held:
            eng._release_held(txid, i)
    if member:
        return _applied(pts, False, False)
    cdef bint invite = False
    kk = pr.friend_k
    if kk:  # Friend Membership: is the k-th latest visit within d days?
        n = k.visit_n.data.as_uchars[a]  # modulo 2 * visit_slots, >= visit_slots once reached
        base = a * k.visit_slots
        day = (t + pr.off_s) // DAY_S  # 0 <= day < 2**16 (core.limits, core.accounts)
        k.visit_ring.data.as_ushorts[base + n % k.visit_slots] = <unsigned short>day
        n += 1
        if n == 2 * k.visit_slots:
            n = k.visit_slots
        k.visit_n.data.as_uchars[a] = <unsigned char>n
        if (n >= kk and day - k.visit_ring.data.as_ushorts[base + (n - kk) % k.visit_slots]
                < pr.friend_days and a not in k.invited):
            invite = eng._invite(a)
    return _applied(pts, pr.ptj and basis >= pr.ptj_min, invite)


cdef void _prefetch_account(Kernel k, long long a, int pi, AccountMap tail) noexcept:
    # The columns a payment of program `pi` (-1: unknown) to account `a` reads. `tail` is
    # the lots' tail map; a's entry there leads to its newest lot (`_prefetch_lot`).
    cdef Prog* pr = &k.progs[pi] if 0 <= pi < k.nprogs else NULL
    cdef const char* p = root_addr(k.root, a)
    if p != NULL:
        pm_prefetch_row(p)
    pm_prefetch_row(k.member.data.as_schars + a)
    pm_prefetch_row(k.tier.data.as_schars + a)
    pm_prefetch_row(col_at(k.qual, a))
    if pr == NULL or pr.window_s:
        pm_prefetch_row(col_at(k.bal_pend, a))
    else:
        pm_prefetch_row(col_at(k.bal, a))
        p = amap_addr(tail, a)
        if p != NULL:
            pm_prefetch_row(p)
    if k.visit_slots and (pr == NULL or pr.friend_k):
        pm_prefetch_row(k.visit_n.data.as_uchars + a)
        pm_prefetch_row(k.visit_ring.data.as_ushorts + a * k.visit_slots)


cdef void _prefetch_lot(Kernel k, long long a, AccountMap tail, array.array day,
                        array.array pts) noexcept:
    # Account a's newest lot (where a credit adds its points), once its tail entry is cached.
    cdef long long t
    if a < 0:
        return
    t = amap_get(tail, a)
    if 0 < t < len(day) and t < len(pts):
        pm_prefetch_row(day.data.as_ints + t)
        pm_prefetch_row(pts.data.as_longlongs + t)


# A Payment's fields are read from its slots by offset (core/_slots.pxd); anything but
# an exact Payment is read by attribute.
cdef tuple _FIELDS = ("transaction_id", "appid", "mchid", "openid", "total_fen", "time_s",
                      "payer_total_fen", "currency", "coupon_ids")
cdef Py_ssize_t _OFF[9]
for _i, _name in enumerate(_FIELDS):
    _OFF[_i] = slot_offset(Payment, _name)
cdef type _PAYMENT = Payment


cdef inline object _slot(object p, int i):
    cdef PyObject* v = (<PyObject**>((<char*><PyObject*>p) + _OFF[i]))[0]
    return None if v == NULL else <object>v  # None: an unset slot, refused below


def pay(eng, p):
    """Apply a successful payment `p` (see Engine.pay)."""
    cdef Kernel k = kernel_of(eng)
    cdef Row r
    if type(p) is _PAYMENT:
        txid, appid, mchid, openid = _slot(p, 0), _slot(p, 1), _slot(p, 2), _slot(p, 3)
        total, t, payer = _slot(p, 4), _slot(p, 5), _slot(p, 6)
        currency, coupons = _slot(p, 7), _slot(p, 8)
    else:
        txid, appid, mchid, openid = p.transaction_id, p.appid, p.mchid, p.openid
        total, t, payer = p.total_fen, p.time_s, p.payer_total_fen
        currency, coupons = p.currency, p.coupon_ids
    cdef int o1 = 1, o2 = 1, o3 = 1  # integer overflow flags (1: not read yet)
    cdef long long ctotal = 0, cpayer = 0, ct = 0
    if type(total) is int and type(payer) is int and type(t) is int:
        ctotal = PyLong_AsLongLongAndOverflow(total, &o1)
        cpayer = PyLong_AsLongLongAndOverflow(payer, &o2)
        ct = PyLong_AsLongLongAndOverflow(t, &o3)
    if (o1 or o2 or o3 or type(txid) is not str or type(appid) is not str
            or type(mchid) is not str or type(openid) is not str
            or type(currency) is not str or type(coupons) is not tuple
            or not (-AMOUNT_MAX <= ctotal <= AMOUNT_MAX) or not (-1 <= cpayer <= AMOUNT_MAX)
            or not (0 <= ct <= T_MAX)):
        dup = eng.pay_index.get(txid)
        if dup is not None:
            return eng._check_duplicate(p, dup)
        return eng._check_payment(p)
    for c in <tuple>coupons:
        if type(c) is not str:
            return eng._check_payment(p)
    r.total, r.payer, r.t = ctotal, cpayer, ct
    r.p = <PyObject*>p
    keep = fill_ids(&r, txid, openid)  # holds the UTF-8 copies of non-ASCII ids
    fill_names(k, &r, appid, mchid, currency, coupons)
    return _pay_core(k, &r)


cdef object fill_ids(Row* r, str txid, str openid):
    """Point `r` at the ids' UTF-8 bytes; returns what must stay alive while `r` is used."""
    cdef object keep = None
    r.txs, r.ops = <PyObject*>txid, <PyObject*>openid
    r.txchars = PyUnicode_GET_LENGTH(txid)
    r.htx = r.hop = 0
    if PyUnicode_IS_ASCII(txid):
        r.tx, r.txn = <const unsigned char*>PyUnicode_DATA(txid), r.txchars
    else:
        keep = txid.encode("utf-8", "surrogatepass")
        r.tx, r.txn = <const unsigned char*>PyBytes_AS_STRING(keep), len(keep)
    if PyUnicode_IS_ASCII(openid):
        r.op, r.opn = <const unsigned char*>PyUnicode_DATA(openid), PyUnicode_GET_LENGTH(openid)
    else:
        b = openid.encode("utf-8", "surrogatepass")
        keep = (keep, b)
        r.op, r.opn = <const unsigned char*>PyBytes_AS_STRING(b), len(b)
    return keep


cdef void fill_names(Kernel k, Row* r, object appid, object mchid, object currency,
                     object coupons):
    """Resolve the row's app and merchant through the engine's maps."""
    m = k.mch_no.get(mchid)
    r.mno = -1 if m is None else <int>m
    app = k.app_of.get(appid)
    if app is None:
        r.apps, r.aprog = NULL, -1
    else:
        r.apps, r.aprog = <PyObject*>(<tuple>app)[1], (<tuple>app)[0]
    r.appid, r.mchid = <PyObject*>appid, <PyObject*>mchid
    r.currency, r.coupons = <PyObject*>currency, <PyObject*>coupons
