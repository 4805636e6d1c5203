"""Every limit of the service and the load generator, in one place, related once."""

from __future__ import annotations

from core import limits as core_limits
from core.payment_columns import RECORD_ROWS_MAX

# A payment notification is ~1.5 KB; the batch endpoint carries many events a
# request. Bodies above these caps get 413 before any parsing.
NOTIFY_BODY_BYTES_MAX = 64 * 1024
BATCH_EVENTS_MAX = 50_000
# A payment event is ~350 bytes of JSON: the body cap admits a full batch of them.
BATCH_EVENT_BYTES_TYPICAL = 400
BATCH_BODY_BYTES_MAX = BATCH_EVENTS_MAX * BATCH_EVENT_BYTES_TYPICAL
# The columnar body is one compact payments record (core.payment_columns) of at most
# COLUMNS_PAYMENTS_MAX payments and COLUMNS_BODY_BYTES_MAX bytes by default; `serve
# --columns-max` and `--columns-body-max` set them, up to the format's most rows a
# record and the bytes of that many payments at their largest. A request is applied as
# one batch and journaled as records of at most JOURNAL_PAYMENTS_PER_RECORD_MAX
# payments (the body split without decoding it). The default byte cap admits the
# default count of payments of typical size (~90 bytes: two 28-character ids).
COLUMNS_PAYMENTS_LIMIT = RECORD_ROWS_MAX
COLUMNS_PAYMENTS_MAX = COLUMNS_PAYMENTS_LIMIT
COLUMNS_BODY_BYTES_LIMIT = COLUMNS_PAYMENTS_LIMIT * core_limits.PAYMENT_ENCODED_BYTES_MAX
COLUMNS_PAYMENT_BYTES_TYPICAL = 128
COLUMNS_BODY_BYTES_MAX = core_limits.JOURNAL_RECORD_BYTES_MAX
# How much of a request's body uvicorn buffers before it stops reading the connection
# and waits for the app: the largest body a default route accepts (the app holds a
# body whole anyway).
RECEIVE_BUFFER_BYTES = max(BATCH_BODY_BYTES_MAX, COLUMNS_BODY_BYTES_MAX)
assert COLUMNS_PAYMENTS_MAX * COLUMNS_PAYMENT_BYTES_TYPICAL <= COLUMNS_BODY_BYTES_MAX \
    <= COLUMNS_BODY_BYTES_LIMIT

# The SDKs reject signatures whose timestamp is more than 300 s off.
TIMESTAMP_WINDOW_S = 300
NONCE_LEN_MAX = 64
SIGNATURE_LEN_MAX = 1024  # base64 of a 4096-bit RSA signature is 684 chars
SERIAL_LEN_MAX = 64

# Replayed nonces are remembered for the whole window (both sides of now). At
# most this many are held per process; beyond it the oldest are forgotten and
# the accepted window shrinks so that a forgotten nonce can never be replayed.
NONCE_CACHE_MAX = 2_000_000

# The platform's 5 s answer deadline; the service cancels nothing itself, but
# graceful shutdown waits at most this long for requests in flight.
ANSWER_DEADLINE_S = 5
SHUTDOWN_DRAIN_S = ANSWER_DEADLINE_S

SHARDS_MAX = 64

# Load generator: every loop is bounded in count and in time.
LOADTEST_DURATION_S_MAX = 24 * 3600
LOADTEST_USERS_MAX = 10_000
LOADTEST_RATE_PER_S_MAX = 1_000_000
TRACE_LINES_MAX = 50_000_000
TRACE_LINE_BYTES_MAX = 64 * 1024
STARTUP_WAIT_S = 30.0  # how long the runner waits for the service to answer /healthz

# Our latency histograms: 1 us .. 60 s at 3 significant digits.
LATENCY_US_MIN = 1
LATENCY_US_MAX = 60_000_000
LATENCY_DIGITS = 3
