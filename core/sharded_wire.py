"""The messages between `ShardedEngine` and its shard workers, and batch outcomes.

A request is one op byte and a body; a reply is `O` and a body, or `E` and the text of
the error that stopped the worker. Payment batches travel in PaymentColumns' compact
binary form (one or more records of at most JOURNAL_PAYMENTS_PER_RECORD_MAX rows, cut
from the batch by `core.payment_block.split_record` and decoded by the worker into one
`PaymentBlock` over the message), followed by JSON naming the refunds to apply right
after given rows; their outcomes
come back as three arrays (code index, points, flags) and JSON for the messages of
rejected rows. Every other input and answer is JSON (orjson).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from core.payment_columns import PaymentColumns
from core.types import Code, Outcome

# Ops (request's first byte).
PAY, SUBMIT, LOCATE, HOLDERS, BALANCE, STATS, INVARIANTS, PID, QUIT = (
    b"P", b"S", b"L", b"H", b"B", b"T", b"I", b"D", b"Q")
# Moving an account between shards (core/migrate.py): export on the source, import on the
# target, confirm to the source; MOVES asks for the forwarding entries and the outbox.
EXPORT, IMPORT, CONFIRM, MOVES = b"X", b"M", b"C", b"V"
REPLY_OK, REPLY_ERROR = b"O", b"E"

CODES: tuple[Code, ...] = tuple(Code)
CODE_INDEX: dict[Code, int] = {c: i for i, c in enumerate(CODES)}
_OK_INDEX = np.array([c.ok for c in CODES], dtype=bool)
_U32 = struct.Struct("<I")
_OFFER, _FRIEND = 1, 2


@dataclass(slots=True)
class BatchOutcomes:
    """Per-row results of a payment batch: code index into `CODES`, points, flags, and the
    rows' messages (row -> text, for the rows that have one)."""

    codes: np.ndarray  # uint8 index into CODES
    points: np.ndarray  # int64
    flags: np.ndarray  # uint8: 1 offer_membership, 2 friend_invite
    messages: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        """The number of rows."""
        return len(self.codes)

    def code(self, i: int) -> Code:
        """The Code of row `i`."""
        return CODES[self.codes[i]]

    def outcome(self, i: int) -> Outcome:
        """Row `i` as the Outcome the per-event path would have returned."""
        f = int(self.flags[i])
        return Outcome(CODES[self.codes[i]], int(self.points[i]), self.messages.get(i, ""),
                       bool(f & _OFFER), bool(f & _FRIEND))

    def ok(self) -> np.ndarray:
        """Boolean mask of acknowledged rows (applied, duplicate, held, ignored)."""
        return _OK_INDEX[self.codes]

    def count(self, code: Code) -> int:
        """How many rows got `code`."""
        return int(np.count_nonzero(self.codes == CODE_INDEX[code]))


def outcomes_of(outs: list[Outcome]) -> BatchOutcomes:
    """The arrays of `outs` (one Outcome a row); messages of the rows that have one."""
    n = len(outs)
    if not n:
        return empty_outcomes(0)
    codes, points, messages, offers, friends = zip(*outs, strict=True)  # one C pass
    flags = np.array(offers, np.uint8) | (np.array(friends, np.uint8) << 1)
    return BatchOutcomes(np.fromiter(map(CODE_INDEX.__getitem__, codes), np.uint8, n),
                         np.array(points, np.int64), flags,
                         {i: m for i, m in enumerate(messages) if m})


def empty_outcomes(n: int) -> BatchOutcomes:
    """Arrays for `n` rows, to be filled by `scatter`."""
    return BatchOutcomes(np.zeros(n, np.uint8), np.zeros(n, np.int64), np.zeros(n, np.uint8))


def scatter(into: BatchOutcomes, rows: np.ndarray, part: BatchOutcomes) -> None:
    """Write `part` (the results of rows `rows` of a batch) into the batch's `into`."""
    into.codes[rows] = part.codes
    into.points[rows] = part.points
    into.flags[rows] = part.flags
    if part.messages:
        where = rows.tolist()
        into.messages.update({where[i]: m for i, m in part.messages.items()})


