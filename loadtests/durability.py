"""The service's side of durability: opens each shard's journal from core's journal module.

The journal itself lives in `core/journal*.py`; this adapter only names the
per-shard directory and turns a missing or failing journal into a start-up error.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from loadtests.settings import StartupError
from loadtests.types import Journal


def shard_dir(root: Path, shard: int, shards: int) -> Path:
    """Return the journal directory of `shard` out of `shards` under `root`."""
    return root / f"shard-{shard:02d}-of-{shards:02d}"


def open_journal(root: Path, shard: int, shards: int, engine: Any) -> Journal:
    """Open (replaying into `engine`) the journal of `shard`; raises StartupError if unavailable."""
    try:
        core = importlib.import_module("core")
        opener = core.open_journal
    except (ImportError, AttributeError):
        raise StartupError("--journal: this build's core has no open_journal()") from None
    path = shard_dir(root, shard, shards)
    try:
        path.mkdir(parents=True, exist_ok=True)
        return opener(path, engine)
    except (OSError, ValueError) as e:
        raise StartupError(f"--journal {path}: {e}") from None
