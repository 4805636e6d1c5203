# cython: language_level=3, boundscheck=False, wraparound=False
"""The model's per-tick kernels in C: one call where numpy takes a dozen small ones.

A tick handles a few hundred to a few thousand rows, so numpy's cost per call, not
per row, dominated these routines (sim.ids' id matrices).
"""

import numpy as np

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
