"""The lean core of `Engine.pay_block` (core/_lean.pyx): common rows applied by it,
unusual ones handed to `_pay_core`, mixed in one block; the outcomes and the whole state
equal the per-event path's, and `pay_block_into` writes the same outcome columns."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from core._lean import lean_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from core import (
    Binding,
    Code,
    Engine,
    Enrollment,
    Payment,
    Program,
    Refund,
    check_invariants,
    limits,
    outcome_columns,
)
from core.payment_block import from_columns as block_from_columns
from core.payment_columns import from_payments
from tests.helpers import (
    APP,
    APP2,
    DAY,
    LUNCH,
    MINI,
    STORE2,
    T0,
    TRANSIT,
    oid,
    pay,
    program,
    refund,
    uid,
)
from tests.test_engine_inputs import state
from tests.test_wide_balances import BIG

PROGRAMS: list[Program] = [
    program(),  # a return window: points pending, a lunch campaign
    program(return_window_days=0),  # points at once, into lots
    program(return_window_days=0, friend_min_visits=2, friend_days=30),
    *BIG,  # points past int32: balance columns widened in mid-block
]
MEMBERS = 3  # shoppers 0..2 bound and enrolled; the others shadows
WHO = 8


def _engine(prog: Program) -> Engine:
    eng = Engine([prog])
    for who in range(MEMBERS):
        eng.bind(Binding(APP, oid(who), uid(who), T0 - DAY))
        eng.enroll(Enrollment(prog.id, T0 - DAY, unionid=uid(who)))
    return eng


@st.composite
def _payment(draw: st.DrawFn) -> Payment:
    rare = draw(st.integers(0, 11))  # 0..5: an unusual field
    total = draw(st.one_of(st.integers(1, 9000), st.integers(1, limits.AMOUNT_FEN_MAX)))
    p = pay(draw(st.integers(0, 40)), draw(st.integers(0, WHO - 1)), total=total,
            t=draw(st.sampled_from([T0, LUNCH - 1800, LUNCH]))
            + draw(st.integers(0, 3 * 3600)))  # campaigns' hours crossed
    if draw(st.booleans()):
        p = dataclasses.replace(p, payer_total_fen=draw(st.integers(0, total)))
    match rare:
        case 0:
            p = dataclasses.replace(p, mchid=draw(st.sampled_from(["1999999999", TRANSIT,
                                                                   MINI, STORE2])))
        case 1:
            p = dataclasses.replace(p, currency=draw(st.sampled_from(["JPY", "USD"])))
        case 2:
            p = dataclasses.replace(p, coupon_ids=("c-unknown",))
        case 3:
            p = dataclasses.replace(p, appid=draw(st.sampled_from([APP2, "wxnobody"])))
        case 4:
            p = dataclasses.replace(p, openid=draw(st.sampled_from(["bad id!", oid(99)])))
        case 5:
            p = dataclasses.replace(p, total_fen=draw(st.sampled_from([0, -5, total])))
    return p


@st.composite
def _feed(draw: st.DrawFn) -> list[Any]:
    """Blocks of payments, now and then a refund between them (of a payment paid or
    still to come: held until it is)."""
    items: list[Any] = []
    for k in range(draw(st.integers(1, 4))):
        items.append(draw(st.lists(_payment(), min_size=1, max_size=24)))
        if draw(st.booleans()):
            of = draw(st.integers(0, 40))
            items.append(refund(k, of, draw(st.integers(1, 1500)), total=2000))
    return items


def _per_event(prog: Program, items: list[Any]) -> tuple[Engine, list[Any]]:
    eng, outs = _engine(prog), []
    for item in items:
        if isinstance(item, Refund):
            eng.refund(item)
        else:
            outs += [eng.pay(p) for p in item]
    return eng, outs


def _blocks(prog: Program, items: list[Any], into: bool) -> tuple[Engine, list[Any]]:
    eng, outs = _engine(prog), []
    for item in items:
        if isinstance(item, Refund):
            eng.refund(item)
            continue
        blk = block_from_columns(from_payments(item))
        if not into:
            outs += eng.pay_block(blk)
            continue
        n = len(item)
        at = np.arange(n, dtype=np.int64)[::-1].copy()
        cols = (np.full(n, -1, np.int16), np.full(n, -1, np.int64), np.full(n, -1, np.int8))
        eng.pay_block_into(blk, *cols, at)
        outs.append(tuple(c[at].tolist() for c in cols))
    return eng, outs


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(range(len(PROGRAMS))), _feed())
def test_lean_and_slow_rows_mixed_give_the_per_event_results(pi: int, items: list[Any]) -> None:
    """Common and unusual payments in the same blocks (duplicates inside a block,
    refunds before their payments, unknown merchants and apps, foreign currencies,
    coupons, campaign hours, pending points, balances past int32): the same outcomes,
    outcome columns and state as one `pay` per payment."""
    prog = PROGRAMS[pi]
    one, want = _per_event(prog, items)
    listed, got = _blocks(prog, items, into=False)
    into, cols = _blocks(prog, items, into=True)
    assert got == want
    blocks = [x for x in items if not isinstance(x, Refund)]
    k = 0
    for blk, c in zip(blocks, cols, strict=True):
        want_cols = outcome_columns(want[k:k + len(blk)])
        assert c == tuple(x.tolist() for x in want_cols)
        k += len(blk)
    expected = state(one)
    assert state(listed) == expected
    assert state(into) == expected
    assert not check_invariants(listed)


def test_the_split_takes_common_rows_lean_and_hands_the_rest_on() -> None:
    """Exactly the common rows of a block are applied by the lean core; the rest (a
    duplicate inside the block, an unknown merchant, a foreign currency, a coupon, an
    invalid openid, the first payment of a campaign hour, looked up in Python, pending
    points due before the last ones) go to `_pay_core`, and a held refund sends every
    row of a block there."""
    lean, per_event = _engine(program()), _engine(program())
    blocks = [
        [pay(1, 0), pay(2, 0), pay(3, 5), pay(2, 0),  # hour looked up, lean, lean, a dup
         pay(4, 1, mch="1999999999"), pay(5, 1, currency="JPY"),
         pay(6, 1, coupon_ids=("c-unknown",)), dataclasses.replace(pay(7, 1), openid="bad id!"),
         pay(8, 2, t=LUNCH), pay(9, 2, t=LUNCH + 60), pay(10, 6, total=5000, t=LUNCH + 60),
         pay(11, 6, t=LUNCH)],  # pending points due before the fifo's last: to the heap
        [pay(21, 0, t=LUNCH + 60), pay(20, 0, t=LUNCH + 60)],  # after a held refund of 20
        [pay(22, 0, t=LUNCH + 60)]]
    counts = []
    for k, rows in enumerate(blocks):
        if k == 1:
            for eng in (lean, per_event):
                assert eng.refund(refund(1, 20, 500)).code == Code.HELD
        before = lean_rows()
        outs = lean.pay_block(block_from_columns(from_payments(rows)))
        counts.append(lean_rows() - before)
        assert outs == [per_event.pay(p) for p in rows]
    assert counts == [4, 0, 1]  # the refund held, then released by payment 20
    assert state(lean) == state(per_event)


def test_transaction_ids_of_every_packing_path_are_found_after_lean_and_per_event() -> None:
    """Transaction ids of lengths that take each path of the packer (8 characters at a
    time with a tail, 16 at a time, one pass of 20 to 32), inserted by the lean core and
    by `_pay_core` (which pack in their own modules), are found again and kept in order."""
    ids = [f"42{n:0{width - 2}d}"[:width] for width in (6, 13, 18, 22, 24, 28, 31, 32, 40)
           for n in range(width, width + 3)]
    lean, per_event = _engine(program()), _engine(program())
    rows = [dataclasses.replace(pay(0, n % WHO), transaction_id=tx) for n, tx in enumerate(ids)]
    before = lean_rows()
    outs = lean.pay_block(block_from_columns(from_payments(rows)))
    assert lean_rows() - before == len(rows) - 1  # the first looks its hour up (_pay_core)
    assert outs == [per_event.pay(p) for p in rows]
    for eng in (lean, per_event):
        assert eng.pay_index.keys() == ids
        assert [eng.pay_index.number(tx) for tx in ids] == list(range(len(ids)))
        assert all(eng.pay(p).code == Code.DUPLICATE for p in rows)


def test_new_shoppers_openids_are_checked_as_core_ids_checks_them() -> None:
    """A new shopper's openid is checked by the packer's classifier up to 64 characters
    (core/_inputs.pyx `_valid_id_bytes`), byte by byte past that: ids of 1..66 characters,
    each also with one character off the alphabet (ASCII neighbours of its ranges, a
    control byte, non-ASCII) at its first, middle and last place, are accepted by
    `pay_block` and the per-event path exactly when `core.ids.valid_id` accepts them."""
    from core.ids import valid_id

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    openids = []
    for n in range(1, 67):
        good = "".join(alphabet[(n * 7 + j) % 64] for j in range(n))
        openids.append(good)
        for bad in "@[`{/:.+ \x00\x7fé":
            for at in {0, n // 2, n - 1}:
                openids.append(good[:at] + bad + good[at + 1:])
    rows = [dataclasses.replace(pay(0, 0), transaction_id=f"42{n:030d}", openid=o)
            for n, o in enumerate(openids)]
    lean, per_event = Engine([program()]), Engine([program()])
    outs = lean.pay_block(block_from_columns(from_payments(rows)))
    assert outs == [per_event.pay(p) for p in rows]
    assert [o.code == Code.APPLIED for o in outs] == [valid_id(o) for o in openids]
    assert sum(valid_id(o) for o in openids) == 64  # 1..64 characters, the alphabet's
    assert state(lean) == state(per_event)
    assert not check_invariants(lean)


def test_points_past_int64_go_to_the_exact_path() -> None:
    """A payment whose basis times multipliers passes 2**63 (10^10 fen at 1,000 points a
    yuan, doubled in the lunch campaign: 2 * 10^19 before the division) is handed to
    `_pay_core`, which counts in Python ints; a quarter of it in the same hour stays lean.
    Same outcomes and state."""
    prog = BIG[0]
    lean, per_event = _engine(prog), _engine(prog)
    rows = [pay(1, 0, t=LUNCH),  # the campaign hour looked up (_pay_core)
            pay(2, 0, total=limits.AMOUNT_FEN_MAX, t=LUNCH),  # past int64: _pay_core
            pay(3, 0, total=limits.AMOUNT_FEN_MAX // 4, t=LUNCH),  # fits: lean
            pay(4, 5, total=limits.AMOUNT_FEN_MAX, t=LUNCH)]  # a shadow shopper, past int64
    before = lean_rows()
    outs = lean.pay_block(block_from_columns(from_payments(rows)))
    assert lean_rows() - before == 1
    assert outs == [per_event.pay(p) for p in rows]
    assert outs[1].points == outs[3].points == limits.AMOUNT_FEN_MAX // 100 * 1000 * 2
    assert state(lean) == state(per_event)
