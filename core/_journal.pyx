# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled loops of replay: record checksums, and payments records decoded into blocks.

Replay's own cost grows with the journal's bytes in two places: the checksum of every
record, and decoding payments records (above all, finding where each id starts and
ends). `crc32` is zlib's CRC-32 (the same values, so the on-disk format is unchanged)
computed by carry-less multiplication folding (Intel's PCLMULQDQ method, as zlib-ng
and Chromium's zlib do) when the CPU has it, several times faster than zlib's table
loop. `text_spans` finds one text section's spans in a C loop instead of several numpy
passes; `run_fields` decodes a run of consecutive records into one block's fields in
a single pass, their ids left where they are.
"""

import zlib

from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
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


cdef int _spans_into(const unsigned char* p, Py_ssize_t size, Py_ssize_t n, int form,
                    int64_t base, int64_t* lo, int64_t* hi, bint* ascii) except -1:
    """Write the spans of the n items of the text section at `p` (`size` bytes, `form`)
    to lo/hi, as offsets from `base`; clear `ascii` when an item byte is not ASCII.
    Raises ValueError when the section holds another number of items."""
    cdef Py_ssize_t pos, i, got
    if form == 0:
        if n == 0:
            if size:
                raise ValueError("text section has items, expected 0")
            return 0
        with nogil:
            got = _nul_spans(p, size, n, lo, hi)
            if got == n and base:
                for i in range(n):
                    lo[i] += base
                    hi[i] += base
        if got != n:
            raise ValueError(f"text section has {'more than ' if got > n else ''}"
                             f"{min(got, n)} items, expected {n}")
        if ascii[0] and not _ascii(p, size):
            ascii[0] = False
        return 0
    if form != 1:
        raise ValueError(f"text section form {form}")
    if size < 4 * n:
        raise ValueError("text section lengths overrun it")
    pos = 4 * n
    for i in range(n):
        lo[i] = base + pos
        pos += _u32le(p + 4 * i)
        hi[i] = base + pos
        if pos > size:
            raise ValueError("text section lengths overrun it")
    if pos != size:
        raise ValueError("text section lengths do not add up")
    if ascii[0] and not _ascii(p + 4 * n, size - 4 * n):
        ascii[0] = False
    return 0


def text_spans(data, Py_ssize_t n, int form):
    """The n items of text section `data` (bytes-like) in `form` (0: joined by NUL; 1: n
    little-endian u32 lengths, then the items back to back), as (starts, ends, ascii):
    int64 arrays of byte offsets into `data`, and whether every item byte is ASCII.

    Raises ValueError when the section holds another number of items or its lengths do
    not add up to its size; it does not check UTF-8 (the caller does, when not ASCII).
    """
    cdef const unsigned char[:] view = data
    cdef Py_ssize_t size = view.shape[0]
    cdef const unsigned char* p = &view[0] if size else <const unsigned char*>b""
    cdef bint ascii = True
    if n < 0:
        raise ValueError(f"text section with {n} items")
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] lo = starts, hi = ends
    _spans_into(p, size, n, form, 0, &lo[0] if n else NULL, &hi[0] if n else NULL, &ascii)
    return starts, ends, ascii


cdef inline uint32_t _u16le(const unsigned char* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8)


# The layout of a payments record (`core.payment_columns.encode`): a 24-byte head
# <IHHHHIQ (n, the four dictionaries' sizes, coupons, reserved); int64 total_fen,
# payer_total_fen, time_s; uint16 codes of appid, mchid, currency, trade_type; uint8
# coupon counts; then 9 text sections <BI + bytes: the four dictionaries,
# transaction_id, openid, out_trade_no, device_id, coupon ids.
DEF HEAD = 24
DEF SECTIONS = 9


def run_fields(payloads, texts):
    """The fields of a block holding the payments of the records `payloads` (memoryviews,
    one after another), for `core.payment_block.decode_run`: (buffer, total_fen,
    payer_total_fen, time_s, appid codes, appids, mchid codes, mchids, currency codes,
    currencies, tx starts, tx ends, openid starts, openid ends, ascii, the indexes of
    records with coupons). Ids are spans into `buffer`: the object the payloads are views
    of when they share one (a mapped segment), else their bytes joined. `texts(form, data,
    k)` decodes a dictionary section. Raises ValueError when a record does not parse.
    """
    cdef Py_ssize_t m = len(payloads), r, d, s, j, total = 0, at, pos, size, k
    cdef const unsigned char[:] whole
    cdef const unsigned char[:] one
    cdef const unsigned char* base
    cdef const unsigned char* p
    cdef uint32_t n, code
    cdef int64_t[::1] offs = np.empty(m, dtype=np.int64), sizes = np.empty(m, dtype=np.int64)
    cdef int64_t sec_off[SECTIONS]
    cdef int64_t sec_size[SECTIONS]
    cdef int sec_form[SECTIONS]
    cdef uint32_t kd[4]
    cdef bint ascii = True
    owner = payloads[0].obj if m and isinstance(payloads[0], memoryview) else None
    if owner is not None and all(isinstance(x, memoryview) and x.obj is owner
                                 for x in payloads):
        whole = memoryview(owner).cast("B")
        base = &whole[0]
        for r in range(m):
            one = payloads[r]
            sizes[r] = one.shape[0]
            offs[r] = (&one[0] - base) if one.shape[0] else 0
    else:
        owner = b"".join(payloads)
        whole = owner
        base = &whole[0] if whole.shape[0] else <const unsigned char*>b""
        pos = 0
        for r in range(m):
            offs[r] = pos
            sizes[r] = len(payloads[r])
            pos += sizes[r]
    for r in range(m):
        if sizes[r] < HEAD or HEAD + 33 * <int64_t>_u32le(base + offs[r]) > sizes[r]:
            raise ValueError("payments record is shorter than its head and columns")
        total += _u32le(base + offs[r])
    totals = np.empty(total, dtype=np.int64)
    payers = np.empty(total, dtype=np.int64)
    times = np.empty(total, dtype=np.int64)
    codes = [np.empty(total, dtype=np.uint16) for d in range(3)]
    tx_lo = np.empty(total, dtype=np.int64)
    tx_hi = np.empty(total, dtype=np.int64)
    op_lo = np.empty(total, dtype=np.int64)
    op_hi = np.empty(total, dtype=np.int64)
    cdef int64_t[::1] vtot = totals, vpay = payers, vtime = times
    cdef int64_t[::1] vtx_lo = tx_lo, vtx_hi = tx_hi, vop_lo = op_lo, vop_hi = op_hi
    cdef uint16_t[::1] vapp = codes[0], vmch = codes[1], vccy = codes[2]
    cdef uint16_t[::1] vout
    cdef uint16_t[::1] table
    names = [[], [], []]  # the merged dictionaries
    where = [{}, {}, {}]  # value -> merged code
    seen = [None, None, None, None]  # each dictionary section's bytes: its table, last seen
    tables = [None, None, None, None]
    with_coupons = []
    at = 0
    for r in range(m):
        p = base + offs[r]
        size = sizes[r]
        n = _u32le(p)
        for d in range(4):
            kd[d] = _u16le(p + 4 + 2 * d)
        pos = HEAD + 33 * <Py_ssize_t>n
        if pos > size:
            raise ValueError("payments record columns overrun it")
        for s in range(SECTIONS):
            if pos + 5 > size:
                raise ValueError("text section head overruns the record")
            sec_form[s] = p[pos]
            sec_size[s] = _u32le(p + pos + 1)
            pos += 5
            sec_off[s] = pos
            if sec_form[s] > 1:
                raise ValueError(f"text section form {sec_form[s]}")
            if pos + sec_size[s] > size:
                raise ValueError("text section overruns the record")
            pos += sec_size[s]
        if pos != size:
            raise ValueError(f"{size - pos} bytes after the last section")
        memcpy(&vtot[at], p + HEAD, 8 * n)
        memcpy(&vpay[at], p + HEAD + 8 * n, 8 * n)
        memcpy(&vtime[at], p + HEAD + 16 * n, 8 * n)
        for d in range(4):
            raw = (<const char*>(p + sec_off[d]))[:sec_size[d]]
            if raw != seen[d] or tables[d] is None:
                items = texts(sec_form[d], memoryview(raw), kd[d])
                seen[d] = raw
                if d < 3:  # trade_type is checked, not kept (a block has none)
                    merged, known = where[d], names[d]
                    local = []
                    for v in items:
                        if v not in merged:
                            merged[v] = len(known)
                            known.append(v)
                        local.append(merged[v])
                    if len(known) > 0xFFFF:
                        raise ValueError("more names in a run than a code can hold")
                    tables[d] = np.array(local, dtype=np.uint16)
                else:
                    tables[d] = np.empty(0, dtype=np.uint16)
            if d < 3:
                table = tables[d]
                vout = codes[d]
                k = table.shape[0]
                for j in range(n):
                    code = _u16le(p + HEAD + 24 * n + 2 * (d * n + j))
                    if code >= k:
                        raise ValueError(f"a code past its dictionary of {k}")
                    vout[at + j] = table[code]
        _spans_into(p + sec_off[4], sec_size[4], n, sec_form[4], offs[r] + sec_off[4],
                    &vtx_lo[at] if n else NULL, &vtx_hi[at] if n else NULL, &ascii)
        _spans_into(p + sec_off[5], sec_size[5], n, sec_form[5], offs[r] + sec_off[5],
                    &vop_lo[at] if n else NULL, &vop_hi[at] if n else NULL, &ascii)
        if _u32le(p + 12):
            with_coupons.append(r)
        elif sec_size[8]:
            raise ValueError("coupon ids in a record that counts none")
        at += n
    return (owner, totals, payers, times, codes[0], names[0], codes[1], names[1], codes[2],
            names[2], tx_lo, tx_hi, op_lo, op_hi, ascii, with_coupons)
