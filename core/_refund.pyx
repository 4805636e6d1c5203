# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""Refunds compiled: `refund` (see Engine.refund).

The common case runs in C over the payment's record (core.payments' layout) and the
account's columns, with the payment path's kernel (core/_accrual.pyx); anything else
goes, before any change, to the Python reference `Engine._refund_py`.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

from cpython cimport array
from cpython.ref cimport PyObject

from core._accrual cimport Kernel, Prog, kernel_of
from core._amap cimport root_of
from core._rows cimport (P_ACCT, P_BASIS, P_PENDING, P_POINTS, P_PROG, P_REFUNDED, P_REVERSED,
                         P_TOTAL, PF)
from core._slots cimport slot_offset
from core._cols cimport col_add, col_get, col_set
from core._inputs cimport _push

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1

from core import limits
from core.types import Code, Outcome, Refund

cdef object _APPLIED = Code.APPLIED
cdef object _new = tuple.__new__
cdef long long AMOUNT_MAX = limits.AMOUNT_FEN_MAX
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef Py_ssize_t REF_MAX = limits.REF_LEN_MAX
cdef long long B_AV = 0, B_PE = 1, B_SH = 2, B_SP = 3  # core.types.Bucket


# A Refund's fields by slot offset, as a Payment's above.
cdef tuple _RFIELDS = ("refund_id", "transaction_id", "mchid", "refund_fen", "total_fen",
                       "time_s", "out_refund_no", "appid", "openid")
cdef Py_ssize_t _ROFF[9]
for _i, _name in enumerate(_RFIELDS):
    _ROFF[_i] = slot_offset(Refund, _name)
cdef type _REFUND = Refund
DEF E_REVERSE = 6  # core.types.Entry.REVERSE
DEF CAUSE_REFUND = 1  # core.ledger.CAUSE_REFUND


cdef inline object _rslot(object r, int i):
    cdef PyObject* v = (<PyObject**>((<char*><PyObject*>r) + _ROFF[i]))[0]
    return None if v == NULL else <object>v


def refund(eng, r):
    """Apply a successful refund `r` (see Engine.refund). The common case (an exact
    Refund, well typed and in range, of an applied payment of its merchant's program,
    its refund_id new, no openid given, within the payment's total) runs here; anything
    else goes, before any change, to the Python reference `Engine._refund_py`."""
    cdef Kernel k = kernel_of(eng)
    cdef int o1 = 1, o2 = 1, o3 = 1
    cdef long long fen = 0, total = 0, t = 0, tot, refunded, due, rev, from_pend, rest
    cdef long long have, take, basis, q, a, cause, b
    cdef Py_ssize_t i
    cdef object mno
    cdef bint member
    cdef array.array bal
    cdef Prog* pr
    cdef int* pays
    if type(r) is not _REFUND:
        return eng._refund_py(r)
    rid, txid, mchid = _rslot(r, 0), _rslot(r, 1), _rslot(r, 2)
    vfen, vtotal, vt = _rslot(r, 3), _rslot(r, 4), _rslot(r, 5)
    if type(vfen) is int and type(vtotal) is int and type(vt) is int:
        fen = PyLong_AsLongLongAndOverflow(vfen, &o1)
        total = PyLong_AsLongLongAndOverflow(vtotal, &o2)
        t = PyLong_AsLongLongAndOverflow(vt, &o3)
    if (o1 or o2 or o3 or type(rid) is not str or type(txid) is not str
            or type(mchid) is not str or type(_rslot(r, 6)) is not str
            or type(_rslot(r, 7)) is not str or type(_rslot(r, 8)) is not str
            or <str>_rslot(r, 8) or not 0 < fen <= total <= AMOUNT_MAX
            or not T_MIN <= t < T_MAX or not 0 < len(<str>rid) <= REF_MAX
            or not 0 < len(<str>txid) <= REF_MAX):
        return eng._refund_py(r)
    idem = eng.idem
    if t < <long long>idem.horizon_s or rid in <dict>idem.refunds:
        return eng._refund_py(r)
    mno = k.mch_no.get(mchid)
    if mno is None:
        return eng._refund_py(r)
    i = k.pay_index.find(txid)
    if i < 0:
        return eng._refund_py(r)  # held
    b = i * PF
    pays = k.pays.data.as_ints
    pi = pays[b + P_PROG]
    if pi < 0:
        # A record held wide (core.payments): its products may leave int64; in Python.
        return eng._refund_py(r)
    tot = pays[b + P_TOTAL]
    refunded = pays[b + P_REFUNDED] + fen
    if k.merchants[<int>mno].prog != pi or total != tot or refunded > tot:
        return eng._refund_py(r)
    a = pays[b + P_ACCT]
    if root_of(k.root, a) != a:
        a = k.root.find(a)
    pr = &k.progs[pi]
    # Cumulative floor: after refunds totalling R of T, floor(P*R/T) points are due back.
    due = pays[b + P_POINTS] * refunded // tot
    rev = due - pays[b + P_REVERSED]
    # Both fit the narrow record: refunded <= its total, due <= its points.
    pays[b + P_REFUNDED] = <int>refunded
    pays[b + P_REVERSED] = <int>due
    refund_ids = eng.refund_ids
    (<list>refund_ids).append(rid)
    cause = (len(refund_ids) - 1) << 3 | CAUSE_REFUND
    if rev:
        member = k.member.data.as_schars[a]
        from_pend = min(rev, <long long>pays[b + P_PENDING])
        if from_pend:
            pays[b + P_PENDING] -= <int>from_pend
            col_add(k.acc, k.bal_pend, "bal_pend", a, -from_pend)  # pending or shadow pending
            _push(k.rows, E_REVERSE, B_PE if member else B_SP, a, -from_pend, t, cause)
        rest = rev - from_pend
        if rest:
            have = col_get(k.bal, a)  # available or shadow points
            take = rest if (pr.allow_neg and member) else min(rest, max(have, 0))
            if rest - take:
                eng.shortfall += rest - take
            if take:
                col_set(k.acc, k.bal, "bal", a, have - take)
                _push(k.rows, E_REVERSE, B_AV if member else B_SH, a, -take, t, cause)
                k.lots.take(a, take)
    if pr.spend_basis:
        basis = pays[b + P_BASIS]
        q = basis * refunded // tot - basis * (refunded - fen) // tot
    else:
        q = rev
    if q:
        col_add(k.acc, k.qual, "qual", a, -q)
    idem.add_refund(rid, (txid, vfen), vt)
    return _new(Outcome, (_APPLIED, -rev, "", False, False))
