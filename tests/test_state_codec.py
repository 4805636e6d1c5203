"""core.state_codec: engine state as a pickle with its columns and id tables out of band."""

from __future__ import annotations

from array import array

import pytest
from core._keys import KeyIndex

from core import state_codec


def _state() -> dict:
    k = KeyIndex()
    numbered = KeyIndex(values=False)
    for n in range(1000):
        k[f"o{n:027d}"] = n * 7
        numbered[f"4200{n:028d}"] = n
    col = array("q", range(-500, 500))
    return {"ids": k, "pays": numbered, "col": col, "same_col": col, "empty": array("b"),
            "small": array("i", [1, 2, 3]), "misc": {"a": [1, (2, "x")], "b": None}}


def test_round_trip_keeps_values_order_and_sharing() -> None:
    state = _state()
    back = state_codec.loads(state_codec.dumps(state))
    assert back["ids"].items() == state["ids"].items()
    assert back["pays"].keys() == state["pays"].keys()
    assert back["pays"]["4200" + "0" * 25 + "999"] == 999
    assert back["col"] == state["col"] and back["col"].typecode == "q"
    assert back["same_col"] is back["col"]  # one object stays one object
    assert back["empty"] == array("b") and back["small"] == array("i", [1, 2, 3])
    assert back["misc"] == state["misc"]
    back["col"].append(1)  # the loaded columns own their memory and can grow
    back["ids"]["new"] = 1
    assert "new" not in state["ids"] and len(state["col"]) == 1000


def test_columns_travel_out_of_band() -> None:
    state = {"col": array("q", range(100_000))}
    data = state_codec.dumps(state)
    assert bytes(state["col"]) in data  # the raw column bytes, not re-encoded
    assert len(data) < 800_000 + 200


@pytest.mark.parametrize("bad", [b"", b"PMS2", b"XXXX" + bytes(16), b"garbage" * 10])
def test_not_a_state_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        state_codec.loads(bad)


def test_truncated_or_padded_state_is_refused() -> None:
    data = state_codec.dumps(_state())
    with pytest.raises(ValueError, match="length"):
        state_codec.loads(data[:-1])
    with pytest.raises(ValueError, match="length"):
        state_codec.loads(data + b"\0")
