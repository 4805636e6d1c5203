# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled gathers of payments records: routing ids, splitting a record, encoding a block.

A payments record (`core.payment_columns.encode`) is the form payments travel in: the
columnar request body, the journal's record, the sharded engine's PAY message. These
loops move rows between records and blocks without a Python object per row:
`span_shards` routes ids left in a buffer (the same numbers as `core.routing.shard_of`),
`split_record` gathers a record's rows into one record per label (a shard, a journal
record of at most JOURNAL_PAYMENTS_PER_RECORD_MAX rows, the rows applied), and
`encode_block` writes a `PaymentBlock` as a record.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memchr, memcpy, memset

import struct
import sys

import numpy as np

from core._journal import text_spans

DEF HEAD = 24
DEF SECTION = 5  # <BI: form, byte length
DEF SECTIONS = 9  # appid, mchid, currency, trade_type, then TEXTS, then coupon ids
DEF TEXTS = 4  # transaction_id, openid, out_trade_no, device_id: one item a row
DEF DICTS = 4
_HEAD = struct.Struct("<IHHHHIQ")
assert sys.byteorder == "little"  # int columns are copied as they lie in memory
_SECTION_HEAD = struct.Struct("<BI")

cdef uint32_t _CRC[256]


cdef void _crc_table() noexcept:
    cdef uint32_t c
    cdef int i, k
    for i in range(256):
        c = i
        for k in range(8):
            c = (c >> 1) ^ 0xEDB88320U if c & 1 else c >> 1
        _CRC[i] = c


_crc_table()


