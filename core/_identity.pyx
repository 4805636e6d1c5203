# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""Bindings (with merges), compiled: `bind` and its column forms (`Engine.bind*`).

The kernel, the lot helpers and the fallback rule are core/_inputs.pyx's: the common
case runs in C, anything unusual goes to `Engine._bind_py` (the reference) before
anything has changed. Enrollments are core/_enroll.pyx's.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

import heapq

from cpython cimport array
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._inputs cimport (
    AHEAD1, AHEAD2, AHEAD3, B_AV, B_PE, B_SH, B_SP, CAUSE_OTHER, E_MERGE_IN, E_MERGE_OUT, RING,
    Ahead, Kernel, Prog, _expiry_key, _find, _get, _kernel, _lots_pop_oldest, _push, _upgrade,
    _valid_id, ahead_account, ahead_hash, ahead_later, ahead_peek, create_account, set_unionid)
from core._amap cimport AccountMap, amap_get
from core._enroll cimport convert
from core._cols cimport col_add, col_get, col_set
from core._keys cimport KeyIndex
from core._lots cimport add_c
from core._sink cimport Sink, put_outcome, sink_open
from libc.stdlib cimport free, malloc

cdef extern from "Python.h":
    PyObject* PyList_GET_ITEM(object lst, Py_ssize_t i)

from core import limits
from core.types import DUPLICATE, Binding, Code, Outcome

cdef object _APPLIED_CODE = Code.APPLIED
cdef object _BOUND = Outcome(Code.APPLIED, 0, "")
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef object T_MIN_O = limits.TIME_S_MIN, T_MAX_O = limits.TIME_S_MAX
cdef object _heappush = heapq.heappush




def bind(eng, b):
    """Bind (appid, openid) to unionid, merging its history into the unionid's account.

    Binding an openid already bound to another unionid is OPENID_BOUND_ELSEWHERE.
    """
    cdef Kernel k = _kernel(eng)
    if type(b) is not Binding:
        return eng._bind_py(b)
    return _bind(k, eng, b, b.appid, b.openid, b.unionid, b.time_s, 0, NULL, NULL)


def bind_columns(eng, list appid, list openid, list unionid, time_s):
    """Apply bindings given as columns, in order; returns the list of Outcomes. Exactly
    `bind` of each row's `Binding`, which is made only when the row goes to the Python
    reference. Raises ValueError on columns of different lengths."""
    return _bind_rows(eng, appid, openid, unionid, time_s, NULL)


def bind_columns_into(eng, list appid, list openid, list unionid, time_s, code, points,
                      flags, at):
    """`bind_columns`, writing row i's outcome into position at[i] of the columns `code`
    (int16: the index of its code in tuple(Code)), `points` (int64) and `flags` (int8:
    bit 0 offer_membership, bit 1 friend_invite), exactly as `core.outcome_columns` of
    bind_columns' list would; no Outcome list is made. Raises TypeError or ValueError,
    changing nothing, for columns of other types or lengths or positions outside them."""
    cdef Sink sink
    sink_open(&sink, code, points, flags, at, len(appid), "bindings")
    _bind_rows(eng, appid, openid, unionid, time_s, &sink)


cdef object _bind_rows(eng, list appid, list openid, list unionid, time_s, Sink* sink):
    """bind_columns' rows, their outcomes in a list, or into `sink` (returning None)."""
    cdef Kernel k = _kernel(eng)
    cdef long long[:] times = time_s
    cdef Py_ssize_t i, j, n = len(appid)
    if not len(openid) == len(unionid) == times.shape[0] == n:
        raise ValueError("binding columns differ in length")
    cdef Ahead ro[RING]  # the openids'
    cdef Ahead ru[RING]  # the unionids'
    # alive while we prefetch (the map may replace its keys as it grows)
    cdef array.array uno = (<AccountMap>k.acc.union_no).keys
    cdef AccountMap tail = k.lots.tail
    cdef object app, last_app = None, apps = None, unions = None
    cdef int api = 0
    out = [None] * (n if sink == NULL else 1)
    for i in range(-AHEAD1, n):
        j = i + AHEAD1
        if j < n:
            ro[j % RING].ix = ru[j % RING].ix = NULL
            ro[j % RING].h = ru[j % RING].h = 0
            app = <object>PyList_GET_ITEM(appid, j)
            if app is not last_app and not (type(app) is str and app == last_app):
                last_app, apps, unions = app, None, None
                pi = k.app_prog.get(app) if type(app) is str else None
                if pi is not None:
                    apps, unions, api = k.by_app[app], k.by_union[pi], pi
            if apps is not None:
                oid = <object>PyList_GET_ITEM(openid, j)
                uid = <object>PyList_GET_ITEM(unionid, j)
                ro[j % RING].pi = ru[j % RING].pi = api
                if type(oid) is str:
                    ahead_hash(&ro[j % RING], <KeyIndex>apps, <str>oid)
                if type(uid) is str:
                    ahead_hash(&ru[j % RING], <KeyIndex>unions, <str>uid)
        j = i + AHEAD2
        if 0 <= j < n:
            ahead_peek(&ro[j % RING])
            ahead_peek(&ru[j % RING])
        j = i + AHEAD3
        if 0 <= j < n:
            ahead_account(k, &ro[j % RING], uno, tail)
            ahead_account(k, &ru[j % RING], uno, tail)
        if i >= 0:
            o = _bind(k, eng, None, appid[i], openid[i], unionid[i], None, times[i],
                      &ro[i % RING], &ru[i % RING])
            put_outcome(out, i, sink, o)
    return out if sink == NULL else None


