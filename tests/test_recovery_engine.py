"""Recovery of the real Engine: snapshot() + journal tail gives the live engine's state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from core import Engine, Payment, check_invariants, load_program
from core.journal import Journal
from core.recovery import checkpoint, recover_engine
from core.workload import payment_stream

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = load_program(ROOT / "scenarios/programs/convenience.toml")
START_S = 1_780_000_000


def live_run(directory: Path, payments: int, checkpoints: tuple[int, ...]) -> Engine:
    """Drive an engine with a mixed stream, journaling each accepted input; returns it."""
    wl = payment_stream(PROGRAM, np.random.default_rng(7), 400, payments, START_S)
    eng = Engine([PROGRAM])
    j = Journal.open(directory, "always", segment_bytes_max=64 * 1024)

    def submit(kind: str, data: dict) -> None:
        if eng.submit(kind, data).ok:
            j.append(kind, orjson.dumps(data))

    for k in range(wl.member_count):
        oid = wl.openids[k]
        submit("binding", {"appid": wl.appid, "openid": oid, "unionid": "u" + oid[1:],
                           "time_s": START_S - 86_400})
        submit("enrollment", {"program": PROGRAM.id, "unionid": "u" + oid[1:],
                              "time_s": START_S - 86_400})
    submit("advance", {"time_s": START_S - 86_400})
    j.commit()
    paid: list[Payment] = []
    for i, p in enumerate(wl.payments):
        if eng.pay(p).ok:
            j.append_payment(p)
            paid.append(p)
        if i % 9 == 0 and paid:
            q = paid[i % len(paid)]
            submit("refund", {"mchid": q.mchid, "transaction_id": q.transaction_id,
                              "refund_id": f"r{i}", "time_s": q.time_s + 60,
                              "amount": {"total": q.total_fen, "refund": q.total_fen // 3}})
        if i % 50 == 49:
            j.commit()
        if i in checkpoints:
            checkpoint(j, eng.snapshot())
    submit("advance", {"time_s": START_S + 2 * 86_400})
    j.close()
    return eng


def same_state(a: Engine, b: Engine) -> None:
    """Assert engines `a` and `b` hold the same counters, balances and histories."""
    assert a.stats() == b.stats()
    wl = payment_stream(PROGRAM, np.random.default_rng(7), 400, 1, START_S)
    known = 0
    for oid in wl.openids:
        bal = a.balance(PROGRAM.id, appid=wl.appid, openid=oid)
        known += bal is not None
        assert bal == b.balance(PROGRAM.id, appid=wl.appid, openid=oid)
        assert a.history(PROGRAM.id, appid=wl.appid, openid=oid) == \
            b.history(PROGRAM.id, appid=wl.appid, openid=oid)
    assert known > 300


def test_recover_engine_from_journal_only(tmp_path: Path) -> None:
    """With no snapshot, replaying the journal rebuilds exactly the live engine."""
    live = live_run(tmp_path, 3000, ())
    eng, journal, report = recover_engine(tmp_path, [PROGRAM])
    journal.close()
    assert report.snapshot_seq is None and report.inputs == report.end_seq
    same_state(live, eng)  # type: ignore[arg-type]
    assert check_invariants(eng) == []  # type: ignore[arg-type]


def test_recover_engine_from_snapshot_and_tail(tmp_path: Path) -> None:
    """The newest engine snapshot plus the journal tail rebuilds exactly the live engine."""
    live = live_run(tmp_path, 3000, (999, 2001))
    eng, journal, report = recover_engine(tmp_path, [PROGRAM])
    assert report.snapshot_seq is not None and 0 < report.inputs < report.end_seq
    same_state(live, eng)  # type: ignore[arg-type]
    assert check_invariants(eng) == []  # type: ignore[arg-type]
    journal.close()


def test_restart_bench_restores_the_same_state() -> None:
    from core import restart_bench

    r = restart_bench.measure(PROGRAM, 2_500, START_S, tail=700, seed=3, repeat=1_500)
    assert r["restart_same_state"] and r["invariants_ok"]
    assert r["restart_tail_events"] == 700  # the tail after the checkpoint, nothing more
    # the known shoppers' payments all applied, none a new account (invariants after them)
    assert r["repeat_applied"] == r["repeat_payments"] == 1_500
    assert r["repeat_new_accounts"] == 0
    assert r["repeat_batch_payments_per_s"] > 0 and 0 <= r["repeat_kernel_share"] <= 1
    assert "payments/s over the 2,500 members (1,500 payments by shoppers it knows, 1,500 " \
        "applied" in restart_bench.format_report(r)
    assert r["snapshot_bytes"] > 2_500 * 32 and r["journal_bytes"] > 0
    assert "2,500 members" in restart_bench.format_report(r)
    parts = r["member_bytes_by_part"]
    assert parts["by_app"] == max(parts.values()) and parts["root"] > 0  # capacity included
    assert abs(sum(parts.values()) - r["bytes_per_member"]) < 0.01 * len(parts)
    assert "bytes/member (accounts, id maps), by part: by_app" in restart_bench.format_report(r)


def test_member_bytes_by_part_adds_up_to_the_engine_bench_figure() -> None:
    from core.bench import _engine_bytes, bytes_by_part, member_bytes_by_part
    from core.restart_bench import population

    eng = Engine([PROGRAM])
    eng.pay_columns(population(PROGRAM, np.random.default_rng(2), 0, 3_000, START_S, 3_600))
    parts = member_bytes_by_part(eng)
    assert sum(parts.values()) == _engine_bytes(eng)[0]
    assert set(parts) == {*type(eng.acc).__slots__, "(object)"}
    same_parts, inputs = bytes_by_part(eng)
    assert same_parts == parts
    assert sum(inputs.values()) == _engine_bytes(eng)[1]
    assert {"pays", "pay_index", "ledger"} <= set(inputs) and "acc" not in inputs


def test_restart_bench_refuses_bad_sizes() -> None:
    import pytest

    from core import restart_bench

    with pytest.raises(ValueError, match="members"):
        restart_bench.measure(PROGRAM, 0, START_S)
    with pytest.raises(ValueError, match="repeat"):
        restart_bench.measure(PROGRAM, 10, START_S, repeat=-1)


def test_restart_bench_repeat_shoppers_are_known_and_the_build_unchanged() -> None:
    """The repeat payments are by shoppers of the build, drawn apart from its random
    stream: the build's snapshot is the same with them or without."""
    from core import restart_bench

    a = restart_bench.measure(PROGRAM, 1_200, START_S, tail=10, seed=4, repeat=0)
    b = restart_bench.measure(PROGRAM, 1_200, START_S, tail=10, seed=4, repeat=3_000)
    assert a["snapshot_bytes"] == b["snapshot_bytes"] and "repeat_applied" not in a
    assert "by shoppers it knows" not in restart_bench.format_report(a)
    assert b["repeat_applied"] == 3_000 and b["invariants_ok"]


