"""The compiled loops of replay: `crc32` is zlib's CRC-32 for any bytes, and `text_spans`
finds exactly the items of a text section, or refuses it."""

from __future__ import annotations

import struct
import zlib

import pytest
from core._journal import FOLDING, crc32, text_spans
from hypothesis import given, settings
from hypothesis import strategies as st


@given(st.binary(max_size=3000), st.integers(0, 15), st.integers(0, 2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_crc32_is_zlibs(data: bytes, skip: int, value: int) -> None:
    """crc32(view, value) equals zlib.crc32 for any length, start and running value."""
    view = memoryview(data)[min(skip, len(data)):]
    assert crc32(view, value) == zlib.crc32(view, value)
    assert crc32(view) == zlib.crc32(view)


def test_crc32_on_long_inputs() -> None:
    """Long inputs (the folding path, every tail length) match zlib, and the check value."""
    assert crc32(b"123456789") == 0xCBF43926
    data = bytes(range(256)) * 40
    for size in (255, 256, 257, 1000, 4096, 4111, len(data)):
        assert crc32(data[:size]) == zlib.crc32(data[:size]), size
        assert crc32(data[:size], 12345) == zlib.crc32(data[:size], 12345), size
    assert isinstance(FOLDING, bool)


def _spans(data: bytes, items: list[bytes], form: int) -> None:
    starts, ends, ascii = text_spans(data, len(items), form)
    assert [data[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)] == items
    assert ascii == all(x.isascii() for x in items)


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"")), max_size=60))
@settings(max_examples=200, deadline=None)
def test_spans_of_nul_joined_items(items: list[bytes]) -> None:
    """Form 0 (items joined by NUL): each item's span, and whether all are ASCII."""
    if items:
        _spans(b"\x00".join(items), items, 0)


@given(st.lists(st.binary(max_size=40), max_size=60))
@settings(max_examples=200, deadline=None)
def test_spans_of_length_prefixed_items(items: list[bytes]) -> None:
    """Form 1 (lengths first): each item's span; the lengths' bytes are not items."""
    data = struct.pack(f"<{len(items)}I", *map(len, items)) + b"".join(items)
    _spans(data, items, 1)


@pytest.mark.parametrize(("data", "n", "form"), [
    (b"a\x00b", 1, 0), (b"a\x00b", 3, 0), (b"a", 0, 0), (b"", 2, 0),
    (struct.pack("<2I", 1, 1) + b"a", 2, 1), (struct.pack("<2I", 1, 1) + b"abc", 2, 1),
    (struct.pack("<I", 2**32 - 1) + b"a", 1, 1), (b"\x01\x00", 1, 1), (b"a", 1, 2),
])
def test_spans_refuse_a_section_that_does_not_add_up(data: bytes, n: int, form: int) -> None:
    """Another number of items, lengths past the section or short of it: ValueError."""
    with pytest.raises(ValueError, match="text section"):
        text_spans(data, n, form)