cdef object _bind_ref(eng, b, appid, openid, unionid, tt):
    if b is None:
        b = Binding(appid, openid, unionid, tt)
    return eng._bind_py(b)


cdef object _bind(Kernel k, eng, b, appid, openid, unionid, tt, long long t, Ahead* ro,
                  Ahead* ru):
    """`bind` of binding `b`, or of the binding with these fields when `b` is None; the
    time is `tt`, or `t` when `tt` is None (a column's); `ro` and `ru`, when not NULL, the
    row's openid and unionid as bind_columns looked them up ahead."""
    if tt is None:
        if not T_MIN <= t < T_MAX:
            return _bind_ref(eng, b, appid, openid, unionid, t)
    elif type(tt) is not int or not T_MIN_O <= tt < T_MAX_O:
        return _bind_ref(eng, b, appid, openid, unionid, tt)
    else:
        t = tt
    if type(appid) is not str or type(openid) is not str or type(unionid) is not str:
        return _bind_ref(eng, b, appid, openid, unionid, t)
    cdef int pi
    cdef KeyIndex apps, unions
    cdef uint64_t ho = 0, hu = 0
    if ro != NULL and ro.ix != NULL and ru.ix != NULL:  # the app's maps, looked up ahead
        pi, apps, unions, ho, hu = ro.pi, <KeyIndex>ro.ix, <KeyIndex>ru.ix, ro.h, ru.h
    else:
        pi_obj = k.app_prog.get(appid)
        if pi_obj is None:
            return _bind_ref(eng, b, appid, openid, unionid, t)
        pi = pi_obj
        apps, unions = <KeyIndex>k.by_app[appid], <KeyIndex>k.by_union[pi]
    if not openid:
        return _bind_ref(eng, b, appid, openid, unionid, t)
    cdef Py_ssize_t io = apps.find(openid, ho), iu = unions.find(unionid, hu)
    if (io < 0 and not _valid_id(openid)) or (iu < 0 and not _valid_id(unionid)):
        return _bind_ref(eng, b, appid, openid, unionid, t)
    cdef long long o = -1, u = -1, bound
    if io >= 0:
        o = _find(k, apps.value_at(io))
        if k.prog.data.as_schars[o] != pi:
            return _bind_ref(eng, b, appid, openid, unionid, t)
        bound = (<AccountMap>k.acc.union_no).get(o)
        if bound:
            if iu >= 0 and bound - 1 == iu:
                return DUPLICATE
            return _bind_ref(eng, b, appid, openid, unionid, t)  # bound elsewhere
    if iu >= 0:
        u = _find(k, unions.value_at(iu))
    if o < 0 and u < 0:
        o = create_account(k.acc, k.prog, pi)
        apps.add(openid, o, ho)
        set_unionid(k, o, unions, unionid, hu)
    elif o < 0:
        apps.add(openid, u, ho)
    elif u < 0:
        set_unionid(k, o, unions, unionid, hu)
    elif not k.progs[pi].fast or k.prog.data.as_schars[u] != pi:
        if b is None:
            b = Binding(appid, openid, unionid, t)
        return eng._bind_merge(o, u, b)
    else:
        k.notes.append(("bind ", appid, "/", openid, " -> ", unionid))  # Ledger.note
        moved = _merge(k, pi, o, u, t, (len(k.notes) - 1) << 3 | CAUSE_OTHER)
        k.counts["merges"] = k.counts.get("merges", 0) + 1
        return Outcome(_APPLIED_CODE, moved, "histories merged")
    return _BOUND


