"""Where `ShardedEngine` sends each plain-dict input, and how answers from several
shards combine into one Outcome. Pure functions; the rules are in docs/sharding.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.types import Balance, Code, Outcome

# How an input is routed.
BY_OPENID = "openid"  # shard_of(openid): payment, event, binding, and the rest named by openid
BY_UNIONID = "unionid"  # the shards holding the unionid's account (shard_of(unionid) if none)
BY_TRANSACTION = "transaction"  # a refund: the shard that applied its payment, else parked
EVERY_SHARD = "all"  # advance: the clock moves on every shard
ANY_SHARD = "any"  # malformed: shard 0 answers with the rejection the engine gives

_NAMED = frozenset({"enrollment", "spend", "coupon"})


def route(kind: str, data: Any) -> tuple[str, str]:
    """How input (`kind`, `data`) is routed and by which key: (one of the routes above, key)."""
    if not isinstance(data, Mapping):
        return ANY_SHARD, ""
    if kind == "payment":
        payer = data.get("payer")
        key = payer.get("openid") if isinstance(payer, Mapping) else None
        return (BY_OPENID, key) if isinstance(key, str) else (ANY_SHARD, "")
    if kind == "refund":
        key = data.get("transaction_id")
        return (BY_TRANSACTION, key) if isinstance(key, str) else (ANY_SHARD, "")
    if kind == "advance":
        return EVERY_SHARD, ""
    if kind in _NAMED:
        # The engine names a shopper by unionid first, then by (appid, openid).
        union = data.get("unionid")
        if isinstance(union, str) and union:
            return BY_UNIONID, union
    if kind in _NAMED or kind in ("event", "binding"):
        key = data.get("openid")
        return (BY_OPENID, key) if isinstance(key, str) else (ANY_SHARD, "")
    return ANY_SHARD, ""


def combine(outs: Sequence[Outcome]) -> Outcome:
    """One Outcome for an input applied on several shards: their common code (points summed,
    flags or-ed); if they differ, APPLIED with the applied shards' points when any applied,
    else the first rejection."""
    assert outs
    first = outs[0]
    if all(o.code is first.code for o in outs):
        return Outcome(first.code, sum(o.points for o in outs), first.message,
                       any(o.offer_membership for o in outs), any(o.friend_invite for o in outs))
    applied = [o for o in outs if o.code is Code.APPLIED]
    if applied:
        return combine(applied)
    return next((o for o in outs if not o.ok), first)


def sum_balances(parts: Sequence[Balance], tiers: Sequence[str]) -> Balance:
    """The sum of one unionid's per-shard accounts: points summed, member if any is, and
    the highest of their tiers (`tiers` lists the program's tier names, lowest first)."""
    assert parts
    return Balance(
        available=sum(b.available for b in parts), pending=sum(b.pending for b in parts),
        shadow=sum(b.shadow for b in parts),
        shadow_pending=sum(b.shadow_pending for b in parts),
        tier=max((b.tier for b in parts), key=tiers.index), member=any(b.member for b in parts),
        qualifying=sum(b.qualifying for b in parts))


def sum_stats(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over shards: numbers summed, `counts` merged by key, `tiers` summed per
    program and tier, `programs` as one shard's."""
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    tiers: dict[str, dict[str, int]] = {}
    for s in parts:
        for k, v in s.items():
            if k == "counts":
                for ck, cv in v.items():
                    counts[ck] = counts.get(ck, 0) + cv
            elif k == "tiers":
                for prog, by_tier in v.items():
                    mine = tiers.setdefault(prog, {})
                    for name, n in by_tier.items():
                        mine[name] = mine.get(name, 0) + n
            elif k == "programs":
                out[k] = v
            elif isinstance(v, int | float):
                out[k] = out.get(k, 0) + v
    out["counts"] = dict(sorted(counts.items()))
    if tiers:
        out["tiers"] = tiers
    return out


__all__ = ["ANY_SHARD", "BY_OPENID", "BY_TRANSACTION", "BY_UNIONID", "EVERY_SHARD", "combine",
           "route", "sum_balances", "sum_stats"]
