# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The model's per-tick kernels in C: one call where numpy takes a dozen small ones.

A tick handles a few hundred to a few thousand rows, so numpy's cost per call, not
per row, dominated these routines (sim.ids' id matrices).
"""

import numpy as np
from libc.math cimport floor, isfinite
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

cdef const char *_DIGITS = b"0123456789"


def id_matrix(bytes row, const long[::1] number, Py_ssize_t width):
    """Copies of template `row` (a head, `width` digit bytes, a newline), one per number of
    `number`, each number written zero-padded into its digit bytes: a uint8 matrix (see
    sim.ids._matrix). Returns None when some number is negative or has more than `width`
    digits (the caller's general path handles those)."""
    cdef Py_ssize_t n = number.shape[0], w = len(row), end = w - 1, i, j
    cdef long x
    cdef const unsigned char[::1] tpl = row
    out = np.empty((n, w), np.uint8)
    if not n:
        return out
    cdef unsigned char[:, ::1] buf = out
    cdef unsigned char *p
    for i in range(n):
        x = number[i]
        if x < 0:
            return None
        p = &buf[i, 0]
        for j in range(w):
            p[j] = tpl[j]
        j = end
        while x and j > end - width:
            j -= 1
            p[j] = _DIGITS[x % 10]
            x //= 10
        if x:
            return None
    return out


DEF TAGS = 52  # sim.ids.PROGRAM_TAGS: one character per program
cdef unsigned int _CRC[256]
# crc32 state after an openid's first bytes: "o", tag, app digit, "_" and k of its 24
# digits' leading zeros, per (tag, app, k): a row then hashes only its significant digits.
cdef unsigned int _PREFIX[TAGS][2][25]


cdef inline unsigned int _step(unsigned int crc, unsigned char b) noexcept nogil:
    return _CRC[(crc ^ b) & 0xFF] ^ (crc >> 8)


cdef void _tables(const unsigned char *tags):
    cdef unsigned int c, k, j, q, a
    for k in range(256):
        c = k
        for j in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        _CRC[k] = c
    for q in range(TAGS):
        for a in range(2):
            c = _step(_step(_step(_step(0xFFFFFFFF, b"o"), tags[q]), 48 + a), b"_")
            _PREFIX[q][a][0] = c
            for k in range(1, 25):
                c = _step(c, b"0")
                _PREFIX[q][a][k] = c


_TAG_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
assert len(_TAG_BYTES) == TAGS
_tables(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def route_shards(short[::1] cache, Py_ssize_t shoppers, long prog,
                 const long[::1] progs, Py_ssize_t app, const long[::1] shopper,
                 unsigned int shards):
    """The shard (core's `shard_of`: crc32 modulo `shards`) of each shopper's openid
    `sim.ids.openid(program, app, shopper)` as int16, looked up in `cache` (the flat
    (program, app of 2, shopper) table, -1 = not yet) and filed there when missing. The
    program is `prog`, or when it is negative, each row's of `progs`. Raises IndexError
    for a program or shopper outside the table."""
    cdef Py_ssize_t n = shopper.shape[0], i, d
    cdef long q, s
    cdef Py_ssize_t idx
    cdef unsigned int crc
    cdef unsigned char digits[24]
    if not 0 <= app < 2 or shards < 1:
        raise ValueError(f"app must be 0 or 1 and shards >= 1, got {app} and {shards}")
    out = np.empty(n, np.int16)
    cdef short[::1] o = out
    # Two passes: the lookups first (independent loads, overlapped by the processor), then
    # the openids not yet filed.
    for i in range(n):
        q = prog if prog >= 0 else progs[i]
        s = shopper[i]
        idx = (q * 2 + app) * shoppers + s
        if not (0 <= q < TAGS and 0 <= s < shoppers and 0 <= idx < cache.shape[0]):
            raise IndexError(f"no shard table entry for program {q}, app {app}, shopper {s}")
        o[i] = cache[idx]
    for i in range(n):
        if o[i] >= 0:
            continue
        q = prog if prog >= 0 else progs[i]
        s = shopper[i]
        idx = (q * 2 + app) * shoppers + s
        d = 0
        while s:
            digits[d] = <unsigned char>(48 + s % 10)
            s //= 10
            d += 1
        crc = _PREFIX[q][app][24 - d]
        while d:
            d -= 1
            crc = _step(crc, digits[d])
        o[i] = cache[idx] = <short>((crc ^ 0xFFFFFFFF) % shards)
    return out


cdef inline size_t _hash(long x) noexcept nogil:
    return <size_t>(<unsigned long>x * 0x9E3779B97F4A7C15ULL >> 17)


def plan(const long[::1] shopper, const signed char[::1] kind, int kinds):
    """A tick's application plan (sim.feed.prepare): its rows (shoppers `shopper`, kinds
    `kind` in 0..kinds-1) applied by each row's rank among its shopper's rows, then by
    kind, then by position. Returns (positions grouped by kind, in application order
    within each kind; the number of rows of each kind; the runs of one kind in application
    order as (kind, lo, hi): that kind's rows lo..hi-1). Raises ValueError for a kind out
    of range or columns of different lengths."""
    cdef Py_ssize_t n = shopper.shape[0], i, j, top = 0, k, key, nkeys
    cdef size_t size = 16, mask, h
    if kind.shape[0] != n:
        raise ValueError(f"{n} shoppers but {kind.shape[0]} kinds")
    rank_a = np.empty(n, np.int64)
    cdef long[::1] rank = rank_a
    for i in range(n):
        if kind[i] < 0 or kind[i] >= kinds:
            raise ValueError(f"kind {kind[i]} out of range 0..{kinds - 1}")
    # Each row's rank among its shopper's rows (positions ascending): rows seen so far per
    # shopper, in an open-addressing table of at least twice as many slots as rows.
    while size < <size_t>(2 * n):
        size <<= 1
    mask = size - 1
    keys_a = np.empty(size, np.int64)
    seen_a = np.zeros(size, np.int64)  # rows seen + 1: 0 = free slot
    cdef long[::1] keys = keys_a, seen = seen_a
    for i in range(n):
        h = _hash(shopper[i]) & mask
        while seen[h] and keys[h] != shopper[i]:
            h = (h + 1) & mask
        if not seen[h]:
            keys[h] = shopper[i]
            seen[h] = 1
        rank[i] = seen[h] - 1
        seen[h] += 1
        if rank[i] > top:
            top = rank[i]
    # A stable counting sort by (rank, kind): the application order.
    nkeys = (top + 1) * kinds
    start_a = np.zeros(nkeys + 1, np.int64)
    cdef long[::1] start = start_a
    for i in range(n):
        start[rank[i] * kinds + kind[i] + 1] += 1
    for k in range(nkeys):
        start[k + 1] += start[k]
    order_a = np.empty(n, np.int64)
    cdef long[::1] order = order_a
    for i in range(n):
        key = rank[i] * kinds + kind[i]
        order[start[key]] = i
        start[key] += 1
    # Grouped by kind (stably: application order within a kind), and the runs.
    count_a = np.zeros(kinds + 1, np.int64)
    cdef long[::1] count = count_a
    for i in range(n):
        count[kind[i] + 1] += 1
    counts = [int(count[k + 1]) for k in range(kinds)]
    for k in range(kinds):
        count[k + 1] += count[k]
    grouped_a = np.empty(n, np.int64)
    cdef long[::1] grouped = grouped_a
    cdef long[::1] at = count_a.copy()
    runs = []
    cdef Py_ssize_t lo = 0, kd
    for j in range(n):
        i = order[j]
        kd = kind[i]
        grouped[at[kd]] = i
        at[kd] += 1
        if j + 1 == n or kind[order[j + 1]] != kd:
            runs.append((kd, int(at[kd] - count[kd] - (j + 1 - lo)), int(at[kd] - count[kd])))
            lo = j + 1
    return grouped_a, counts, runs


def complete(const short[::1] shard, const double[::1] due, double[::1] free, double s):
    """Completion times of inputs reaching FIFO shards (sim.platform.PlatformStage.complete):
    input k of a shard, in `due` order, due at a_k, completes at
    C_k = (k+1)s + max(free, max_{j<=k}(a_j - js)), `free` being when the shard frees;
    `free` is updated to each shard's last completion. Raises ValueError for a shard
    outside `free`."""
    cdef Py_ssize_t n = due.shape[0], w = free.shape[0], i, j
    cdef double x, c
    for i in range(n):
        if shard[i] < 0 or shard[i] >= w:
            raise ValueError(f"shard {shard[i]} out of range 0..{w - 1}")
    done_a = np.empty(n)
    cdef double[::1] done = done_a
    seen_a = np.zeros(w, np.int64)
    cdef long[::1] seen = seen_a
    best_a = np.empty(w)
    cdef double[::1] best = best_a
    start_a = np.array(free, np.float64)
    cdef double[::1] start = start_a
    cdef long k
    for i in range(n):
        j = shard[i]
        k = seen[j]
        x = due[i] - <double>k * s
        if k == 0 or x > best[j]:
            best[j] = x
        c = <double>(k + 1) * s + (best[j] if best[j] > start[j] else start[j])
        done[i] = c
        free[j] = c
        seen[j] = k + 1
    return done_a


def react_known(const long[::1] rows, const signed char[::1] kind, const short[::1] code,
                const long[::1] pts, const long[:] shopper_of, const signed char[:] prog_of,
                Py_ssize_t shoppers, long[:] points, unsigned char[:] member,
                unsigned char[:] joining, long[:] coupon, int applied, int duplicate,
                int pay, int enroll, int coupon_kind):
    """What the model learns from a tick's answers (sim.platform.PlatformStage._react), in
    one pass over them: points earned (applied inputs) added to `points`; enrollments
    applied or duplicate make members (`member` set, `joining` cleared); coupons applied
    are held (`coupon` = the row). The population tables are flat, (program, shopper) at
    program * `shoppers` + shopper; `shopper_of`/`prog_of` are the inputs table's columns.
    Returns (positions of applied payments, their shoppers, programs and flat keys,
    enrollments applied or duplicate, of which applied). Raises IndexError, changing
    nothing, for a row outside the tables."""
    cdef Py_ssize_t n = rows.shape[0], i, m = 0, size = points.shape[0]
    cdef long r, key
    cdef long enrolled = 0, enrolled_applied = 0
    cdef int c
    at_a = np.empty(n, np.int64)
    s_a = np.empty(n, np.int64)
    q_a = np.empty(n, np.int64)
    k_a = np.empty(n, np.int64)
    cdef long[::1] at = at_a, s = s_a, q = q_a, k = k_a
    if member.shape[0] != size or joining.shape[0] != size or coupon.shape[0] != size:
        raise ValueError("the population tables must have one size")
    for i in range(n):  # first checked, so that bad rows change nothing
        r = rows[i]
        if not 0 <= r < shopper_of.shape[0] or not 0 <= r < prog_of.shape[0]:
            raise IndexError(f"no row {r} in the inputs table")
        key = prog_of[r] * shoppers + shopper_of[r]
        if not 0 <= key < size:
            raise IndexError(f"row {r}: no population entry {key}")
    for i in range(n):
        r = rows[i]
        key = prog_of[r] * shoppers + shopper_of[r]
        c = code[i]
        if c == applied and pts[i] != 0:
            points[key] += pts[i]
        if kind[i] == enroll and (c == applied or c == duplicate):
            member[key] = 1
            joining[key] = 0
            enrolled += 1
            enrolled_applied += c == applied
        elif kind[i] == coupon_kind and c == applied:
            coupon[key] = r
        elif kind[i] == pay and c == applied:
            at[m] = i
            s[m] = shopper_of[r]
            q[m] = prog_of[r]
            k[m] = key
            m += 1
    return at_a[:m], s_a[:m], q_a[:m], k_a[:m], enrolled, enrolled_applied


def by_station(const long[::1] station, const long[::1] by_arrival, Py_ssize_t stations):
    """Customers' positions by station, then arrival (sim.queues.QueueBank.serve): positions
    `by_arrival` (stably sorted by arrival time) sorted stably by `station` (each in
    0..stations-1), with each one's rank among its station's customers; the same order as
    `np.lexsort((arrive, station))`. Returns (order, rank, steps: the largest rank + 1, 0
    for none). Raises ValueError for a station out of range or lengths that disagree."""
    cdef Py_ssize_t n = station.shape[0], i, j, s, steps = 0
    if by_arrival.shape[0] != n:
        raise ValueError(f"{n} stations but {by_arrival.shape[0]} positions")
    for i in range(n):
        if not 0 <= station[i] < stations:
            raise ValueError(f"station {station[i]} out of range 0..{stations - 1}")
        if not 0 <= by_arrival[i] < n:
            raise ValueError(f"position {by_arrival[i]} out of range 0..{n - 1}")
    start_a = np.zeros(stations + 1, np.int64)
    cdef long[::1] start = start_a
    for i in range(n):
        start[station[i] + 1] += 1
    for s in range(stations):
        if start[s + 1] > steps:
            steps = start[s + 1]
        start[s + 1] += start[s]
    order_a = np.empty(n, np.int64)
    rank_a = np.empty(n, np.int64)
    cdef long[::1] order = order_a, rank = rank_a, first = start_a.copy()
    for j in range(n):
        i = by_arrival[j]
        s = station[i]
        order[start[s]] = i
        rank[start[s]] = start[s] - first[s]
        start[s] += 1
    return order_a, rank_a, steps
