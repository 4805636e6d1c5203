"""`paymember ingest`: the example feed, its golden ledger, bad lines and bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core import Bucket, Engine, Entry, load_program
from core.ingest import ingest_file
from tests.helpers import PROGRAM_FILE, ROOT

FEED = ROOT / "scenarios/example_feed.jsonl"
GOLDEN = ROOT / "tests/golden/example_feed.json"


def paymember(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the paymember command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "paymember", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


def ledger_summary(eng: Engine) -> list[list[object]]:
    """Every ledger entry as [kind, bucket, account, points, time_s, cause]."""
    out = []
    for seq in range(len(eng.ledger)):
        kind, bucket, acct, pts, t, cause = eng.ledger.row(seq)
        out.append([Entry(kind).name, Bucket(bucket).name, acct, pts, t, eng.cause_text(cause)])
    return out


def test_golden_ledger_of_the_example_feed() -> None:
    """The example feed's summary and ledger match the committed golden file
    (regenerate with UPDATE_GOLDEN=1 after a deliberate change)."""
    eng = Engine([load_program(PROGRAM_FILE)])
    rep = ingest_file(eng, FEED)
    got = {"summary": rep.summary(), "ledger": ledger_summary(eng)}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert got == json.loads(GOLDEN.read_text())
    assert got["summary"]["invariants_ok"]


def test_ingest_prints_a_summary_and_names_bad_lines() -> None:
    """The human summary counts results; each bad line is named with its number."""
    r = paymember("ingest", str(FEED))
    assert r.returncode == 0, r.stderr
    assert "applied 14, duplicates 2, held 1, ignored 1, malformed lines 1" in r.stdout
    assert "invariants ok" in r.stdout
    assert f"{FEED}:13: not JSON" in r.stderr
    assert f"{FEED}:24: bad_type: amount.total must be int" in r.stderr


def test_ingest_json_is_one_object() -> None:
    """--json prints one JSON object with the counts and results."""
    r = paymember("ingest", str(FEED), "--json")
    s = json.loads(r.stdout)
    assert s["members"] == 1 and s["shadow_members"] == 3 and s["malformed_lines"] == 1
    assert s["rejections"]["refund_exceeds_payment"] == 1


def test_ingest_bad_files(tmp_path: Path) -> None:
    """A missing feed or a bad program is a clear message and exit 2, not a traceback."""
    r = paymember("ingest", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "p.toml"
    bad.write_text("[program]\nid = 3\n")
    r = paymember("ingest", str(FEED), "--program", str(bad))
    assert r.returncode == 2 and "p.toml:2: program.id: expected str" in r.stderr


def test_ingest_survives_garbage(tmp_path: Path) -> None:
    """Binary junk, huge lines and wrong shapes are reported and ingestion goes on."""
    feed = tmp_path / "f.jsonl"
    feed.write_bytes(b"\xff\xfe junk\n" + b"[1,2]\n" + b'{"kind":"payment"}\n'
                     + b"x" * 70_000 + b"\n" + FEED.read_bytes().splitlines()[0] + b"\n")
    r = paymember("ingest", str(feed), "--json")
    s = json.loads(r.stdout)
    assert s["malformed_lines"] == 4 and s["applied"] == 1


def test_bench_engine_quick_run() -> None:
    """`bench engine --json` on a small population prints the figures it promises."""
    r = paymember("bench", "engine", "--members", "2000", "--events", "5000", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    for key in ("per_event_payments_per_s", "reference_loop_per_s", "bytes_per_member",
                "members", "dict_path_payments_per_s"):
        assert s[key] > 0
    assert abs(sum(s["member_bytes_by_part"].values()) - s["bytes_per_member"]) < 1
    assert abs(sum(s["payment_bytes_by_part"].values()) - s["bytes_per_payment"]) < 1
    assert {"pays", "pay_index", "ledger"} <= set(s["payment_bytes_by_part"])
    assert 0 <= s["batch_kernel_share"] <= 1
    assert s["invariants_ok"]
