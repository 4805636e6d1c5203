"""The engine's fast input checks agree with their plain definitions."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from core.ids import ID_RE, field_types, valid_id
from core.types import Binding, Engagement, Enrollment, type_fault

ID_CHARS = "AZaz09-_ .\n\x00é\u212a\u0661"  # valid ones, and look-alikes that are not


@given(st.one_of(st.text(alphabet=ID_CHARS, max_size=70),
                 st.text(alphabet="ab-_", min_size=60, max_size=70), st.text(max_size=70)))
def test_valid_id_is_the_id_regex(s: str) -> None:
    """valid_id accepts exactly the strings ID_RE matches (1..64 of [A-Za-z0-9_-])."""
    assert valid_id(s) == (ID_RE.match(s) is not None)


def test_valid_id_refuses_non_strings() -> None:
    """valid_id is False for anything but a str."""
    assert not any(valid_id(v) for v in (None, 7, b"abc", ["abc"]))


@given(st.sampled_from([Binding, Engagement, Enrollment]), st.data())
def test_field_types_agree_with_type_fault(cls: type, data: st.DataObject) -> None:
    """An input's field types equal field_types' exactly when type_fault finds nothing."""
    values = [data.draw(st.one_of(st.text(max_size=3), st.integers(), st.booleans(),
                                  st.none()))
              for _ in dataclasses.fields(cls)]
    x = cls(*values)
    get, types = field_types(cls)
    assert (tuple(map(type, get(x))) == types) == (type_fault(x) is None)