cdef inline uint32_t _u32le(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline void _put_u32(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = v >> 24


cdef inline void _put_u16(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF


cdef void _put_head(unsigned char* o, Py_ssize_t n, const uint32_t* kd,
                    Py_ssize_t n_coupons) noexcept nogil:
    """A record's head <IHHHHIQ: n, the four dictionaries' sizes, coupons, reserved 0."""
    cdef int d
    _put_u32(o, <uint32_t>n)
    for d in range(DICTS):
        _put_u16(o + 4 + 2 * d, kd[d])
    _put_u32(o + 12, <uint32_t>n_coupons)
    memset(o + 16, 0, 8)


cdef Py_ssize_t _put_bytes(unsigned char* o, bytes b):
    cdef Py_ssize_t size = len(b)
    memcpy(o, PyBytes_AS_STRING(b), size)
    return size


def span_shards(data, const int64_t[::1] starts, const int64_t[::1] ends, int shards):
    """The shard (int64 array) of each id data[starts[i]:ends[i]] (UTF-8 bytes): zlib's
    crc32 of its bytes modulo `shards`, as `core.routing.shard_of` of the same text.

    Raises ValueError when `shards` < 1 or a span lies outside `data`.
    """
    cdef const unsigned char[:] view = data
    cdef Py_ssize_t size = view.shape[0], n = starts.shape[0], i, j
    cdef const unsigned char* p = &view[0] if size else <const unsigned char*>b""
    cdef uint32_t crc
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if ends.shape[0] != n:
        raise ValueError("starts and ends differ in length")
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    for i in range(n):
        if not 0 <= starts[i] <= ends[i] <= size:
            raise ValueError(f"id span {starts[i]}..{ends[i]} outside {size} bytes")
    with nogil:
        for i in range(n):
            crc = 0xFFFFFFFFU
            for j in range(starts[i], ends[i]):
                crc = _CRC[(crc ^ p[j]) & 0xFF] ^ (crc >> 8)
            o[i] = (crc ^ 0xFFFFFFFFU) % <uint32_t>shards
    return out


cdef class _Record:
    """A parsed record: where its columns and sections are, and every text item's span."""

    cdef const unsigned char[:] view
    cdef const unsigned char* p
    cdef Py_ssize_t n, n_coupons
    cdef uint32_t kd[DICTS]
    cdef Py_ssize_t sec_at[SECTIONS]  # where each section's head is
    cdef Py_ssize_t sec_size[SECTIONS]
    cdef int sec_form[SECTIONS]
    cdef object spans  # per text section (and the coupons'), (starts, ends) int64 arrays
    cdef Py_ssize_t[::1] first_coupon  # row i's coupons are items first[i]..first[i+1]-1

    def __init__(self, payload):
        cdef Py_ssize_t off, s, size, i, total = 0
        self.view = payload
        size = self.view.shape[0]
        if size < HEAD:
            raise ValueError("payments record shorter than its head")
        self.p = &self.view[0]
        n, k_app, k_mch, k_ccy, k_tt, n_coupons, _ = _HEAD.unpack_from(payload, 0)
        self.n, self.n_coupons = n, n_coupons
        self.kd[0], self.kd[1], self.kd[2], self.kd[3] = k_app, k_mch, k_ccy, k_tt
        off = HEAD + 33 * self.n
        if off > size:
            raise ValueError("payments record shorter than its columns")
        for s in range(SECTIONS):
            if off + SECTION > size:
                raise ValueError("payments record ends inside a section head")
            self.sec_at[s] = off
            self.sec_form[s] = self.p[off]
            self.sec_size[s] = _u32le(self.p + off + 1)
            off += SECTION + self.sec_size[s]
            if off > size:
                raise ValueError("text section overruns the record")
        if off != size:
            raise ValueError(f"{size - off} bytes after the last section")
        self.spans = []
        for s in range(DICTS, SECTIONS):
            body = self.view[self.sec_at[s] + SECTION:self.sec_at[s] + SECTION
                             + self.sec_size[s]]
            lo, hi, _ = text_spans(body, self.n if s < DICTS + TEXTS else self.n_coupons,
                                   self.sec_form[s])
            self.spans.append((lo, hi))
        first = np.empty(self.n + 1, dtype=np.intp)
        self.first_coupon = first
        for i in range(self.n):
            self.first_coupon[i] = total
            total += self.p[HEAD + 32 * self.n + i]
        self.first_coupon[self.n] = total
        if total != self.n_coupons:
            raise ValueError("coupon counts do not add up")


cdef Py_ssize_t _gather(unsigned char* out, const unsigned char* src, int form,
                        const int64_t* lo, const int64_t* hi, const Py_ssize_t* items,
                        Py_ssize_t m) noexcept nogil:
    """Write the m items `items` (indices into lo/hi, offsets into src) as a text section's
    body in `form` (0: joined by NUL; 1: lengths, then the items); returns its size."""
    cdef Py_ssize_t k, pos = 0, size, j
    if form == 1:
        pos = 4 * m
        for k in range(m):
            j = items[k]
            size = hi[j] - lo[j]
            _put_u32(out + 4 * k, <uint32_t>size)
            memcpy(out + pos, src + lo[j], size)
            pos += size
        return pos
    for k in range(m):
        j = items[k]
        if k:
            out[pos] = 0
            pos += 1
        size = hi[j] - lo[j]
        memcpy(out + pos, src + lo[j], size)
        pos += size
    return pos


def split_record(payload, const int64_t[::1] labels, Py_ssize_t k, Py_ssize_t start=0,
                 Py_ssize_t stop=-1):
    """One record per label 0..k-1 holding, in order, the rows start..stop-1 (stop -1:
    the last row) of payments record `payload` whose `labels` entry is that label (rows
    with another label, e.g. -1, are left out); None for a label without rows. Every
    field and section is kept (the dictionaries whole), so each is a record `encode`
    could have made of those rows.

    Raises ValueError when `payload` does not parse, `labels` is not one per row, or the
    range is outside the record.
    """
    cdef _Record rec = _Record(payload)
    cdef Py_ssize_t n = rec.n, i, j, s, r, m, pos, dict_bytes
    cdef int64_t lab
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} rows")
    if stop < 0:
        stop = n
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows {start}..{stop} outside 0..{n}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows_of = np.zeros(k, dtype=np.intp)
    coupons_of = np.zeros(k, dtype=np.intp)
    cdef Py_ssize_t[::1] nrow = rows_of, ncoup = coupons_of
    # Each label's text bytes per section (TEXTS, then coupons).
    text_bytes = np.zeros((k, TEXTS + 1), dtype=np.intp)
    cdef Py_ssize_t[:, ::1] tb = text_bytes
    cdef const int64_t[::1] lo
    cdef const int64_t[::1] hi
    cdef Py_ssize_t[::1] fc = rec.first_coupon
    for i in range(start, stop):
        lab = labels[i]
        if 0 <= lab < k:
            nrow[lab] += 1
            ncoup[lab] += fc[i + 1] - fc[i]
    los = [np.asarray(a) for a, _ in rec.spans]
    his = [np.asarray(b) for _, b in rec.spans]
    for s in range(TEXTS + 1):
        lo = los[s]
        hi = his[s]
        for i in range(start, stop):
            lab = labels[i]
            if 0 <= lab < k:
                if s < TEXTS:
                    tb[lab, s] += hi[i] - lo[i]
                else:
                    for j in range(fc[i], fc[i + 1]):
                        tb[lab, s] += hi[j] - lo[j]
    dict_bytes = 0
    for s in range(DICTS):
        dict_bytes += SECTION + rec.sec_size[s]
    # Each label's row list, then its coupon list, in order.
    order = np.empty(stop - start, dtype=np.intp)
    cdef Py_ssize_t[::1] od = order
    firsts = np.zeros(k + 1, dtype=np.intp)
    cdef Py_ssize_t[::1] fi = firsts
    for r in range(k):
        fi[r + 1] = fi[r] + nrow[r]
    cursor = firsts[:k].copy()
    cdef Py_ssize_t[::1] cu = cursor
    for i in range(start, stop):
        lab = labels[i]
        if 0 <= lab < k:
            od[cu[lab]] = i
            cu[lab] += 1
    out = []
    for r in range(k):
        m = nrow[r]
        if not m:
            out.append(None)
            continue
        out.append(_write(rec, &od[fi[r]], m, ncoup[r], tb[r], dict_bytes, los, his))
    return out


cdef bytes _write(_Record rec, const Py_ssize_t* rows, Py_ssize_t m, Py_ssize_t m_coupons,
                  Py_ssize_t[::1] tb, Py_ssize_t dict_bytes, list los, list his):
    """The record of rows `rows` (m of them, m_coupons coupons) of `rec`."""
    cdef Py_ssize_t n = rec.n, size, s, c, k, j, pos, items_size, got
    cdef const unsigned char* p = rec.p
    cdef int form
    cdef const int64_t[::1] lo
    cdef const int64_t[::1] hi
    size = HEAD + 33 * m + dict_bytes
    for s in range(TEXTS + 1):
        c = m if s < TEXTS else m_coupons
        form = rec.sec_form[DICTS + s]
        size += SECTION + tb[s] + (4 * c if form == 1 else (c - 1 if c else 0))
    res = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(res)
    _put_head(o, m, rec.kd, m_coupons)
    pos = HEAD
    for c in range(3):  # total_fen, payer_total_fen, time_s
        for k in range(m):
            memcpy(o + pos + 8 * k, p + HEAD + 8 * (c * n + rows[k]), 8)
        pos += 8 * m
    for c in range(DICTS):
        for k in range(m):
            memcpy(o + pos + 2 * k, p + HEAD + 24 * n + 2 * (c * n + rows[k]), 2)
        pos += 2 * m
    for k in range(m):
        o[pos + k] = p[HEAD + 32 * n + rows[k]]
    pos += m
    for s in range(DICTS):
        memcpy(o + pos, p + rec.sec_at[s], SECTION + rec.sec_size[s])
        pos += SECTION + rec.sec_size[s]
    coupon_items = np.empty(m_coupons, dtype=np.intp)
    cdef Py_ssize_t[::1] ci = coupon_items
    cdef Py_ssize_t[::1] fc = rec.first_coupon
    j = 0
    for k in range(m):
        for c in range(fc[rows[k]], fc[rows[k] + 1]):
            ci[j] = c
            j += 1
    for s in range(TEXTS + 1):
        lo = los[s]
        hi = his[s]
        form = rec.sec_form[DICTS + s]
        o[pos] = form
        if s < TEXTS:
            got = _gather(o + pos + SECTION, p + rec.sec_at[DICTS + s] + SECTION, form,
                          &lo[0], &hi[0], rows, m)
        else:
            got = _gather(o + pos + SECTION, p + rec.sec_at[DICTS + s] + SECTION, form,
                          &lo[0] if m_coupons else NULL, &hi[0] if m_coupons else NULL,
                          &ci[0] if m_coupons else NULL, m_coupons)
        _put_u32(o + pos + 1, <uint32_t>got)
        pos += SECTION + got
    assert pos == size, (pos, size)
    return res


cdef bint _has_nul(const unsigned char* p, const int64_t* lo, const int64_t* hi,
                   Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if hi[i] > lo[i] and memchr(p + lo[i], 0, hi[i] - lo[i]) != NULL:
            return True
    return False


cdef Py_ssize_t _ids_section(unsigned char* out, const unsigned char* src,
                             const int64_t* lo, const int64_t* hi, Py_ssize_t n,
                             int form) noexcept nogil:
    """Write a whole ids section (head and body) of the n spans; returns its size."""
    cdef Py_ssize_t i, got
    out[0] = form
    if form == 1:
        got = 4 * n
        for i in range(n):
            _put_u32(out + SECTION + 4 * i, <uint32_t>(hi[i] - lo[i]))
            memcpy(out + SECTION + got, src + lo[i], hi[i] - lo[i])
            got += hi[i] - lo[i]
    else:
        got = 0
        for i in range(n):
            if i:
                out[SECTION + got] = 0
                got += 1
            memcpy(out + SECTION + got, src + lo[i], hi[i] - lo[i])
            got += hi[i] - lo[i]
    _put_u32(out + 1, <uint32_t>got)
    return SECTION + got


def _texts_section(items) -> bytes:
    joined = "\x00".join(items)
    if joined.count("\x00") == max(len(items) - 1, 0):
        data = joined.encode("utf-8", "surrogatepass")
        return _SECTION_HEAD.pack(0, len(data)) + data
    encoded = [s.encode("utf-8", "surrogatepass") for s in items]
    data = struct.pack(f"<{len(items)}I", *map(len, encoded)) + b"".join(encoded)
    return _SECTION_HEAD.pack(1, len(data)) + data


def encode_block(block):
    """The payments record of `block` (a `core.payment_block.PaymentBlock`): what
    `core.payment_columns.encode` makes of its payments with trade_type, out_trade_no and
    device_id empty (a block does not hold them).

    Raises ValueError when the block is empty or an id span lies outside its buffer.
    """
    cdef Py_ssize_t n = len(block), i, pos, size, tx_size, op_size
    if n < 1:
        raise ValueError("a payments record holds at least one payment")
    cdef const unsigned char[:] txv = block.tx_data
    cdef const unsigned char[:] opv = block.openid_data
    cdef const int64_t[::1] tlo = np.ascontiguousarray(block.tx_starts, dtype=np.int64)
    cdef const int64_t[::1] thi = np.ascontiguousarray(block.tx_ends, dtype=np.int64)
    cdef const int64_t[::1] olo = np.ascontiguousarray(block.openid_starts, dtype=np.int64)
    cdef const int64_t[::1] ohi = np.ascontiguousarray(block.openid_ends, dtype=np.int64)
    cdef const unsigned char* tp = &txv[0] if txv.shape[0] else <const unsigned char*>b""
    cdef const unsigned char* op = &opv[0] if opv.shape[0] else <const unsigned char*>b""
    tx_size = op_size = 0
    for i in range(n):
        if not (0 <= tlo[i] <= thi[i] <= txv.shape[0] and 0 <= olo[i] <= ohi[i]
                <= opv.shape[0]):
            raise ValueError(f"id span of payment {i} outside its buffer")
        tx_size += thi[i] - tlo[i]
        op_size += ohi[i] - olo[i]
    cdef int tx_form = 1 if _has_nul(tp, &tlo[0], &thi[0], n) else 0
    cdef int op_form = 1 if _has_nul(op, &olo[0], &ohi[0], n) else 0
    coupon_ids = block.coupon_ids
    if coupon_ids is not None and any(coupon_ids):
        counts = bytes(map(len, coupon_ids))  # ValueError past 255; the engine takes 16
        coupons = [c for ids in coupon_ids for c in ids]
    else:
        counts, coupons = bytes(n), []
    dicts = [_texts_section(d) for d in (block.appids, block.mchids, block.currencies, [""])]
    empty = _texts_section([""] * n)  # out_trade_no, device_id
    tail = _texts_section(coupons)
    size = (HEAD + 33 * n + sum(map(len, dicts)) + 2 * SECTION
            + tx_size + (4 * n if tx_form else n - 1) + op_size + (4 * n if op_form else n - 1)
            + 2 * len(empty) + len(tail))
    res = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(res)
    cdef uint32_t kd[DICTS]
    kd[0], kd[1], kd[2], kd[3] = len(block.appids), len(block.mchids), len(block.currencies), 1
    _put_head(o, n, kd, len(coupons))
    pos = HEAD
    for col in (block.total_fen, block.payer_total_fen, block.time_s):
        pos += _put_bytes(o + pos, np.ascontiguousarray(col, dtype="<i8").tobytes())
    for col in (block.appid_codes, block.mchid_codes, block.currency_codes):
        pos += _put_bytes(o + pos, np.ascontiguousarray(col, dtype="<u2").tobytes())
    memset(o + pos, 0, 2 * n)  # trade_type: code 0, ""
    pos += 2 * n
    pos += _put_bytes(o + pos, counts)
    for d in dicts:
        pos += _put_bytes(o + pos, d)
    with nogil:
        pos += _ids_section(o + pos, tp, &tlo[0], &thi[0], n, tx_form)
        pos += _ids_section(o + pos, op, &olo[0], &ohi[0], n, op_form)
    for d in (empty, empty, tail):
        pos += _put_bytes(o + pos, d)
    assert pos == size, (pos, size)
    return res
