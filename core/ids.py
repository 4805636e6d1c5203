"""Identifier and time checks shared by the engine's inputs."""

from __future__ import annotations

import re

from core import limits

# openid/unionid: 28-29 chars of letters, digits, '-' and '_' on the platform; we
# accept 1..ID_LEN_MAX so test and other platforms' ids fit.
ID_RE = re.compile(rf"[A-Za-z0-9_\-]{{1,{limits.ID_LEN_MAX}}}\Z")


def valid_time(t: object) -> bool:
    """True when `t` is an int epoch second inside the engine's time range."""
    return type(t) is int and limits.TIME_S_MIN <= t < limits.TIME_S_MAX


def valid_id(value: object) -> bool:
    """True when `value` is a string of 1..ID_LEN_MAX of [A-Za-z0-9_-]."""
    return type(value) is str and ID_RE.match(value) is not None
