"""Many inputs a request: the JSON batch and the columnar payments body.

Payments go through the engine's batch path (`Engine.pay_block` for a columnar body,
whose ids are never made into str; `Engine.pay_columns` for the JSON batch's runs)
and into the journal as compact payment records; every other kind of input through
`Engine.submit`, one by one, in the order given. All give the per-input result each
input would have had alone: the batch path runs the same code per row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from core import Code, Outcome, Payment, PaymentColumns, from_payments
from core import limits as core_limits
from core.feed import parse
from core.payment_block import PaymentBlock, decode_block, split_record
from core.payment_columns import count_of
from loadtests import errors, limits
from loadtests.errors import Rejection
from loadtests.metrics import Metrics
from loadtests.types import EngineLike, Journal

BATCH_REJECTIONS_LISTED_MAX = 100
_APPLIED = Code.APPLIED
_code_of = itemgetter(0)  # Outcome.code
_DUPLICATE, _HELD, _IGNORED = Code.DUPLICATE, Code.HELD, Code.IGNORED  # acknowledged, too


class Tally:
    """Results of one batch: a count by code and the first rejections (index, code, message)."""

    __slots__ = ("counts", "rejected")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.rejected: list[dict[str, Any]] = []

    def reject(self, index: int, code: str, message: str) -> None:
        """List rejection `code` of input `index` (the first BATCH_REJECTIONS_LISTED_MAX)."""
        if len(self.rejected) < BATCH_REJECTIONS_LISTED_MAX:
            self.rejected.append({"index": index, "code": str(code), "message": message})

    def answer(self) -> bytes:
        """The JSON answer: SUCCESS with the results by code and the listed rejections."""
        return orjson.dumps({"code": "SUCCESS",
                             "results": {str(c): n for c, n in self.counts.items()},
                             "rejected": self.rejected})


def take(cols: PaymentColumns, rows: Sequence[int]) -> PaymentColumns:
    """The payments `rows` of `cols`, in that order, as new columns."""
    idx = np.asarray(rows, dtype=np.intp)

    def pick(xs: list) -> list:
        return [xs[i] for i in rows]

    return PaymentColumns(pick(cols.transaction_id), pick(cols.appid), pick(cols.mchid),
                          pick(cols.openid), cols.total_fen[idx], cols.time_s[idx],
                          cols.payer_total_fen[idx], pick(cols.currency),
                          pick(cols.trade_type), pick(cols.out_trade_no),
                          pick(cols.device_id), pick(cols.coupon_ids))


def pay_columns(engine: Any, journal: Journal | None, cols: PaymentColumns, tally: Tally,
                metrics: Metrics, first_index: int = 0,
                indices: Sequence[int] | None = None) -> None:
    """Apply payments `cols` in order, journal those applied, and count the results.

    Rejections are listed with their index in the request: `indices[i]` when given,
    else `first_index + i`.
    """
    rows = count_outcomes(engine.pay_columns(cols), tally, metrics, first_index, indices)
    if journal is not None and rows != []:
        journal.append_payments(cols if rows is None else take(cols, rows))


def pay_record(engine: Any, journal: Journal | None, body: bytes, block: PaymentBlock,
               tally: Tally, metrics: Metrics) -> None:
    """Apply the payments of columnar body `body` (decoded: `block`) and count the results;
    the journal takes the body as it came when any row was applied (the rows refused or
    already applied are refused or found again on replay): one compact record, or the
    body's rows split into records of JOURNAL_PAYMENTS_PER_RECORD_MAX, never decoded."""
    rows = count_outcomes(engine_pay(engine, block), tally, metrics)
    if journal is None or rows == []:
        return
    n, step = len(block), core_limits.JOURNAL_PAYMENTS_PER_RECORD_MAX
    if n <= step:
        journal.append_payments_record(body, n)
        return
    labels = np.arange(n, dtype=np.int64) // step
    for k, rec in enumerate(split_record(body, labels, -(-n // step))):
        journal.append_payments_record(rec, min(step, n - k * step))


def engine_pay(engine: Any, block: PaymentBlock) -> list[Outcome]:
    """Apply payments `block` with the engine's batch path: the service's one call into it."""
    return engine.pay_block(block)


def count_outcomes(outcomes: list[Outcome], tally: Tally, metrics: Metrics,
                   first_index: int = 0,
                   indices: Sequence[int] | None = None) -> list[int] | None:
    """Count `outcomes` in `tally` and `metrics`, list rejections (see pay_columns), and
    return the rows applied (None: every row)."""
    codes = list(map(_code_of, outcomes))
    # list.count compares by identity first, in C; a Code hashes in Python, so the
    # Counter is only built when something was not applied.
    n_applied = codes.count(_APPLIED)
    if n_applied == len(outcomes):
        tally.counts[_APPLIED] += n_applied
        metrics.applied["payment"] += n_applied
        return None
    counts = Counter(map(str, codes))  # exact strs hash in C
    tally.counts.update(counts)
    for code, n in counts.items():
        metrics.event("payment", code, n)
    rows = []
    for i, code in enumerate(codes):
        if code is _APPLIED:
            rows.append(i)
        elif code is not _DUPLICATE and code is not _HELD and code is not _IGNORED:
            o = outcomes[i]
            tally.reject(first_index + i if indices is None else indices[i], o.code,
                         o.message)
    return rows


def apply_events(engine: EngineLike, journal: Journal | None, events: list[Any],
                 metrics: Metrics) -> Tally:
    """Apply a JSON batch's `events` ({kind, data} each) in order; runs of payments go
    through the batch path. Returns the tally; the caller flushes the journal."""
    tally = Tally()
    run: list[Payment] = []
    run_at: list[int] = []

    def flush_run() -> None:
        if run:
            pay_columns(engine, journal, from_payments(run), tally, metrics, indices=run_at)
            run.clear()
            run_at.clear()

    submit = engine.submit
    for i, ev in enumerate(events):
        if type(ev) is not dict or type(kind := ev.get("kind")) is not str:
            tally.counts["bad_type"] += 1
            tally.reject(i, "bad_type", "event must be {kind, data}")
            continue
        data = ev.get("data")
        if kind == "payment":
            parsed = parse(kind, data)
            if type(parsed) is Outcome:  # malformed: refused without touching the engine
                tally.counts[parsed.code] += 1
                metrics.event(kind, parsed.code)
                tally.reject(i, parsed.code, parsed.message)
            else:
                run.append(parsed)
                run_at.append(i)
            continue
        flush_run()
        out = submit(kind, data)
        tally.counts[out.code] += 1
        metrics.event(kind, out.code)
        if out.ok:
            if journal is not None and out.code != Code.DUPLICATE:
                journal.append(kind, data)
        else:
            tally.reject(i, out.code, out.message)
    flush_run()
    return tally


def decode_columns(body: bytes, payments_max: int = limits.COLUMNS_PAYMENTS_MAX
                   ) -> PaymentBlock:
    """The payments of a columnar body (core.payment_columns' compact form) as a block over
    the body's bytes; raises Rejection 400 when it does not parse or holds more than
    `payments_max` payments."""
    if len(body) < 4:
        raise errors.malformed("columnar body shorter than its head")
    n = count_of(body)
    if not 0 < n <= payments_max:
        raise errors.bad_value(f"1..{payments_max} payments a request, got {n}")
    try:
        return decode_block(body)
    except ValueError as e:
        raise errors.malformed(f"columnar body: {str(e)[:120]}") from None


def check_owner(block: PaymentBlock, shards: int, shard: int) -> None:
    """Raise Rejection 421 unless `shard` of `shards` owns (by `core.shard_of`) every
    openid of `block`: routed in one compiled pass over the ids in the body's bytes."""
    wrong = np.flatnonzero(block.shards(shards) != shard)
    if len(wrong):
        i = int(wrong[0])
        openid = bytes(block.openid_data[block.openid_starts[i]:block.openid_ends[i]])
        raise Rejection(421, "wrong_shard", f"this shard does not own openid "
                        f"{openid.decode('utf-8', 'replace')[:32]!r} (payment {i})")
