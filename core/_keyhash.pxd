# cython: language_level=3
"""KeyIndex's hash and key compare (core/_keys.pyx): the hash is part of the snapshot
format (a saved table is used as it is), pinned by tests/test_keys.py."""

from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy

cdef extern from *:
    """
    static inline uint64_t pm_mum(uint64_t a, uint64_t b) {
        __uint128_t r = (__uint128_t)a * b;
        return (uint64_t)r ^ (uint64_t)(r >> 64);
    }
    #define pm_prefetch(p) __builtin_prefetch((const void*)(p))
    #define PM_NUMBER_MAX ((Py_ssize_t)0xFFFFFFFEll)  /* numbers live in a slot's low 32 bits, plus one */
    /* A wyhash-style hash of n bytes: 8-byte words folded by 128-bit multiplies (inlined
       where n is a constant: a rebuild's loops, core/_keyprobe.pxd; else pm_hash). */
    static inline __attribute__((always_inline)) uint64_t pm_hash_at(const unsigned char* p,
                                                                     Py_ssize_t n) {
        uint64_t h = pm_mum((uint64_t)n ^ 0xa0761d6478bd642full, 0xe7037ed1a0b428dbull);
        uint64_t w;
        const Py_ssize_t len = n;
        while (n >= 8) {
            memcpy(&w, p, 8);
            h = pm_mum(w ^ 0x8ebc6af09c88c6e3ull, h ^ 0x589965cc75374cc3ull);
            p += 8;
            n -= 8;
        }
        w = 0;
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The last n < 8 bytes, zero-extended: the key's last 8 bytes shifted down (no
           call to memcpy for a variable size), when the key has 8. */
        if (len >= 8) {
            if (n) {
                memcpy(&w, p + n - 8, 8);
                w >>= (8 - n) * 8;
            }
        } else
    #endif
        memcpy(&w, p, (size_t)n);
        h = pm_mum(w ^ 0x1d8e4e27c47d124full ^ ((uint64_t)n << 56), h ^ 0xa0761d6478bd642full);
        return pm_mum(h, 0xe7037ed1a0b428dbull) ^ h;
    }
    static uint64_t pm_hash(const unsigned char* p, Py_ssize_t n) { return pm_hash_at(p, n); }
    /* Whether n bytes at a and b are equal; keys of 8 to 32 bytes (the platform's ids,
       packed or not) by overlapping 8-byte words, in place of a call to memcmp. */
    static inline int pm_same(const unsigned char* a, const unsigned char* b, size_t n) {
        uint64_t x, y, d;
        if (n < 8 || n > 32) return memcmp(a, b, n) == 0;
        memcpy(&x, a, 8); memcpy(&y, b, 8); d = x ^ y;
        memcpy(&x, a + n - 8, 8); memcpy(&y, b + n - 8, 8); d |= x ^ y;
        if (n > 16) { memcpy(&x, a + 8, 8); memcpy(&y, b + 8, 8); d |= x ^ y; }
        if (n > 24) { memcpy(&x, a + 16, 8); memcpy(&y, b + 16, 8); d |= x ^ y; }
        return d == 0;
    }
    """
    uint64_t pm_hash(const unsigned char* p, Py_ssize_t n) noexcept nogil
    bint pm_same(const unsigned char* a, const unsigned char* b, size_t n) noexcept nogil
    void pm_prefetch(const void* p) noexcept nogil
    Py_ssize_t PM_NUMBER_MAX
