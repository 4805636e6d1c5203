# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""Engagement events compiled: `engage` and `engage_columns`.

The common case runs in C over the engine's own columns and maps, with the kernel of
core/_inputs.pyx; anything unusual goes to the Python reference `Engine._engage_py`
before anything has changed. `engage_columns` looks rows up ahead of their turn (the
openid's slot, entry, account and newest lot, the event id's slot in the seen set), as
core/_batch.pyx does for payments.

Floor division: `cdivision=False` keeps Python's floor semantics for negatives.
"""

from cpython cimport array
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t

from core._inputs cimport (
    AHEAD1, B_AV, B_SH, CAUSE_EVENT, E_EARN, RING, Ahead, Kernel, Prog, Rule, _credit_member,
    _find, _kernel, _lots_add, _month, _push, _upgrade, _valid_id, ahead_hash, ahead_later,
    applied, create_account)
from core._amap cimport AccountMap
from core._cols cimport col_add
from core._keys cimport KeyIndex
from core._sink cimport Sink, put_outcome, sink_open

cdef extern from "Python.h":
    PyObject* PyList_GET_ITEM(object lst, Py_ssize_t i)

cdef extern from *:
    """
    /* Touch the slot of set `s` where a lookup of str `key` starts (hashing the key:
       str caches its hash). */
    static inline void pm_prefetch_set(PyObject* s, PyObject* key) {
        PySetObject* so = (PySetObject*)s;
        Py_hash_t h = ((PyASCIIObject*)key)->hash;
        if (h == -1) {
            h = PyObject_Hash(key);
            if (h == -1) { PyErr_Clear(); return; }
        }
        __builtin_prefetch((const void*)(so->table + ((size_t)h & (size_t)so->mask)));
    }
    """
    void pm_prefetch_set(PyObject* s, PyObject* key) noexcept

from core import limits
from core.engagement import _APPLIED as _EVENT_OUTCOMES, _forget_old
from core.types import DUPLICATE, Code, Engagement, Outcome

cdef object _APPLIED_CODE = Code.APPLIED
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef object T_MIN_O = limits.TIME_S_MIN, T_MAX_O = limits.TIME_S_MAX
cdef Py_ssize_t REF_MAX = limits.REF_LEN_MAX
cdef Py_ssize_t CAP_PERIODS_MAX = limits.CAP_PERIODS_MAX
cdef long long DAY_S = 86400



cdef bint _cap_check(dict state, list keys) except -1:
    """True when an account whose cap counts are `state` (or None) reached one of `keys`'
    caps (a rejection follows)."""
    if not state:
        return False
    for key, cap in keys:
        if state.get(key, 0) >= cap:
            return True
    return False


def engage(eng, e):
    """Reward an engagement event per its program's rule, within the rule's caps."""
    cdef Kernel k = _kernel(eng)
    if type(e) is not Engagement:
        return eng._engage_py(e)
    return _engage(k, eng, e, e.event_id, e.appid, e.openid, e.kind, e.time_s,
                   0, e.referred_openid, NULL, None)


def engage_columns(eng, list event_id, list appid, list openid, list kind, time_s):
    """Apply engagement events given as columns (no referrals), in order; returns the list
    of Outcomes. Exactly `engage` of each row's `Engagement`, which is made only when the
    row goes to the Python reference. Raises ValueError on columns of different lengths."""
    return _engage_rows(eng, event_id, appid, openid, kind, time_s, NULL)


def engage_columns_into(eng, list event_id, list appid, list openid, list kind, time_s, code,
                        points, flags, at):
    """`engage_columns`, writing row i's outcome into the columns at position at[i], as
    `core._identity.bind_columns_into` does."""
    cdef Sink sink
    sink_open(&sink, code, points, flags, at, len(event_id), "events")
    _engage_rows(eng, event_id, appid, openid, kind, time_s, &sink)


cdef object _engage_rows(eng, list event_id, list appid, list openid, list kind, time_s,
                         Sink* sink):
    """engage_columns' rows, their outcomes in a list, or into `sink` (returning None)."""
    cdef Kernel k = _kernel(eng)
    cdef long long[:] times = time_s
    cdef Py_ssize_t i, j, n = len(event_id)
    if not len(appid) == len(openid) == len(kind) == times.shape[0] == n:
        raise ValueError("engagement columns differ in length")
    cdef Ahead ring[RING]
    cdef Ahead* r
    # alive while we prefetch (the map may replace its keys as it grows)
    cdef array.array uno = (<AccountMap>k.acc.union_no).keys
    cdef AccountMap tail = k.lots.tail
    cdef array.array nxt = k.lots.nxt
    cdef object app, last_app = None, apps = None
    cdef object seen = k.event_seen
    cdef int api = 0
    cdef Window w = Window(k.idem)
    out = [None] * (n if sink == NULL else 1)
    for i in range(-AHEAD1, n):
        j = i + AHEAD1
        if j < n:
            r = &ring[j % RING]
            r.ix, r.h, r.c = NULL, 0, -1
            app = <object>PyList_GET_ITEM(appid, j)
            if app is not last_app and not (type(app) is str and app == last_app):
                last_app, apps = app, None
                pi = k.app_prog.get(app) if type(app) is str else None
                if pi is not None:
                    apps, api = k.by_app[app], pi
            oid = <object>PyList_GET_ITEM(openid, j)
            if apps is not None and type(oid) is str:
                ahead_hash(r, <KeyIndex>apps, <str>oid)
                r.pi = api
            ev = <object>PyList_GET_ITEM(event_id, j)
            if type(ev) is str:
                pm_prefetch_set(<PyObject*>seen, <PyObject*>ev)
        ahead_later(k, ring, i, n, uno, tail, nxt)
        if i >= 0:
            o = _engage(k, eng, None, event_id[i], appid[i], openid[i], kind[i], None,
                        times[i], "", &ring[i % RING], w)
            put_outcome(out, i, sink, o)
    return out if sink == NULL else None


