"""KeyIndex (core/_keys.pyx): the engine's id maps behave exactly like an insertion-ordered dict."""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path

import pytest
from core._keys import KeyIndex
from hypothesis import given
from hypothesis import strategies as st

# Short alphabets make repeated keys likely; full text covers non-ASCII and lone surrogates.
KEYS = st.one_of(st.text(alphabet="ab", max_size=3), st.text(max_size=40))
OPS = st.lists(st.tuples(KEYS, st.integers(-(2**63), 2**63 - 1)), max_size=200)
SLOT_BYTES = st.sampled_from([8, 4])


@given(OPS, SLOT_BYTES)
def test_matches_a_dict(ops: list[tuple[str, int]], slot_bytes: int) -> None:
    k, d = KeyIndex(slot_bytes=slot_bytes), {}
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
    assert back.items() == k.items() and back.slot_bytes == slot_bytes
    for key in d:
        assert back[key] == d[key]


@given(st.lists(KEYS, unique=True, max_size=100), SLOT_BYTES)
def test_numbered_keys_map_to_their_order(keys: list[str], slot_bytes: int) -> None:
    k = KeyIndex(values=False, slot_bytes=slot_bytes)
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


@pytest.mark.parametrize("slot_bytes", [8, 4])
def test_grows_past_many_keys_and_reports_its_memory(slot_bytes: int) -> None:
    """50,000 ids of one length cost 3/4 of their bytes (packed) plus ~4 for a value and
    10-15 of table with 8-byte slots, 5-7.5 with 4-byte ones."""
    k = KeyIndex(slot_bytes=slot_bytes)
    for n in range(50_000):
        k[f"4200{n:028d}"] = n * 3
    assert all(k[f"4200{n:028d}"] == n * 3 for n in range(0, 50_000, 997))
    parts = k.layout()
    assert parts["width"] == 32 and parts["packed"] and parts["offsets"] == 0
    assert parts["arena_used"] == 50_000 * 24 and parts["arena"] < 50_000 * 24 * 1.2
    assert parts["values"] < 50_000 * 4 * 1.2
    assert 50_000 * slot_bytes / 0.8 <= parts["slots"] <= 50_000 * slot_bytes / 0.5
    assert parts["slot_bytes"] == slot_bytes
    if slot_bytes == 4:  # 78,895 slots hold at most 63,116 keys: 16 bits for a number
        assert parts["tag_bits"] == 32 - (parts["slots"] // 4 * 4 // 5).bit_length() == 16
        assert 50_000 * 29 < sys.getsizeof(k) < 50_000 * 45
    else:
        assert parts["tag_bits"] == 32 and 50_000 * 34 < sys.getsizeof(k) < 50_000 * 50


def test_a_slot_width_other_than_4_or_8_is_refused() -> None:
    for bad in (0, 2, 16, -8):
        with pytest.raises(ValueError, match="slot_bytes is 4 or 8"):
            KeyIndex(slot_bytes=bad)
        k = KeyIndex()
        with pytest.raises(ValueError, match="slot_bytes is 4 or 8"):
            k.reslot(bad)


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
    (True, 1, 3, False, False, b"abc", None, b"\0" * 4, b"\0" * 64, 2),  # 2-byte slots
])
def test_corrupt_pickled_state_is_refused(args: tuple) -> None:
    """A state no KeyIndex could have written is a ValueError, not a crash."""
    from core._keys import _restore
    with pytest.raises(ValueError, match="corrupt"):
        _restore(*args)


@pytest.mark.parametrize("slot_bytes", [8, 4])
@pytest.mark.parametrize("width", [8, None])
def test_restore_rehashes_when_the_saved_table_is_unusable(width: int | None,
                                                           slot_bytes: int) -> None:
    """Absent, short, too full or unsound tables are rebuilt from the keys."""
    from core._keys import _restore
    k = KeyIndex(slot_bytes=slot_bytes)
    for n in range(100):
        k[f"id{n:06d}" if width else f"id{n}"] = n * 2
    fn, args = k.__reduce__()
    assert fn is _restore and len(args) == 10 and args[9] == slot_bytes
    assert len(args[8]) == k.layout()["slots"]
    last = "id000099" if width else "id99"
    top = 1 << (8 * slot_bytes - 1)  # a tag bit, above any number
    bad_number = (top | 101).to_bytes(slot_bytes, "little") + b"\0" * slot_bytes * 199
    no_number = top.to_bytes(slot_bytes, "little") + b"\0" * slot_bytes * 199  # number 0
    for slots in (None, b"", b"\0" * slot_bytes * 124, b"\0" * slot_bytes * 16, bad_number,
                  no_number, b"\0" * slot_bytes * 200, b"\0" * slot_bytes * 200 + b"\0"):
        back = _restore(*args[:8], slots, slot_bytes)
        assert back.items() == k.items() and back[last] == 198 and "id100" not in back
        assert back.slot_bytes == slot_bytes
    back = _restore(*args)  # the saved table itself, copied
    assert back.items() == k.items() and back.probe_stats() == k.probe_stats()
    assert bytes(back.__reduce__()[1][8]) == bytes(args[8])


