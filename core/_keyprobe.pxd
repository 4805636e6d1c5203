# cython: language_level=3, boundscheck=False, wraparound=False
"""KeyIndex's keys as stored, and the loops over its table (core/_keys.pyx): each compiled
once per slot width (core/_keytable.pxd's fused `slot_t`); KeyIndex picks the pair of its
width once, when it is built (`find_fn`, `peek_fn`), never once a probe."""

from libc.stdint cimport uint32_t, uint64_t

from core._keyhash cimport pm_hash, pm_prefetch, pm_same
from core._keypack cimport pack6, unpack6
from core._keys cimport KeyIndex
from core._keytable cimport home, number_in, put, put_slot, slot_of, slot_t, tag_hit

DEF REHASH_AHEAD = 16  # keys hashed a run ahead of their placing when a table is rebuilt
DEF PACKED_MAX = 48  # bytes of a packed key at most (64 characters; core._keypack)


cdef extern from *:
    """
    /* The hashes of `count` packed keys of n characters from p, rec bytes apart, into out
       (a rebuild's keys): unpacked and hashed inline, n a constant for the platform's
       widths, by AVX2 where the CPU has it; else key by key. */
    #define PM_HASH_RUN(N, UNPACK) \
        for (i = 0; i < count; i++, p += rec) { UNPACK(p, N, buf); out[i] = pm_hash_at(buf, N); }
#if defined(__x86_64__) && defined(__GNUC__)
    __attribute__((target("avx2")))
    static void pm_hash_packed_avx2(const unsigned char* p, Py_ssize_t rec, Py_ssize_t n,
                                    Py_ssize_t count, uint64_t* out) {
        unsigned char buf[32];
        Py_ssize_t i;
        if (n == 28) PM_HASH_RUN(28, pm_unpack32_avx2)
        else if (n == 32) PM_HASH_RUN(32, pm_unpack32_avx2)
        else PM_HASH_RUN(24, pm_unpack32_avx2)
    }
#else
    static void pm_hash_packed_avx2(const unsigned char* p, Py_ssize_t rec, Py_ssize_t n,
                                    Py_ssize_t count, uint64_t* out) {}
#endif
    static void pm_hash_packed(const unsigned char* p, Py_ssize_t rec, Py_ssize_t n,
                               Py_ssize_t count, uint64_t* out) {
        unsigned char buf[64];
        Py_ssize_t i;
        if (PM_UNPACK_AVX2(n) && PM_AVX2()) {
            pm_hash_packed_avx2(p, rec, n, count, out);
            return;
        }
        for (i = 0; i < count; i++, p += rec) {
            pm_unpack6(p, n, buf);
            out[i] = pm_hash(buf, n);
        }
    }
    """
    void pm_hash_packed(const unsigned char* p, Py_ssize_t rec, Py_ssize_t n, Py_ssize_t count,
                        uint64_t* out) noexcept nogil


cdef inline const unsigned char* _stored(KeyIndex k, Py_ssize_t i) noexcept:
    # Key i as the arena holds it (packed while k.packed).
    return k.arena + (i * k.rec if k.offs == NULL else k.offs[i])


cdef inline Py_ssize_t _length(KeyIndex k, Py_ssize_t i) noexcept:
    # Key i's length in bytes (as given, not as packed).
    return k.width if k.offs == NULL else k.offs[i + 1] - k.offs[i]


cdef inline const unsigned char* _raw(KeyIndex k, Py_ssize_t i, unsigned char* buf) noexcept:
    # Key i's bytes as given: in place, or unpacked into buf (64 bytes).
    if k.packed:
        unpack6(_stored(k, i), k.width, buf)
        return buf
    return _stored(k, i)


cdef inline Py_ssize_t _probe(KeyIndex k, slot_t* t, const unsigned char* p, Py_ssize_t n,
                              uint64_t h) noexcept:
    # The number of the key p[:n] hashed h, or -1 (where the search stopped kept for `_place`).
    cdef size_t j = home(h, k.cap)
    cdef uint32_t nmask = k.nmask
    cdef slot_t s
    cdef Py_ssize_t i
    cdef unsigned char q[PACKED_MAX]
    cdef bint have_q = False
    if k.offs == NULL and n != k.width:
        return -1  # every key has another length
    while True:
        s = t[j]
        if s == 0:
            k.miss_slot, k.miss_cap, k.miss_h = j, k.cap, h
            return -1
        if tag_hit(s, h, nmask):
            i = number_in(s, nmask)
            if k.offs == NULL:
                if not k.packed:
                    if pm_same(k.arena + i * n, p, <size_t>n):
                        return i
                else:
                    if not have_q:  # packed once, on the first tag that matches
                        if pack6(p, n, q) < 0:
                            return -1  # off the alphabet, so not among the keys
                        have_q = True
                    if pm_same(k.arena + i * k.rec, q, <size_t>k.rec):
                        return i
            elif (k.offs[i + 1] - k.offs[i] == n
                    and pm_same(k.arena + k.offs[i], p, <size_t>n)):
                return i
        j += 1
        if j == k.cap:
            j = 0


