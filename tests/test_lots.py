"""`Lots.add` compiled (core/_lots.pyx) against its Python reference `Lots._add_py`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.lots import Lots

# (account, day, points, pop the oldest first): few accounts and days, so lots meet,
# arrive out of order and are freed and reused.
steps = st.lists(st.tuples(st.integers(0, 3), st.integers(19_000, 19_006),
                           st.integers(1, 500), st.booleans()), max_size=80)


def _run(items: list[tuple[int, int, int, bool]], compiled: bool) -> tuple[list, Lots]:
    lots = Lots()
    lots.grow(4)
    add = lots.add if compiled else lots._add_py
    outs = []
    for a, day, pts, pop in items:
        if pop and lots.tail[a]:
            outs.append(("pop", lots.pop_oldest(a)))
        outs.append(add(a, day, pts))
    return outs, lots


@settings(max_examples=200, deadline=None)
@given(steps)
def test_compiled_add_equals_the_reference(items: list[tuple[int, int, int, bool]]) -> None:
    """Any mix of adds (same day, new day, out of order) and removals gives the same
    results, lots, pool arrays and free list through the compiled `add` as through
    `_add_py`."""
    fast_outs, fast = _run(items, compiled=True)
    ref_outs, ref = _run(items, compiled=False)
    assert fast_outs == ref_outs
    assert [fast.items(a) for a in range(4)] == [ref.items(a) for a in range(4)]
    for name in ("day", "pts", "nxt", "tail"):
        assert list(getattr(fast, name)) == list(getattr(ref, name))
    assert fast.free == ref.free


def test_bad_account_raises_as_the_reference() -> None:
    """An account out of range raises IndexError and changes nothing; a negative number
    counts from the end, as in Python."""
    lots = Lots()
    lots.grow(2)
    with pytest.raises(IndexError):
        lots.add(2, 19_000, 5)
    assert len(lots.pts) == 1 and not any(lots.tail)
    assert lots.add(-1, 19_000, 5) and lots.items(1) == [(19_000, 5)]


def test_slot_offsets_refuse_a_field_that_is_not_a_slot() -> None:
    """core/_slots.pxd's slot_offset (through _lots.register): a class whose field is not
    a __slots__ member is refused with TypeError, nothing registered."""
    from core import _lots

    class NotSlots:
        tail = nxt = day = pts = free = None

    with pytest.raises(TypeError, match=r"NotSlots\.tail is not a slot"):
        _lots.register(NotSlots)
