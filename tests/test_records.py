"""Payment records and ledger entries in their narrow forms: the widening rule of a
payment record, the bounds of a ledger entry, and snapshots of the int64 layout (version 4)."""

from __future__ import annotations

import struct
import zlib
from array import array
from pathlib import Path

import numpy as np
import pytest

from core import Engine, limits, payments, state_codec
from core.invariants import check_invariants
from core.ledger import FIELDS, Ledger
from core.payment_columns import from_payments
from core.payments import (
    P_ACCT,
    P_PENDING,
    P_POINTS,
    P_PROG,
    P_REFUNDED,
    P_REVERSED,
    P_TIME,
    P_TOTAL,
    PF,
)
from core.snapshot import HEAD, MAGIC, read_snapshot
from core.types import Code
from tests.helpers import T0, pay, program, refund

I32 = 2**31 - 1


def test_a_record_is_narrow_exactly_when_every_value_fits_an_int32() -> None:
    pays, wide = payments.new_records()
    recs = [
        [0, 0, limits.TIME_S_MIN, 1, 0, 0, 0, 0, 0],
        [I32, 63, limits.TIME_S_MAX - 1, I32, I32, I32, 0, 0, I32],
        [5, 1, T0, I32 + 1, 7, 3, 0, 0, 3],  # a total above 21.4 million yuan
        [6, 0, T0, 100, 10**15, 0, 0, 0, 0],  # a basis converted at a large rate
        [I32 + 1, 0, T0, 100, 100, 1, 0, 0, 1],  # an account number past int32
        [7, 2, T0 + 1, 2000, 2000, limits.POINTS_PER_INPUT_MAX, 0, 0, 0],
    ]
    for r in recs:
        payments.append(pays, wide, r)
    assert pays.typecode == "i" and len(pays) == len(recs) * PF
    assert payments.count(pays) == len(recs) and len(wide) == 4 * PF
    held = [pays[i * PF + P_PROG] < 0 for i in range(len(recs))]
    assert held == [False, False, True, True, True, True]
    for i, r in enumerate(recs):
        assert payments.record(pays, wide, i) == r
        assert [payments.get(pays, wide, i, f) for f in range(PF)] == r
    assert payments.table(pays, wide).tolist() == recs
    for i, r in enumerate(recs):  # the values that change stay within a record's width
        payments.put(pays, wide, i, P_REFUNDED, r[P_TOTAL])
        payments.put(pays, wide, i, P_REVERSED, r[P_POINTS])
        payments.put(pays, wide, i, P_PENDING, 0)
        assert payments.record(pays, wide, i) == [*r[:P_REFUNDED], r[P_TOTAL], r[P_POINTS], 0]
    with pytest.raises(AssertionError):
        payments.put(pays, wide, 0, P_TOTAL, 5)


def _rich() -> Engine:
    """An engine of a program without a points cap, at 1000 points a yuan, and no window."""
    return Engine([program(points_per_unit=1000, max_points_per_payment=0,
                           return_window_days=0)])


