# cython: language_level=3, boundscheck=False, wraparound=False
"""KeyIndex's keys as stored, and the loops over its table (core/_keys.pyx): each compiled
once per slot width (core/_keytable.pxd's fused `slot_t`); KeyIndex picks the pair of its
width once, when it is built (`find_fn`, `peek_fn`), never once a probe."""

from libc.stdint cimport uint32_t, uint64_t

from core._keyhash cimport pm_hash, pm_prefetch, pm_same
from core._keypack cimport pack6, unpack6
from core._keys cimport KeyIndex
from core._keytable cimport (home, number_in, popcount, put, put_slot, slot_of, slot_t,
                              tag_hit)

DEF REHASH_AHEAD = 16  # keys hashed ahead of their placing when a table is rebuilt (a power of 2)
DEF PACKED_MAX = 48  # bytes of a packed key at most (64 characters; core._keypack)


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


cdef inline void _rehash_into(KeyIndex k, slot_t* fresh, size_t cap, uint32_t nmask) noexcept:
    # Keys 0 .. k.n - 1 into the empty table `fresh`, each hashed REHASH_AHEAD keys ahead
    # of its placing and its home slot touched then (the ring keeps its home and slot).
    # Packed keys of one width (the member maps') are unpacked straight from the arena.
    cdef size_t homes[REHASH_AHEAD]
    cdef slot_t held[REHASH_AHEAD]
    cdef uint64_t h
    cdef unsigned char buf[64]
    cdef Py_ssize_t i, d, n = k.n, width = k.width, rec = k.rec
    cdef bint packed = k.packed and k.offs == NULL
    cdef size_t j = 0
    for i in range(n + REHASH_AHEAD):
        if i < n:
            if packed:
                unpack6(k.arena + i * rec, width, buf)
                h = pm_hash(buf, width)
            else:
                h = pm_hash(_raw(k, i, buf), _length(k, i))
            j = home(h, cap)
            pm_prefetch(fresh + j)
        d = i - REHASH_AHEAD
        if d >= 0:
            put_slot(fresh, cap, homes[d & (REHASH_AHEAD - 1)], held[d & (REHASH_AHEAD - 1)])
        if i < n:
            homes[i & (REHASH_AHEAD - 1)] = j
            held[i & (REHASH_AHEAD - 1)] = slot_of(<slot_t>0, h, i, nmask)


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
    tag_bits = 32 - popcount(k.nmask) if slot_t is uint32_t else 32
    return {"keys": k.n, "slots": k.cap, "tag_bits": tag_bits,
            "hit_probes": hit_probes / k.n if k.n else 0.0,
            "hit_compares": hit_compares / k.n if k.n else 0.0,
            "miss_probes": miss_probes / k.cap,
            "miss_compares": (miss_probes - k.cap) / k.cap / 2.0 ** tag_bits}
