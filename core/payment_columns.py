"""Payments as columns, and their compact binary form in the journal.

One `PaymentColumns` holds n payments field by field (the fields of `Payment`),
so a batch moves through the journal, replay, the batch path and the peers
without a Python object per payment. The binary form decodes with a handful of
C calls per column (numpy for integers, one `str.split` for each id column),
which is what lets replay run at millions of payments a second.

Layout (little-endian), after a 24-byte head `<IHHHHIQ`
(n, k_appid, k_mchid, k_currency, k_trade_type, coupons_total, reserved):
  int64[n] total_fen, payer_total_fen, time_s;
  uint16[n] index into each of the four dictionaries (appid, mchid, currency, trade_type);
  uint8[n] coupon count;
  then text sections, each `<BI` (form, byte length) + UTF-8 items, either joined by
  NUL (form 0, decoded by one split) or, when an item holds a NUL, `<I` lengths then
  the items (form 1): the four dictionaries, transaction_id, openid, out_trade_no,
  device_id, coupon ids.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from core.types import Payment

_HEAD = struct.Struct("<IHHHHIQ")
_SECTION = struct.Struct("<BI")
_SEP = "\x00"
_DICT_MAX = 0xFFFF
# The most payments a record can hold: each dictionary's size is a uint16 of the head, so
# n distinct values always fit. The journal holds at most JOURNAL_PAYMENTS_PER_RECORD_MAX
# a record; larger records (a columnar request body, a PAY message's part) are split.
RECORD_ROWS_MAX = _DICT_MAX


@dataclass(slots=True)
class PaymentColumns:
    """n payments, one list or int64 array per `Payment` field."""

    transaction_id: list[str]
    appid: list[str]
    mchid: list[str]
    openid: list[str]
    total_fen: np.ndarray
    time_s: np.ndarray
    payer_total_fen: np.ndarray  # -1: same as total_fen
    currency: list[str]
    trade_type: list[str]
    out_trade_no: list[str]
    device_id: list[str]
    coupon_ids: list[tuple[str, ...]]

    def __len__(self) -> int:
        """The number of payments."""
        return len(self.transaction_id)

    def rows(self) -> Iterator[Payment]:
        """Yield the payments one by one as `Payment` objects."""
        totals = self.total_fen.tolist()
        times = self.time_s.tolist()
        payers = self.payer_total_fen.tolist()
        for i in range(len(self.transaction_id)):
            yield Payment(self.transaction_id[i], self.appid[i], self.mchid[i], self.openid[i],
                          totals[i], times[i], payers[i], self.currency[i], self.trade_type[i],
                          self.out_trade_no[i], self.device_id[i], self.coupon_ids[i])

    def slice(self, start: int, stop: int) -> PaymentColumns:
        """The payments start..stop-1 as new columns (arrays are views)."""
        return PaymentColumns(
            self.transaction_id[start:stop], self.appid[start:stop], self.mchid[start:stop],
            self.openid[start:stop], self.total_fen[start:stop], self.time_s[start:stop],
            self.payer_total_fen[start:stop], self.currency[start:stop],
            self.trade_type[start:stop], self.out_trade_no[start:stop],
            self.device_id[start:stop], self.coupon_ids[start:stop])


def from_payments(payments: Sequence[Payment]) -> PaymentColumns:
    """Columns holding `payments` in order."""
    return PaymentColumns(
        [p.transaction_id for p in payments], [p.appid for p in payments],
        [p.mchid for p in payments], [p.openid for p in payments],
        np.array([p.total_fen for p in payments], dtype=np.int64),
        np.array([p.time_s for p in payments], dtype=np.int64),
        np.array([p.payer_total_fen for p in payments], dtype=np.int64),
        [p.currency for p in payments], [p.trade_type for p in payments],
        [p.out_trade_no for p in payments], [p.device_id for p in payments],
        [tuple(p.coupon_ids) for p in payments])


def concat(parts: Sequence[PaymentColumns]) -> PaymentColumns:
    """One PaymentColumns holding `parts` one after another."""
    assert parts
    if len(parts) == 1:
        return parts[0]

    def joined(name: str) -> list:
        out: list = []
        for p in parts:
            out.extend(getattr(p, name))
        return out

    def stacked(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return PaymentColumns(
        joined("transaction_id"), joined("appid"), joined("mchid"), joined("openid"),
        stacked("total_fen"), stacked("time_s"), stacked("payer_total_fen"),
        joined("currency"), joined("trade_type"), joined("out_trade_no"), joined("device_id"),
        joined("coupon_ids"))


def _text(items: Sequence[str]) -> bytes:
    joined = _SEP.join(items)
    if joined.count(_SEP) == max(len(items) - 1, 0):
        data = joined.encode()
        return _SECTION.pack(0, len(data)) + data
    encoded = [s.encode() for s in items]
    data = struct.pack(f"<{len(items)}I", *map(len, encoded)) + b"".join(encoded)
    return _SECTION.pack(1, len(data)) + data


def dictionary_codes(column: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct values of `column` in first-seen order, and each item's index (uint16)."""
    values = list(dict.fromkeys(column))
    assert len(values) <= _DICT_MAX  # n <= RECORD_ROWS_MAX
    if len(values) == 1:
        return values, np.zeros(len(column), dtype=np.uint16)
    where = {v: i for i, v in enumerate(values)}
    return values, np.fromiter(map(where.__getitem__, column), dtype=np.uint16,
                               count=len(column))


def _dictionary(column: Sequence[str]) -> tuple[list[str], bytes]:
    values, codes = dictionary_codes(column)
    return values, codes.astype("<u2").tobytes()


