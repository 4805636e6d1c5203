"""paymember core: the in-memory payment-to-membership accrual engine.

The whole public surface is listed in `__all__` below.
"""

from core._inputs import outcome_columns
from core.config import ConfigError, Section, load_toml
from core.durable import EngineJournal, open_engine
from core.engine import Engine
from core.feed import KINDS, parse_time
from core.idempotency import KeyWindow
from core.invariants import assert_invariants, check_invariants
from core.journal import FsyncPolicy, Journal, JournalFailed, RecordTooLarge
from core.journal_format import JournalCorrupt, Record
from core.limits import IDEMPOTENCY_WINDOW_S, RETRY_SCHEDULE_S, RETRY_WINDOW_S
from core.payment_block import PaymentBlock, decode_block
from core.payment_block import from_columns as block_of
from core.payment_columns import PaymentColumns, from_payments
from core.program import Campaign, CouponStock, EventRule, Program, Tier, load_program
from core.recovery import RecoveryReport, checkpoint, recover, recover_engine, replay
from core.routing import crc32_rows, shard_of, shards_of
from core.sharded import ShardedEngine, ShardError
from core.sharded_wire import BatchOutcomes
from core.snapshot import newest_snapshot, read_snapshot, write_snapshot
from core.types import (
    AdvanceReport,
    Balance,
    Binding,
    Bucket,
    Code,
    CouponIssue,
    Engagement,
    Enrollment,
    Entry,
    LedgerRow,
    Outcome,
    Payment,
    Refund,
    Spend,
)

__all__ = [
    "IDEMPOTENCY_WINDOW_S",
    "KINDS",
    "RETRY_SCHEDULE_S",
    "RETRY_WINDOW_S",
    "AdvanceReport",
    "Balance",
    "BatchOutcomes",
    "Binding",
    "Bucket",
    "Campaign",
    "Code",
    "ConfigError",
    "CouponIssue",
    "CouponStock",
    "Engagement",
    "Engine",
    "EngineJournal",
    "Enrollment",
    "Entry",
    "EventRule",
    "FsyncPolicy",
    "Journal",
    "JournalCorrupt",
    "JournalFailed",
    "KeyWindow",
    "LedgerRow",
    "Outcome",
    "Payment",
    "PaymentBlock",
    "PaymentColumns",
    "Program",
    "Record",
    "RecordTooLarge",
    "RecoveryReport",
    "Refund",
    "Section",
    "ShardError",
    "ShardedEngine",
    "Spend",
    "Tier",
    "assert_invariants",
    "block_of",
    "check_invariants",
    "checkpoint",
    "crc32_rows",
    "decode_block",
    "from_payments",
    "load_program",
    "load_toml",
    "newest_snapshot",
    "open_engine",
    "outcome_columns",
    "parse_time",
    "read_snapshot",
    "recover",
    "recover_engine",
    "replay",
    "shard_of",
    "shards_of",
    "write_snapshot",
]