cdef inline void _place_in(KeyIndex k, slot_t* t, uint64_t h, Py_ssize_t i) noexcept:
    cdef size_t j = k.miss_slot
    # A key `_find` just missed goes where that search stopped: the slots from its
    # home up to there were taken then and are still (nothing is ever removed).
    if not (h == k.miss_h and k.cap == k.miss_cap and t[j] == 0):
        j = home(h, k.cap)
    put(t, k.cap, j, h, i, k.nmask)


cdef inline Py_ssize_t _peek(KeyIndex k, slot_t* t, uint64_t h) noexcept:
    cdef size_t j = home(h, k.cap)
    cdef uint32_t nmask = k.nmask
    cdef slot_t s
    while True:
        s = t[j]
        if s == 0:
            return -1
        if tag_hit(s, h, nmask):
            return number_in(s, nmask)
        j += 1
        if j == k.cap:
            j = 0


cdef inline void _hash_run(KeyIndex k, Py_ssize_t first, Py_ssize_t count, uint64_t* out) noexcept:
    # The hashes of keys first .. first + count - 1, into out.
    cdef unsigned char buf[64]
    cdef Py_ssize_t i
    if k.packed and k.offs == NULL:
        pm_hash_packed(k.arena + first * k.rec, k.rec, k.width, count, out)
    else:
        for i in range(count):
            out[i] = pm_hash(_raw(k, first + i, buf), _length(k, first + i))


cdef inline void _rehash_into(KeyIndex k, slot_t* fresh, size_t cap, uint32_t nmask) noexcept:
    # Keys 0 .. k.n - 1 into the empty table `fresh`, in runs of REHASH_AHEAD: a run is
    # hashed and its homes touched, then the run before it placed (the arena read in order).
    cdef uint64_t hs[2][REHASH_AHEAD]
    cdef size_t homes[2][REHASH_AHEAD]
    cdef Py_ssize_t c, d, e, m, n = k.n
    cdef int b
    for c in range(0, n + REHASH_AHEAD, REHASH_AHEAD):
        if c < n:
            m, b = min(REHASH_AHEAD, n - c), (c // REHASH_AHEAD) & 1
            _hash_run(k, c, m, hs[b])
            for e in range(m):
                homes[b][e] = home(hs[b][e], cap)
                pm_prefetch(fresh + homes[b][e])
        if c >= REHASH_AHEAD:
            d = c - REHASH_AHEAD
            m, b = min(REHASH_AHEAD, n - d), (d // REHASH_AHEAD) & 1
            for e in range(m):
                put_slot(fresh, cap, homes[b][e], slot_of(<slot_t>0, hs[b][e], d + e, nmask))


cdef inline dict _probe_stats(KeyIndex k, slot_t* t):
    # KeyIndex.probe_stats, for one slot width.
    cdef Py_ssize_t i
    cdef size_t j, e = 0, run = 0, hit_probes = 0, hit_compares = 0, miss_probes = 0
    cdef uint64_t h
    cdef unsigned char buf[64]
    for i in range(k.n):
        h = pm_hash(_raw(k, i, buf), _length(k, i))
        j = home(h, k.cap)
        while True:
            hit_probes += 1
            if tag_hit(t[j], h, k.nmask):
                hit_compares += 1
                if number_in(t[j], k.nmask) == i:
                    break
            j += 1
            if j == k.cap:
                j = 0
    while t[e] != 0:  # an empty slot: the table is at most 80% full
        e += 1
    for j in range(k.cap):  # from e back around: run = filled slots from here on
        i = <Py_ssize_t>((e + k.cap - j) % k.cap)
        run = run + 1 if t[i] != 0 else 0
        miss_probes += run + 1
    tag_bits = 32 - int(k.nmask).bit_count() if slot_t is uint32_t else 32
    return {"keys": k.n, "slots": k.cap, "tag_bits": tag_bits,
            "hit_probes": hit_probes / k.n if k.n else 0.0,
            "hit_compares": hit_compares / k.n if k.n else 0.0,
            "miss_probes": miss_probes / k.cap,
            "miss_compares": (miss_probes - k.cap) / k.cap / 2.0 ** tag_bits}