@pytest.mark.parametrize("width", [28, None])
def test_reslot_rehashes_into_the_other_width(width: int | None) -> None:
    """An index of 8-byte slots re-hashed into 4-byte ones (as a snapshot before version 7
    is converted) holds the table a 4-byte index built key by key holds, and goes on as it;
    a pickle without a slot width (before version 7) loads with 8-byte slots."""
    from core._keys import _restore
    wide, narrow = KeyIndex(), KeyIndex(slot_bytes=4)
    for n in range(1_000):
        for ix in (wide, narrow):
            ix[f"oAbc{n:024d}" if width else f"o{n}"] = 7 * n
    old = _restore(*wide.__reduce__()[1][:9])  # as pickles of version 6 call it
    assert old.slot_bytes == 8 and old.items() == wide.items()
    old.reslot(4)
    assert old.slot_bytes == 4 and old.layout()["slots"] == narrow.layout()["slots"]
    assert bytes(old.__reduce__()[1][8]) == bytes(narrow.__reduce__()[1][8])
    for n in range(1_000, 3_000):
        for ix in (old, narrow, wide):
            ix[f"oAbc{n:024d}" if width else f"o{n}"] = n
    assert old.items() == narrow.items() == wide.items()
    assert old.probe_stats()["hit_compares"] < 1.05
    old.reslot(8)
    assert old.layout()["slots"] == wide.layout()["slots"]
    assert all(old[key] == wide[key] for key in wide) and old.probe_stats()["hit_compares"] == 1


def test_lookups_stay_short_as_tags_narrow() -> None:
    """As the count grows the tag of 4-byte slots narrows (numbers take more bits), yet a
    hit still reads about 2 slots and compares about 1 key, and a miss compares few."""
    k = KeyIndex(values=False, slot_bytes=4)
    seen = []
    for n in range(300_000):
        k[f"{n:032x}"] = n
        if n + 1 in (1_000, 30_000, 300_000):
            seen.append(k.probe_stats())
    assert [s["tag_bits"] for s in seen] == sorted((s["tag_bits"] for s in seen), reverse=True)
    for s in seen:
        assert 1.0 <= s["hit_compares"] < 1.05 and s["hit_probes"] < 3.5
        assert s["miss_probes"] < 14 and s["miss_compares"] < 0.01
    assert all(k[f"{n:032x}"] == n for n in range(0, 300_000, 1_013))
    assert all(f"{n:031x}" not in k for n in range(0, 300_000, 1_013))


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


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.integers(1, 64).flatmap(lambda n: st.text(alphabet=_ALPHABET, min_size=n, max_size=n)))
def test_every_unpack_path_gives_the_key_back(key: str) -> None:
    """Each unpacker this CPU has (scalar, SSSE3 from 16 characters, AVX2 for 24, 28 and
    32) turns the packed form back into the key's bytes; the scalar one takes every length."""
    from core._keys import unpack_by
    packed = _pack_reference(key)
    got = [unpack_by(packed, len(key), path) for path in (0, 1, 2)]
    assert got[0] == key.encode()
    assert all(g is None or g == key.encode() for g in got)


def test_unpack_paths_cover_the_platform_ids_and_refuse_bad_sizes() -> None:
    from core._keys import unpack_by
    key = "oAbc" + "Zz-_09" * 4
    assert unpack_by(_pack_reference(key), 28, 0) == key.encode()
    assert unpack_by(_pack_reference(key[:8]), 8, 1) is None  # SSSE3 from 16 characters
    assert unpack_by(_pack_reference(key[:20]), 20, 2) is None  # AVX2 for 24, 28, 32
    with pytest.raises(ValueError):
        unpack_by(_pack_reference(key)[:20], 28, 0)
    with pytest.raises(ValueError):
        unpack_by(b"", 0, 0)


