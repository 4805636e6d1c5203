# cython: language_level=3
"""Ids packed 6 bits a character, for core._keys.

The platform's ids (openid, unionid) use 64 characters, letters, digits, `-` and `_`
(DOMAIN.md), and transaction ids are digits: 4 characters fit 3 bytes. Packing is a
bijection on strings of one length over that alphabet (spare bits are zero), so packed
keys compare exactly as the strings do. It is base64url decoding: sixteen characters at a
time go through SSSE3 where the CPU has it, and ids of 20 to 32 characters (a multiple of
4: the platform's openids and transaction ids) in one AVX2 pass where it has that (the
same bytes as the eight-at-a-time loop). Unpacking (a 4-byte table's rebuild unpacks
every key) is base64url encoding, by the same paths: SSSE3 from 16 characters, AVX2 for
24, 28 and 32 (`pm_unpack6`; `core._keys.unpack_by` runs each path, for tests).
"""

DEF PACK_CHARS_MAX = 64  # longer keys are kept as they are
DEF PACK_BYTES_MAX = 48  # = 64 * 6 / 8

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static const char pm_alphabet[65] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    /* A character's code, 0xFF off the alphabet: a constant table, so that packing is
       ready in every module that inlines it. */
    static const unsigned char pm_codes[256] = {
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3E, 0xFF, 0xFF,
        0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12,
        0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F,
        0xFF, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30,
        0x31, 0x32, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF,
    };
    static unsigned char pm_pairs[4096][2];  /* 12 bits -> their 2 characters, for unpacking */
    static void pm_pairs_init(void) {
        int c;
        for (c = 0; c < 4096; c++) {
            pm_pairs[c][0] = (unsigned char)pm_alphabet[c >> 6];
            pm_pairs[c][1] = (unsigned char)pm_alphabet[c & 63];
        }
    }
    /* The n characters packed at p, into out, from character k (byte o, k a multiple of
       4): 8 characters from each 6 bytes, 4 from each 3, then one at a time. */
    static inline void pm_unpack6_from(const unsigned char* p, Py_ssize_t n, unsigned char* out,
                                       Py_ssize_t k, Py_ssize_t o) {
        Py_ssize_t size = (n * 6 + 7) / 8;
        unsigned int v, acc = 0, bits = 0;
        if (!pm_pairs[0][0])  /* filled on first use: each module inlining this has its own */
            pm_pairs_init();
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t w;
        for (; k + 8 <= n && o + 8 <= size; k += 8, o += 6) {  /* 8 characters from 6 bytes */
            memcpy(&w, p + o, 8);
            w = __builtin_bswap64(w) >> 16;
            memcpy(out + k, pm_pairs[(w >> 36) & 0xFFF], 2);
            memcpy(out + k + 2, pm_pairs[(w >> 24) & 0xFFF], 2);
            memcpy(out + k + 4, pm_pairs[(w >> 12) & 0xFFF], 2);
            memcpy(out + k + 6, pm_pairs[w & 0xFFF], 2);
        }
    #endif
        for (; k + 4 <= n; k += 4, o += 3) {
            v = (unsigned int)p[o] << 16 | (unsigned int)p[o + 1] << 8 | p[o + 2];
            memcpy(out + k, pm_pairs[v >> 12], 2);
            memcpy(out + k + 2, pm_pairs[v & 0xFFF], 2);
        }
        for (; k < n; k++) {
            if (bits < 6) {
                acc = (acc << 8) | p[o++];
                bits += 8;
            }
            bits -= 6;
            out[k] = (unsigned char)pm_alphabet[(acc >> bits) & 63];
            acc &= (1u << bits) - 1;
        }
    }
    """
    const char* pm_alphabet
    const unsigned char* pm_codes


cdef inline Py_ssize_t packed_size(Py_ssize_t n) noexcept:
    """Bytes of a packed key of `n` characters."""
    return (n * 6 + 7) // 8


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Eight characters at a time from character k (byte o): 48 bits, stored as 6 bytes,
       first character highest. An off-alphabet character has code 0xFF, so `bad` has a
       high bit set at the end. */
    static inline Py_ssize_t pm_pack6_from(const unsigned char* p, Py_ssize_t n,
                                           unsigned char* out, Py_ssize_t k, Py_ssize_t o) {
        Py_ssize_t r, j, nb;
        unsigned int bad = 0, c;
        uint64_t v, be;
        for (; k + 8 <= n; k += 8) {
            const uint64_t c0 = pm_codes[p[k]], c1 = pm_codes[p[k + 1]],
                c2 = pm_codes[p[k + 2]], c3 = pm_codes[p[k + 3]], c4 = pm_codes[p[k + 4]],
                c5 = pm_codes[p[k + 5]], c6 = pm_codes[p[k + 6]], c7 = pm_codes[p[k + 7]];
            bad |= (unsigned int)(c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7);
            v = c0 << 42 | c1 << 36 | c2 << 30 | c3 << 24 | c4 << 18 | c5 << 12 | c6 << 6 | c7;
            be = __builtin_bswap64(v << 16);
            memcpy(out + o, &be, 6);
            o += 6;
        }
        r = n - k;
        if (r) {
            v = 0;
            for (j = 0; j < r; j++) {
                c = pm_codes[p[k + j]];
                bad |= c;
                v = (v << 6) | c;
            }
            nb = (6 * r + 7) / 8;
            v <<= nb * 8 - 6 * r;
            for (j = nb - 1; j >= 0; j--) {
                out[o + j] = (unsigned char)v;
                v >>= 8;
            }
            o += nb;
        }
        return (bad & 0xC0) ? -1 : o;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    #include <immintrin.h>
    /* Sixteen characters to 12 bytes at once (SSSE3; base64url decoding, which this
       packing is): 0 when one is off the alphabet. Writes out[0:12] only. */
    __attribute__((target("ssse3")))
    static inline int pm_pack16(const unsigned char* p, unsigned char* out) {
        const __m128i v = _mm_loadu_si128((const __m128i*)p);
        /* bytes past 127 are negative as signed bytes, so in none of the ranges */
        const __m128i az = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x60)),
                                         _mm_cmplt_epi8(v, _mm_set1_epi8(0x7B)));
        const __m128i AZ = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x40)),
                                         _mm_cmplt_epi8(v, _mm_set1_epi8(0x5B)));
        const __m128i d09 = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x2F)),
                                          _mm_cmplt_epi8(v, _mm_set1_epi8(0x3A)));
        const __m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x2D));
        const __m128i us = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x5F));
        const __m128i ok = _mm_or_si128(_mm_or_si128(_mm_or_si128(az, AZ), d09),
                                        _mm_or_si128(dash, us));
        __m128i off, c;
        if (_mm_movemask_epi8(ok) != 0xFFFF) return 0;
        off = _mm_or_si128(
            _mm_or_si128(_mm_and_si128(AZ, _mm_set1_epi8(-65)), _mm_and_si128(az, _mm_set1_epi8(-71))),
            _mm_or_si128(_mm_and_si128(d09, _mm_set1_epi8(4)),
                         _mm_or_si128(_mm_and_si128(dash, _mm_set1_epi8(62 - 0x2D)),
                                      _mm_and_si128(us, _mm_set1_epi8(63 - 0x5F)))));
        c = _mm_add_epi8(v, off);  /* the codes, 0..63 */
        c = _mm_maddubs_epi16(c, _mm_set1_epi32(0x01400140));  /* pairs: c0 << 6 | c1 */
        c = _mm_madd_epi16(c, _mm_set1_epi32(0x00011000));  /* quads: 24 bits */
        c = _mm_shuffle_epi8(c, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12,
                                              -1, -1, -1, -1));  /* big-endian, packed */
        _mm_storel_epi64((__m128i*)out, c);
        {
            const int last = _mm_cvtsi128_si32(_mm_srli_si128(c, 8));
            memcpy(out + 8, &last, 4);
        }
        return 1;
    }
    /* n >= 16: blocks of 16; when n is a multiple of 4, the last block is the key's last
       16 characters (overlapping the one before: the same bytes written twice), else the
       rest goes eight at a time. */
    __attribute__((target("ssse3")))
    static Py_ssize_t pm_pack6_ssse3(const unsigned char* p, Py_ssize_t n, unsigned char* out) {
        Py_ssize_t k = 0, o = 0;
        for (; k + 16 <= n; k += 16) {
            if (!pm_pack16(p + k, out + o)) return -1;
            o += 12;
        }
        if (k == n) return o;
        if (n % 4 == 0) {
            if (!pm_pack16(p + n - 16, out + (n - 16) / 4 * 3)) return -1;
            return n / 4 * 3;
        }
        return pm_pack6_from(p, n, out, k, o);
    }
    /* 16 < n <= 32 characters, n a multiple of 4 (the platform's ids: 28-character
       openids, 32-character transaction ids), in one pass (AVX2): the first 16 and the
       last 16 characters, one per lane (the overlap is written twice, the same bytes).
       Characters are classed by table look-ups on their nibbles, as base64 decoders do:
       a character is on the alphabet when the classes its low nibble is in (pm_lo_class)
       are all allowed with its high nibble (pm_hi_bar: the classes barred), and its code
       is itself plus an offset by its high nibble (pm_hi_off; `_`, the one character of
       the alphabet with its high nibble, 5, and low nibble 15, takes row 13). Returns
       n / 4 * 3, or -1 when a character is off the alphabet. */
    static const int8_t pm_lo_class[32] __attribute__((aligned(32))) = {
        1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 8, 8, 16, 8, 32,
        1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 8, 8, 16, 8, 32};
    static const int8_t pm_hi_bar[32] __attribute__((aligned(32))) = {
        63, 63, 47, 60, 1, 24, 1, 56, 63, 63, 63, 63, 63, 63, 63, 63,
        63, 63, 47, 60, 1, 24, 1, 56, 63, 63, 63, 63, 63, 63, 63, 63};
    static const int8_t pm_hi_off[32] __attribute__((aligned(32))) = {
        0, 0, 62 - 0x2D, 52 - 0x30, -65, -65, -71, -71, 0, 0, 0, 0, 0, 63 - 0x5F, 0, 0,
        0, 0, 62 - 0x2D, 52 - 0x30, -65, -65, -71, -71, 0, 0, 0, 0, 0, 63 - 0x5F, 0, 0};
    static const int8_t pm_order[32] __attribute__((aligned(32))) = {
        2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
        2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1};
    __attribute__((target("avx2")))
    static Py_ssize_t pm_pack32_avx2(const unsigned char* p, Py_ssize_t n, unsigned char* out) {
        const __m256i v = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)p)),
            _mm_loadu_si128((const __m128i*)(p + n - 16)), 1);
        const __m256i nib = _mm256_set1_epi8(0x0F);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(v, 4), nib);
        const __m256i lo = _mm256_and_si256(v, nib);
        const __m256i us = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x5F));
        __m256i c;
        __m128i low, high;
        int w;
        if (!_mm256_testz_si256(
                _mm256_shuffle_epi8(_mm256_load_si256((const __m256i*)pm_lo_class), lo),
                _mm256_shuffle_epi8(_mm256_load_si256((const __m256i*)pm_hi_bar), hi)))
            return -1;
        c = _mm256_add_epi8(v, _mm256_shuffle_epi8(
            _mm256_load_si256((const __m256i*)pm_hi_off),
            _mm256_or_si256(hi, _mm256_and_si256(us, _mm256_set1_epi8(8)))));
        c = _mm256_maddubs_epi16(c, _mm256_set1_epi32(0x01400140));  /* pairs: c0 << 6 | c1 */
        c = _mm256_madd_epi16(c, _mm256_set1_epi32(0x00011000));  /* quads: 24 bits */
        c = _mm256_shuffle_epi8(c, _mm256_load_si256((const __m256i*)pm_order));
        low = _mm256_castsi256_si128(c);
        high = _mm256_extracti128_si256(c, 1);
        _mm_storel_epi64((__m128i*)out, low);
        w = _mm_cvtsi128_si32(_mm_srli_si128(low, 8));
        memcpy(out + 8, &w, 4);
        out += (n - 16) / 4 * 3;
        _mm_storel_epi64((__m128i*)out, high);
        w = _mm_cvtsi128_si32(_mm_srli_si128(high, 8));
        memcpy(out + 8, &w, 4);
        return n / 4 * 3;
    }
    static int pm_ssse3 = -1;  /* whether the CPU has SSSE3: -1 not asked yet */
    #define PM_SSSE3() (pm_ssse3 >= 0 ? pm_ssse3 : (pm_ssse3 = __builtin_cpu_supports("ssse3") ? 1 : 0))
    static int pm_avx2 = -1;  /* and AVX2 */
    #define PM_AVX2() (pm_avx2 >= 0 ? pm_avx2 : (pm_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0))
    #else
    #define PM_SSSE3() 0
    #define PM_AVX2() 0
    static Py_ssize_t pm_pack6_ssse3(const unsigned char* p, Py_ssize_t n, unsigned char* out) { return -1; }
    static Py_ssize_t pm_pack32_avx2(const unsigned char* p, Py_ssize_t n, unsigned char* out) { return -1; }
    #endif
    static inline Py_ssize_t pm_pack6(const unsigned char* p, Py_ssize_t n,
                                      unsigned char* out) {
        if (n > 64) return -1;
        if (n > 16 && n <= 32 && (n & 3) == 0 && PM_AVX2()) return pm_pack32_avx2(p, n, out);
        if (n >= 16 && PM_SSSE3()) return pm_pack6_ssse3(p, n, out);
        return pm_pack6_from(p, n, out, 0, 0);
    }
    """
    Py_ssize_t pm_pack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept nogil


