"""`Engine.pay_block`: a block of payments, its bad shapes refused untouched, its unusual
rows (non-ASCII ids, coupons, unknown names, held refunds) handled as `pay` handles them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core import Code, Payment, outcome_columns
from core.payment_block import PaymentBlock, from_columns
from core.payment_columns import from_payments
from tests.helpers import T0, bad_outcome_columns, pay, refund

CODE_INDEX = {c: i for i, c in enumerate(Code)}


def _block(ps: list[Payment]) -> PaymentBlock:
    return from_columns(from_payments(ps))


def test_block_gives_the_per_event_outcomes_for_unusual_rows(make_engine) -> None:
    """Redeliveries, a conflicting redelivery, unknown app and merchant, a foreign and an
    unknown currency, a bad openid, a non-ASCII transaction id, an over-long one, a coupon,
    a payment releasing a held refund: the block's outcomes and state equal `pay`'s."""
    ps = [pay(1, 1), pay(1, 1), dataclasses.replace(pay(1, 1), total_fen=999),
          dataclasses.replace(pay(2, 2), appid="wxnobody"),
          dataclasses.replace(pay(3, 2), mchid="1999"),
          dataclasses.replace(pay(4, 3), currency="JPY", total_fen=100_000),
          dataclasses.replace(pay(5, 3), currency="XXX"),
          dataclasses.replace(pay(6, 4), openid="not an id!"),
          dataclasses.replace(pay(7, 4), transaction_id="42\u00e9\u4e2d" + "0" * 20),
          dataclasses.replace(pay(8, 4), transaction_id="4" * 200),
          dataclasses.replace(pay(9, 5), coupon_ids=("c-unknown",)),
          pay(10, 6, total=5000), dataclasses.replace(pay(11, 7), transaction_id="")]
    one, block = make_engine(), make_engine()
    for eng in (one, block):
        assert eng.refund(refund(1, 10, 1000)).code == Code.HELD
    expected = [one.pay(p) for p in ps]
    got = block.pay_block(_block(ps))
    assert got == expected
    assert {o.code for o in got} >= {Code.APPLIED, Code.DUPLICATE, Code.UNKNOWN_APP,
                                     Code.UNKNOWN_MERCHANT, Code.BAD_ID}
    assert block.stats() == one.stats()
    assert list(block.ledger.rows) == list(one.ledger.rows)


def _shapes(blk: PaymentBlock) -> list[tuple[str, PaymentBlock]]:
    n = len(blk)
    short = np.arange(n - 1, dtype=np.int64)
    return [
        ("outside its buffer", dataclasses.replace(blk, tx_ends=blk.tx_ends + 10_000)),
        ("outside its buffer", dataclasses.replace(blk, openid_starts=blk.openid_starts - 1)),
        ("starts and", dataclasses.replace(blk, tx_starts=short)),
        ("not in its dictionary", dataclasses.replace(blk, appid_codes=blk.appid_codes + 1)),
        ("not in its dictionary", dataclasses.replace(blk, mchid_codes=blk.mchid_codes + 7)),
        ("codes", dataclasses.replace(blk, currency_codes=blk.currency_codes[:-1])),
        ("differ in length", dataclasses.replace(blk, time_s=blk.time_s[:-1])),
        ("coupon_ids", dataclasses.replace(blk, coupon_ids=[()] * (n + 1))),
    ]


def test_malformed_block_is_refused_untouched(make_engine) -> None:
    eng = make_engine()
    blk = _block([pay(n, n, t=T0 + n) for n in range(6)])
    before = eng.stats()
    for reason, bad in _shapes(blk):
        with pytest.raises(ValueError, match=reason):
            eng.pay_block(bad)
        assert eng.stats() == before, reason
    assert all(o.code == Code.APPLIED for o in eng.pay_block(blk))


def test_block_with_ids_holding_a_nul_still_matches(make_engine) -> None:
    """Ids are located by spans, so an id holding a NUL (refused as a bad id, or as a
    transaction id accepted) is the same id in a block as in `pay`."""
    ps = [dataclasses.replace(pay(1, 1), transaction_id="42\x0042"),
          dataclasses.replace(pay(2, 1), openid="o\x00penid")]
    one, block = make_engine(), make_engine()
    assert block.pay_block(_block(ps)) == [one.pay(p) for p in ps]
    assert block.stats() == one.stats()
    assert block.pay_block(_block(ps[:1]))[0].code == Code.DUPLICATE


def test_block_of_strided_columns_is_read_as_a_contiguous_one(make_engine) -> None:
    """Columns that are strided views (every other item of a longer array), and id data
    given as a memoryview, give the same outcomes and state as the block they were made
    from (pay_block reads contiguous memory, copying a strided column first)."""
    ps = [pay(n, n % 3, t=T0 + n) for n in range(8)] + [pay(1, 1)]
    blk = _block(ps)

    def strided(a: np.ndarray) -> np.ndarray:
        wide = np.zeros(2 * len(a), dtype=a.dtype)
        wide[::2] = a
        return wide[::2]

    arrays = {f.name: strided(getattr(blk, f.name)) for f in dataclasses.fields(blk)
              if isinstance(getattr(blk, f.name), np.ndarray)}
    odd = dataclasses.replace(blk, tx_data=memoryview(bytes(blk.tx_data)), **arrays)
    assert not odd.total_fen.flags.c_contiguous
    one, other = make_engine(), make_engine()
    assert other.pay_block(odd) == one.pay_block(blk)
    assert other.stats() == one.stats()
    assert list(other.ledger.rows) == list(one.ledger.rows)


def test_empty_block(make_engine) -> None:
    eng = make_engine()
    assert eng.pay_block(_block([])) == []
    assert eng.stats()["payments"] == 0


def _unusual() -> list[Payment]:
    return [pay(1, 1), pay(1, 1), dataclasses.replace(pay(1, 1), total_fen=999),
            dataclasses.replace(pay(2, 2), appid="wxnobody"),
            dataclasses.replace(pay(4, 3), currency="JPY", total_fen=100_000),
            dataclasses.replace(pay(6, 4), openid="not an id!"),
            dataclasses.replace(pay(9, 5), coupon_ids=("c-unknown",)),
            pay(10, 6, total=5000), pay(12, 8, total=9_999_999), pay(13, 9)]


def test_block_into_columns_writes_the_outcome_columns_of_pay_block(make_engine) -> None:
    """`pay_block_into` writes, at each payment's position, exactly what
    `outcome_columns(pay_block(...))` gives, and leaves the same state."""
    ps = _unusual()
    one, into = make_engine(), make_engine()
    for eng in (one, into):
        assert eng.refund(refund(1, 10, 1000)).code == Code.HELD
    code, pts, flags = outcome_columns(one.pay_block(_block(ps)))
    n = len(ps) + 3
    at = np.random.default_rng(3).permutation(n)[:len(ps)].astype(np.int64)
    cols = (np.full(n, -1, np.int16), np.full(n, -1, np.int64), np.full(n, -1, np.int8))
    assert into.pay_block_into(_block(ps), *cols, at) is None
    for got, want in zip(cols, (code, pts, flags), strict=True):
        assert got[at].tolist() == want.tolist()
        assert (np.delete(got, at) == -1).all()  # nothing written elsewhere
    assert set(code.tolist()) >= {CODE_INDEX[Code.APPLIED], CODE_INDEX[Code.DUPLICATE],
                                  CODE_INDEX[Code.UNKNOWN_APP]}
    assert into.stats() == one.stats()
    assert list(into.ledger.rows) == list(one.ledger.rows)


def test_block_into_bad_columns_are_refused_untouched(make_engine) -> None:
    eng = make_engine()
    blk = _block([pay(n, n, t=T0 + n) for n in range(6)])
    before = eng.stats()
    good, at, bad = bad_outcome_columns(6)
    for reason, cols, where in bad:
        with pytest.raises(ValueError, match=reason):
            eng.pay_block_into(blk, *cols, where)
        assert eng.stats() == before, reason
    for reason, bad in _shapes(blk)[:1]:
        with pytest.raises(ValueError, match=reason):
            eng.pay_block_into(bad, *good, at)
    assert eng.stats() == before
    eng.pay_block_into(blk, *good, at)
    assert (good[0] == CODE_INDEX[Code.APPLIED]).all()
    eng.pay_block_into(_block([]), *good, at[:0])
