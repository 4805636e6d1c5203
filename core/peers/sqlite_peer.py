"""Peer (c): SQLite (stdlib), one transaction per payment.

The database is a file in WAL mode with synchronous=NORMAL (the usual production
setting: commits are ordered and atomic, fsync happens at checkpoints).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

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

SCHEMA = """
CREATE TABLE members (openid TEXT PRIMARY KEY, points INTEGER NOT NULL,
                      qualifying INTEGER NOT NULL, tier INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE payments (transaction_id TEXT PRIMARY KEY, openid TEXT NOT NULL,
                       points INTEGER NOT NULL) WITHOUT ROWID;
"""


class SqlitePeer:
    """Members and payments in two SQLite tables; the rules evaluated in Python."""

    name = "sqlite"

    def __init__(self, program: Program, path: str | Path | None = None) -> None:
        """A new database for `program` at `path` (default: a temporary file)."""
        self.rules: Rules = rules_of(program)
        self._tmp = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="paymember-sqlite-")
            path = Path(self._tmp.name) / "peer.db"
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def pay(self, p: Payment) -> int:
        """Apply payment `p` in one transaction; returns its points, DUPLICATE or REJECTED."""
        r = self.rules
        if p.mchid not in r.channel_pct or p.appid not in r.appids:
            return REJECTED
        basis = basis_fen(r, p.currency, p.total_fen, p.payer_total_fen)
        if basis == REJECTED:
            return REJECTED
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT qualifying, tier FROM members WHERE openid = ?",
                             (p.openid,)).fetchone()
            qualifying, tier = row if row else (0, 0)
            pts = points(r, basis, p.mchid, tier, p.time_s)
            if db.execute("INSERT OR IGNORE INTO payments VALUES (?, ?, ?)",
                          (p.transaction_id, p.openid, pts)).rowcount == 0:
                db.execute("ROLLBACK")
                return DUPLICATE
            qualifying += basis if r.spend_basis else pts
            db.execute("INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT (openid) DO UPDATE "
                       "SET points = points + excluded.points, qualifying = excluded.qualifying,"
                       " tier = excluded.tier",
                       (p.openid, pts, qualifying, tier_after(r, tier, qualifying)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return pts

    def run(self, payments: Sequence[Payment]) -> float:
        """Apply `payments` in order, a transaction each; returns payments per second."""
        return rate(self.pay, payments)

    def state(self) -> dict[str, tuple[int, int]]:
        """Each member's (points, tier)."""
        return {o: (pts, tier) for o, pts, tier in
                self.db.execute("SELECT openid, points, tier FROM members")}

    def close(self) -> None:
        """Close the database and delete a temporary one."""
        self.db.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


__all__ = ["SqlitePeer"]
