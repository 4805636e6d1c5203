"""Routing: `shards_of` (batches) gives exactly `shard_of` (one key) for every form of input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import crc32_rows, shard_of, shards_of
from core.workload import random_ids

shard_counts = st.integers(min_value=1, max_value=64)
any_text = st.lists(st.text(max_size=40), max_size=60)
id_text = st.lists(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                           min_size=1, max_size=64), max_size=60)


@given(any_text, shard_counts)
def test_list_of_str_matches_shard_of(keys: list[str], shards: int) -> None:
    """A list of any text routes key by key as shard_of does."""
    assert shards_of(keys, shards).tolist() == [shard_of(k, shards) for k in keys]


@given(any_text, shard_counts)
def test_unicode_array_matches_shard_of(keys: list[str], shards: int) -> None:
    """A numpy `U` array (UTF-8 encoded on the way) routes as shard_of does."""
    # numpy drops trailing NULs of `U` items, so such keys cannot round-trip through it.
    keys = [k for k in keys if not k.endswith("\x00")]
    arr = np.array(keys, dtype=str) if keys else np.array([], dtype="U1")
    assert shards_of(arr, shards).tolist() == [shard_of(k, shards) for k in keys]


@given(id_text, shard_counts)
def test_bytes_and_object_arrays_match_shard_of(keys: list[str], shards: int) -> None:
    """`S` arrays of mixed-length ids and object arrays route as shard_of does."""
    want = [shard_of(k, shards) for k in keys]
    as_bytes = np.array([k.encode() for k in keys], dtype="S") if keys else np.array([], "S1")
    assert shards_of(as_bytes, shards).tolist() == want
    assert shards_of(np.array(keys, dtype=object), shards).tolist() == want


@given(st.lists(st.binary(min_size=12, max_size=12), max_size=40),
       st.lists(st.integers(0, 12), min_size=40, max_size=40))
def test_crc32_rows_is_zlib_crc32(rows: list[bytes], cut: list[int]) -> None:
    """crc32_rows of a byte matrix (whole rows or row prefixes) equals zlib.crc32."""
    b = np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 12)
    assert crc32_rows(b).tolist() == [zlib.crc32(r) for r in rows]
    lengths = np.array(cut[:len(rows)], dtype=np.int64)
    assert crc32_rows(b, lengths).tolist() == [zlib.crc32(r[:n]) for r, n in zip(
        rows, lengths.tolist(), strict=True)]


def test_model_openids_spread_over_shards() -> None:
    """28-character openids of a workload spread nearly evenly over 2 and 8 shards."""
    keys = random_ids(np.random.default_rng(3), 40_000)
    for shards in (2, 8):
        counts = np.bincount(shards_of(keys, shards), minlength=shards)
        assert counts.min() > 0.9 * len(keys) / shards


def test_bad_arguments_raise() -> None:
    """Zero shards and non-string arrays are errors, not silent routing."""
    with pytest.raises(ValueError):
        shards_of(["a"], 0)
    with pytest.raises(ValueError):
        shard_of("a", 0)
    with pytest.raises(ValueError):
        shards_of(np.arange(3), 2)
    with pytest.raises(ValueError):
        crc32_rows(np.zeros(3, np.uint8))
