"""Refunds whose payment no shard has seen yet, held by the router (not by a shard).

A refund names no shopper, so the router cannot know which shard its payment will land
on; holding it on a guessed shard would strand it there. The router holds it instead,
journaled in its own directory, and hands it to the payment's shard right after the
payment is applied. A handed-over refund is not erased from this journal: after a
crash, recovery brings it back and the router hands it over again, which the shard
answers DUPLICATE (refund_id idempotency), so nothing is lost or applied twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from core import limits
from core.journal import Journal
from core.journal_format import Record
from core.recovery import checkpoint, recover
from core.types import Code, Outcome, Refund

_HELD = Outcome(Code.HELD, 0, "payment not seen yet; applied when it arrives")
_DUP = Outcome(Code.DUPLICATE, 0, "already applied")
# Snapshot the parking journal (dropping handed-over refunds) after this many hand-overs.
HANDOVERS_PER_CHECKPOINT = 4096


class RefundParking:
    """Parked refunds by transaction_id, at most limits.HELD_REFUNDS_MAX of them."""

    def __init__(self, directory: str | Path | None, fsync: str = "always") -> None:
        """Start empty, or recover the parked refunds journaled in `directory`.

        Raises JournalCorrupt, ValueError (bad policy) or OSError as the journal does.
        """
        self.by_txid: dict[str, list[Any]] = {}
        self.ids: dict[str, tuple[str, int]] = {}  # refund_id -> (transaction_id, refund_fen)
        self.handed_over = 0
        self.journal: Journal | None = None
        if directory is not None:
            state, report = recover(directory, _load, _apply)
            self.journal = Journal.open(directory, fsync, start_seq=report.end_seq)
            for data in state:
                self._add(data)

    def __len__(self) -> int:
        """The number of parked refunds."""
        return len(self.ids)

    def _add(self, data: Any) -> None:
        amount = data["amount"]
        self.ids[data["refund_id"]] = (data["transaction_id"], amount["refund"])
        self.by_txid.setdefault(data["transaction_id"], []).append(data)

    def seen(self, r: Refund) -> Outcome | None:
        """DUPLICATE or REFUND_ID_CONFLICT when `r`'s refund_id is parked, else None."""
        was = self.ids.get(r.refund_id)
        if was is None:
            return None
        if was != (r.transaction_id, r.refund_fen):
            return Outcome(Code.REFUND_ID_CONFLICT, 0, f"refund_id {r.refund_id!r} was seen "
                                                        f"for {was[0]!r} amount {was[1]}")
        return _DUP

    def park(self, data: Any) -> Outcome:
        """Hold refund `data` (already validated) until its payment arrives; journaled,
        durable after the next `flush()`. LIMIT_EXCEEDED when full."""
        if len(self.ids) >= limits.HELD_REFUNDS_MAX:
            return Outcome(Code.LIMIT_EXCEEDED, 0, "too many refunds wait for their payments")
        self._add(data)
        if self.journal is not None:
            self.journal.append("refund", orjson.dumps(data))
        return _HELD

    def flush(self) -> None:
        """Make the parked refunds durable (before answering HELD)."""
        if self.journal is not None:
            self.journal.commit()

    def pop(self, txid: str) -> list[Any]:
        """Take out the refunds waiting for `txid` (handed over, or `restore`d if not)."""
        datas = self.by_txid.pop(txid, [])
        for d in datas:
            del self.ids[d["refund_id"]]
        return datas

    def restore(self, datas: list[Any]) -> None:
        """Put back refunds taken by `pop` whose payment was not applied after all."""
        for d in datas:
            self._add(d)

    def handed(self, n: int) -> None:
        """Count `n` refunds applied by their shard (their records are now dead weight)."""
        self.handed_over += n

    def tidy(self) -> None:
        """Snapshot if many refunds were handed over; call only with none taken out."""
        if self.handed_over >= HANDOVERS_PER_CHECKPOINT:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Snapshot what is parked now, so the journal can drop handed-over refunds; call
        only with none taken out by `pop` (they would be missing from the snapshot)."""
        if self.journal is not None:
            body = orjson.dumps([d for ds in self.by_txid.values() for d in ds])
            checkpoint(self.journal, body)
            self.handed_over = 0

    def close(self) -> None:
        """Snapshot, flush and close the journal."""
        if self.journal is not None:
            self.checkpoint()
            self.journal.close()
            self.journal = None


def _load(body: bytes | None) -> list[Any]:
    return [] if body is None else orjson.loads(body)


def _apply(state: list[Any], rec: Record) -> None:
    assert rec.kind == "refund", rec.kind
    state.append(orjson.loads(rec.payload))


__all__ = ["HANDOVERS_PER_CHECKPOINT", "RefundParking"]