def test_a_payment_too_big_for_a_narrow_record_earns_and_refunds_exactly() -> None:
    total = limits.AMOUNT_FEN_MAX  # 100 million yuan: 10**11 points
    per_event, batch = _rich(), _rich()
    ps = [pay(1, 1, total=total), pay(2, 1, total=3000), pay(3, 2, total=I32 + 1)]
    outs = [per_event.pay(p) for p in ps]
    assert [o.code for o in outs] == [Code.APPLIED] * 3
    assert outs[0].points == total * 1000 // 100 > I32
    batch.pay_columns(from_payments(ps))
    assert len(per_event.pays_wide) == 2 * PF  # payments 1 and 3; payment 2 is narrow
    for eng in (per_event, batch):
        assert eng.pay(ps[0]).code is Code.DUPLICATE
        assert eng.pay(pay(1, 1, total=total - 1)).code is Code.TRANSACTION_ID_CONFLICT
        # cumulative floor over a wide record: 1/3, then the rest, takes back exactly 10**11
        first = eng.refund(refund(1, 1, total // 3, total=total))
        rest = eng.refund(refund(2, 1, total - total // 3, total=total, t=T0 + 7200))
        assert first.points == -(outs[0].points * (total // 3) // total)
        assert first.points + rest.points == -outs[0].points
        assert eng.refund(refund(3, 3, 1, total=I32 + 1)).code is Code.APPLIED
        assert eng.refund(refund(4, 2, 1000, total=3000)).points == -(outs[1].points // 3)
        assert payments.get(eng.pays, eng.pays_wide, 0, P_REFUNDED) == total
        assert payments.get(eng.pays, eng.pays_wide, 0, P_REVERSED) == outs[0].points
        assert check_invariants(eng) == []
    assert per_event.stats() == batch.stats()
    assert list(per_event.pays) == list(batch.pays)
    assert list(per_event.pays_wide) == list(batch.pays_wide)
    assert list(per_event.ledger.rows) == list(batch.ledger.rows)


def test_a_ledger_entry_that_does_not_fit_is_refused_whole() -> None:
    led = Ledger()
    entries = [(1, 0, 0, -10**15, limits.TIME_S_MIN, 0), (6, 3, I32, 10**12, limits.TIME_S_MAX,
                                                            (2**32 - 1) << 3 | 7)]
    for e in entries:
        led.add(*e)
    assert [led.row(k) for k in range(len(led))] == entries
    views = led.views()
    assert [tuple(int(views[f][k]) for f in FIELDS) for k in range(2)] == entries
    assert led.rows_of({I32}) == [1]
    for bad in [(1, 0, I32 + 1, 1, T0, 0), (1, 0, -1, 1, T0, 0), (1, 0, 0, 1, T0, 2**35),
                (1, 0, 0, 1, payments.TIME_BASE_S + 2**31, 0), (256, 0, 0, 1, T0, 0)]:
        with pytest.raises(OverflowError, match="a ledger entry holds"):
            led.add(*bad)
    assert len(led) == 2 and len(led.rows) == 2 * 3
    with pytest.raises(IndexError):
        led.row(2)


def _as_version_4(state: dict) -> dict:
    """`state` with the layout snapshots of version 4 have: PF int64 a payment, six int64
    a ledger entry, the pending FIFO of int64."""
    old = dict(state)
    old["pays"] = array("q", payments.table(state["pays"], state.pop("pays_wide")).tobytes())
    del old["pays_wide"]
    led = Ledger()
    led.notes = state["ledger"].notes
    v = state["ledger"].views()
    led.rows = array("q", np.stack([v[f] for f in FIELDS], axis=1).astype(np.int64).tobytes())
    old["ledger"] = led
    old["pending_fifo"] = array("q", state["pending_fifo"])
    return old


def _busy(eng: Engine) -> None:
    for n in range(40):
        eng.pay(pay(n, n % 7, total=1000 + 37 * n, t=T0 + 60 * n))
    eng.pay(pay(99, 3, total=limits.AMOUNT_FEN_MAX, t=T0 + 7200))  # a wide record
    eng.refund(refund(1, 5, 500, total=1000 + 37 * 5))
    eng.refund(refund(2, 99, 10**9, total=limits.AMOUNT_FEN_MAX, t=T0 + 9000))
    eng.advance(T0 + 3 * 86_400)


def test_a_version_4_snapshot_loads_as_it_was() -> None:
    live = Engine([program(return_window_days=7)])
    _busy(live)
    state = {k: v for k, v in live.__dict__.items() if k not in ("_kernel", "_inputs_kernel",
                                                                  "_txids")}
    old = _as_version_4(state)
    assert old["pays"].typecode == "q" and len(old["ledger"].rows) == 6 * len(live.ledger)
    back = Engine.from_snapshot(state_codec.dumps(old))
    assert list(back.pays) == list(live.pays) and list(back.pays_wide) == list(live.pays_wide)
    assert list(back.ledger.rows) == list(live.ledger.rows)
    assert back.pending_fifo.typecode == "I" and back.stats() == live.stats()
    for eng in (live, back):  # both go on alike
        eng.advance(T0 + 9 * 86_400)
        eng.pay(pay(200, 1, total=5000, t=T0 + 9 * 86_400))
        eng.refund(refund(3, 99, 10**9, total=limits.AMOUNT_FEN_MAX, t=T0 + 9 * 86_400))
    assert back.stats() == live.stats()
    assert list(back.ledger.rows) == list(live.ledger.rows)
    assert back.history(live.programs[0].id, appid=pay(0, 3).appid, openid=pay(0, 3).openid) \
        == live.history(live.programs[0].id, appid=pay(0, 3).appid, openid=pay(0, 3).openid)


def _file(path: Path, version: int, body: bytes) -> Path:
    head = HEAD.pack(MAGIC, version, 0, 7, len(body), zlib.crc32(body), 0)[:36]
    path.write_bytes(head + struct.pack("<I", zlib.crc32(head)) + body)
    return path


def test_snapshot_files_of_version_4_are_read_and_older_ones_refused(tmp_path: Path) -> None:
    assert read_snapshot(_file(tmp_path / f"{7:020d}.snapshot", 4, b"body")).body == b"body"
    with pytest.raises(ValueError, match=r"version 3 is not one of \(4, 5, 6, 7\)"):
        read_snapshot(_file(tmp_path / f"{7:020d}.snapshot", 3, b"body"))


def test_records_keep_the_account_and_time_of_each_payment() -> None:
    eng = Engine([program(return_window_days=0)])
    for n in range(5):
        eng.pay(pay(n, n, total=1000, t=limits.TIME_S_MAX - 1 - n))
    t = payments.table(eng.pays, eng.pays_wide)
    assert t[:, P_TIME].tolist() == [limits.TIME_S_MAX - 1 - n for n in range(5)]
    assert t[:, P_ACCT].tolist() == [0, 1, 2, 3, 4] and not len(eng.pays_wide)
