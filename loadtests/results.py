"""What each load-generating process measured, written to a file and merged by the runner.

Every Locust process (local, or each of `--processes` workers) writes
`DIR/parts/<pid>.json` when it quits; the runner merges them after Locust
exits, so no result depends on the last message from a worker reaching the master.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from loadtests.latency import LatencyRecorder
from loadtests.mix import Books

PARTS = "parts"


class ProcessResults:
    """Latency recorder and books of one process."""

    def __init__(self) -> None:
        self.recorder = LatencyRecorder()
        self.books = Books()
        self.start_s = 0.0  # when this process's test started (epoch seconds)

    def write(self, out_dir: str | Path) -> Path | None:
        """Write this process's results under `out_dir`/parts; return the file (None if empty)."""
        if self.recorder.corrected.get_total_count() == 0 and not self.books.requests:
            return None
        parts = Path(out_dir) / PARTS
        parts.mkdir(parents=True, exist_ok=True)
        path = parts / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"latency": self.recorder.to_dict(),
                                      "books": self.books.to_dict(), "start_s": self.start_s}))
        tmp.replace(path)
        return path


def merge_parts(out_dir: str | Path) -> tuple[LatencyRecorder, dict[str, Any], float, int]:
    """Merge every process's results under `out_dir`.

    Returns (recorder, books, earliest start in epoch seconds, number of processes).
    """
    recorder = LatencyRecorder()
    books: dict[str, Any] = {"payments_sent": 0, "payments_acked": 0, "refunds_sent": 0,
                             "refunds_acked": 0, "requests": {}, "errors": {}}
    files = sorted((Path(out_dir) / PARTS).glob("*.json"))
    starts = []
    for f in files:
        doc = orjson.loads(f.read_bytes())
        if doc.get("start_s"):
            starts.append(doc["start_s"])
        recorder.merge_dict(doc["latency"])
        for k, v in doc["books"].items():
            if isinstance(v, dict):
                for kk, n in v.items():
                    books[k][kk] = books[k].get(kk, 0) + n
            else:
                books[k] += v
    return recorder, books, min(starts, default=0.0), len(files)
