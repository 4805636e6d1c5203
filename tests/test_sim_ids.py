"""The model's id column builders agree with its one-by-one id functions."""

from __future__ import annotations

import numpy as np
import pytest

from sim import ids

NUMBERS = np.array([0, 1, 9, 10, 9_999, 10_000, 12_345_678, 99_999_999, 100_000_000,
                    123_456_789_012, 10**18 + 7, 2**63 - 1], np.int64)


@pytest.mark.parametrize("width", [20, 24, 25, 30])
def test_matrices_spell_the_numbers(width: int) -> None:
    """Every number, small or past 8 digits, zero-padded to the width, after the head."""
    got = ids.texts(ids._matrix(b"42", NUMBERS, width))
    assert got == [f"42{v:0{width}d}" for v in NUMBERS.tolist()]


def test_column_builders_equal_the_functions() -> None:
    """openids, unionids, transaction, refund and input ids of columns, including
    strided and long long inputs, equal the functions of each row."""
    rng = np.random.default_rng(7)
    shopper = np.concatenate([NUMBERS[:9], rng.integers(0, 10**9, 200)])
    prog = rng.integers(0, ids.PROGRAMS_MAX, len(shopper))
    app = rng.integers(0, 3, len(shopper))
    assert ids.openids(prog, app, shopper) == [
        ids.openid(q, a, s) for q, a, s in zip(prog.tolist(), app.tolist(), shopper.tolist(),
                                               strict=True)]
    assert ids.openids(prog[::3], 1, shopper[::3]) == [
        ids.openid(q, 1, s) for q, s in zip(prog[::3].tolist(), shopper[::3].tolist(),
                                            strict=True)]
    assert ids.unionids(prog, shopper.astype(np.longlong)) == [
        ids.unionid(q, s) for q, s in zip(prog.tolist(), shopper.tolist(), strict=True)]
    rows = shopper[::-1]
    assert ids.transaction_ids(rows) == [ids.transaction_id(r) for r in rows.tolist()]
    assert ids.refund_ids(rows) == [ids.refund_id(r) for r in rows.tolist()]
    assert ids.input_ids("ev", rows) == [ids.input_id("ev", r) for r in rows.tolist()]
    data, lo, hi = ids.transaction_id_spans(rows)
    assert [data[a:b].decode() for a, b in zip(lo.tolist(), hi.tolist(), strict=True)] == \
        ids.transaction_ids(rows)
    assert ids.openids(prog[:0], 0, shopper[:0]) == []


def test_numbers_out_of_range_keep_their_last_digits() -> None:
    """A number wider than the width keeps its last digits (the general path)."""
    assert ids.texts(ids._matrix(b"ev", np.array([12_345_678_901, 3]), 10)) == [
        "ev2345678901", "ev0000000003"]
