"""The model's id column builders and openid routing agree with the one-by-one functions."""

from __future__ import annotations

import numpy as np
import pytest

from core.routing import shard_of
from sim import _tick, ids

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


def test_route_shards_are_core_shard_of_and_filed_once() -> None:
    """sim._tick.route_shards: core's shard_of of each openid, from the table once filed;
    rows outside the table are refused."""
    rng = np.random.default_rng(3)
    progs, shoppers = 3, 1000
    cache = np.full(progs * 2 * shoppers, -1, np.int16)
    for app in (0, 1):
        shopper = rng.integers(0, shoppers, 300)
        prog = rng.integers(0, progs, 300)
        want = [shard_of(ids.openid(q, app, s), 5) for q, s in zip(prog.tolist(),
                                                                     shopper.tolist(),
                                                                     strict=True)]
        for _ in range(2):  # computed, then looked up
            got = _tick.route_shards(cache, shoppers, -1, prog, app, shopper, 5)
            assert got.dtype == np.int16 and got.tolist() == want
        one = _tick.route_shards(cache, shoppers, 2, np.zeros(0, np.int64), app, shopper, 5)
        assert one.tolist() == [shard_of(ids.openid(2, app, s), 5) for s in shopper.tolist()]
    every = np.full(ids.PROGRAMS_MAX * 2 * 10, -1, np.int16)  # every program's tag
    q = np.repeat(np.arange(ids.PROGRAMS_MAX), 3)
    s = np.tile([0, 7, 9], ids.PROGRAMS_MAX)
    assert _tick.route_shards(every, 10, -1, q, 1, s, 3).tolist() == [
        shard_of(ids.openid(a, 1, b), 3) for a, b in zip(q.tolist(), s.tolist(), strict=True)]
    with pytest.raises(IndexError):
        _tick.route_shards(cache, shoppers, 3, np.zeros(0, np.int64), 0, np.array([1]), 5)
    with pytest.raises(IndexError):
        _tick.route_shards(cache, shoppers, 0, np.zeros(0, np.int64), 0, np.array([shoppers]), 5)
    with pytest.raises(ValueError):
        _tick.route_shards(cache, shoppers, 0, np.zeros(0, np.int64), 2, np.array([1]), 5)


def test_route_shards_over_every_number_length() -> None:
    """route_shards equals core's shard_of for shopper numbers of one to seven digits
    (the crc runs from a per-length prefix state)."""
    rng = np.random.default_rng(1)
    shoppers = 2_000_000
    cache = np.full(2 * 2 * shoppers, -1, np.int16)
    for top in (1, 10, 11, 200_000, shoppers):
        shopper = rng.integers(0, top, 64)
        for prog, app in ((0, 0), (1, 1)):
            got = _tick.route_shards(cache, shoppers, prog, np.zeros(0, np.int64), app, shopper, 7)
            assert got.tolist() == [shard_of(ids.openid(prog, app, s), 7) for s in shopper.tolist()]
