# cython: language_level=3, boundscheck=False, wraparound=False
"""The lean core of `pay_block` (core/_batch.pyx): the common payment applied straight
from its row's C fields, with what the block shares worked out once by the driver.

`lean` makes every check before it changes anything; any other row comes back SLOW,
unchanged, for `_pay_core` (core/_accrual.pyx). After the checks its steps are
`_pay_core`'s in the same order, so both give the same outcomes and state
(tests/test_batch_lean.py compares them, and counts the rows each took).
"""

cimport cython
from cpython cimport array
from cpython.object cimport Py_SIZE
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._accrual cimport Kernel, Prog, Row, _applied, pm_mul_overflow
from core._amap cimport root_of_at
from core._cols cimport col_add_at, col_get_at
from core._inputs cimport Kernel as InputsKernel
from core._inputs cimport _credit_member, _valid_id_bytes, create_account, outcome_flags
from core._keys cimport KeyIndex
from core._lots cimport add_c as _lots_add
from core._rows cimport pay_append, push_row, room
from core._sink cimport Sink, put_outcome, sink_write

from core import limits
from core.types import Code

# The lean core of `pay_block`: the common payment (a known merchant and app of one
# program, the program's home currency, no coupon, no held refund, a new transaction id,
# an account that is its own root or new, a campaign hour already remembered, points that
# fit) applied straight from the row's C fields, with what the block shares worked out once.
# Anything else leaves it before it changes anything and goes to `_pay_core`, so that the
# two give the same outcomes and state by the order of their steps, which is the same.
cdef long long AMOUNT_MAX = limits.AMOUNT_FEN_MAX
cdef long long POINTS_MAX = limits.POINTS_PER_INPUT_MAX
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef Py_ssize_t REF_MAX = limits.REF_LEN_MAX
cdef short APPLIED_INDEX = tuple(Code).index(Code.APPLIED)
cdef long long E_EARN = 1, E_PENDING = 2  # core.types.Entry
cdef long long B_AV = 0, B_PE = 1, B_SH = 2, B_SP = 3  # core.types.Bucket
cdef long long DAY_S = 86400


cdef inline long long* _ll(PyObject* o) noexcept:
    # An array's items, through a borrowed reference (no reference counting per row).
    return (<array.array>o).data.as_longlongs


cdef inline signed char* _sc(PyObject* o) noexcept:
    return (<array.array>o).data.as_schars


