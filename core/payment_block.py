"""Payments as a block: the batch form that costs no Python object per payment.

A `PaymentBlock` holds n payments with their two per-payment ids (transaction_id,
openid) as UTF-8 bytes in one buffer each, located by start and end arrays, and the
fields that take few distinct values (appid, mchid, currency) as uint16 codes into
small dictionaries, as columnar formats (Arrow's dictionary arrays) do. The engine's
`pay_block` applies it with exactly the semantics of `pay_columns` and `pay`; the
journal's payment records decode straight into one (`core.payment_columns`), which
is what replay runs on.

Fields the engine does not read (trade_type, out_trade_no, device_id) are not part
of a block; payments that need them go through `PaymentColumns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core._journal import run_fields, text_spans
from core._records import encode_block, span_shards, split_record
from core.payment_columns import (
    PaymentColumns,
    count_of,
    coupons_of,
    dictionary_codes,
    parse,
    texts,
)

_SEP = "\x00"


@dataclass(slots=True)
class PaymentBlock:
    """n payments: ids in byte buffers, names as dictionary codes, amounts as int64."""

    tx_data: bytes | memoryview
    tx_starts: np.ndarray  # int64[n]: transaction_id i is tx_data[tx_starts[i]:tx_ends[i]]
    tx_ends: np.ndarray
    openid_data: bytes | memoryview
    openid_starts: np.ndarray
    openid_ends: np.ndarray
    appid_codes: np.ndarray  # uint16[n], into appids
    appids: list[str]
    mchid_codes: np.ndarray
    mchids: list[str]
    currency_codes: np.ndarray
    currencies: list[str]
    total_fen: np.ndarray  # int64[n]
    time_s: np.ndarray
    payer_total_fen: np.ndarray  # -1: same as total_fen
    coupon_ids: list[tuple[str, ...]] | None = None  # None: no payment has coupons
    ascii: bool = True  # every id byte is ASCII (else lengths are counted in characters)

    def __len__(self) -> int:
        """The number of payments."""
        return len(self.total_fen)

    def slice(self, start: int, stop: int) -> PaymentBlock:
        """Payments start..stop-1 as a block over the same buffers (arrays are views)."""
        cut = slice(start, stop)
        return PaymentBlock(
            self.tx_data, self.tx_starts[cut], self.tx_ends[cut], self.openid_data,
            self.openid_starts[cut], self.openid_ends[cut], self.appid_codes[cut], self.appids,
            self.mchid_codes[cut], self.mchids, self.currency_codes[cut], self.currencies,
            self.total_fen[cut], self.time_s[cut], self.payer_total_fen[cut],
            None if self.coupon_ids is None else self.coupon_ids[cut], self.ascii)

    def shards(self, shards: int) -> np.ndarray:
        """Each payment's shard of `shards` by its openid (`core.routing.shard_of`'s
        numbers, int64), computed over the ids in place; ValueError when `shards` < 1."""
        return span_shards(self.openid_data, self.openid_starts, self.openid_ends, shards)

    def record(self) -> bytes:
        """The payments as one record (`core.payment_columns.encode` of `columns()`: no
        trade_type, out_trade_no or device_id); ValueError when the block is empty."""
        return encode_block(self)

    def openids(self) -> list[str]:
        """The openids, as str."""
        return _texts(self.openid_data, self.openid_starts, self.openid_ends)

    def columns(self) -> PaymentColumns:
        """The same payments as `PaymentColumns` (trade_type "", no out_trade_no)."""
        n = len(self)
        return PaymentColumns(
            _texts(self.tx_data, self.tx_starts, self.tx_ends),
            _expand(self.appids, self.appid_codes), _expand(self.mchids, self.mchid_codes),
            self.openids(),
            self.total_fen, self.time_s, self.payer_total_fen,
            _expand(self.currencies, self.currency_codes), [""] * n, [""] * n, [""] * n,
            list(self.coupon_ids) if self.coupon_ids is not None else [()] * n)


def _expand(values: list[str], codes: np.ndarray) -> list[str]:
    return np.array(values, dtype=object)[codes].tolist() if len(codes) else []


def _texts(data: bytes | memoryview, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    raw = bytes(data)
    return [raw[a:b].decode("utf-8", "surrogatepass")
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]


def id_spans(items: Sequence[str]) -> tuple[bytes, np.ndarray, np.ndarray, bool]:
    """`items` as (buffer, starts, ends, ascii): the ids joined by NUL, as UTF-8."""
    n = len(items)
    joined = _SEP.join(items)
    data = joined.encode("utf-8", "surrogatepass")
    ascii = data.isascii()
    if ascii and joined.count(_SEP) == max(n - 1, 0):
        sizes = np.fromiter(map(len, items), dtype=np.int64, count=n)
    else:  # sizes in bytes, id by id (an id may hold a NUL)
        encoded = [s.encode("utf-8", "surrogatepass") for s in items]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
        data = b"\x00".join(encoded)
    ends = np.cumsum(sizes + 1) - 1
    starts = ends - sizes
    return data, starts.astype(np.int64), ends.astype(np.int64), ascii


def from_columns(cols: PaymentColumns) -> PaymentBlock:
    """The block of `cols`' payments (the fields the engine reads)."""
    tx, tx_lo, tx_hi, tx_ascii = id_spans(cols.transaction_id)
    op, op_lo, op_hi, op_ascii = id_spans(cols.openid)
    apps, app_codes = dictionary_codes(cols.appid)
    mchs, mch_codes = dictionary_codes(cols.mchid)
    ccys, ccy_codes = dictionary_codes(cols.currency)
    coupons = list(cols.coupon_ids) if any(cols.coupon_ids) else None
    return PaymentBlock(tx, tx_lo, tx_hi, op, op_lo, op_hi, app_codes, apps, mch_codes, mchs,
                        ccy_codes, ccys, np.asarray(cols.total_fen, dtype=np.int64),
                        np.asarray(cols.time_s, dtype=np.int64),
                        np.asarray(cols.payer_total_fen, dtype=np.int64), coupons,
                        tx_ascii and op_ascii)


