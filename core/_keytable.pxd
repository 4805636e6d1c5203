# cython: language_level=3, boundscheck=False, wraparound=False
"""The slot tables of KeyIndex (core/_keys.pyx): open addressing, linear probing, a key's
home the top 32 bits of its hash scaled to the table's size (any size works), at most
80% full. Slots are 0 when empty, else they hold the key's number plus one and a tag.

Two slot widths, chosen per index when it is built (`KeyIndex(slot_bytes=...)`):
- 8 bytes: `(hash >> 32) << 32 | number + 1`. The tag is the home's own bits, so a table
  grows without re-hashing any key (`grow_wide`): for indexes that grow on the hot path
  (the transaction ids).
- 4 bytes: the number plus one in the bits of `number_mask(cap)`, as many low bits of
  the hash as that leaves above them as the tag. A slot keeps too few bits to find its
  home again, so growing re-hashes every key from the arena (`KeyIndex._rebuild`): for
  the member maps, where a key is inserted once a shopper (docs/memory.md).

The helpers take the table's pointer typed `uint32_t*` or `uint64_t*` (the fused
`slot_t`), so each probe loop is compiled once per width with no test of the width in it.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free

ctypedef fused slot_t:
    uint32_t
    uint64_t

cdef extern from *:
    """
    /* The bits a number plus one takes in a 4-byte slot of a table of cap slots: enough
       for the most keys such a table holds (80% full), so the count never outgrows them. */
    static inline uint32_t pm_number_mask(size_t cap) {
        uint64_t most = (uint64_t)cap * 4 / 5;
        int bits = most ? 64 - __builtin_clzll(most) : 1;
        return bits >= 32 ? 0xFFFFFFFFu : (uint32_t)((1ull << bits) - 1);
    }
    """
    uint32_t number_mask "pm_number_mask"(size_t cap) noexcept nogil

DEF SLOTS_MAX = 1 << 32  # homes scale the hash's top 32 bits; 80% of it fits 32 bits


cdef inline size_t home(uint64_t h, size_t cap) noexcept:
    # The hash's top 32 bits scaled to [0, cap).
    return <size_t>(((h >> 32) * <uint64_t>cap) >> 32)


cdef inline size_t home_byte(uint64_t h, size_t tbytes) noexcept:
    # A byte in slot home(h, cap), tbytes = cap * slot bytes (up to 2**35), give or take
    # a few bytes in very large tables: what prefetching needs, in one multiply.
    return <size_t>(((h >> 35) * <uint64_t>tbytes) >> 29)


cdef inline bint tag_hit(slot_t s, uint64_t h, uint32_t nmask) noexcept:
    # Whether slot s (not empty) may hold the key hashed h: its tag equals h's.
    if slot_t is uint64_t:
        return (s >> 32) == (h >> 32)
    else:
        return ((s ^ <uint32_t>h) & ~nmask) == 0


cdef inline Py_ssize_t number_in(slot_t s, uint32_t nmask) noexcept:
    # The key number slot s holds (a C cast: a literal past 2**31 is a Python int).
    if slot_t is uint64_t:
        return <Py_ssize_t><uint32_t>s - 1
    else:
        return <Py_ssize_t>(s & nmask) - 1


cdef inline slot_t slot_of(slot_t width, uint64_t h, Py_ssize_t i, uint32_t nmask) noexcept:
    # The slot of key number i hashed h, as `put` writes it (`width` only picks the type).
    if slot_t is uint64_t:
        return ((h >> 32) << 32) | <uint64_t>(i + 1)
    else:
        return (<uint32_t>h & ~nmask) | <uint32_t>(i + 1)


cdef inline void put_slot(slot_t* t, size_t cap, size_t j, slot_t s) noexcept:
    # Slot s into the first empty slot of t from j on (wrapping).
    while t[j] != 0:
        j += 1
        if j == cap:
            j = 0
    t[j] = s


cdef inline void put(slot_t* t, size_t cap, size_t j, uint64_t h, Py_ssize_t i,
                     uint32_t nmask) noexcept:
    # Key number i, hashed h, into the first empty slot of t from j on (wrapping).
    put_slot(t, cap, j, slot_of(t[0], h, i, nmask))


cdef inline size_t grown(size_t cap) except 0:
    # The next table size: by half, to keep the table between 53% and 80% full.
    cdef size_t more = min(cap + cap // 2, <size_t>SLOTS_MAX)
    if more <= cap:
        raise OverflowError("KeyIndex holds at most 2**32 slots")
    return more


cdef inline uint64_t* grow_wide(uint64_t* stale, size_t old, size_t cap) except NULL:
    # A table of 8-byte slots moved into `cap` slots without re-hashing (a slot's home
    # follows from its tag); frees `stale`.
    cdef uint64_t* fresh = <uint64_t*>calloc(cap, sizeof(uint64_t))
    cdef size_t k
    cdef uint64_t s
    if fresh == NULL:
        raise MemoryError()
    for k in range(old):
        s = stale[k]
        if s:
            put_slot(fresh, cap, home(s, cap), s)
    free(stale)
    return fresh


cdef inline bint sound(slot_t* t, size_t cap, Py_ssize_t n) noexcept:
    # n filled slots, each numbering a key that exists (memory safety; the CRC of the
    # snapshot, not this, guards against tampering).
    cdef size_t j, filled = 0
    cdef uint32_t nmask = number_mask(cap)
    cdef Py_ssize_t no
    for j in range(cap):
        if t[j]:
            no = number_in(t[j], nmask)
            if no < 0 or no >= n:
                return False
            filled += 1
    return filled == <size_t>n
