# cython: language_level=3
"""Ids packed 6 bits a character, for core._keys.

The platform's ids (openid, unionid) use 64 characters, letters, digits, `-` and `_`
(DOMAIN.md), and transaction ids are digits: 4 characters fit 3 bytes. Packing is a
bijection on strings of one length over that alphabet (spare bits are zero), so packed
keys compare exactly as the strings do.
"""

DEF PACK_CHARS_MAX = 64  # longer keys are kept as they are
DEF PACK_BYTES_MAX = 48  # = 64 * 6 / 8

cdef extern from *:
    """
    static const char pm_alphabet[65] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static unsigned char pm_codes[256];
    static void pm_codes_init(void) {
        int c;
        for (c = 0; c < 256; c++) pm_codes[c] = 0xFF;
        for (c = 0; c < 64; c++) pm_codes[(unsigned char)pm_alphabet[c]] = (unsigned char)c;
    }
    """
    const char* pm_alphabet
    unsigned char* pm_codes
    void pm_codes_init() noexcept nogil  # once, before packing (core._keys does at import)


cdef inline Py_ssize_t packed_size(Py_ssize_t n) noexcept:
    """Bytes of a packed key of `n` characters."""
    return (n * 6 + 7) // 8


cdef inline Py_ssize_t pack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept:
    """Pack `p[:n]` into `out`; returns the bytes written, or -1 when `p` is not packable
    (longer than 64 characters or off the alphabet)."""
    cdef unsigned int acc = 0, bits = 0
    cdef unsigned char v
    cdef Py_ssize_t k, o = 0
    if n > PACK_CHARS_MAX:
        return -1
    for k in range(n):
        v = pm_codes[p[k]]
        if v == 0xFF:
            return -1
        acc = (acc << 6) | v
        bits += 6
        if bits >= 8:
            bits -= 8
            out[o] = <unsigned char>(acc >> bits)
            o += 1
            acc &= (1u << bits) - 1
    if bits:
        out[o] = <unsigned char>(acc << (8 - bits))
        o += 1
    return o


cdef inline void unpack6(const unsigned char* p, Py_ssize_t n, unsigned char* out) noexcept:
    """The `n` characters packed at `p`, into `out`."""
    cdef unsigned int acc = 0, bits = 0
    cdef Py_ssize_t k, o = 0
    for k in range(n):
        if bits < 6:
            acc = (acc << 8) | p[o]
            o += 1
            bits += 8
        bits -= 6
        out[k] = <unsigned char>pm_alphabet[(acc >> bits) & 63]
        acc &= (1u << bits) - 1


cdef inline bint pad_clear(const unsigned char* p, Py_ssize_t n) noexcept:
    """Whether the spare bits after `n` packed characters at `p` are zero (as pack6 leaves them)."""
    cdef Py_ssize_t spare = packed_size(n) * 8 - n * 6
    return spare == 0 or (p[packed_size(n) - 1] & ((1 << spare) - 1)) == 0
