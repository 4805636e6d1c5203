# cython: language_level=3, boundscheck=False, wraparound=False
"""The batch drivers of the compiled payment path: `pay_columns` and `pay_block`.

Both walk their rows in a pipeline so that the memory a row needs is already cached
when it is applied: AHEAD1 rows ahead a row's ids are hashed and their table slots
touched, AHEAD2 rows ahead the openid's slot is read and its entry touched, AHEAD3
rows ahead the key bytes and the account's columns (its balances, its lots' tail
entry) are touched, AHEAD4 rows ahead its newest lot (where a credit lands). These are hints
only (prefetches): every row is then applied, in order, by the same `_pay_core` as
`Engine.pay` (`pay_columns`), or by core/_lean.pyx (`pay_block`): the common payment, its steps
those of `_pay_core` in the same order, and any other row handed to `_pay_core` before
anything changes, so a batch has exactly the per-event semantics.

`pay_columns` takes `PaymentColumns` (a list of str per id column); `pay_block`
takes a `PaymentBlock`, whose ids are bytes in one buffer per column and whose
appid, mchid and currency are codes into small dictionaries, so that a row costs no
Python object at all unless it leaves the fast path.
"""

from cpython cimport array
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint16_t

from core._accrual cimport (Kernel, Row, _pay_core, _prefetch_account, _prefetch_lot, fill_ids,
                            fill_names, kernel_of)
from core._amap cimport AccountMap
from core._keys cimport KeyIndex
from core._lean cimport SLOW, lean, put_lean
from core._sink cimport Sink, put_outcome, sink_open

import numpy as np

cdef extern from *:
    """
    #define pm_prefetch_str(p) (__builtin_prefetch((const void*)(p)), \
                                __builtin_prefetch((const char*)(p) + 64))
    """
    void pm_prefetch_str(const void* p) noexcept nogil

DEF RING = 32  # a power of 2: ring positions are row numbers & MASK
DEF MASK = RING - 1
DEF AHEAD0 = 28
DEF AHEAD1 = 16
DEF AHEAD2 = 8
DEF AHEAD3 = 4
DEF AHEAD4 = 2

cdef tuple _NO_COUPONS = ()

cdef inline void _hash_ahead(Kernel k, Row* r) noexcept:
    """Stage 1: hash the row's ids and touch their table slots."""
    r.htx = k.pay_index.hash_bytes(r.tx, r.txn)
    k.pay_index.prefetch_slot(r.htx)
    r.hop = 0
    if r.apps != NULL:
        apps = <KeyIndex>r.apps
        r.hop = apps.hash_bytes(r.op, r.opn)
        apps.prefetch_slot(r.hop)


cdef inline Py_ssize_t _peek_ahead(Row* r) noexcept:
    """Stage 2: the openid's number from its slot (unverified), its entry touched; or -1."""
    cdef Py_ssize_t c
    if r.apps == NULL:
        return -1
    apps = <KeyIndex>r.apps
    c = apps.peek(r.hop)
    if c >= 0:
        apps.prefetch_entry(c)
    return c


cdef struct Lanes:
    # What the stages ahead of a row found: the openid's number (unverified) or -1, by
    # ring position, then the account it holds (unverified) or -1.
    Py_ssize_t cand[RING]
    long long acct[RING]


cdef inline long long _account_ahead(Kernel k, Row* r, Py_ssize_t c, long long naccounts,
                                     AccountMap tail) noexcept:
    """Stage 3: touch the openid's key bytes and its account's columns; the account, or -1."""
    cdef long long a
    if c < 0:
        return -1
    apps = <KeyIndex>r.apps
    apps.prefetch_key(c)
    a = apps.value_at(c)
    if 0 <= a < naccounts:
        _prefetch_account(k, a, r.aprog, tail)
        if 0 <= r.aprog < k.nprogs and k.progs[r.aprog].window_s:
            return -1  # its points wait: no lot now
        return a
    return -1


