"""KeyIndex (core/_keys.pyx): the engine's id maps behave exactly like an insertion-ordered dict."""

from __future__ import annotations

import hashlib
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
    """50,000 ids of one length cost 3/4 of their bytes (packed) plus ~4 for a value and
    ~10-15 of table."""
    k = KeyIndex()
    for n in range(50_000):
        k[f"4200{n:028d}"] = n * 3
    assert all(k[f"4200{n:028d}"] == n * 3 for n in range(0, 50_000, 997))
    parts = k.layout()
    assert parts["width"] == 32 and parts["packed"] and parts["offsets"] == 0
    assert parts["arena_used"] == 50_000 * 24 and parts["arena"] < 50_000 * 24 * 1.2
    assert parts["values"] < 50_000 * 4 * 1.2
    assert 50_000 * 8 / 0.8 <= parts["slots"] <= 50_000 * 8 / 0.5
    assert 50_000 * 34 < sys.getsizeof(k) < 50_000 * 50


def test_a_key_of_another_length_builds_offsets_for_good() -> None:
    """Fixed-width keys keep no offsets; the first key of another length adds them, and
    every key (before and after) is still found, also after pickling."""
    k = KeyIndex()
    same = [f"o{n:027d}" for n in range(300)]
    for n, key in enumerate(same):
        k[key] = n
    assert k.layout()["offsets"] == 0
    k["short"] = -1
    k[""] = -2
    k["é" * 3] = -3
    assert k.layout()["width"] is None and k.layout()["offsets"] > 0
    k["o" + "9" * 27] = 7  # the old width again: still works once offsets exist
    for back in (k, pickle.loads(pickle.dumps(k, protocol=4)),
                 pickle.loads(pickle.dumps(k, protocol=5))):
        assert [back[key] for key in same] == list(range(300))
        assert back["short"] == -1 and back[""] == -2 and back["é" * 3] == -3
        assert back.keys() == [*same, "short", "", "é" * 3, "o" + "9" * 27]
        assert "o" + "8" * 27 not in back


def test_values_widen_past_int32_and_keep_earlier_ones() -> None:
    """Values are int32 until one does not fit; then every value is int64, none lost."""
    k = KeyIndex()
    for n in range(100):
        k[f"id{n:03d}"] = 2**31 - 1 - n
    narrow = k.layout()["values"]
    k["id050"] = -(2**31) - 1  # an update past int32
    assert k.layout()["values"] == 2 * narrow
    k["big"] = 2**63 - 1
    assert k["id050"] == -(2**31) - 1 and k["big"] == 2**63 - 1
    assert [k[f"id{n:03d}"] for n in range(100) if n != 50] == [
        2**31 - 1 - n for n in range(100) if n != 50]
    assert pickle.loads(pickle.dumps(k)).items() == k.items()


@pytest.mark.parametrize(("first", "other"), [
    ("o" * 28, "o" * 27 + "!"),  # a character off the alphabet, same length
    ("o" * 28, "o" * 27),  # another length
    ("é" * 14, "o" * 28),  # not packable from the start (28 bytes of UTF-8)
    ("x" * 65, "y" * 65),  # too long to pack
])
def test_packed_keys_unpack_for_good_when_one_cannot_be_packed(first: str, other: str) -> None:
    """Ids of the platform's alphabet and one length are packed 6 bits a character; a key
    that cannot be packed the same way unpacks them all, and nothing is lost or confused."""
    k = KeyIndex()
    ids = [first] + [f"{n:0{len(first)}d}" for n in range(1, 200)]
    for n, key in enumerate(ids):
        k[key] = n
    assert k.layout()["packed"] == (first == "o" * 28)
    assert other not in k and k.get(other[:-1] + "?") is None
    k[other] = -1
    assert not k.layout()["packed"]
    for back in (k, pickle.loads(pickle.dumps(k, protocol=5))):
        assert back.keys() == [*ids, other] and back[other] == -1
        assert [back[key] for key in ids] == list(range(200))