def encode(cols: PaymentColumns) -> bytes:
    """The compact binary form of `cols` (1..RECORD_ROWS_MAX payments)."""
    n = len(cols)
    assert 0 < n <= RECORD_ROWS_MAX, n
    texts = (cols.transaction_id, cols.openid, cols.out_trade_no, cols.device_id)
    if any(cols.coupon_ids):
        counts = bytes(map(len, cols.coupon_ids))  # ValueError past 255; the engine takes 16
        coupons = [c for ids in cols.coupon_ids for c in ids]
    else:
        counts, coupons = bytes(n), []
    dicts = [_dictionary(c) for c in (cols.appid, cols.mchid, cols.currency, cols.trade_type)]
    parts = [
        _HEAD.pack(n, *(len(v) for v, _ in dicts), len(coupons), 0),
        np.asarray(cols.total_fen, dtype="<i8").tobytes(),
        np.asarray(cols.payer_total_fen, dtype="<i8").tobytes(),
        np.asarray(cols.time_s, dtype="<i8").tobytes(),
        *(idx for _, idx in dicts),
        counts,
        *(_text(v) for v, _ in dicts),
        *(_text(t) for t in texts),
        _text(coupons),
    ]
    return b"".join(parts)


def count_of(payload: bytes | memoryview) -> int:
    """The number of payments in an encoded record, read from its head."""
    return _HEAD.unpack_from(payload, 0)[0]


@dataclass(slots=True)
class Parsed:
    """A payments record, parsed but for its text: what `decode` and the block decode share."""

    n: int
    ints: np.ndarray  # total_fen, payer_total_fen, time_s, one after another
    idx: np.ndarray  # the four dictionaries' codes, one after another (uint16)
    counts: np.ndarray  # coupons per payment
    dicts: list[list[str]]  # appid, mchid, currency, trade_type
    texts: list[tuple[int, memoryview]]  # (form, bytes): transaction_id, openid, out_trade_no,
    # device_id
    coupons: list[str]


def parse(payload: bytes | memoryview) -> Parsed:
    """Parse a record made by `encode`; raises ValueError when it does not parse."""
    view = memoryview(payload)
    try:
        n, k_app, k_mch, k_ccy, k_tt, n_coupons, _ = _HEAD.unpack_from(view, 0)
        off = _HEAD.size
        ints = np.frombuffer(view, dtype="<i8", count=3 * n, offset=off).astype(np.int64)
        off += 24 * n
        idx = np.frombuffer(view, dtype="<u2", count=4 * n, offset=off).astype(np.uint16)
        off += 8 * n
        counts = np.frombuffer(view, dtype=np.uint8, count=n, offset=off)
        off += n
        sections = []
        for _ in range(9):
            form, size = _SECTION.unpack_from(view, off)
            off += _SECTION.size
            if off + size > len(view):
                raise ValueError("text section overruns the record")
            if form not in (0, 1):
                raise ValueError(f"text section form {form}")
            sections.append((form, view[off:off + size]))
            off += size
        if off != len(view):
            raise ValueError(f"{len(view) - off} bytes after the last section")
        dicts = [texts(*sec, k)
                 for sec, k in zip(sections[:4], (k_app, k_mch, k_ccy, k_tt), strict=True)]
        coupons = texts(*sections[8], n_coupons)
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"payments record does not parse: {e}") from None
    return Parsed(n, ints, idx, counts, dicts, sections[4:8], coupons)


def texts(form: int, data: memoryview, expect: int) -> list[str]:
    """The `expect` items of a text section; raises ValueError if it holds another number."""
    try:
        if form == 0:
            items = str(data, "utf-8").split(_SEP) if len(data) or expect else []
        else:
            items = _items(data, expect)
    except (struct.error, UnicodeDecodeError) as e:
        raise ValueError(f"payments record does not parse: {e}") from None
    if len(items) != expect:
        raise ValueError(f"text section has {len(items)} items, expected {expect}")
    return items


def coupons_of(rec: Parsed) -> list[tuple[str, ...]]:
    """Each payment's coupon ids."""
    if not rec.coupons:
        return [()] * rec.n
    out: list[tuple[str, ...]] = []
    pos = 0
    for c in rec.counts.tolist():
        out.append(tuple(rec.coupons[pos:pos + c]))
        pos += c
    if pos != len(rec.coupons):
        raise ValueError("coupon counts do not add up")
    return out


def decode(payload: bytes | memoryview) -> PaymentColumns:
    """Columns from a record made by `encode`; raises ValueError when it does not parse."""
    rec = parse(payload)
    n, ints, idx = rec.n, rec.ints, rec.idx
    expanded = [np.array(d, dtype=object)[idx[i * n:(i + 1) * n]].tolist()
                for i, d in enumerate(rec.dicts)]
    txid, openid, otn, dev = (texts(form, data, n) for form, data in rec.texts)
    return PaymentColumns(txid, expanded[0], expanded[1], openid, ints[:n], ints[2 * n:],
                          ints[n:2 * n], expanded[2], expanded[3], otn, dev, coupons_of(rec))


def _items(data: bytes | memoryview, k: int) -> list[str]:
    """Items of a form-1 text section: k lengths, then the items back to back."""
    lengths = struct.unpack_from(f"<{k}I", data, 0)
    out, pos = [], 4 * k
    for size in lengths:
        out.append(str(data[pos:pos + size], "utf-8"))
        pos += size
    if pos != len(data):
        raise ValueError("text section lengths do not add up")
    return out


__all__ = ["RECORD_ROWS_MAX", "Parsed", "PaymentColumns", "concat", "count_of", "coupons_of",
           "decode", "dictionary_codes", "encode", "from_payments", "parse", "texts"]
