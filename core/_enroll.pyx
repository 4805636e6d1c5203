# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""Enrollments, compiled: `enroll` and its column forms (`Engine.enroll*`).

The kernel, the lot helpers and the fallback rule are core/_inputs.pyx's: the common
case runs in C, anything unusual goes to `Engine._enroll_py` (the reference) before
anything has changed. Bindings are core/_identity.pyx's.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

import heapq

from cpython cimport array
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._inputs cimport (
    AHEAD1, B_AV, B_PE, B_SH, B_SP, CAUSE_OTHER, E_BONUS, E_CONVERT, E_FORFEIT, RING, Ahead,
    Kernel, Prog, _credit_member, _expiry_key, _find, _get, _kernel, _lots_pop_oldest, _push,
    _upgrade, _valid_id, ahead_hash, ahead_later, applied, create_account, set_unionid)
from core._amap cimport AccountMap, amap_get
from core._cols cimport col_add, col_get, col_set
from core._keys cimport KeyIndex
from core._sink cimport Sink, put_outcome, sink_open

cdef extern from "Python.h":
    PyObject* PyList_GET_ITEM(object lst, Py_ssize_t i)

from core import limits
from core.types import Code, Enrollment, reject

cdef object _MEMBER_ALREADY = reject(Code.DUPLICATE, "already a member")
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef object T_MIN_O = limits.TIME_S_MIN, T_MAX_O = limits.TIME_S_MAX
cdef long long DAY_S = 86400
cdef object _heappush = heapq.heappush

def enroll(eng, e):
    """Enroll a shopper in program `e.program`, converting shadow points and adding the
    welcome bonus; an existing member gives DUPLICATE."""
    cdef Kernel k = _kernel(eng)
    if type(e) is not Enrollment:
        return eng._enroll_py(e)
    return _enroll(k, eng, e, e.program, e.time_s, 0, e.unionid, e.appid, e.openid, 0)


def enroll_columns(eng, list program, time_s, list unionid):
    """Apply enrollments by unionid given as columns, in order; returns the list of
    Outcomes. Exactly `enroll` of each row's `Enrollment`, which is made only when the row
    goes to the Python reference. Raises ValueError on columns of different lengths."""
    return _enroll_rows(eng, program, time_s, unionid, NULL)


def enroll_columns_into(eng, list program, time_s, list unionid, code, points, flags, at):
    """`enroll_columns`, writing row i's outcome into the columns at position at[i], as
    `bind_columns_into` does."""
    cdef Sink sink
    sink_open(&sink, code, points, flags, at, len(program), "enrollments")
    _enroll_rows(eng, program, time_s, unionid, &sink)


cdef object _enroll_rows(eng, list program, time_s, list unionid, Sink* sink):
    """enroll_columns' rows, their outcomes in a list, or into `sink` (returning None)."""
    cdef Kernel k = _kernel(eng)
    cdef long long[:] times = time_s
    cdef Py_ssize_t i, j, n = len(program)
    if not len(unionid) == times.shape[0] == n:
        raise ValueError("enrollment columns differ in length")
    cdef Ahead ring[RING]
    # alive while we prefetch (the map may replace its keys as it grows)
    cdef array.array uno = (<AccountMap>k.acc.union_no).keys
    cdef AccountMap tail = k.lots.tail
    cdef array.array nxt = k.lots.nxt
    cdef object prog, last_prog = None, unions = None
    out = [None] * (n if sink == NULL else 1)
    for i in range(-AHEAD1, n):
        j = i + AHEAD1
        if j < n:
            ring[j % RING].ix, ring[j % RING].h = NULL, 0
            prog = <object>PyList_GET_ITEM(program, j)
            if prog is not last_prog:
                last_prog, unions = prog, None
                pi = k.prog_index.get(prog) if type(prog) is str else None
                if pi is not None:
                    unions = k.by_union[pi]
            uid = <object>PyList_GET_ITEM(unionid, j)
            if unions is not None and type(uid) is str:
                ahead_hash(&ring[j % RING], <KeyIndex>unions, <str>uid)
        ahead_later(k, ring, i, n, uno, tail, nxt)
        if i >= 0:
            o = _enroll(k, eng, None, program[i], None, times[i], unionid[i], "", "",
                        ring[i % RING].h)
            put_outcome(out, i, sink, o)
    return out if sink == NULL else None


cdef object _enroll_ref(eng, e, program, tt, unionid, appid, openid):
    if e is None:
        e = Enrollment(program, tt, unionid, appid, openid)
    return eng._enroll_py(e)