def decode_block(payload: bytes | memoryview) -> PaymentBlock:
    """The block of a journal payments record (`core.payment_columns.encode`), its ids left
    in the record's own bytes; raises ValueError when the record does not parse."""
    rec = parse(payload)
    n, ints, idx = rec.n, rec.ints, rec.idx
    tx, tx_lo, tx_hi, tx_ascii = _section_spans(*rec.texts[0], n)
    op, op_lo, op_hi, op_ascii = _section_spans(*rec.texts[1], n)
    return PaymentBlock(tx, tx_lo, tx_hi, op, op_lo, op_hi, idx[:n], rec.dicts[0],
                        idx[n:2 * n], rec.dicts[1], idx[2 * n:3 * n], rec.dicts[2],
                        ints[:n], ints[2 * n:], ints[n:2 * n],
                        coupons_of(rec) if rec.coupons else None, tx_ascii and op_ascii)


def decode_run(payloads: Sequence[bytes | memoryview]) -> PaymentBlock:
    """One block holding the payments of the journal payments records `payloads`, one
    after another: applying it is applying each record's block in turn. Ids are spans into
    the mapped segment the payloads are views of (their bytes joined if they are not views
    of one object). Raises ValueError when a record does not parse."""
    assert payloads
    (data, totals, payers, times, app_codes, apps, mch_codes, mchs, ccy_codes, ccys, tx_lo,
     tx_hi, op_lo, op_hi, ascii, with_coupons) = run_fields(payloads, texts)
    if not ascii:
        _check_utf8(data, tx_lo, tx_hi)
        _check_utf8(data, op_lo, op_hi)
    coupons = None
    if with_coupons:
        coupons = []
        for r, payload in enumerate(payloads):
            rec = parse(payload) if r in with_coupons else None
            coupons += coupons_of(rec) if rec is not None else [()] * count_of(payload)
    return PaymentBlock(data, tx_lo, tx_hi, data, op_lo, op_hi, app_codes, apps, mch_codes,
                        mchs, ccy_codes, ccys, totals, times, payers, coupons, ascii)


def _check_utf8(data: bytes | memoryview, lo: np.ndarray, hi: np.ndarray) -> None:
    """Raise ValueError unless every span of `data` is valid UTF-8."""
    view = memoryview(data)
    try:
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            str(view[a:b], "utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"payments record does not parse: {e}") from None


def _section_spans(form: int, data: memoryview, n: int) -> tuple[memoryview, np.ndarray,
                                                                 np.ndarray, bool]:
    """The spans of a text section's n items (form 0: joined by NUL; 1: lengths first)."""
    starts, ends, ascii = text_spans(data, n, form)
    if not ascii:
        _check_utf8(data, starts, ends)  # every id is valid UTF-8
    return data, starts, ends, ascii


__all__ = ["PaymentBlock", "decode_block", "decode_run", "from_columns", "id_spans",
           "split_record"]
