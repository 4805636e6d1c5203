"""The synthetic shoppers of a load test: ids by number, and who owns which slice.

Member m has openid `oLT<m>` and unionid `uLT<m>` (28 characters, as the
platform's). Each load-generating user owns a disjoint slice of members, so no
two users race on one member and each can keep exact books of what it sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import load_program


def openid_of(m: int) -> str:
    """Return the openid of member number `m`."""
    return f"oLT{m:025d}"


def unionid_of(m: int) -> str:
    """Return the unionid of member number `m`."""
    return f"uLT{m:025d}"


@dataclass(frozen=True, slots=True)
class Brand:
    """What the generator needs of a program: its id, first appid and its merchants."""

    program: str
    appid: str
    mchids: tuple[str, ...]


def brands_of(program_files: tuple[str, ...]) -> tuple[Brand, ...]:
    """Return the Brand of each program file; raises core.ConfigError when one is bad."""
    out = []
    for path in program_files:
        p = load_program(path)
        out.append(Brand(p.id, p.appids[0], tuple(p.merchants)))
    return tuple(out)


def slice_of(slot: int, slots: int, members: int) -> range:
    """Return the member numbers owned by user `slot` out of `slots` (disjoint, maybe empty)."""
    assert slots > 0
    per = members // slots
    if per == 0:  # fewer members than users: the first `members` users get one each
        return range(slot, slot + 1) if slot < members else range(0)
    return range(slot * per, (slot + 1) * per)