def test_merged_payments_records_replay_to_the_same_engine(tmp_path: Path) -> None:
    """Payments records applied one by one, or merged into runs of at most 30 or of the
    recovery limit, rebuild the same engine: merging is exact."""
    from core import limits
    from core.journal_format import Record
    from core.recovery import apply_to_engine, replay

    live = live_run(tmp_path, 1500, ())
    calls: dict[int, int] = {}
    for merge in (0, 30, limits.JOURNAL_REPLAY_RUN_PAYMENTS_MAX):
        eng = Engine([PROGRAM])
        seen = []

        def apply(rec: Record, eng: Engine = eng, seen: list[int] = seen) -> None:
            seen.append(rec.count if rec.more else 0)
            apply_to_engine(eng, rec)

        report = replay(tmp_path, 0, apply, merge_payments=merge)
        calls[merge] = len(seen)
        assert report.inputs == report.end_seq
        assert all(c <= merge for c in seen) and (merge == 0) == (max(seen) == 0)
        same_state(live, eng)
    assert calls[0] > calls[30] >= calls[limits.JOURNAL_REPLAY_RUN_PAYMENTS_MAX]


def test_kernel_time_is_the_calling_threads_and_its_share_at_most_one() -> None:
    """The benches' kernel share counts the timing thread's own kernel time, not another
    thread's, and is a share: at most 1 however short the span."""
    import threading

    from core.bench import kernel_seconds, kernel_share

    assert kernel_share(0.5, 2.0) == 0.25
    assert kernel_share(0.0021, 0.002) == 1.0  # the reads just outside a tiny span
    assert kernel_share(0.1, 0.0) == 0.0
    spent: list[float] = []

    def read_zeros() -> None:  # kernel time: copying zeros out of /dev/zero
        k0 = kernel_seconds()
        with open("/dev/zero", "rb", buffering=0) as f:
            while kernel_seconds() - k0 < 0.2:
                f.read(1 << 20)
        spent.append(kernel_seconds() - k0)

    k0 = kernel_seconds()
    worker = threading.Thread(target=read_zeros)
    worker.start()
    worker.join()
    assert spent[0] >= 0.2 and kernel_seconds() - k0 < spent[0] / 2