cdef object _enroll(Kernel k, eng, e, program, tt, long long t, unionid, appid, openid,
                    uint64_t hu):
    """`enroll` of enrollment `e`, or of the enrollment with these fields when `e` is None;
    the time is `tt`, or `t` when `tt` is None (a column's); `hu`, when not 0, is the
    unionid's hash_ascii."""
    if tt is None:
        if not T_MIN <= t < T_MAX:
            return _enroll_ref(eng, e, program, t, unionid, appid, openid)
    elif type(tt) is not int or not T_MIN_O <= tt < T_MAX_O:
        return _enroll_ref(eng, e, program, tt, unionid, appid, openid)
    else:
        t = tt
    if (type(program) is not str or type(unionid) is not str
            or type(appid) is not str or type(openid) is not str):
        return _enroll_ref(eng, e, program, t, unionid, appid, openid)
    pi_obj = k.prog_index.get(program)
    if pi_obj is None or not k.progs[<int>pi_obj].fast:
        return _enroll_ref(eng, e, program, t, unionid, appid, openid)
    cdef int pi = pi_obj
    cdef Prog* p = &k.progs[pi]
    cdef long long a
    # _resolve, inline: by unionid, or by (appid, openid)
    if not unionid and (not appid or not openid or k.app_prog.get(appid) != pi):
        return _enroll_ref(eng, e, program, t, unionid, appid, openid)
    cdef str key = unionid or openid
    cdef KeyIndex ix = <KeyIndex>(k.by_union[pi] if unionid else k.by_app[appid])
    cdef Py_ssize_t i = ix.find(key, hu if unionid else 0)
    if i >= 0:
        a = _find(k, ix.value_at(i))
    elif not _valid_id(key):
        return _enroll_ref(eng, e, program, t, unionid, appid, openid)
    else:
        a = create_account(k.acc, k.prog, pi)
        if unionid:
            set_unionid(k, a, ix, key, hu)
        else:
            ix.add(key, a)
    if k.member.data.as_schars[a]:
        return _MEMBER_ALREADY
    k.notes.append(("enroll ", program, " ", unionid or openid))  # Ledger.note
    cdef long long cause = (len(k.notes) - 1) << 3 | CAUSE_OTHER
    cdef long long converted = convert(k, pi, a, t, cause)
    cdef long long bonus = p.bonus if t >= p.bonus_from_s else 0
    if bonus:
        col_add(k.acc, k.bal, "bal", a, bonus)
        _push(k.rows, E_BONUS, B_AV, a, bonus, t, cause)
        k.scal.data.as_longlongs[1] += bonus
        if p.keep_lots:
            _credit_member(k, pi, a, t, bonus)
    if p.enroll_coupons:
        for stock in k.eng.programs[pi].coupons.values():
            if stock.trigger == "enroll":
                k.eng._issue(f"enroll-{stock.stock_id}-{a}", a, pi, stock.stock_id, t)
    k.counts["enrollments"] = k.counts.get("enrollments", 0) + 1
    return applied(converted + bonus)


cdef long long convert(Kernel k, int pi, long long a, long long t, long long cause) except -1:
    """MembershipMixin._convert: make shadow account `a` a member; returns points converted."""
    cdef Prog* p = &k.progs[pi]
    cdef long long cutoff = (t + p.off_s) // DAY_S - p.lookback_days
    cdef AccountMap tail = k.lots.tail
    cdef array.array nxt = k.lots.nxt
    cdef int* days = k.lot_day.data.as_ints
    cdef long long* pts = k.lot_pts.data.as_longlongs
    cdef long long last = amap_get(tail, a), j = last, old = 0, total = 0
    while j:
        j = _get(nxt, j)
        total += pts[j]
        if days[j] < cutoff:
            old += pts[j]
        if j == last:
            break
    # A shadow account's `bal` holds its shadow points, a member's its available points:
    # the shadow points kept become available, the shadow pending points (bal_pend) pending.
    cdef long long shad = col_get(k.bal, a), keep = shad - old
    if not (keep >= 0 and total == shad):
        raise AssertionError("shadow lots out of step")
    if old:
        _push(k.rows, E_FORFEIT, B_SH, a, -old, t, cause)
    if keep:
        _push(k.rows, E_CONVERT, B_SH, a, -keep, t, cause)
        _push(k.rows, E_CONVERT, B_AV, a, keep, t, cause)
    if keep and p.keep_lots:
        while amap_get(tail, a) and days[_get(nxt, amap_get(tail, a))] < cutoff:
            _lots_pop_oldest(k, tail, nxt, a)
        last = j = amap_get(tail, a)
        while j:
            j = _get(nxt, j)
            _heappush(k.expiry_heap, _expiry_key(k, pi, days[j], a))
            if j == last:
                break
    else:
        while amap_get(tail, a):
            _lots_pop_oldest(k, tail, nxt, a)
    if old:
        col_set(k.acc, k.bal, "bal", a, keep)  # 0 <= keep < shad: fits the column
    cdef long long sp = col_get(k.bal_pend, a)
    if sp:
        _push(k.rows, E_CONVERT, B_SP, a, -sp, t, cause)
        _push(k.rows, E_CONVERT, B_PE, a, sp, t, cause)
    k.member.data.as_schars[a] = 1
    _upgrade(k, a, p)
    if k.invited:
        k.invited.discard(a)
    return keep
