"""Compiled record cuts (core/_records.pyx through core.payment_block): any payments split
by label, routed in place and written from a block give what the Python forms give."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.payment_block import decode_block, split_record
from core.payment_block import from_columns as block_of
from core.payment_columns import decode, encode, from_payments
from core.routing import shards_of
from core.sharded_wire import take
from core.types import Payment

text = st.text(max_size=12)  # NULs and non-ASCII included
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
payments = st.builds(Payment, text, st.sampled_from(["wxa", "wxb", "wx\x00c"]), text, text,
                     ints, ints, ints, st.sampled_from(["CNY", "JPY"]), text, text, text,
                     st.lists(text, max_size=3).map(tuple))


@given(st.lists(payments, min_size=1, max_size=40), st.data())
@settings(max_examples=150, deadline=None)
def test_split_gives_each_labels_rows_in_order(ps: list[Payment], data: st.DataObject) -> None:
    """Each label's record decodes to exactly its rows of the range, every field kept;
    a label without rows gets None."""
    n, k = len(ps), data.draw(st.integers(1, 4))
    labels = np.array(data.draw(st.lists(st.integers(-1, k), min_size=n, max_size=n)),
                      np.int64)
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    cols = from_payments(ps)
    parts = split_record(encode(cols), labels, k, start, stop)
    assert len(parts) == k
    for j, rec in enumerate(parts):
        rows = np.flatnonzero(labels[start:stop] == j) + start
        if not len(rows):
            assert rec is None
        else:
            assert list(decode(rec).rows()) == list(take(cols, rows).rows())


@given(st.lists(payments, min_size=1, max_size=40), st.integers(1, 7))
@settings(max_examples=100, deadline=None)
def test_block_routes_and_encodes_like_python(ps: list[Payment], shards: int) -> None:
    """A block's shards are `shards_of` its openids, and its record decodes to its payments
    without trade_type, out_trade_no and device_id."""
    block = block_of(from_payments(ps))
    assert block.shards(shards).tolist() == shards_of([p.openid for p in ps], shards).tolist()
    blank = [dataclasses.replace(p, trade_type="", out_trade_no="", device_id="") for p in ps]
    assert list(decode(block.record()).rows()) == blank
    again = decode_block(encode(from_payments(ps)))  # ids as spans into a record
    assert list(decode(again.record()).rows()) == blank
    assert again.shards(shards).tolist() == block.shards(shards).tolist()


def test_bad_input_is_a_value_error() -> None:
    """A record that does not parse, labels not one a row, a range outside, no labels, a
    bad shard count: ValueError each."""
    ps = [Payment("4200000001", "wxa", "1900", "o1", 100, 1)]
    rec = encode(from_payments(ps))
    one = np.zeros(1, np.int64)
    for bad in (rec[:-1], rec + b"\x00", rec[:10], b""):
        with pytest.raises(ValueError):
            split_record(bad, one, 1)
    with pytest.raises(ValueError, match="labels"):
        split_record(rec, np.zeros(2, np.int64), 1)
    with pytest.raises(ValueError, match="outside"):
        split_record(rec, one, 1, 0, 2)
    with pytest.raises(ValueError, match="k must be"):
        split_record(rec, one, 0)
    with pytest.raises(ValueError, match="shards"):
        block_of(from_payments(ps)).shards(0)