def test_packing_keeps_every_character_of_the_alphabet_apart() -> None:
    """All 64 characters in every position of a packed id round-trip and stay distinct."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    ids = [alphabet[n:] + alphabet[:n] for n in range(64)]
    ids += [c * 29 for c in alphabet] + [alphabet[:29 - n] + "_" * n for n in range(29)]
    for width in (64, 29):
        k = KeyIndex(values=False)
        same = [i[:width] for i in ids if len(i) >= width]
        same = list(dict.fromkeys(same))
        for n, key in enumerate(same):
            k[key] = n
        assert k.layout()["packed"] and k.keys() == same
        assert all(k.number(key) == n for n, key in enumerate(same))
        assert pickle.loads(pickle.dumps(k)).keys() == same


@pytest.mark.parametrize("args", [
    (True, 1, -2, False, False, b"abc", (0).to_bytes(8, "little") + (9).to_bytes(8, "little"),
     b"\0" * 4),  # an offset past the arena
    (True, 1, -2, False, False, b"abc", (2).to_bytes(8, "little") + (3).to_bytes(8, "little"),
     b"\0" * 4),  # a first offset past 0
    (True, 2, 3, False, False, b"abcde", None, b"\0" * 8),  # arena not 2 keys of 3 bytes
    (True, 1, 3, False, False, b"abc", b"\0" * 16, b"\0" * 4),  # offsets with a fixed width
    (True, 1, 3, False, False, b"abc", None, b"\0" * 8),  # int64-sized values, not wide
    (True, 1, 3, False, True, b"abc", None, b"\0" * 4),  # int32-sized values, wide
    (False, 1, 3, False, False, b"abc", None, b"\0" * 4),  # values in a numbered index
    (True, 1, -1, False, False, b"abc", None, b"\0" * 4),  # keys but no width
    (True, -1, -1, False, False, b"", None, b""),  # a negative count
    (True, 1, -3, False, False, b"abc", None, b"\0" * 4),  # no such width
    (True, 1, 4, True, False, b"abcd", None, b"\0" * 4),  # 4 packed characters take 3 bytes
    (True, 1, 3, True, False, b"ab\x01", None, b"\0" * 4),  # spare bits not zero
    (True, 1, 65, True, False, b"\0" * 49, None, b"\0" * 4),  # too long to be packed
])
def test_corrupt_pickled_state_is_refused(args: tuple) -> None:
    """A state no KeyIndex could have written is a ValueError, not a crash."""
    from core._keys import _restore
    with pytest.raises(ValueError, match="corrupt"):
        _restore(*args)


@pytest.mark.parametrize("width", [8, None])
def test_restore_rehashes_when_the_saved_table_is_unusable(width: int | None) -> None:
    """Absent, short, too full or unsound tables are rebuilt from the keys."""
    from core._keys import _restore
    k = KeyIndex()
    for n in range(100):
        k[f"id{n:06d}" if width else f"id{n}"] = n * 2
    fn, args = k.__reduce__()
    assert fn is _restore and len(args) == 9
    last = "id000099" if width else "id99"
    bad_number = (1 << 32 | 101).to_bytes(8, "little") + b"\0" * 8 * 199
    for slots in (None, b"", b"\0" * 8 * 24, b"\0" * 8 * 16, bad_number, b"\0" * 8 * 200):
        back = _restore(*args[:8], slots)
        assert back.items() == k.items() and back[last] == 198 and "id100" not in back


def _pack_reference(key: str) -> bytes:
    """Six bits a character, first character highest, spare low bits zero (core/_keypack.pxd)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    bits = "".join(format(alphabet.index(c), "06b") for c in key)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


@given(st.integers(1, 64).flatmap(lambda n: st.lists(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            min_size=n, max_size=n), min_size=1, max_size=20, unique=True)))
def test_packed_arena_is_six_bits_a_character_first_character_highest(keys: list[str]) -> None:
    """The arena a snapshot saves holds each key packed exactly as the format says, so
    snapshots stay readable whatever packer wrote them."""
    k = KeyIndex(values=False)
    for n, key in enumerate(keys):
        k[key] = n
    _fn, args = k.__reduce__()
    arena = bytes(args[5])
    assert args[3] and arena == b"".join(_pack_reference(key) for key in keys)
    assert k.keys() == keys and all(k.number(key) == n for n, key in enumerate(keys))


@pytest.mark.parametrize("bad", ["\x00", "!", "é", "~", " ", "."])
@pytest.mark.parametrize("at", [0, 7, 8, 27])
def test_one_character_off_the_alphabet_unpacks_the_keys(bad: str, at: int) -> None:
    """An off-alphabet character in any position of the packer's 8-character groups or its
    tail is noticed: the keys are then kept as given, and all are still found."""
    base = "abcdefghijklmnopqrstuvwxyz01"
    k = KeyIndex(values=False)
    k[base] = 0
    other = base[:at] + bad + base[at + 1:]
    assert other not in k
    k[other] = 1
    assert not k.layout()["packed"] and k.keys() == [base, other]
    assert k.number(base) == 0 and k.number(other) == 1


@pytest.mark.parametrize("width", [40, 32, 28, 20])
def test_every_byte_off_the_alphabet_is_noticed_in_every_position(width: int) -> None:
    """Each character outside the 64 (ASCII or not), at each position of a key of 40
    characters (two 16-character blocks, an 8-character group and a tail) or of 20 to 32
    (a multiple of 4: one AVX2 pass over its first and last 16), is noticed by the packer:
    the keys are then kept as given; and each key of the alphabet packs as the reference."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    base = (alphabet * 2)[5:5 + width]
    offs = [chr(c) for c in range(256) if chr(c) not in alphabet] + ["\u0100", "\ud800"]
    for at in range(len(base)):
        for bad in offs:
            k = KeyIndex(values=False)
            k[base] = 0
            other = base[:at] + bad + base[at + 1:]
            assert other not in k
            k[other] = 1
            assert not k.layout()["packed"], (at, bad)
            assert k.keys() == [base, other]
    for n in range(1, 65):
        keys = [(alphabet * 2)[s:s + n] for s in range(0, 64, 3)]
        k = KeyIndex(values=False)
        for i, key in enumerate(keys):
            k[key] = i
        _fn, args = k.__reduce__()
        assert args[3] and bytes(args[5]) == b"".join(_pack_reference(key) for key in keys)


def test_the_hash_is_part_of_the_snapshot_format() -> None:
    """A saved table is used as it is when loaded, so the hash behind its slots' tags and
    homes must not change: the slots of keys of every length from 0 to 47 bytes (ASCII and
    not) are pinned."""
    digest = hashlib.sha256()
    for n in range(48):
        k = KeyIndex(values=False)
        for key in sorted({("aZ9-_é!" * 8)[s:s + n] for s in range(7)}):
            k[key] = len(k)
        _fn, args = k.__reduce_ex__(4)
        digest.update(bytes(args[-1]))
    assert digest.hexdigest()[:16] == "f2dcc522e707a658"