cdef inline void _later_stages(Kernel k, Row* ring, Lanes* ln, Py_ssize_t i,
                               Py_ssize_t n, long long naccounts, AccountMap tail,
                               array.array day, array.array pts) noexcept:
    """Stages 2, 3 and 4 for the rows AHEAD2, AHEAD3 and AHEAD4 ahead of row `i` (the
    rows ahead were filled and hashed by the driver's own stage 1); the driver then
    applies row `i`. `tail` is the lots' tail map, `day` and `pts` their columns as they
    were when the batch began (`_lot_columns`)."""
    cdef Py_ssize_t j = i + AHEAD2
    if 0 <= j < n:
        ln.cand[j & MASK] = _peek_ahead(&ring[j & MASK])
    j = i + AHEAD3
    if 0 <= j < n:
        ln.acct[j & MASK] = _account_ahead(k, &ring[j & MASK], ln.cand[j & MASK], naccounts,
                                           tail)
    j = i + AHEAD4
    if 0 <= j < n and ln.acct[j & MASK] >= 0:
        _prefetch_lot(k, ln.acct[j & MASK], tail, day, pts)


def pay_columns(eng, cols):
    """Apply a batch of payments given as `PaymentColumns`, in order; returns the list of
    Outcomes. Raises TypeError or ValueError, changing nothing, for malformed columns."""
    cdef Kernel k = kernel_of(eng)
    cdef Py_ssize_t i, j, n = len(cols.transaction_id)
    cdef long long[:] totals = cols.total_fen
    cdef long long[:] payers = cols.payer_total_fen
    cdef long long[:] times = cols.time_s
    cdef list txids = cols.transaction_id, appids = cols.appid, mchids = cols.mchid
    cdef list openids = cols.openid, currencies = cols.currency, coupons = cols.coupon_ids
    cdef Row ring[RING]
    cdef Lanes ln
    cdef list keep = [None] * RING  # UTF-8 copies of non-ASCII ids, while their row waits
    cdef long long naccounts = len(k.prog)
    cdef tuple lots = _lot_columns(k)  # alive while rows are prefetched
    cdef AccountMap tail = lots[0]
    cdef array.array day = lots[1], pts = lots[2]
    cdef Row* r
    for col in (appids, mchids, openids, currencies, coupons, cols.total_fen,
                cols.payer_total_fen, cols.time_s):
        if len(col) != n:  # rows are read below without bounds checks
            raise ValueError(f"payment columns differ in length: {len(col)} != {n}")
    for col in (txids, appids, mchids, openids, currencies):
        for x in <list>col:
            if type(x) is not str:
                raise TypeError(f"payment id columns hold str, not {type(x).__name__}")
    _check_coupons(coupons)
    out = [None] * n
    for i in range(-AHEAD0, n):
        j = i + AHEAD0
        if 0 <= j < n:
            pm_prefetch_str(PyList_GET_ITEM(txids, j))
            pm_prefetch_str(PyList_GET_ITEM(openids, j))
        j = i + AHEAD1
        if 0 <= j < n:
            r = &ring[j & MASK]
            keep[j & MASK] = fill_ids(r, <str>PyList_GET_ITEM(txids, j),
                                      <str>PyList_GET_ITEM(openids, j))
            fill_names(k, r, <object>PyList_GET_ITEM(appids, j),
                       <object>PyList_GET_ITEM(mchids, j),
                       <object>PyList_GET_ITEM(currencies, j),
                       <object>PyList_GET_ITEM(coupons, j))
            r.total, r.payer, r.t, r.p = totals[j], payers[j], times[j], NULL
            _hash_ahead(k, r)
        _later_stages(k, ring, &ln, i, n, naccounts, tail, day, pts)
        if i >= 0:
            put_outcome(out, i, NULL, _pay_core(k, &ring[i & MASK]))
    return out


cdef tuple _lot_columns(Kernel k):
    # The lots' tail, day and pts columns (core.lots.Lots), for prefetching only.
    lots = k.lots
    tail, day, pts = lots.tail, lots.day, lots.pts
    if (type(tail) is not AccountMap or type(day) is not array.array
            or type(pts) is not array.array or day.typecode != "i" or pts.typecode != "q"):
        return (AccountMap(), array.array("i"), array.array("q"))  # nothing to prefetch
    return (tail, day, pts)


