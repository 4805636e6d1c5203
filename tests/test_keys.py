"""KeyIndex (core/_keys.pyx): the engine's id maps behave exactly like an insertion-ordered dict."""

from __future__ import annotations

import pickle
import sys

import pytest
from core._keys import KeyIndex
from hypothesis import given
from hypothesis import strategies as st

# Short alphabets make repeated keys likely; full text covers non-ASCII and lone surrogates.
KEYS = st.one_of(st.text(alphabet="ab", max_size=3), st.text(max_size=40))
OPS = st.lists(st.tuples(KEYS, st.integers(-(2**63), 2**63 - 1)), max_size=200)


@given(OPS)
def test_matches_a_dict(ops: list[tuple[str, int]]) -> None:
    k, d = KeyIndex(), {}
    for key, value in ops:
        assert (key in k) == (key in d)
        assert k.get(key) == d.get(key)
        k[key] = value
        d[key] = value
    assert len(k) == len(d)
    assert list(k) == list(d)
    assert k.items() == list(d.items())
    assert k.values() == list(d.values())
    for n, key in enumerate(d):
        assert k.key(n) == key and k.number(key) == n and k[key] == d[key]
    back = pickle.loads(pickle.dumps(k, protocol=pickle.HIGHEST_PROTOCOL))
    assert back.items() == k.items()
    for key in d:
        assert back[key] == d[key]


@given(st.lists(KEYS, unique=True, max_size=100))
def test_numbered_keys_map_to_their_order(keys: list[str]) -> None:
    k = KeyIndex(values=False)
    for n, key in enumerate(keys):
        k[key] = n
        k[key] = n  # setting the same number again is allowed
    assert [k[key] for key in keys] == list(range(len(keys)))
    assert pickle.loads(pickle.dumps(k)).keys() == keys


def test_numbered_index_refuses_other_values() -> None:
    k = KeyIndex(values=False)
    k["a"] = 0
    with pytest.raises(ValueError, match="its number"):
        k["b"] = 5
    with pytest.raises(ValueError, match="its number"):
        k["a"] = 1
    assert len(k) == 1 and k["a"] == 0


def test_non_str_keys_are_absent_and_missing_keys_raise() -> None:
    k = KeyIndex()
    k["x"] = 1
    assert k.get(1) is None and 1 not in k and k.get(b"x", "no") == "no"
    with pytest.raises(KeyError):
        k["y"]
    with pytest.raises(KeyError):
        k[b"x"]
    with pytest.raises(IndexError):
        k.key(1)
    with pytest.raises(TypeError):
        k[3] = 1


def test_grows_past_many_keys_and_reports_its_memory() -> None:
    k = KeyIndex()
    for n in range(50_000):
        k[f"4200{n:028d}"] = n * 3
    assert all(k[f"4200{n:028d}"] == n * 3 for n in range(0, 50_000, 997))
    # The arena holds the 32 bytes of each id; the rest is table, offsets and values.
    assert 50_000 * 48 < sys.getsizeof(k) < 50_000 * 120


def test_corrupt_pickled_state_is_refused() -> None:
    from core._keys import _restore
    with pytest.raises(ValueError, match="corrupt"):
        _restore(True, b"abc", (0).to_bytes(8, "little") + (9).to_bytes(8, "little"), b"\0" * 8)


def test_restore_rehashes_when_the_saved_table_is_unusable() -> None:
    from core._keys import _restore
    k = KeyIndex()
    for n in range(100):
        k[f"id{n}"] = n * 2
    fn, args = k.__reduce__()
    assert fn is _restore and len(args) == 5
    for slots in (None, b"", b"\0" * 8 * 24, b"\0" * 8 * 16):  # absent, short, not 2**k, too full
        back = _restore(*args[:4], slots)
        assert back.items() == k.items() and back["id99"] == 198 and "id100" not in back
