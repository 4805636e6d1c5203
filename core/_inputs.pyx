# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""Engagement events compiled (`engage`), and the kernel it shares with core/_identity.pyx
(`bind`, `enroll`).

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

from cpython.ref cimport PyObject
from core._keys cimport KeyIndex
from core._lots cimport add_c

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    PyObject* PyList_GET_ITEM(object lst, Py_ssize_t i)

cdef extern from *:
    """
    #define pm_pf(p) __builtin_prefetch((const void*)(p))
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
    /* The same for an int key of hash `h` (a non-negative int is its own hash). */
    static inline void pm_prefetch_set_hash(PyObject* s, size_t h) {
        PySetObject* so = (PySetObject*)s;
        __builtin_prefetch((const void*)(so->table + (h & (size_t)so->mask)));
    }
    """
    void pm_pf(const void* p) noexcept nogil
    void pm_prefetch_set(PyObject* s, PyObject* key) noexcept
    void pm_prefetch_set_hash(PyObject* s, size_t h) noexcept

from core import limits
from core.engagement import _APPLIED as _EVENT_OUTCOMES, _forget_old
from core.types import DUPLICATE, Code, Engagement, Outcome

import numpy as np

cdef object _APPLIED_CODE = Code.APPLIED
cdef object _heappush = heapq.heappush
cdef long long T_MIN = limits.TIME_S_MIN
cdef long long T_MAX = limits.TIME_S_MAX
cdef object T_MIN_O = limits.TIME_S_MIN, T_MAX_O = limits.TIME_S_MAX
cdef Py_ssize_t REF_MAX = limits.REF_LEN_MAX
cdef Py_ssize_t ID_MAX = limits.ID_LEN_MAX
cdef Py_ssize_t CAP_PERIODS_MAX = limits.CAP_PERIODS_MAX
cdef long long VALUE_MAX = limits.POINTS_PER_INPUT_MAX
cdef long long DAY_S = 86400
# Outcome(APPLIED, points, "") of small point counts, made once each (outcomes are
# immutable): enrollments' outcomes.
cdef Py_ssize_t _SMALL = 4096
cdef list _APPLIED_SMALL = [None] * _SMALL
cdef bint _ID_CHAR[128]  # the characters of an id: [A-Za-z0-9_-]
for _c in range(128):
    _ID_CHAR[_c] = chr(_c).isascii() and (chr(_c).isalnum() or chr(_c) in "-_")
# Entry kinds, buckets (core.types) and the cause tags (core.ledger).
DEF RING = 16
DEF AHEAD1 = 12
DEF AHEAD2 = 6
DEF AHEAD3 = 3
DEF AHEAD4 = 1


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
        self.prog, self.avail, self.pend, self.shad = acc.prog, acc.avail, acc.pend, acc.shad
        self.shad_pend, self.qual, self.member = acc.shad_pend, acc.qual, acc.member
        self.tier, self.root = acc.tier, acc.root
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
    # The same test on an id's UTF-8 bytes (any byte past ASCII fails it).
    cdef Py_ssize_t j
    if n == 0 or n > ID_MAX:
        return False
    for j in range(n):
        if c[j] >= 128 or not _ID_CHAR[c[j]]:
            return False
    return True


cdef long long create_account(object acc, array.array prog, int pi) except -1:
    """Accounts.create(pi), inline while the columns have room (they are allocated ahead)."""
    cdef long long a = acc.n
    if a >= <long long>acc.cap:
        return acc.create(pi)
    acc.n = a + 1
    prog.data.as_shorts[a] = pi
    return a


cdef void _push(array.array arr, long long a, long long b, long long c, long long d,
                       long long e, long long f):
    cdef Py_ssize_t n = len(arr)
    array.resize_smart(arr, n + 6)
    cdef long long* q = arr.data.as_longlongs + n
    q[0] = a; q[1] = b; q[2] = c; q[3] = d; q[4] = e; q[5] = f


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
    if k.root.data.as_longlongs[a] == a:
        return a
    return k.acc.find(a)


cdef void _upgrade(Kernel k, long long a, Prog* p):
    cdef int tier = k.tier.data.as_schars[a]
    while k.qual.data.as_longlongs[a] >= p.tier_next[tier]:
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


cdef void ahead_account(Kernel k, Ahead* r, array.array uno, array.array tail) noexcept:
    if r.ix == NULL or r.c < 0:
        return
    ix = <KeyIndex>r.ix
    ix.prefetch_key(r.c)
    r.a = ix.value_at(r.c)
    prefetch_account(k, r.a, uno, tail)


