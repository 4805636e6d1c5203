"""Peer (a): the straightforward Python engine, a dict of member objects."""

from __future__ import annotations

from collections.abc import Sequence

from core.peers.rules import (
    DUPLICATE,
    REJECTED,
    Rules,
    basis_fen,
    points,
    rate,
    rules_of,
    tier_after,
)
from core.program import Program
from core.types import Payment


class Member:
    """One member: points, qualifying points (or fen) and tier index."""

    __slots__ = ("points", "qualifying", "tier")

    def __init__(self) -> None:
        """A new member at the first tier with nothing."""
        self.points = 0
        self.qualifying = 0
        self.tier = 0


class NaivePeer:
    """Members in a dict keyed by openid; payments remembered by transaction_id."""

    name = "naive_python"

    def __init__(self, program: Program) -> None:
        """An empty peer for `program`."""
        self.rules: Rules = rules_of(program)
        self.members: dict[str, Member] = {}
        self.payments: dict[str, int] = {}  # transaction_id -> points earned

    def pay(self, p: Payment) -> int:
        """Apply payment `p`; returns its points, DUPLICATE or REJECTED."""
        if p.transaction_id in self.payments:
            return DUPLICATE
        r = self.rules
        if p.mchid not in r.channel_pct or p.appid not in r.appids:
            return REJECTED
        basis = basis_fen(r, p.currency, p.total_fen, p.payer_total_fen)
        if basis == REJECTED:
            return REJECTED
        m = self.members.get(p.openid)
        if m is None:
            m = self.members[p.openid] = Member()
        pts = points(r, basis, p.mchid, m.tier, p.time_s)
        self.payments[p.transaction_id] = pts
        m.points += pts
        m.qualifying += basis if r.spend_basis else pts
        m.tier = tier_after(r, m.tier, m.qualifying)
        return pts

    def run(self, payments: Sequence[Payment]) -> float:
        """Apply `payments` in order; returns payments per second."""
        return rate(self.pay, payments)

    def state(self) -> dict[str, tuple[int, int]]:
        """Each member's (points, tier)."""
        return {k: (m.points, m.tier) for k, m in self.members.items()}

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["Member", "NaivePeer"]
