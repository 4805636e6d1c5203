# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled loops of replay: record checksums, and the id spans of a payments record.

Replay's own cost grows with the journal's bytes in two places: the checksum of every
record, and finding where each id of a payments record starts and ends. `crc32` is
zlib's CRC-32 (the same values, so the on-disk format is unchanged) computed by
carry-less multiplication folding (Intel's PCLMULQDQ method, as zlib-ng and Chromium's
zlib do) when the CPU has it, several times faster than zlib's table loop.
`text_spans` finds the spans in a C loop instead of several numpy passes.
"""

import zlib

from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    #if defined(__x86_64__) && defined(__GNUC__)
    #include <immintrin.h>
    /* CRC-32 (reflected polynomial 0xEDB88320) of len bytes at buf, len a multiple of
       16 and at least 64, continuing from crc in its inverted (working) form. Folds four
       128-bit lanes by 512 bits, then into one, then to 32 bits by Barrett reduction;
       the constants are those of "Fast CRC Computation for Generic Polynomials Using
       PCLMULQDQ" (Intel, 2009), as in Linux's crc32-pclmul and Chromium's zlib. */
    __attribute__((target("sse4.1,pclmul")))
    static uint32_t pm_crc32_fold(const unsigned char *buf, size_t len, uint32_t crc) {
        static const uint64_t __attribute__((aligned(16))) k1k2[] = {0x0154442bd4, 0x01c6e41596};
        static const uint64_t __attribute__((aligned(16))) k3k4[] = {0x01751997d0, 0x00ccaa009e};
        static const uint64_t __attribute__((aligned(16))) k5k0[] = {0x0163cd6124, 0x0000000000};
        static const uint64_t __attribute__((aligned(16))) poly[] = {0x01db710641, 0x01f7011641};
        __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
        x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
        x0 = _mm_load_si128((const __m128i *)k1k2);
        buf += 64;
        len -= 64;
        while (len >= 64) {
            x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
            x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
            x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
            x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
            x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
            x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
            x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
            x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
            y5 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
            y6 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
            y7 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
            y8 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
            x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
            x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
            x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
            buf += 64;
            len -= 64;
        }
        x0 = _mm_load_si128((const __m128i *)k3k4);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
        x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
        while (len >= 16) {
            x2 = _mm_loadu_si128((const __m128i *)buf);
            x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
            x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
            buf += 16;
            len -= 16;
        }
        x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
        x3 = _mm_setr_epi32(~0, 0, ~0, 0);
        x1 = _mm_srli_si128(x1, 8);
        x1 = _mm_xor_si128(x1, x2);
        x0 = _mm_loadl_epi64((const __m128i *)k5k0);
        x2 = _mm_srli_si128(x1, 4);
        x1 = _mm_and_si128(x1, x3);
        x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        x0 = _mm_load_si128((const __m128i *)poly);
        x2 = _mm_and_si128(x1, x3);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
        x2 = _mm_and_si128(x2, x3);
        x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        return (uint32_t)_mm_extract_epi32(x1, 1);
    }
    static int pm_crc32_fold_supported(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    }
    #else
    static uint32_t pm_crc32_fold(const unsigned char *buf, size_t len, uint32_t crc) {
        (void)buf; (void)len; return crc;
    }
    static int pm_crc32_fold_supported(void) { return 0; }
    #endif
    """
    uint32_t pm_crc32_fold(const unsigned char* buf, size_t len, uint32_t crc) nogil
    int pm_crc32_fold_supported() nogil

_zlib_crc32 = zlib.crc32
FOLDING = bool(pm_crc32_fold_supported())  # this CPU computes crc32 by folding
_FOLD_MIN = 256  # below this, zlib's own loop costs less than the setup of folding


def crc32(data, unsigned long value=0):
    """`zlib.crc32(data, value)` of the bytes-like `data`: the same value, computed by
    carry-less multiplication folding when the CPU has it (without holding the GIL)."""
    cdef const unsigned char[:] view = data
    cdef Py_ssize_t size = view.shape[0], bulk
    cdef uint32_t crc = <uint32_t>value
    if not FOLDING or size < _FOLD_MIN:
        return _zlib_crc32(data, value)
    bulk = size & ~<Py_ssize_t>15
    with nogil:
        crc = ~pm_crc32_fold(&view[0], <size_t>bulk, ~crc)
    if bulk == size:
        return crc
    return _zlib_crc32(view[bulk:], crc)


cdef inline uint32_t _u32le(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef bint _ascii(const unsigned char* p, Py_ssize_t size) noexcept nogil:
    """Whether the `size` bytes at `p` are all below 128."""
    cdef uint64_t acc = 0, word
    cdef Py_ssize_t i = 0
    while i + 8 <= size:
        memcpy(&word, p + i, 8)
        acc |= word
        i += 8
    while i < size:
        acc |= p[i]
        i += 1
    return (acc & 0x8080808080808080ULL) == 0


cdef Py_ssize_t _nul_spans(const unsigned char* p, Py_ssize_t size, Py_ssize_t n,
                           int64_t* lo, int64_t* hi) noexcept nogil:
    """Fill lo/hi with the spans of the NUL-separated items of the `size` bytes at `p`, at
    most n of them; returns how many items there are (n + 1 when more than n)."""
    cdef Py_ssize_t pos = 0, start = 0, i = 0
    cdef uint64_t word, zero
    while True:
        # The next NUL from pos, eight bytes at a time: a byte of `zero` has its high bit
        # set for each zero byte of `word` (the lowest such flag is always exact).
        while pos + 8 <= size:
            memcpy(&word, p + pos, 8)
            zero = (word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL
            if zero:
                pos += __builtin_ctzll(zero) >> 3
                break
            pos += 8
        else:
            while pos < size and p[pos] != 0:
                pos += 1
        if i == n:
            return n + 1
        lo[i] = start
        hi[i] = pos
        i += 1
        if pos >= size:
            return i
        pos += 1
        start = pos


def text_spans(data, Py_ssize_t n, int form):
    """The n items of text section `data` (bytes-like) in `form` (0: joined by NUL; 1: n
    little-endian u32 lengths, then the items back to back), as (starts, ends, ascii):
    int64 arrays of byte offsets into `data`, and whether every item byte is ASCII.

    Raises ValueError when the section holds another number of items or its lengths do
    not add up to its size; it does not check UTF-8 (the caller does, when not ASCII).
    """
    cdef const unsigned char[:] view = data
    cdef Py_ssize_t size = view.shape[0], pos = 0, i = 0
    cdef const unsigned char* p = &view[0] if size else <const unsigned char*>b""
    if n < 0 or form not in (0, 1):
        raise ValueError(f"text section form {form} with {n} items")
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] lo = starts, hi = ends
    if form == 0:
        if n == 0:
            if size:
                raise ValueError("text section has items, expected 0")
            return starts, ends, True
        with nogil:
            i = _nul_spans(p, size, n, &lo[0], &hi[0])
        if i != n:
            raise ValueError(f"text section has {'more than ' if i > n else ''}"
                             f"{min(i, n)} items, expected {n}")
        return starts, ends, _ascii(p, size)
    if size < 4 * n:
        raise ValueError("text section lengths overrun it")
    pos = 4 * n
    for i in range(n):
        lo[i] = pos
        pos += _u32le(p + 4 * i)
        hi[i] = pos
        if pos > size:
            raise ValueError("text section lengths overrun it")
    if pos != size:
        raise ValueError("text section lengths do not add up")
    return starts, ends, _ascii(p + 4 * n, size - 4 * n)