cdef extern from *:
    """
#if defined(__x86_64__) && defined(__GNUC__)
    /* Unpacking is base64url encoding: 12 bytes make 16 characters. The 12 bytes at
       `at`..`at` + 11 of each 128-bit lane, each 3 bytes spread over a 32-bit word
       (b1 b0 b2 b1), then the four 6-bit codes of each word moved to its bytes (two
       multiplies), then a code to its character by a 16-entry table of offsets. */
    #define PM_SPREAD(at) at + 1, at, at + 2, at + 1, at + 4, at + 3, at + 5, at + 4, \
        at + 7, at + 6, at + 8, at + 7, at + 10, at + 9, at + 11, at + 10
    __attribute__((target("ssse3")))
    static inline __m128i pm_chars16(__m128i v, __m128i spread) {
        const __m128i w = _mm_shuffle_epi8(v, spread);
        const __m128i hi = _mm_mulhi_epu16(_mm_and_si128(w, _mm_set1_epi32(0x0FC0FC00)),
                                           _mm_set1_epi32(0x04000040));
        const __m128i lo = _mm_mullo_epi16(_mm_and_si128(w, _mm_set1_epi32(0x003F03F0)),
                                           _mm_set1_epi32(0x01000010));
        const __m128i c = _mm_or_si128(hi, lo);  /* the codes, 0..63 */
        /* 0 for 26..51, 1..10 for the digits, 11 '-', 12 '_', 13 for A..Z */
        __m128i r = _mm_subs_epu8(c, _mm_set1_epi8(51));
        r = _mm_or_si128(r, _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), c),
                                          _mm_set1_epi8(13)));
        r = _mm_shuffle_epi8(_mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                           '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                           '0' - 52, '-' - 62, '_' - 63, 'A', 0, 0), r);
        return _mm_add_epi8(r, c);
    }
    /* 12 bytes at p into a register's low 12 bytes, reading no byte past them. */
    static inline __m128i pm_load12(const unsigned char* p) {
        int last;
        memcpy(&last, p + 8, 4);
        return _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i*)p), _mm_cvtsi32_si128(last));
    }
    /* n >= 16 (SSSE3): 16 characters from each 12 bytes; when n is a multiple of 4, the
       last 16 characters from the last 12 bytes (overlapping: the same characters written
       twice), else the rest as the scalar loop does. */
    __attribute__((target("ssse3")))
    static void pm_unpack6_ssse3(const unsigned char* p, Py_ssize_t n, unsigned char* out) {
        const __m128i spread = _mm_setr_epi8(PM_SPREAD(0));
        Py_ssize_t k = 0, o = 0;
        for (; k + 16 <= n; k += 16, o += 12)
            _mm_storeu_si128((__m128i*)(out + k), pm_chars16(pm_load12(p + o), spread));
        if (k == n) return;
        if (n % 4 == 0) {
            _mm_storeu_si128((__m128i*)(out + n - 16),
                             pm_chars16(pm_load12(p + n / 4 * 3 - 12), spread));
            return;
        }
        pm_unpack6_from(p, n, out, k, o);
    }
    /* n of 24, 28 or 32 (the platform's openids and transaction ids), in one pass (AVX2):
       the first 16 characters from the first 12 bytes, the last 16 from the last 12, one
       per lane, as pm_unpack6_ssse3 does each. Both 16-byte loads lie inside the key's
       n * 3 / 4 >= 18 bytes; the last 12 are at 4 in the second. */
    __attribute__((target("avx2")))
    static inline void pm_unpack32_avx2(const unsigned char* p, Py_ssize_t n, unsigned char* out) {
        const __m256i v = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)p)),
            _mm_loadu_si128((const __m128i*)(p + n / 4 * 3 - 16)), 1);
        const __m256i w = _mm256_shuffle_epi8(v, _mm256_setr_epi8(PM_SPREAD(0), PM_SPREAD(4)));
        const __m256i hi = _mm256_mulhi_epu16(_mm256_and_si256(w, _mm256_set1_epi32(0x0FC0FC00)),
                                              _mm256_set1_epi32(0x04000040));
        const __m256i lo = _mm256_mullo_epi16(_mm256_and_si256(w, _mm256_set1_epi32(0x003F03F0)),
                                              _mm256_set1_epi32(0x01000010));
        const __m256i c = _mm256_or_si256(hi, lo);
        __m256i r = _mm256_subs_epu8(c, _mm256_set1_epi8(51));
        r = _mm256_or_si256(r, _mm256_and_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(26), c),
                                                _mm256_set1_epi8(13)));
        r = _mm256_shuffle_epi8(_mm256_setr_epi8(
            'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
            '0' - 52, '0' - 52, '0' - 52, '-' - 62, '_' - 63, 'A', 0, 0,
            'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
            '0' - 52, '0' - 52, '0' - 52, '-' - 62, '_' - 63, 'A', 0, 0), r);
        r = _mm256_add_epi8(r, c);
        _mm_storeu_si128((__m128i*)out, _mm256_castsi256_si128(r));
        _mm_storeu_si128((__m128i*)(out + n - 16), _mm256_extracti128_si256(r, 1));
    }
    #define PM_UNPACK_AVX2(n) ((n) >= 24 && (n) <= 32 && ((n) & 3) == 0)
#else
    #define PM_UNPACK_AVX2(n) 0
    static void pm_unpack6_ssse3(const unsigned char* p, Py_ssize_t n, unsigned char* out) {}
    static void pm_unpack32_avx2(const unsigned char* p, Py_ssize_t n, unsigned char* out) {}
#endif
    /* The n characters packed at p, into out (n <= 64): the same bytes by every path. */
    static inline void pm_unpack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) {
        if (PM_UNPACK_AVX2(n) && PM_AVX2()) pm_unpack32_avx2(p, n, out);
        else if (n >= 16 && PM_SSSE3()) pm_unpack6_ssse3(p, n, out);
        else pm_unpack6_from(p, n, out, 0, 0);
    }
    /* Tests: unpack by one path (0 scalar, 1 SSSE3, 2 AVX2); 0 when this CPU lacks it
       or it does not take n characters. */
    static int pm_unpack6_by(const unsigned char* p, Py_ssize_t n, unsigned char* out, int path) {
        if (path == 0) pm_unpack6_from(p, n, out, 0, 0);
        else if (path == 1 && n >= 16 && PM_SSSE3()) pm_unpack6_ssse3(p, n, out);
        else if (path == 2 && PM_UNPACK_AVX2(n) && PM_AVX2()) pm_unpack32_avx2(p, n, out);
        else return 0;
        return 1;
    }
    """
    void pm_unpack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept nogil
    int pm_unpack6_by(const unsigned char* p, Py_ssize_t n, unsigned char* out, int path) noexcept nogil


cdef inline Py_ssize_t pack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept:
    """Pack `p[:n]` into `out`; returns the bytes written, or -1 when `p` is not packable
    (longer than 64 characters or off the alphabet)."""
    return pm_pack6(p, n, out)


cdef inline void unpack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept:
    """The `n` characters packed at `p`, into `out`."""
    pm_unpack6(p, n, out)


cdef inline bint pad_clear(const unsigned char* p, Py_ssize_t n) noexcept:
    """Whether the spare bits after `n` packed characters at `p` are zero (as pack6 leaves them)."""
    cdef Py_ssize_t spare = packed_size(n) * 8 - n * 6
    return spare == 0 or (p[packed_size(n) - 1] & ((1 << spare) - 1)) == 0
