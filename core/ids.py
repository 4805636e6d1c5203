"""Identifier, time and field-type checks shared by the engine's inputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter

from core import limits

# openid/unionid: 28-29 chars of letters, digits, '-' and '_' on the platform; we
# accept 1..ID_LEN_MAX so test and other platforms' ids fit.
ID_RE = re.compile(rf"[A-Za-z0-9_\-]{{1,{limits.ID_LEN_MAX}}}\Z")
_ID_MAX = limits.ID_LEN_MAX
_T_MIN, _T_MAX = limits.TIME_S_MIN, limits.TIME_S_MAX


def valid_time(t: object) -> bool:
    """True when `t` is an int epoch second inside the engine's time range."""
    return type(t) is int and _T_MIN <= t < _T_MAX


def valid_id(value: object) -> bool:
    """True when `value` is a string of 1..ID_LEN_MAX of [A-Za-z0-9_-] (same as ID_RE).

    String methods instead of the regex: for ASCII text isalnum() is exactly
    [A-Za-z0-9], and '-'/'_' are mapped onto a letter only when present.
    """
    return (type(value) is str and 0 < len(value) <= _ID_MAX and value.isascii()
            and (value.isalnum() or value.replace("-", "a").replace("_", "a").isalnum()))


def field_types(cls: type) -> tuple[Callable[[object], tuple], tuple[type, ...]]:
    """(getter of input dataclass `cls`'s fields as a tuple, their exact types).

    `tuple(map(type, get(x))) == types` exactly when `types.type_fault(x)` is None, so
    the hot paths test that and ask type_fault only for the message. Only for inputs
    of two or more `str`/`int` fields; raises KeyError on any other annotation.
    """
    fs = fields(cls)  # type: ignore[arg-type]
    assert len(fs) >= 2, "attrgetter of one name returns the value, not a tuple"
    return (attrgetter(*(f.name for f in fs)),
            tuple({"str": str, "int": int}[f.type] for f in fs))  # type: ignore[index]
