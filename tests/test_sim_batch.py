"""Batches of the model's input table: columns gathered on first read equal the table's."""

from __future__ import annotations

import numpy as np
import pytest

from sim import tables
from sim.inputs import BATCH_COLUMNS, batch_of, take
from sim.tables import PAY, REFUND, Inputs


def _table() -> Inputs:
    tab = Inputs(capacity=4)
    rng = np.random.default_rng(7)
    n = 40  # past the capacity: the columns grow while rows are appended
    tab.append(kind=rng.integers(0, 2, n).astype(np.int8), shopper=rng.integers(0, 99, n),
               prog=rng.integers(0, 3, n), t_s=rng.random(n), amount=rng.integers(1, 9, n),
               payer=rng.integers(1, 9, n), currency=0, app=0)
    return tab


def test_batch_columns_are_the_tables_rows_and_take_composes() -> None:
    tab = _table()
    rows = np.array([5, 3, 39, 0, 17, 3])
    b = batch_of(tab, rows)
    at = np.array([4, 0, 2])
    sub = take(b, at)
    for k in BATCH_COLUMNS:
        assert np.array_equal(b[k], tab.cols[k][rows])
        assert np.array_equal(sub[k], tab.cols[k][rows[at]])
    assert np.array_equal(sub["row"], rows[at])
    with pytest.raises(KeyError):
        b["station_name"]


def test_known_columns_are_used_and_plain_dicts_still_taken() -> None:
    tab = _table()
    rows = np.array([1, 2])
    kind = tab.cols["kind"][rows]
    b = batch_of(tab, rows, kind=kind)
    assert b["kind"] is kind
    plain = {"row": rows, "kind": np.array([PAY, REFUND], np.int8)}
    assert take(plain, np.array([1]))["kind"].tolist() == [REFUND]


def test_table_rows_are_records_of_one_cache_line_and_growth_keeps_them() -> None:
    tab = _table()  # grown from 4 rows to 64
    rec = tab._rec
    assert rec.dtype.itemsize == 64 and rec.ctypes.data % 64 == 0
    assert all(np.shares_memory(c, rec) for c in (*tab.cols.values(), tab.done, tab.first_ack_s))
    assert np.isnan(tab.first_ack_s[: tab.n]).all()
    before = {k: v.copy() for k, v in tab.cols.items()}
    cols = tab.cols
    tab._reserve(1000)
    assert tab.cols is cols and len(tab.cols["shopper"]) >= 1000
    for k, v in before.items():
        assert np.array_equal(tab.cols[k][:40], v[:40])
    assert tab.append(shopper=np.array([5]), kind=PAY).tolist() == [40]
    assert tab.ref[-1] == -1 and tab.place[-1] == -1 and tab.shopper[-1] == 5


def test_population_knowledge_is_one_record_per_program_and_shopper() -> None:
    from sim.bench import SCENARIO
    from sim.population import Population
    from sim.scenario import load_scenario

    pop = Population(load_scenario(SCENARIO), np.random.default_rng(1))
    flat = pop.member.reshape(-1)
    flat[pop.n + 3] = True  # program 1, shopper 3: a view, it writes through
    assert pop.member[1, 3] and pop.member.sum() == 1
    pop.bound.reshape(-1)[[2, pop.n + 2]] = True
    assert pop.bound[:2, 2].all() and pop.bound.sum() == 2 and not pop.member[:, 2].any()
    assert (pop.coupon == -1).all() and (pop.points == 0).all()
    assert pop.points.strides[-1] == 32 and pop.points.ctypes.data % 32 == 0


@pytest.mark.parametrize("ahead", [1, 5, 1 << 14])
def test_appended_rows_hold_their_values_or_the_defaults(ahead: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults (-1 place and ref, NaN first acknowledgement, 0 elsewhere) are written
    ahead of appends in chunks: across chunks and growth, each row holds what was given."""
    monkeypatch.setattr(tables, "_DEFAULTS_AHEAD", ahead)
    tab = Inputs(capacity=8)
    rng = np.random.default_rng(ahead)
    want: dict[str, list[float]] = {k: [] for k in tables._COLUMNS}
    for _ in range(60):
        m = int(rng.integers(1, 12))
        given: dict[str, np.ndarray | int] = {"shopper": rng.integers(0, 99, m)}
        for k in ("place", "ref", "app", "amount"):
            pick = rng.integers(4)  # left out, its default, another scalar, an array
            if pick == 1:
                given[k] = tables._DEFAULT[k]
            elif pick == 2:
                given[k] = int(rng.integers(1, 5))
            elif pick == 3:
                given[k] = rng.integers(-1, 5, m)
        rows = tab.append(**given)
        assert rows.tolist() == list(range(tab.n - m, tab.n))
        for k, col in want.items():
            col += np.broadcast_to(given.get(k, tables._DEFAULT[k]), m).tolist()
    for k, col in want.items():
        assert getattr(tab, k).tolist() == col, k
    assert np.isnan(tab.first_ack_s[: tab.n]).all() and not tab.done[: tab.n].any()
