# cython: language_level=3, boundscheck=False, wraparound=False
"""The invariant checker's passes over the big structures (core/invariants.py), in C:
one pass over the ledger's rows, one over the payments, one walk of every account's
lots. Each reads the engine's arrays in place (no copy of millions of rows) and only
sums and flags; the checker itself decides what is a violation and says so."""

import numpy as np

from libc.stdint cimport int32_t, int64_t

from core._rows cimport (P_ACCT, P_PENDING, P_POINTS, P_PROG, P_REFUNDED, P_REVERSED, P_TOTAL,
                         PF, ROW_WORDS, LRow)

cdef extern from *:
    """
    #define pm_check_prefetch(p) __builtin_prefetch((const void*)(p))
    """
    void pm_check_prefetch(const void* p) noexcept nogil

# Rows ahead whose account's cells are fetched into the cache while a row is summed
# (the accounts of consecutive rows are far apart: a cache miss each, else).
DEF AHEAD = 16

KINDS = 64  # ledger kinds counted (Entry values are far below)


def ledger_sums(const int64_t[::1] words, Py_ssize_t n):
    """Sums of the ledger's points: by (account, bucket) for accounts below `n` and
    buckets 0..3, as an (n, 4) array, and by kind (0..KINDS-1) over every entry.
    `words` holds the entries as `Ledger.rows` does (core/_rows.pxd LRow).
    Raises IndexError for an entry of a bucket 0..3 whose account is not below `n`."""
    cdef Py_ssize_t i, m = words.shape[0] // ROW_WORDS
    cdef int64_t kind, bucket, a, pts
    cdef const LRow* rows = NULL
    if m:
        rows = <const LRow*>&words[0]
    sums = np.zeros((n, 4), dtype=np.int64)
    kinds = np.zeros(KINDS, dtype=np.int64)
    cdef int64_t[:, ::1] s = sums
    cdef int64_t[::1] k = kinds
    for i in range(m):
        if i + AHEAD < m:
            a = rows[i + AHEAD].account
            if 0 <= a < n:
                pm_check_prefetch(&s[a, 0])
        kind = rows[i].kind
        bucket = rows[i].bucket
        a = rows[i].account
        pts = rows[i].points
        if 0 <= kind < KINDS:
            k[kind] += pts
        if 0 <= bucket < 4:
            if not 0 <= a < n:
                raise IndexError(f"ledger entry {i} names account {a} of {n}")
            s[a, bucket] += pts
    return sums, kinds


ctypedef fused cell_t:
    int32_t
    int64_t


cdef inline void _fields(const cell_t* q, int64_t* f) noexcept:
    """A payment record's account, points, reversed, refunded, total and pending."""
    f[0] = q[P_ACCT]; f[1] = q[P_POINTS]; f[2] = q[P_REVERSED]; f[3] = q[P_REFUNDED]
    f[4] = q[P_TOTAL]; f[5] = q[P_PENDING]


def pay_sums(const int32_t[::1] pays, const int64_t[::1] wide, const int64_t[::1] root,
             Py_ssize_t n):
    """One pass over the payments (core.payments' records: narrow in `pays`, else in
    `wide`): (some refund or reversal out of bounds, some pending points out of bounds,
    pending points by the surviving account of each payment's account: an array of `n`).
    Raises IndexError for an account not below `n`, a wide record that is not there, or
    merges that form a loop."""
    cdef Py_ssize_t i, steps, m = pays.shape[0] // PF, nw = wide.shape[0] // PF
    cdef int64_t a, a0, r, pts, rev, ref, tot, pend, w
    cdef int64_t f[6]
    cdef bint bounds = False, pend_bad = False
    out = np.zeros(n, dtype=np.int64)
    cdef int64_t[::1] s = out
    if root.shape[0] < n:
        raise ValueError(f"{root.shape[0]} roots for {n} accounts")
    for i in range(m):
        if i + 2 * AHEAD < m:
            a = pays[(i + 2 * AHEAD) * PF + P_ACCT]
            if 0 <= a < n:
                pm_check_prefetch(&root[a])
        if i + AHEAD < m:
            a = pays[(i + AHEAD) * PF + P_ACCT]
            if 0 <= a < n:
                r = root[a]
                if 0 <= r < n:
                    pm_check_prefetch(&s[r])
        w = pays[i * PF + P_PROG]
        if w >= 0:
            _fields(&pays[i * PF], f)
        else:
            w = -1 - w
            if w >= nw:
                raise IndexError(f"payment {i} names wide record {w} of {nw}")
            _fields(&wide[w * PF], f)
        a, pts, rev, ref, tot, pend = f[0], f[1], f[2], f[3], f[4], f[5]
        if rev < 0 or rev > pts or ref < 0 or ref > tot:
            bounds = True
        if pend < 0 or pend > pts - rev:
            pend_bad = True
        if not 0 <= a < n:
            raise IndexError(f"payment {i} names account {a} of {n}")
        steps = 0
        a0 = a
        r = root[a]
        while r != a:
            if not 0 <= r < n or steps > n:
                raise IndexError(f"account {a0}'s merges lead nowhere")
            a = r
            r = root[a]
            steps += 1
        s[a] += pend
    return bounds, pend_bad, out


def lot_sums(const int64_t[:] tail, const int64_t[:] nxt, const int[:] day,
             const int64_t[:] pts, Py_ssize_t n):
    """Every account's lots (accounts below `n`) walked from the oldest: (points of each
    account's lots, an array of `n`; the accounts whose lots are not positive on strictly
    increasing days, ascending; the accounts whose list is broken: a lot number outside
    the pool, or a list that never comes back to its newest lot)."""
    cdef Py_ssize_t a, steps, size = pts.shape[0]
    cdef int64_t t, k, last = 0
    cdef bint bad
    out = np.zeros(n, dtype=np.int64)
    cdef int64_t[::1] s = out
    bad_list: list[int] = []
    broken: list[int] = []
    if tail.shape[0] < n or nxt.shape[0] < size or day.shape[0] < size:
        raise ValueError("the lots' columns are shorter than their pool")
    for a in range(n):
        t = tail[a]
        if t == 0:
            continue
        if not 0 < t < size:
            broken.append(a)
            continue
        k = nxt[t]
        bad = False
        steps = 0
        while True:
            if not 0 < k < size or steps >= size:
                broken.append(a)
                bad = False  # reported as broken instead
                break
            if pts[k] <= 0 or (steps and day[k] <= last):
                bad = True
            s[a] += pts[k]
            last = day[k]
            steps += 1
            if k == t:
                break
            k = nxt[k]
        if bad:
            bad_list.append(a)
    return out, bad_list, broken
