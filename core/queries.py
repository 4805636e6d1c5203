"""Read-only questions to the engine: balances, ledger history, totals.

A mixin of Engine; nothing here changes state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.ledger import CAUSE_EVENT, CAUSE_PAYMENT, CAUSE_REFUND
from core.types import Balance, Bucket, Entry, LedgerRow, Outcome

if TYPE_CHECKING:
    from core.engine import Engine


class QueryMixin:
    """balance(), history(), stats() (mixed into Engine)."""

    def account_of(self: Engine, program: str, unionid: str = "", appid: str = "",
                   openid: str = "") -> int | None:
        """The surviving account number of a shopper, or None when unknown or bad."""
        pi = self.prog_index.get(program)
        if pi is None:
            return None
        a = self._resolve(pi, unionid, appid, openid, create=False)
        return None if type(a) is Outcome else a  # type: ignore[return-value]

    def balance(self: Engine, program: str, unionid: str = "", appid: str = "",
                openid: str = "") -> Balance | None:
        """Balances and tier of a shopper named by unionid or (appid, openid); None if unknown."""
        a = self.account_of(program, unionid, appid, openid)
        if a is None:
            return None
        acc = self.acc
        c = self.rules[acc.prog[a]]
        b = acc.balance
        return Balance(available=b("avail", a), pending=b("pend", a), shadow=b("shad", a),
                       shadow_pending=b("shad_pend", a),
                       tier=c.program.tiers[acc.tier[a]].name, member=bool(acc.member[a]),
                       qualifying=acc.qual[a])

    def history(self: Engine, program: str, unionid: str = "", appid: str = "",
                openid: str = "") -> list[LedgerRow]:
        """Every ledger entry of a shopper, merged-in accounts included, each with its cause."""
        a = self.account_of(program, unionid, appid, openid)
        if a is None:
            return []
        accounts = {a, *self.merged_from.get(a, ())}
        led = self.ledger
        out = []
        for seq in led.rows_of(accounts):
            kind, bucket, _acct, points, time_s, cause = led.row(seq)
            out.append(LedgerRow(seq, time_s, Entry(kind), Bucket(bucket), points,
                                 self.cause_text(cause)))
        return out

    def has_payment(self: Engine, transaction_id: str) -> bool:
        """True when a payment with `transaction_id` was applied."""
        return transaction_id in self.pay_index

    def transaction_ids(self: Engine) -> list[str]:
        """transaction_id of each payment by payment number. The index's insertion order
        is the numbering (nothing is ever removed), so the list is derived, and cached
        until more payments arrive."""
        cached = self.__dict__.get("_txids")
        if cached is None or len(cached) != len(self.pay_index):
            cached = self.__dict__["_txids"] = self.pay_index.keys()
        return cached

    def cause_text(self: Engine, cause: int) -> str:
        """Name the input behind ledger cause number `cause`."""
        tag, idx = cause & 7, cause >> 3
        if tag == CAUSE_PAYMENT:
            return "payment " + self.transaction_ids()[idx]
        if tag == CAUSE_REFUND:
            return "refund " + self.refund_ids[idx]
        if tag == CAUSE_EVENT:
            return "event " + self.event_ids[idx]
        return self.ledger.note_text(idx)

    def point_totals(self: Engine) -> dict[str, int]:
        """The points totals of `stats()` alone (issued, outstanding, available, pending,
        shadow): four sums over the account columns, cheap enough to sample often."""
        s = self.acc.balance_totals()
        a, p = s["avail"], s["pend"]
        return {"points_issued": self.scalars[1], "points_outstanding": a + p,
                "points_available": a, "points_pending": p,
                "shadow_points": s["shad"] + s["shad_pend"]}

    def stats(self: Engine) -> dict[str, Any]:
        """Totals: payments, refunds, accounts, members, shadow members, points issued
        and outstanding, members per tier of each program, ledger size, and counters of
        notable results."""
        acc = self.acc
        n = len(acc)
        alive = acc.view("root") == np.arange(n)
        member = acc.view("member").astype(bool)
        s = acc.balance_totals()
        tier = acc.view("tier")
        prog = acc.view("prog")
        tiers = {}
        for pi, c in enumerate(self.rules):
            mask = alive & member & (prog == pi)
            counts = np.bincount(tier[mask], minlength=len(c.program.tiers))
            tiers[c.program.id] = {t.name: int(counts[k]) for k, t in enumerate(c.program.tiers)}
        del tier, prog
        issued = self.scalars[1]  # kept as a running total; the invariants check it
        out = {
            "programs": len(self.programs),
            "payments": len(self.pay_index),
            "refunds": len(self.refund_ids),
            "refunds_held": self.held_count,
            "accounts": int(alive.sum()),
            "members": int((alive & member).sum()),
            "shadow_members": int((alive & ~member).sum()),
            "points_issued": issued,
            "points_outstanding": s["avail"] + s["pend"],
            "points_available": s["avail"],
            "points_pending": s["pend"],
            "shadow_points": s["shad"] + s["shad_pend"],
            "reversal_shortfall": self.shortfall,
            "ledger_entries": len(self.ledger),
            # event, refund and spend ids inside the idempotency window, and those dropped
            "idempotency_keys": len(self.idem),
            "idempotency_keys_forgotten": self.idem.forgotten,
            "tiers": tiers,  # program -> tier name -> members
            "counts": dict(sorted(self.counts.items())),
        }
        del alive, member
        return out
