"""The service's side of durability: opens each shard's journal from core's journal module.

The journal itself lives in `core/journal*.py`; this adapter only names the
per-shard directory and turns a missing or failing journal into a start-up error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from loadtests.settings import StartupError
from loadtests.types import Journal

log = logging.getLogger("paymember.service")


def shard_dir(root: Path, shard: int, shards: int) -> Path:
    """Return the journal directory of `shard` out of `shards` under `root`."""
    return root / f"shard-{shard:02d}-of-{shards:02d}"


def open_journal(root: Path, shard: int, shards: int, programs: tuple[str, ...],
                 policy: str) -> tuple[Any, Journal]:
    """Recover `shard`'s engine from its journal directory under `root` (newest snapshot +
    journal tail) and open the journal for appending; raises StartupError if unusable."""
    from core import ConfigError, JournalCorrupt, load_program, open_engine

    path = shard_dir(root, shard, shards)
    try:
        engine, journal, report = open_engine(path, [load_program(p) for p in programs], policy)
    except (OSError, ValueError, ConfigError, JournalCorrupt) as e:
        raise StartupError(f"--journal {path}: {e}") from None
    if report.torn_bytes:
        log.warning("journal %s: dropped a torn final record (%d bytes)", path,
                    report.torn_bytes)
    return engine, journal