cdef long long _merge(Kernel k, int pi, long long src, long long dst, long long t,
                      long long cause) except -1:
    """MembershipMixin._merge: move everything of account `src` into `dst`; returns the
    points moved."""
    cdef Prog* p = &k.progs[pi]
    cdef signed char* member = k.member.data.as_schars
    if member[dst] and not member[src]:
        convert(k, pi, src, t, cause)
    elif member[src] and not member[dst]:
        convert(k, pi, dst, t, cause)
    cdef long long moved = 0, x, j, last
    cdef array.array col
    # Both are members now, or both shadow accounts: the pair holds the same kind's points.
    for col, name, bucket in (((k.bal, "bal", B_AV), (k.bal_pend, "bal_pend", B_PE))
                              if member[dst] else
                              ((k.bal, "bal", B_SH), (k.bal_pend, "bal_pend", B_SP))):
        x = col_get(col, src)
        if x:
            col_set(k.acc, col, name, src, 0)
            col_add(k.acc, col, name, dst, x)
            _push(k.rows, E_MERGE_OUT, bucket, src, -x, t, cause)
            _push(k.rows, E_MERGE_IN, bucket, dst, x, t, cause)
            moved += x
    lots = k.lots
    cdef int* days
    if amap_get(lots.tail, src):
        _lots_merge(k, src, dst)
    if member[dst]:
        # A negative side (allow_negative) absorbs lots: sum(lots) == max(0, avail).
        excess = _lots_total(k, dst) - max(0, col_get(k.bal, dst))
        if excess > 0:
            lots.take(dst, excess)
        days = k.lot_day.data.as_ints  # lots.merge may have grown the columns
        if p.keep_lots:
            last = j = amap_get(lots.tail, dst)
            while j:
                j = _get(lots.nxt, j)
                _heappush(k.expiry_heap, _expiry_key(k, pi, days[j], dst))
                if j == last:
                    break
    cdef signed char* tier = k.tier.data.as_schars
    col_add(k.acc, k.qual, "qual", dst, col_get(k.qual, src))
    col_set(k.acc, k.qual, "qual", src, 0)
    tier[dst] = max(tier[dst], tier[src])
    tier[src] = 0
    if member[dst]:
        _upgrade(k, dst, p)
    k.root.put_root(src, dst)
    k.eng._merge_records(src, dst)
    return moved


cdef long long PTS_TOP = <long long>1 << 61  # two lots' points add up without overflow


cdef long long _lots_total(Kernel k, long long a) except? -1:
    """Lots.total: the points in account `a`'s lots."""
    cdef AccountMap tail = k.lots.tail
    cdef array.array nxt = k.lots.nxt
    cdef long long* pts = k.lot_pts.data.as_longlongs
    cdef long long last = amap_get(tail, a), j = last, total = 0
    while j:
        j = _get(nxt, j)
        total += pts[j]
        if j == last:
            break
    return total


cdef Py_ssize_t _lots_read(Kernel k, long long a, long long* day, long long* pts,
                           Py_ssize_t n):
    """Append account `a`'s lots, oldest first, to day[n:], pts[n:]; returns the new n."""
    cdef AccountMap tail = k.lots.tail
    cdef array.array nxt = k.lots.nxt
    cdef int* days = k.lot_day.data.as_ints
    cdef long long* pp = k.lot_pts.data.as_longlongs
    cdef long long last = amap_get(tail, a), j = last
    while j:
        j = _get(nxt, j)
        day[n], pts[n] = days[j], pp[j]
        n += 1
        if j == last:
            break
    return n


cdef Py_ssize_t _lots_count(Kernel k, long long a):
    cdef AccountMap tail = k.lots.tail
    cdef array.array nxt = k.lots.nxt
    cdef long long last = amap_get(tail, a), j = last
    cdef Py_ssize_t n = 0
    while j:
        j = _get(nxt, j)
        n += 1
        if j == last:
            break
    return n


cdef int _lots_merge(Kernel k, long long src, long long dst) except -1:
    """Lots.merge(src, dst) of an account `src` with lots: the points of both by day
    (summed per day, days ascending), both lists cleared (src's, then dst's, oldest
    first), then added to dst day by day, the lots numbered as the reference numbers
    them."""
    cdef Py_ssize_t cap = _lots_count(k, dst) + _lots_count(k, src), n, i, j, m
    cdef long long* day = <long long*>malloc(2 * max(cap, 1) * sizeof(long long))
    if day == NULL:
        raise MemoryError()
    cdef long long* pts = day + max(cap, 1)
    cdef long long d, x
    cdef AccountMap tail
    cdef array.array nxt
    try:
        n = _lots_read(k, src, day, pts, _lots_read(k, dst, day, pts, 0))
        for i in range(1, n):  # insertion sort by day (stable; a few lots each)
            d, x = day[i], pts[i]
            j = i - 1
            while j >= 0 and day[j] > d:
                day[j + 1], pts[j + 1] = day[j], pts[j]
                j -= 1
            day[j + 1], pts[j + 1] = d, x
        m = 0  # coalesce equal days
        for i in range(n):
            if not 0 <= pts[i] < PTS_TOP:
                k.lots.merge(src, dst)  # the reference, for numbers past the C ones
                return 0
            if m and day[m - 1] == day[i]:
                pts[m - 1] += pts[i]
                if pts[m - 1] >= PTS_TOP:
                    k.lots.merge(src, dst)
                    return 0
            else:
                day[m], pts[m] = day[i], pts[i]
                m += 1
        tail, nxt = k.lots.tail, k.lots.nxt  # Lots.clear of src, then of dst
        while amap_get(tail, src):
            _lots_pop_oldest(k, tail, nxt, src)
        while amap_get(tail, dst):
            _lots_pop_oldest(k, tail, nxt, dst)
        for i in range(m):
            add_c(k.lots, dst, day[i], pts[i])
    finally:
        free(day)
    return 0
