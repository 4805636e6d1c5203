"""A journaled engine as a service uses it: recover at start, append what was accepted,
commit (group commit) before answering, close on shutdown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from core.engine import Engine
from core.journal import FsyncPolicy, Journal
from core.payment_columns import PaymentColumns
from core.program import Program
from core.recovery import RecoveryReport, recover_engine


class EngineJournal:
    """Records accepted inputs of one engine; `flush()` makes them durable per the policy.

    Acknowledge an input only after the `flush()` that follows its `append()`.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def append(self, kind: str, data: Any) -> int:
        """Append one accepted input (`kind`, plain data as given to `Engine.submit`)."""
        return self.journal.append(kind, orjson.dumps(data))

    def append_payments(self, cols: PaymentColumns) -> int:
        """Append accepted payments `cols` (in the order applied) as compact payment
        records; returns the first one's sequence number."""
        return self.journal.append_payments(cols)

    def append_payments_record(self, payload: bytes | memoryview, count: int) -> int:
        """Append `count` payments already in the compact record form, as they arrived
        (rows the engine refused or had already are refused or found again on replay,
        changing nothing); returns the first one's sequence number."""
        return self.journal.append_payments_record(payload, count)

    def flush(self) -> int:
        """Write what was appended (one group commit; an fsync under `always`); returns
        the sequence number below which inputs are durable."""
        return self.journal.commit()

    def poll(self) -> int:
        """Drive the `<N>ms` fsync policy; call every few ms."""
        return self.journal.poll()

    def close(self) -> None:
        """Flush, fsync and close."""
        self.journal.close()


def open_engine(directory: str | Path, programs: Sequence[Program],
                policy: FsyncPolicy | str = "always",
                ) -> tuple[Engine, EngineJournal, RecoveryReport]:
    """Recover the engine kept in `directory` (newest snapshot + journal tail; a fresh one
    if empty) and open its journal for appending.

    Raises JournalCorrupt (naming the byte offset) when the journal is damaged in the
    middle, ValueError for a bad policy or a snapshot that does not load, OSError.
    """
    Path(directory).mkdir(parents=True, exist_ok=True)
    engine, journal, report = recover_engine(directory, programs, policy)
    return engine, EngineJournal(journal), report  # type: ignore[return-value]