def take(cols: PaymentColumns, rows: np.ndarray) -> PaymentColumns:
    """The payments at `rows` (int array, in that order) as new columns."""
    n = len(rows)
    get = itemgetter(*rows.tolist()) if n > 1 else None

    def pick(col: list) -> list:
        if not n:
            return []
        # A column of one value (an app, a currency, no coupons) is copied without a gather.
        if col.count(col[0]) == len(col):
            return [col[0]] * n
        return list(get(col)) if get is not None else [col[int(rows[0])]]

    return PaymentColumns(
        pick(cols.transaction_id), pick(cols.appid), pick(cols.mchid), pick(cols.openid),
        cols.total_fen[rows], cols.time_s[rows], cols.payer_total_fen[rows],
        pick(cols.currency), pick(cols.trade_type), pick(cols.out_trade_no),
        pick(cols.device_id), pick(cols.coupon_ids))


# ------------------------------------------------------------------ payment batches
def pay_request(records: list[bytes], after: list[tuple[int, list[Any]]]) -> bytes:
    """The PAY message of payments `records` (compact records of at most
    JOURNAL_PAYMENTS_PER_RECORD_MAX rows each, applied one after another), with refund data
    to apply after rows of the whole: [(row, [data])]."""
    out = [PAY, _U32.pack(len(records))]
    for rec in records:
        out += (_U32.pack(len(rec)), rec)
    out.append(orjson.dumps(after))
    return b"".join(out)


def read_pay_request(body: memoryview) -> tuple[list[memoryview], list[tuple[int, list]]]:
    """The payments records (views of `body`) and the after-row refunds of a PAY message's
    body."""
    (k,) = _U32.unpack_from(body, 0)
    off = _U32.size
    records = []
    for _ in range(k):
        (size,) = _U32.unpack_from(body, off)
        off += _U32.size
        records.append(body[off:off + size])
        off += size
    after = [(row, datas) for row, datas in orjson.loads(body[off:])]
    return records, after


def pay_reply(res: BatchOutcomes, after: list[list[Outcome]]) -> bytes:
    """The reply to PAY: the rows' arrays, then JSON of messages and the after-refunds' outcomes."""
    tail = orjson.dumps([list(res.messages.items()),
                         [[submit_row(o) for o in outs] for outs in after]])
    return b"".join((REPLY_OK, _U32.pack(len(res)), res.codes.tobytes(),
                     res.points.astype("<i8").tobytes(), res.flags.tobytes(), tail))


def read_pay_reply(body: memoryview) -> tuple[BatchOutcomes, list[list[Outcome]]]:
    """Inverse of `pay_reply` (without its reply byte)."""
    (n,) = _U32.unpack_from(body, 0)
    off = _U32.size
    codes = np.frombuffer(body, np.uint8, n, off).copy()
    points = np.frombuffer(body, "<i8", n, off + n).astype(np.int64)
    flags = np.frombuffer(body, np.uint8, n, off + 9 * n).copy()
    messages, after = orjson.loads(body[off + 10 * n:])
    res = BatchOutcomes(codes, points, flags, {int(i): m for i, m in messages})
    return res, [[outcome_of(r) for r in outs] for outs in after]


# ------------------------------------------------------------------ other inputs
def submit_row(o: Outcome) -> list[Any]:
    """One Outcome as a JSON row."""
    return [CODE_INDEX[o.code], o.points, o.message, o.offer_membership, o.friend_invite]


def outcome_of(row: list[Any]) -> Outcome:
    """Inverse of `submit_row`."""
    return Outcome(CODES[row[0]], row[1], row[2], row[3], row[4])


__all__ = ["CODES", "BatchOutcomes", "empty_outcomes", "outcomes_of", "pay_reply",
           "pay_request", "read_pay_reply", "read_pay_request", "scatter", "take"]
