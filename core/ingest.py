"""Feed a JSON-lines file of inputs through a fresh engine and summarise what happened.

Each line is `{"kind": "<kind>", "data": {...}}` (kinds as `Engine.submit`). A bad
line is reported with its number and reason, and ingestion goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core import limits
from core.engine import Engine
from core.invariants import check_invariants
from core.types import Code


@dataclass
class IngestReport:
    """Counts of one ingestion, plus the engine it built."""

    engine: Engine
    lines: int = 0
    results: Counter[str] = field(default_factory=Counter)
    malformed: int = 0  # lines that are not a JSON input object at all
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # malformed or rejected

    def summary(self) -> dict[str, Any]:
        """The summary as plain data (what `--json` prints)."""
        s = self.engine.stats()
        rejections = {k: v for k, v in sorted(self.results.items()) if not Code(k).ok}
        bad = check_invariants(self.engine)
        return {
            "lines": self.lines,
            "applied": self.results.get(Code.APPLIED.value, 0),
            "duplicates": self.results.get(Code.DUPLICATE.value, 0),
            "held": self.results.get(Code.HELD.value, 0),
            "ignored": self.results.get(Code.IGNORED.value, 0),
            "rejections": rejections,
            "malformed_lines": self.malformed,
            "problems": [{"line": n, "reason": r} for n, r in self.bad_lines],
            "members": s["members"],
            "shadow_members": s["shadow_members"],
            "points_outstanding": s["points_outstanding"],
            "shadow_points": s["shadow_points"],
            "points_issued": s["points_issued"],
            "payments": s["payments"],
            "refunds": s["refunds"],
            "refunds_held": s["refunds_held"],
            "invariants_ok": not bad,
            "invariant_violations": bad,
        }


def ingest_lines(engine: Engine, lines: Iterable[bytes],
                 on_line: Callable[[int], None] | None = None) -> IngestReport:
    """Apply each JSON line of `lines` to `engine`; returns the report (never raises on data)."""
    rep = IngestReport(engine)
    for n, raw in enumerate(lines, start=1):
        rep.lines = n
        if on_line is not None:
            on_line(n)
        line = raw.strip()
        if not line:
            continue
        if len(line) > limits.LINE_BYTES_MAX:
            rep.malformed += 1
            rep.bad_lines.append((n, f"line longer than {limits.LINE_BYTES_MAX} bytes"))
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            rep.malformed += 1
            rep.bad_lines.append((n, f"not JSON: {e}"))
            continue
        if not isinstance(obj, dict) or "kind" not in obj or "data" not in obj:
            rep.malformed += 1
            rep.bad_lines.append((n, 'expected an object {"kind": ..., "data": {...}}'))
            continue
        out = engine.submit(obj["kind"], obj["data"])
        rep.results[out.code.value] += 1
        if not out.ok:
            rep.bad_lines.append((n, f"{out.code.value}: {out.message}"))
    return rep


def ingest_file(engine: Engine, path: str | Path,
                on_line: Callable[[int], None] | None = None) -> IngestReport:
    """Ingest the JSON-lines file at `path`; raises OSError when it cannot be read."""
    with open(path, "rb") as f:
        return ingest_lines(engine, f, on_line)
