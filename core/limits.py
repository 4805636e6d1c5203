"""Every limit of the engine, in one place, related to each other once."""

from __future__ import annotations

# Identifiers: openid/unionid are 28-29 chars of [A-Za-z0-9_-]; we accept a
# little more so that test ids and other platforms fit, but bound it.
ID_LEN_MAX = 64
# The platform's own ids (transaction_id 32, refund_id 32..64, out_* 32..64).
REF_LEN_MAX = 64
ATTACH_LEN_MAX = 128

# One payment at most 10^10 fen (100 million yuan): far above any real payment.
AMOUNT_FEN_MAX = 10**10
MULTIPLIER_PCT_MAX = 10_000  # 100x
POINTS_PER_UNIT_MAX = 1000
# Points of one input are computed exactly (Python ints) and capped here, so a
# million capped inputs on one account still fit an int64 column.
POINTS_PER_INPUT_MAX = 10**12
assert POINTS_PER_INPUT_MAX * 10**6 < 2**63

PROMOTIONS_PER_PAYMENT_MAX = 16
REFUNDS_PER_PAYMENT_MAX = 64
HELD_REFUNDS_MAX = 1_000_000  # refunds waiting for their payment
TIERS_MAX = 16
CAMPAIGNS_MAX = 64
TIER_WINDOW_MONTHS_MAX = 24
# Programs of one engine (core.accounts numbers them in an int8 column; the compiled
# paths take 64).
PROGRAMS_MAX = 64
# Friend Membership's k latest visits are kept per account (core.accounts: a byte counts
# them modulo 2k).
FRIEND_VISITS_MAX = 127
# Engagement cap counters one account keeps (kind x day/week/month x period) before
# periods well behind the newest are forgotten.
CAP_PERIODS_MAX = 256

# The platform retries an unacknowledged notification for 24h04m
# (15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h).
RETRY_SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
                    10800, 10800, 10800, 21600, 21600)
RETRY_WINDOW_S = sum(RETRY_SCHEDULE_S)
assert RETRY_WINDOW_S == 24 * 3600 + 4 * 60
# Idempotency keys of events, refunds and spends are kept while their input's time is
# within this window behind the engine clock; older inputs are rejected STALE
# (core/idempotency.py, docs/idempotency.md). The retry span counts from the first
# delivery, not from the input's time, so the margin covers a first delivery that
# comes late (platform backlog, our own outage or queue), skew between the platform's
# clock and the one that drives `advance`, and the advance cadence: 23h56m, so the
# window is two days and a duplicate is refused only a day after the last retry.
IDEMPOTENCY_MARGIN_S = 23 * 3600 + 56 * 60
IDEMPOTENCY_WINDOW_S = RETRY_WINDOW_S + IDEMPOTENCY_MARGIN_S
assert IDEMPOTENCY_WINDOW_S == 2 * 86_400
IDEMPOTENCY_WINDOW_S_MAX = 366 * 86_400  # a backfill wants a long one; memory follows it
IDEMPOTENCY_BUCKET_S = 3600  # one generation of keys: kept at most this long past the window
assert RETRY_WINDOW_S < IDEMPOTENCY_WINDOW_S <= IDEMPOTENCY_WINDOW_S_MAX

# Times: 2000-01-01 .. 2100-01-01 UTC.
TIME_S_MIN = 946_684_800
TIME_S_MAX = 4_102_444_800
# A local day (days since 1970, UTC offsets within a day) fits an uint16: the visit ring.
assert (TIME_S_MIN - 86_400) // 86_400 >= 0 and (TIME_S_MAX + 86_400) // 86_400 < 2**16

LINE_BYTES_MAX = 64 * 1024  # one JSON line of a feed

# --- Durability: journal and snapshots (core/journal.py, core/snapshot.py) ---
# One payment in the compact form at most: three int64, four dictionary indices, a
# coupon count, four ids and its coupon ids (each id with a 4-byte length at worst).
PAYMENT_ENCODED_BYTES_MAX = (3 * 8 + 4 * 2 + 1 + 4 * (4 + REF_LEN_MAX)
                             + PROMOTIONS_PER_PAYMENT_MAX * (4 + REF_LEN_MAX))
JOURNAL_PAYMENTS_PER_RECORD_MAX = 4096  # one compact payments record (a group commit's run)
JOURNAL_RECORD_BYTES_MAX = 16 * 1024 * 1024
assert JOURNAL_PAYMENTS_PER_RECORD_MAX * PAYMENT_ENCODED_BYTES_MAX <= JOURNAL_RECORD_BYTES_MAX
assert LINE_BYTES_MAX <= JOURNAL_RECORD_BYTES_MAX  # any feed line fits one JSON record
JOURNAL_SEGMENT_BYTES_MAX = 256 * 1024 * 1024  # rotate to a new segment file past this
assert JOURNAL_RECORD_BYTES_MAX < JOURNAL_SEGMENT_BYTES_MAX
JOURNAL_GROUP_BYTES_MAX = 8 * 1024 * 1024  # a group larger than this is written out early
JOURNAL_FSYNC_INTERVAL_MS_MAX = 60_000
# Recovery applies consecutive payments records as one block of up to this many payments:
# records as small as a quiet service's commits then replay nearly as fast as large ones.
# As large as a record, no larger: blocks of 8-16k measured no faster (they leave L2).
JOURNAL_REPLAY_RUN_PAYMENTS_MAX = JOURNAL_PAYMENTS_PER_RECORD_MAX
SNAPSHOT_BYTES_MAX = 1 << 36  # 64 GiB: 10M members at 64 B/member is 640 MB
SNAPSHOTS_KEPT = 2  # the journal is kept back to the oldest of these

# ------------------------------------------------------------ the sharded engine
SHARDS_MAX = 64
PAY_ROWS_PER_SHARD = 8192  # rows a shard gets in one PAY message
SUBMIT_ROWS_MAX = 4096  # plain-dict inputs in one round of submit_many
REPLY_TIMEOUT_S = 120.0  # one message's answer; a chunk takes well under a second
START_TIMEOUT_S = 600.0  # a shard's start, recovery included
QUIT_TIMEOUT_S = 60.0
