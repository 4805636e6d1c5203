"""The service's read-only answers: a member's balances, and a shard's state and checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from loadtests import errors
from loadtests.errors import Rejection
from loadtests.types import EngineLike

UNIONID_CHARS_MAX = 64


def member_answer(engine: EngineLike, unionid: str, query: bytes,
                  programs: tuple[str, ...]) -> bytes:
    """The JSON balances of `unionid` in each program (`?program=` in `query`, else
    `programs`); raises Rejection 400 for a bad unionid, 404 when no program knows it."""
    if not unionid or len(unionid) > UNIONID_CHARS_MAX:
        raise errors.bad_value(f"unionid must be 1..{UNIONID_CHARS_MAX} characters")
    wanted = parse_qs(query.decode("latin-1")).get("program")
    found = {}
    for pid in tuple(wanted) if wanted else programs:
        bal = engine.balance(pid, unionid=unionid)
        if bal is not None:
            found[pid] = {"available": bal.available, "pending": bal.pending,
                          "shadow": bal.shadow, "shadow_pending": bal.shadow_pending,
                          "tier": bal.tier, "member": bal.member,
                          "qualifying": bal.qualifying}
    if not found:
        raise Rejection(404, "unknown_member", "no such member")
    return orjson.dumps({"code": "SUCCESS", "unionid": unionid, "programs": found})


def state_answer(engine: EngineLike, check_invariants: Callable[[Any], list[str]] | None,
                 shard: int, shards: int) -> bytes:
    """The JSON state of shard `shard`: the engine's stats and its invariant check."""
    violations = check_invariants(engine) if check_invariants else []
    return orjson.dumps({"code": "SUCCESS", "shard": shard, "shards": shards,
                         "stats": engine.stats(), "invariant_violations": violations[:100],
                         "invariants_ok": not violations})