cdef object _flat(x):
    # `x` when its buffer is one contiguous run, else a contiguous copy (a strided view).
    return x if memoryview(x).c_contiguous else np.ascontiguousarray(x)


cdef int _check_coupons(list coupons) except -1:
    for x in coupons:
        if type(x) is not tuple:
            raise TypeError(f"coupon_ids holds tuples, not {type(x).__name__}")
    return 0


cdef Py_ssize_t _utf8_chars(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t j, c = 0
    for j in range(n):
        c += (p[j] & 0xC0) != 0x80
    return c


cdef int _check_spans(const int64_t[::1] lo, const int64_t[::1] hi, Py_ssize_t n,
                      Py_ssize_t size, str name) except -1:
    # Id i is buf[lo[i]:hi[i]].
    cdef Py_ssize_t i
    if lo.shape[0] != n or hi.shape[0] != n:
        raise ValueError(f"{name}: {lo.shape[0]} starts and {hi.shape[0]} ends for {n} payments")
    for i in range(n):
        if not 0 <= lo[i] <= hi[i] <= size:
            raise ValueError(f"{name} of payment {i} lies outside its buffer")
    return 0


cdef int _check_codes(const uint16_t[::1] codes, Py_ssize_t n, Py_ssize_t size,
                      str name) except -1:
    cdef Py_ssize_t i
    if codes.shape[0] != n:
        raise ValueError(f"{name} codes: {codes.shape[0]} for {n} payments")
    for i in range(n):
        if codes[i] >= size:
            raise ValueError(f"{name} code {codes[i]} of payment {i} is not in its dictionary")
    return 0


def pay_block(eng, blk):
    """Apply a batch of payments given as a `PaymentBlock`, in order; returns the list of
    Outcomes. Raises ValueError, changing nothing, for a malformed block."""
    return _pay_block(eng, blk, NULL)


def pay_block_into(eng, blk, code, points, flags, at):
    """Apply a batch of payments given as a `PaymentBlock`, in order, as `pay_block`, but
    write payment i's outcome into position at[i] of the columns `code` (int16: the
    index of its code in tuple(Code)), `points` (int64) and `flags` (int8: bit 0
    offer_membership, bit 1 friend_invite), exactly as `core.outcome_columns` of
    pay_block's list would; no Outcome list is made. Raises TypeError or ValueError,
    changing nothing, for a malformed block or columns."""
    cdef Sink sink
    sink_open(&sink, code, points, flags, at, len(blk.total_fen), "payments")
    if sink.at == NULL:
        _pay_block(eng, blk, NULL)  # validates the block; no rows to apply
        return
    _pay_block(eng, blk, &sink)


cdef object _pay_block(eng, blk, Sink* sink):
    cdef Kernel k = kernel_of(eng)
    cdef Py_ssize_t i, j, n = len(blk.total_fen)
    # Every column read as contiguous memory (no stride multiplied in per row); one that is
    # not (a strided view a caller made) is copied first.
    cdef const unsigned char[::1] txb = _flat(blk.tx_data)
    cdef const unsigned char[::1] opb = _flat(blk.openid_data)
    cdef const int64_t[::1] tx_lo = _flat(blk.tx_starts), tx_hi = _flat(blk.tx_ends)
    cdef const int64_t[::1] op_lo = _flat(blk.openid_starts), op_hi = _flat(blk.openid_ends)
    cdef const uint16_t[::1] ac = _flat(blk.appid_codes)
    cdef const uint16_t[::1] mc = _flat(blk.mchid_codes)
    cdef const uint16_t[::1] cc = _flat(blk.currency_codes)
    cdef const long long[::1] totals = _flat(blk.total_fen)
    cdef const long long[::1] payers = _flat(blk.payer_total_fen)
    cdef const long long[::1] times = _flat(blk.time_s)
    cdef list appids = list(blk.appids), mchids = list(blk.mchids)
    cdef list coupons = blk.coupon_ids
    cdef bint ascii = blk.ascii
    # The dictionaries, resolved once: each appid's app_of entry, each mchid's merchant
    # number, each currency as the engine's own home-currency str when it is one.
    homes = {h: h for h in k.homes}
    cdef list currencies = [homes.get(c, c) for c in blk.currencies]
    # Each currency's programs (bit pi: program pi's home currency), for `lean`.
    cdef array.array home_bits = array.array("Q", [
        sum(1 << pi for pi, h in enumerate(k.homes) if c == h) for c in currencies])
    cdef long long res
    cdef array.array pays = k.pays, wide = k.pays_wide, rows = k.rows, fifo = k.fifo
    cdef list app_rows = [k.app_of.get(a) for a in appids]
    cdef list app_indexes = [None if x is None else x[1] for x in app_rows]
    cdef array.array aprogs = array.array("i", [-1 if x is None else x[0] for x in app_rows])
    cdef array.array mnos = array.array("i", [k.mch_no.get(m, -1) for m in mchids])
    cdef Row ring[RING]
    cdef Lanes ln
    cdef long long naccounts = len(k.prog)
    cdef tuple lots = _lot_columns(k)  # alive while rows are prefetched
    cdef AccountMap tail = lots[0]
    cdef array.array day = lots[1], pts = lots[2]
    cdef const unsigned char* tx0 = &txb[0] if txb.shape[0] else <const unsigned char*>""
    cdef const unsigned char* op0 = &opb[0] if opb.shape[0] else <const unsigned char*>""
    cdef Row* r
    if payers.shape[0] != n or times.shape[0] != n:
        raise ValueError(f"payment columns differ in length: {payers.shape[0]}, "
                         f"{times.shape[0]} != {n}")
    _check_spans(tx_lo, tx_hi, n, txb.shape[0], "transaction_id")
    _check_spans(op_lo, op_hi, n, opb.shape[0], "openid")
    _check_codes(ac, n, len(appids), "appid")
    _check_codes(mc, n, len(mchids), "mchid")
    _check_codes(cc, n, len(currencies), "currency")
    if coupons is not None:
        if len(coupons) != n:
            raise ValueError(f"coupon_ids: {len(coupons)} for {n} payments")
        _check_coupons(coupons)
    out = [None] * (n if sink == NULL else 1)
    for i in range(-AHEAD1, n):
        j = i + AHEAD1
        if 0 <= j < n:
            r = &ring[j & MASK]
            r.tx, r.txn = tx0 + tx_lo[j], tx_hi[j] - tx_lo[j]
            r.op, r.opn = op0 + op_lo[j], op_hi[j] - op_lo[j]
            r.txchars = r.txn if ascii else _utf8_chars(r.tx, r.txn)
            r.total, r.payer, r.t = totals[j], payers[j], times[j]
            r.mno = mnos.data.as_ints[mc[j]]
            r.apps = PyList_GET_ITEM(app_indexes, ac[j])
            r.aprog = aprogs.data.as_ints[ac[j]]
            if <object>r.apps is None:
                r.apps = NULL
            r.txs = r.ops = r.p = NULL
            _hash_ahead(k, r)
        _later_stages(k, ring, &ln, i, n, naccounts, tail, day, pts)
        if i < 0:
            continue
        r = &ring[i & MASK]
        res = SLOW
        if coupons is None or not len(<tuple>PyList_GET_ITEM(coupons, i)):
            res = lean(k, r, home_bits.data.as_ulonglongs[cc[i]], pays, wide, rows, fifo)
        if res != SLOW:
            put_lean(out, i, sink, res)
            continue
        # The row's Python objects, for `_pay_core`'s unusual cases.
        r.appid = PyList_GET_ITEM(appids, ac[i])
        r.mchid = PyList_GET_ITEM(mchids, mc[i])
        r.currency = PyList_GET_ITEM(currencies, cc[i])
        r.coupons = <PyObject*>_NO_COUPONS if coupons is None \
            else PyList_GET_ITEM(coupons, i)
        put_outcome(out, i, sink, _pay_core(k, r))
    return out if sink == NULL else None