@cython.cdivision(True)  # C's / and %: every division below is of non-negatives by non-zero
cdef long long lean(Kernel k, Row* r, uint64_t homes, array.array pays, array.array wide,
                     array.array rows, array.array fifo) except -2:
    """Apply payment `r` if it is a common one (see above): its outcome's points * 4 +
    offer * 2 + invite; else SLOW, nothing changed. `homes`: bit pi set when the row's
    currency is program pi's home currency; `pays` .. `fifo`: k's own arrays of those
    names (held by the caller, which saves their reference counting per row)."""
    cdef Py_ssize_t i
    cdef long long a, pts, mult, pending, basis, n, base, day, kk, hour, q, product
    cdef long long total = r.total, payer = r.payer, t = r.t
    cdef int pi, mno = r.mno, member, tier
    cdef Prog* pr
    cdef InputsKernel ik
    cdef bint invite = False, offer
    cdef unsigned short* ring
    if (mno < 0 or r.apps == NULL or total <= 0 or total > AMOUNT_MAX or t < T_MIN
            or t >= T_MAX or r.txchars == 0 or r.txchars > REF_MAX
            or (payer != -1 and (payer < 0 or payer > total)) or k.held):
        return SLOW
    pi = k.merchants[mno].prog
    if r.aprog != pi or not (homes >> pi) & 1:
        return SLOW
    pr = &k.progs[pi]
    if t + pr.off_s < 0:
        return SLOW  # (never: times are past 2000) the divisions below are of non-negatives
    if k.pay_index._find(r.tx, r.txn, r.htx) >= 0:
        return SLOW  # a duplicate
    basis = total if payer == -1 else payer
    if r.hop == 0:
        r.hop = (<KeyIndex>r.apps).hash_bytes(r.op, r.opn)
    i = (<KeyIndex>r.apps)._find(r.op, r.opn, r.hop)
    if i < 0:
        if not _valid_id_bytes(r.op, r.opn):
            return SLOW
        a, member, tier = -1, 0, 0  # a new account, made below
    else:
        a = (<KeyIndex>r.apps).value_at(i)
        if root_of_at(<PyObject*>k.root, a) != a:
            return SLOW  # merged away
        member, tier = _sc(<PyObject*>k.member)[a], _sc(<PyObject*>k.tier)[a]
    if basis < pr.min_order:
        pts = 0
    else:
        mult = 100
        if pr.camp_lo <= t < pr.camp_hi:
            hour = (t + pr.off_s) // 3600
            if k.merchants[mno].memo_hour != hour:  # as _accrual's _campaign_pct
                pct = (<dict>k.memos[mno]).get(hour)
                if pct is None or pct == 0:
                    return SLOW  # an hour not remembered yet: looked up in Python
                k.merchants[mno].memo_hour = hour
                k.merchants[mno].memo_pct = pct
            mult = k.merchants[mno].memo_pct
        mult *= k.merchants[mno].rate * (pr.tier_pct[tier] if member else 100)
        if mult < 0 or pm_mul_overflow(basis, mult, &product):  # basis >= 0
            return SLOW
        pts = product // 100_000_000
        if pr.cap and pts > pr.cap:
            pts = pr.cap
        elif pts > POINTS_MAX:
            pts = POINTS_MAX
    if pr.friend_k and not member and k.visit_slots == 0:
        return SLOW  # (never: Accounts keeps visit_slots for friend_k) no C modulo by 0
    if pts:
        if pr.window_s:
            if t + pr.window_s < _ll(<PyObject*>k.scal)[0]:
                return SLOW  # behind the pending fifo: to the heap
        elif member and pr.keep_lots and not (k.lots_c
                                              and (<InputsKernel>k.inputs).progs[pi].fast):
            return SLOW
    # From here on the payment is applied, step by step as `_pay_core` does.
    if a < 0:
        a = create_account(k.acc, k.prog, pi)
        (<KeyIndex>r.apps)._insert(r.op, r.opn, r.hop, a)
    i = k.pay_index._insert(r.tx, r.txn, r.htx, 0)
    pending = pts if pr.window_s else 0
    pay_append(pays, wide, a, pi, t, total, basis, pts, pending)
    cdef long long cause = i << 3
    if pts:
        _ll(<PyObject*>k.scal)[1] += pts
        if pr.window_s:
            n = Py_SIZE(fifo)
            room(fifo, n + 1)
            fifo.data.as_uints[n] = <unsigned int>i
            _ll(<PyObject*>k.scal)[0] = t + pr.window_s
            col_add_at(<PyObject*>k.acc, <PyObject*>k.bal_pend, "bal_pend", a, pts)
            push_row(rows, E_PENDING, B_PE if member else B_SP, a, pts, t, cause)
        elif member:
            col_add_at(<PyObject*>k.acc, <PyObject*>k.bal, "bal", a, pts)
            push_row(rows, E_EARN, B_AV, a, pts, t, cause)
            if pr.keep_lots:
                _credit_member(<InputsKernel>k.inputs, pi, a, t, pts)
        else:
            col_add_at(<PyObject*>k.acc, <PyObject*>k.bal, "bal", a, pts)
            push_row(rows, E_EARN, B_SH, a, pts, t, cause)
            _lots_add(k.lots, a, (t + pr.off_s) // DAY_S, pts)
    q = basis if pr.spend_basis else pts
    if q:
        col_add_at(<PyObject*>k.acc, <PyObject*>k.qual, "qual", a, q)
        if (member and col_get_at(<PyObject*>k.qual, a)
                >= pr.tier_next[_sc(<PyObject*>k.tier)[a]]):
            k.eng._upgrade(a, k.compiled[pi])
    if member:
        return pts * 4
    kk = pr.friend_k
    if kk:  # Friend Membership, as `_pay_core`
        n = (<unsigned char*>_sc(<PyObject*>k.visit_n))[a]
        base = a * k.visit_slots
        day = (t + pr.off_s) // DAY_S
        ring = <unsigned short*>_sc(<PyObject*>k.visit_ring)
        ring[base + n % k.visit_slots] = <unsigned short>day
        n += 1
        if n == 2 * k.visit_slots:
            n = k.visit_slots
        (<unsigned char*>_sc(<PyObject*>k.visit_n))[a] = <unsigned char>n
        if (n >= kk and day - ring[base + (n - kk) % k.visit_slots]
                < pr.friend_days and a not in k.invited):
            invite = k.eng._invite(a)
    offer = pr.ptj and basis >= pr.ptj_min
    return pts * 4 + offer * 2 + invite


cdef unsigned long long _lean_rows = 0  # payments `lean` applied, since the import


def lean_rows():
    """How many payments the lean core of `pay_block` applied (not handed to `_pay_core`)
    since core._batch was imported: for tests of the split."""
    return _lean_rows


cdef int put_lean(list out, Py_ssize_t i, Sink* sink, long long res) except -1:
    """Row `i`'s APPLIED outcome, `res` from `_lean`."""
    global _lean_rows
    _lean_rows += 1
    if sink == NULL:
        put_outcome(out, i, NULL, _applied(res >> 2, (res >> 1) & 1, res & 1))
    else:
        sink_write(sink, i, APPLIED_INDEX, res >> 2, outcome_flags((res >> 1) & 1, res & 1))
    return 0
