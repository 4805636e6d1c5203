"""Batches of the model's input table: columns gathered on first read equal the table's."""

from __future__ import annotations

import numpy as np
import pytest

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