cdef class Window:
    """What engage_columns keeps of the idempotency window (core.idempotency.KeyWindow)
    during one call, where nothing moves its horizon or drops a generation: the horizon,
    the generation length, the event list of the last generation an event went to."""
    cdef long long horizon, bucket, b
    cdef list events

    def __init__(self, idem):
        self.horizon, self.bucket, self.events = idem.horizon_s, idem.bucket_s, None


cdef object _engage(Kernel k, eng, e, event_id, appid, openid, kind, tt, long long t,
                    referred, Ahead* ra, Window w):
    """`engage` of event `e`, or of the event with these fields when `e` is None (made
    only if the Python reference has to take it); the time is `tt`, or `t` when `tt` is
    None (a column's); `ra`, when not NULL, the row's openid as engage_columns looked it
    up ahead; `w`, when not None, the idempotency window as the columns' call keeps it."""
    if tt is None:
        if not T_MIN <= t < T_MAX:
            return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    elif type(tt) is not int or not T_MIN_O <= tt < T_MAX_O:
        return _engage_ref(eng, e, event_id, appid, openid, kind, tt, referred)
    else:
        t = tt
    if (type(event_id) is not str or type(appid) is not str or type(openid) is not str
            or type(kind) is not str or type(referred) is not str):
        return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    idem = k.idem
    if (t < idem.horizon_s) if w is None else (t < w.horizon):  # STALE: before the window
        return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    if event_id in k.event_seen:
        return DUPLICATE
    cdef int pi
    cdef KeyIndex apps
    cdef uint64_t ho = 0
    if ra != NULL and ra.ix != NULL:  # the app's map, looked up ahead
        pi, apps, ho = ra.pi, <KeyIndex>ra.ix, ra.h
    else:
        pi_obj = k.app_prog.get(appid)
        if pi_obj is None:
            return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
        pi, apps = pi_obj, <KeyIndex>k.by_app[appid]
    if not 0 < len(<str>event_id) <= REF_MAX:
        return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    cdef Prog* p = &k.progs[pi]
    rule_obj = (<dict>k.rules[pi]).get(kind)
    if rule_obj is None:
        return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    cdef Rule r = <Rule>rule_obj
    cdef int who = r.who
    if kind == "referral" and (not referred or referred == openid or who == 0):
        return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    # Every key of an app's openid map passed valid_id when it was added.
    cdef Py_ssize_t io = apps.find(openid, ho)
    cdef Py_ssize_t ir = apps.find(referred) if referred else -1
    if ((io < 0 and openid and not _valid_id(openid))
            or (ir < 0 and referred and not _valid_id(referred))):
        return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    cdef long long day = (t + p.off_s) // DAY_S
    cdef list keys = r.keys
    if r.keys_day != day or keys is None:
        keys = []
        if r.cap_day:
            keys.append(((kind, 0, day), r.cap_day))
        if r.cap_week:
            keys.append(((kind, 1, (day + 3) // 7), r.cap_week))
        if r.cap_month:
            keys.append(((kind, 2, _month(day)), r.cap_month))
        r.keys, r.keys_day = keys, day
    cdef long long ao = -1, ar = -1, a
    cdef object state_o = None  # ao's cap counts, when looked up for the check
    if who & 1 and io >= 0:
        ao = _find(k, apps.value_at(io))
        if keys:
            state_o = k.caps.get(ao)
            if _cap_check(state_o, keys):
                return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    if who & 2 and ir >= 0:
        ar = _find(k, apps.value_at(ir))
        if keys and _cap_check(k.caps.get(ar), keys):
            return _engage_ref(eng, e, event_id, appid, openid, kind, t, referred)
    # Only now create accounts: a rejection must leave no trace.
    if who & 1 and ao < 0:
        ao = create_account(k.acc, k.prog, pi)
        apps.add(openid, ao)
    if who & 2 and ar < 0:
        ar = create_account(k.acc, k.prog, pi)
        apps.add(referred, ar)
    k.event_seen.add(event_id)  # KeyWindow.add_event, inline
    cdef long long b
    if w is None:
        gen = (<dict>idem.gens).get(t // <long long>idem.bucket_s)
        if gen is None:
            gen = idem.generation(t)
        (<list>(<tuple>gen)[0]).append(event_id)
    else:  # KeyWindow.add_event, with the generation of the last event kept
        b = t // w.bucket
        if w.events is None or b != w.b:
            gen = (<dict>idem.gens).get(b)
            if gen is None:
                gen = idem.generation(t)
            w.events, w.b = (<tuple>gen)[0], b
        w.events.append(event_id)
    k.event_ids.append(event_id)
    cdef long long cause = (len(k.event_ids) - 1) << 3 | CAUSE_EVENT
    cdef long long n = 0
    if who & 1:
        _reward(k, pi, ao, r, keys, t, day, cause, state_o)
        n += 1
    if who & 2:
        _reward(k, pi, ar, r, keys, t, day, cause, None)
        n += 1
    cdef long long pts = r.points * n
    out = _EVENT_OUTCOMES.get(pts)
    if out is None:
        out = _EVENT_OUTCOMES[pts] = Outcome(_APPLIED_CODE, pts, "")
    return out


cdef object _engage_ref(eng, e, event_id, appid, openid, kind, tt, referred):
    if e is None:
        e = Engagement(event_id, appid, openid, kind, tt, referred)
    return eng._engage_py(e)


cdef int _reward(Kernel k, int pi, long long a, Rule r, list keys, long long t,
                 long long day, long long cause, object state) except -1:
    """Count the event toward account `a`'s caps and credit its points; `state`, when not
    None, is `a`'s cap counts (looked up by the check, and still in place: the engine's
    caps only change by events and merges)."""
    cdef Prog* p = &k.progs[pi]
    cdef long long pts = r.points
    if state is None:
        state = k.caps.get(a)
        if state is None:
            state = k.caps[a] = {}
    for key, _ in keys:
        (<dict>state)[key] = (<dict>state).get(key, 0) + 1
    if len(<dict>state) > CAP_PERIODS_MAX:
        _forget_old(state)
    if not pts:
        return 0
    if k.member.data.as_schars[a]:
        col_add(k.acc, k.bal, "bal", a, pts)
        _push(k.rows, E_EARN, B_AV, a, pts, t, cause)
        if p.keep_lots:
            _credit_member(k, pi, a, t, pts)
    else:
        col_add(k.acc, k.bal, "bal", a, pts)
        _push(k.rows, E_EARN, B_SH, a, pts, t, cause)
        _lots_add(k, a, day, pts)
    k.scal.data.as_longlongs[1] += pts
    if not p.spend_basis:
        col_add(k.acc, k.qual, "qual", a, pts)
        if k.member.data.as_schars[a]:
            _upgrade(k, a, p)
    return 0