cdef void ahead_lots(Kernel k, Ahead* r, array.array tail, array.array nxt) noexcept:
    """Touch the newest lot of the row's account (its tail entry was touched before)."""
    cdef long long t
    if r.ix == NULL or not 0 <= r.a < len(tail):
        return
    t = _get(tail, r.a)
    if 0 < t < len(k.lot_pts):
        pm_pf(k.lot_pts.data.as_longlongs + t)
        pm_pf(k.lot_day.data.as_ints + t)
        if t < len(nxt):
            pm_pf(nxt.data.as_chars + t * nxt.ob_descr.itemsize)


cdef void prefetch_account(Kernel k, long long a, array.array uno, array.array tail) noexcept:
    """Touch account `a`'s entries in the columns an input reads (`uno` and `tail` are the
    union_no and lots.tail columns, which may be replaced by wider ones as they grow)."""
    if not 0 <= a < len(k.root):
        return
    pm_pf(k.root.data.as_longlongs + a)
    pm_pf(k.prog.data.as_shorts + a)
    pm_pf(k.member.data.as_schars + a)
    pm_pf(k.tier.data.as_schars + a)
    pm_pf(k.avail.data.as_longlongs + a)
    pm_pf(k.shad.data.as_longlongs + a)
    pm_pf(k.qual.data.as_longlongs + a)
    if a < len(uno):
        pm_pf(uno.data.as_chars + a * uno.ob_descr.itemsize)
    if a < len(tail):
        pm_pf(tail.data.as_chars + a * tail.ob_descr.itemsize)
    if k.invited:
        pm_prefetch_set_hash(<PyObject*>k.invited, <size_t>a)


# ------------------------------------------------------------------ lots (core.lots)
cdef bint _lots_add(Kernel k, long long a, long long day, long long pts) except -1:
    """Lots.add: `pts` arriving on `day` to account `a`; True when a new lot started."""
    return add_c(k.lots, a, day, pts)  # the compiled Lots.add (core/_lots.pyx)


cdef int _lots_pop_oldest(Kernel k, array.array tail, array.array nxt, long long a) except -1:
    """Lots.pop_oldest of account `a`, which has lots."""
    cdef long long t = _get(tail, a)
    cdef long long j = _get(nxt, t)
    if j == t:
        _set(tail, a, 0)
    else:
        _set(nxt, t, _get(nxt, j))
    _set(nxt, j, k.lots.free)
    k.lots.free = j
    return 0


cdef int _credit_member(Kernel k, int pi, long long a, long long t, long long pts) except -1:
    """Engine._credit_lot for a member whose available balance already holds `pts`."""
    cdef long long new = k.avail.data.as_longlongs[a], day
    pts = max(0, new) - max(0, new - pts)
    if pts:
        day = (t + k.progs[pi].off_s) // DAY_S
        if _lots_add(k, a, day, pts):
            _heappush(k.expiry_heap, _expiry_key(k, pi, day, a))
    return 0


# ------------------------------------------------------------------ engagement
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
    cdef Kernel k = _kernel(eng)
    cdef long long[:] times = time_s
    cdef Py_ssize_t i, j, n = len(event_id)
    if not len(appid) == len(openid) == len(kind) == times.shape[0] == n:
        raise ValueError("engagement columns differ in length")
    cdef Ahead ring[RING]
    cdef Ahead* r
    cdef array.array uno = k.acc.union_no, tail = k.lots.tail  # alive while we prefetch
    cdef array.array nxt = k.lots.nxt
    cdef object app, last_app = None, apps = None
    cdef object seen = k.event_seen
    cdef int api = 0
    cdef Window w = Window(k.idem)
    out = [None] * n
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
        j = i + AHEAD2
        if 0 <= j < n:
            ahead_peek(&ring[j % RING])
        j = i + AHEAD3
        if 0 <= j < n:
            ahead_account(k, &ring[j % RING], uno, tail)
        j = i + AHEAD4
        if 0 <= j < n:
            ahead_lots(k, &ring[j % RING], tail, nxt)
        if i >= 0:
            out[i] = _engage(k, eng, None, event_id[i], appid[i], openid[i], kind[i], None,
                             times[i], "", &ring[i % RING], w)
    return out


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
        k.avail.data.as_longlongs[a] += pts
        _push(k.rows, E_EARN, B_AV, a, pts, t, cause)
        if p.keep_lots:
            _credit_member(k, pi, a, t, pts)
    else:
        k.shad.data.as_longlongs[a] += pts
        _push(k.rows, E_EARN, B_SH, a, pts, t, cause)
        _lots_add(k, a, day, pts)
    k.scal.data.as_longlongs[1] += pts
    if not p.spend_basis:
        k.qual.data.as_longlongs[a] += pts
        if k.member.data.as_schars[a]:
            _upgrade(k, a, p)
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
    f[0] = (1 if (<tuple>o)[3] else 0) | (2 if (<tuple>o)[4] else 0)
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