@pytest.mark.parametrize("width", [1, 7, 15, 16, 17, 20, 23, 24, 27, 28, 31, 32, 33, 48, 64])
def test_four_byte_tables_grown_from_packed_keys_find_every_key(width: int) -> None:
    """Growing a 4-byte table re-hashes every packed key unpacked (by this CPU's path for
    its width): each is found where a lookup hashes it, none that is absent is."""
    import random
    rng = random.Random(width)
    keys = list(dict.fromkeys("".join(rng.choice(_ALPHABET) for _ in range(width))
                              for _ in range(3_000)))
    k = KeyIndex(slot_bytes=4)
    for n, key in enumerate(keys):
        k[key] = n
    assert k.layout()["packed"] and k.layout()["slots"] > len(keys) * 4
    assert all(k[key] == n for n, key in enumerate(keys))
    assert k.probe_stats()["hit_compares"] < 1.1
    absent = ("".join(rng.choice(_ALPHABET) for _ in range(width)) for _ in range(500))
    assert not any(key in k for key in absent if key not in set(keys))


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
    not) are pinned, in tables of 8-byte slots and of 4-byte ones."""
    digests = {8: hashlib.sha256(), 4: hashlib.sha256()}
    for n in range(48):
        for slot_bytes, digest in digests.items():
            k = KeyIndex(values=False, slot_bytes=slot_bytes)
            for key in sorted({("aZ9-_é!" * 8)[s:s + n] for s in range(7)}):
                k[key] = len(k)
            _fn, args = k.__reduce_ex__(4)
            digest.update(bytes(args[8]))
    assert digests[8].hexdigest()[:16] == "f2dcc522e707a658"
    assert digests[4].hexdigest()[:16] == "34799d0789d0e462"


def test_a_version_6_snapshot_loads_its_member_maps_reslotted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot file of version 6 (every KeyIndex pickled with 9 arguments and a table of
    8-byte slots, as main wrote them then) loads: the member maps are re-hashed into 4-byte
    slots (Accounts.reslot_v6), the transaction-id index keeps its table, and the engine
    goes on as the one it was taken from (duplicate payments found, new ones applied)."""
    from core._keys import _restore

    from core import Binding, Engine, check_invariants, snapshot, state_codec
    from tests.helpers import APP, T0, oid, pay, program, uid
    from tests.test_engine_inputs import state

    old = []  # the slot widths of the KeyIndexes pickled the old way

    class OldPickler(state_codec._Pickler):
        def reducer_override(self, obj: object) -> object:
            if type(obj) is KeyIndex:
                old.append((obj.slot_bytes, len(obj)))
                wide = pickle.loads(pickle.dumps(obj))
                wide.reslot(8)
                return _restore, wide.__reduce_ex__(4)[1][:9]
            return super().reducer_override(obj)

    live = Engine([program()])
    assert [ix.slot_bytes for ix in (*live.acc.by_app.values(), *live.acc.by_union)] == [4] * 3
    assert live.pay_index.slot_bytes == 8
    for n in range(300):
        live.pay(pay(n, n % 70, 1000 + n, T0 + 60 * n))
        if n % 7 == 0:
            live.bind(Binding(APP, oid(n % 70), uid(n % 11), T0 + 60 * n + 1))
    monkeypatch.setattr(state_codec, "_Pickler", OldPickler)
    monkeypatch.setattr(snapshot, "VERSION", 6)
    path = snapshot.write_snapshot(tmp_path, 300, live.snapshot())
    monkeypatch.undo()
    read = snapshot.read_snapshot(path)
    assert _file_version(path) == 6 and read.seq == 300
    assert sorted(old) == [(4, 0), (4, 10), (4, 70), (8, 300)]  # by_union of 2 programs
    back = Engine.from_snapshot(read.body)
    assert [ix.slot_bytes for ix in (*back.acc.by_app.values(), *back.acc.by_union)] == [4] * 3
    assert back.pay_index.slot_bytes == 8
    assert state(back) == state(live) and back.pay_index.items() == live.pay_index.items()
    for eng in (live, back):
        assert eng.pay(pay(5, 5, 1005, T0 + 300)).code.name == "DUPLICATE"
        for n in range(300, 400):
            eng.pay(pay(n, n % 90, 1000 + n, T0 + 60 * n))
    assert state(back) == state(live) and check_invariants(back) == []
    again = Engine.from_snapshot(back.snapshot())  # version 7: tables copied as they are
    assert [ix.slot_bytes for ix in (*again.acc.by_app.values(), *again.acc.by_union)] == [4] * 3
    assert state(again) == state(live)


def _file_version(path: Path) -> int:
    """The version field of a snapshot file's header."""
    with open(path, "rb") as f:
        return int.from_bytes(f.read(12)[8:12], "little")
