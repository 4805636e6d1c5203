"""ShardedEngine.pay_block: payments as blocks end to end (router split by compiled record
cuts, workers on Engine.pay_block) give Engine's answers, and journal what they applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import Engine, ShardedEngine, block_of, from_payments
from core.sharded_feed import START_S, mixed_feed
from core.types import Payment
from tests.helpers import APP, STORE, oid, program

PROGRAM = program()
TOTALS = ("payments", "accounts", "points_issued", "points_outstanding", "points_pending",
          "shadow_points", "ledger_entries")


def _pays(first: int, n: int, members: int = 4000) -> list[Payment]:
    return [Payment(f"42{i:030d}", APP, STORE, oid(i % members), 1000 + i % 900,
                    START_S + i) for i in range(first, first + n)]


def _answers(out) -> list[tuple[str, int]]:
    if isinstance(out, list):
        return [(o.code.value, o.points) for o in out]
    return [(out.code(i).value, int(out.points[i])) for i in range(len(out))]


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_mixed_feed_through_pay_block_answers_as_engine(shards: int) -> None:
    """The mixed feed (refunds parked before their payments; people whose two openids
    hash to different shards, their accounts moved on binding) with every payment batch as
    a block: the same answers and totals as one Engine."""
    steps, _ = mixed_feed(PROGRAM, seed=11, members=1500, events=6000, batch=1000, people=120)
    eng = Engine([PROGRAM])
    with ShardedEngine([PROGRAM], shards) as sharded:
        for s in steps:
            if s.cols is not None:
                block = block_of(s.cols)
                assert _answers(sharded.pay_block(block)) == _answers(eng.pay_block(block))
            else:
                got = sharded.submit_many(s.kind, s.datas)
                want = [eng.submit(s.kind, d) for d in s.datas]
                assert [(o.code, o.points) for o in got] == [(o.code, o.points) for o in want]
        have, want_stats = sharded.stats(), eng.stats()
        assert {k: have[k] for k in TOTALS} == {k: want_stats[k] for k in TOTALS}
        assert sharded.check_invariants() == []


def test_large_blocks_with_duplicates_journal_and_recover(tmp_path: Path) -> None:
    """Batches of more rows than a PAY message's chunk and a journal record, half of the
    second already applied: answers as Engine's; reopened, the shards hold the same."""
    first, second = block_of(from_payments(_pays(0, 20_000))), \
        block_of(from_payments(_pays(10_000, 20_000)))
    eng = Engine([PROGRAM])
    with ShardedEngine([PROGRAM], 2, journal_dir=tmp_path) as sharded:
        for block in (first, second):
            out = sharded.pay_block(block)
            assert _answers(out) == _answers(eng.pay_block(block))
        assert np.count_nonzero(out.codes == out.codes[0]) < len(out)  # duplicates, applied
        before = sharded.stats()
    with ShardedEngine([PROGRAM], 2, journal_dir=tmp_path) as again:
        after = again.stats()
        assert {k: after[k] for k in TOTALS} == {k: before[k] for k in TOTALS}
        assert after["payments"] == eng.stats()["payments"] == 30_000
        assert again.check_invariants() == []


def test_pay_columns_and_pay_block_agree() -> None:
    """The same payments as columns and as a block get the same answers on fresh engines."""
    cols = from_payments(_pays(0, 9000, members=500))
    with ShardedEngine([PROGRAM], 2) as a, ShardedEngine([PROGRAM], 2) as b:
        assert _answers(a.pay_columns(cols)) == _answers(b.pay_block(block_of(cols)))
        assert a.stats() == b.stats()
