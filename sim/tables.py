"""Growable numpy column tables and the platform's delivery calendar.

`Inputs` holds every input the model sends to the engine, one row each (a payment,
a refund, a binding, ...): rows are appended in bulk and referenced by number.
`Calendar` files deliveries (row, attempt) by the tick they are due in.
"""

from __future__ import annotations

import numpy as np

from sim._calendar import Buckets

PAY, REFUND, EVENT, BIND, ENROLL, COUPON = range(6)
KIND_NAMES = ("payment", "refund", "event", "binding", "enrollment", "coupon")
NOTIFICATIONS = (PAY, REFUND)  # the platform's notifications: retried until acknowledged

_COLUMNS = {
    "kind": np.int8,
    "shopper": np.int64,
    "prog": np.int8,
    "place": np.int8,  # place type (payments, refunds), -1 otherwise
    "station": np.int32,
    "t_s": np.float64,  # when it happened, seconds since the scenario's midnight
    "amount": np.int64,  # payment total, or refund amount (minor units)
    "payer": np.int64,  # payer total of a payment, or the refunded payment's total
    "ref": np.int64,  # refund: payment row; payment: coupon row or -1; coupon: stock
    "currency": np.int8,
    "app": np.int8,  # app number within the program (0 pays, 1 the mini program)
    "shard": np.int16,  # the engine shard it is routed to (core's shard_of of its openid)
}

_MINUS_ONE = frozenset(("place", "ref"))  # columns whose default is -1 (the rest: 0)
_DEFAULT = {k: -1 if k in _MINUS_ONE else 0 for k in _COLUMNS}
_DEFAULTS_AHEAD = 1 << 14  # rows given their defaults at a time, ahead of appends
# One row's columns and its results of delivery ("first_ack_s", "done"), widest first, in a
# record of one cache line: a tick reads all of a row's columns at rows scattered over the
# table, so a row costs one cache miss, not one a column.
_LINE = 64
_FIELDS = sorted([*_COLUMNS.items(), ("first_ack_s", np.float64), ("done", np.bool_)],
                 key=lambda c: -np.dtype(c[1]).itemsize)  # widest first: all aligned
_RECORD = np.dtype({"names": [k for k, _ in _FIELDS], "formats": [dt for _, dt in _FIELDS],
                    "itemsize": _LINE})


def records(shape: int | tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of zero records of `dtype` (of 64, 32, 16, ... bytes), each within one cache
    line (pages untouched until written: a generous size costs address space only)."""
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + _LINE, np.uint8)
    at = -raw.ctypes.data % _LINE
    return raw[at:at + size].view(dtype).reshape(shape)


class Inputs:
    """Column table of engine inputs; `n` rows are valid. The columns are views of one
    array of records (a row's columns side by side)."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        """Allocate columns for `capacity` rows (they grow by doubling)."""
        self.n = 0
        self._defaults = 0  # rows below this hold the defaults (those past `n` unused)
        self.cols: dict[str, np.ndarray] = {}
        self._view(records(capacity, _RECORD))

    def _view(self, rec: np.ndarray) -> None:
        """Point the columns at the records `rec`; the columns' dictionary stays the same
        object (batches hold it), its views replaced."""
        self._rec = rec
        self.cols.update({k: rec[k] for k in _COLUMNS})
        # Per-row results of delivery (first acknowledgement times: NaN from `append` on).
        self.first_ack_s = rec["first_ack_s"]
        self.done = rec["done"]  # the engine has processed it once

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name][: self.n]
        raise AttributeError(name)

    def append(self, **values: np.ndarray | int | float) -> np.ndarray:
        """Append rows given as equal-length columns (scalars broadcast); returns row numbers.

        Raises ValueError on an unknown column or on lengths that disagree.
        """
        m = -1
        for v in values.values():
            if isinstance(v, np.ndarray) and len(v) != m:
                if m >= 0:
                    raise ValueError(f"columns must have one length, got {m} and {len(v)}")
                m = len(v)
        if m < 0:
            raise ValueError("columns must have one length, got none")
        if not _COLUMNS.keys() >= values.keys():
            raise ValueError(f"unknown columns {sorted(values.keys() - _COLUMNS.keys())}")
        lo, hi = self.n, self.n + m
        if hi > self._defaults:
            self._fill_defaults(hi)
        cols = self.cols
        for k, v in values.items():
            # Rows past `n` hold the defaults (rows are never removed): a column's default
            # needs no writing, nor does a column left out.
            if v.__class__ is not int or v != _DEFAULT[k]:
                cols[k][lo:hi] = v
        self.n = hi
        return np.arange(lo, hi, dtype=np.int64)

    def _fill_defaults(self, hi: int) -> None:
        """Rows up to `hi` (at least) made to hold the defaults: -1 in "place" and "ref",
        NaN first acknowledgements (zero elsewhere, as the records grow), in chunks of
        rows ahead of `n`, so that an append of a few rows writes only its values."""
        lo = self._defaults
        top = max(hi, min(lo + _DEFAULTS_AHEAD, len(self.done)))
        if top > len(self.done):
            self._reserve(top)
        rec = self._rec[lo:top]
        for k in _MINUS_ONE:
            rec[k] = -1
        rec["first_ack_s"] = np.nan
        self._defaults = top

    def _reserve(self, size: int) -> None:
        cap = len(self.first_ack_s)
        if size <= cap:
            return
        while cap < size:
            cap *= 2
        rec = records(cap, _RECORD)
        rec[: len(self._rec)] = self._rec
        self._view(rec)


class Calendar:
    """Deliveries filed by tick: `pop(k)` returns those due in tick k, ordered by due time.

    Each tick's deliveries are kept in filing order (sim._calendar.Buckets, in C); a tick's are
    sorted stably by due time when it is popped, so ties in due time keep the order of the
    `add` calls and of rows within a call, as filing each batch at once would.
    """

    def __init__(self, tick_s: float) -> None:
        """Create an empty calendar with ticks of `tick_s` seconds."""
        self.tick_s = tick_s
        self.floor_tick = 0  # ticks before this one were delivered already
        self.clamped = 0  # deliveries filed late, moved to the first open tick
        self.size = 0
        self._ticks = Buckets(tick_s)

    def add(self, rows: np.ndarray, attempt: np.ndarray | int, due_s: np.ndarray) -> None:
        """File deliveries of `rows` (attempt number each) due at `due_s`.

        Raises ValueError, filing nothing, for lengths that disagree or a due time that is
        not finite or beyond the calendar (sim._calendar.MAX_TICK ticks).
        """
        n = len(rows)
        if not n:
            return
        att = attempt if isinstance(attempt, int) else np.asarray(attempt, np.int8)
        # A reaction computed after the tick it falls due in (a card activation soon after
        # a payment, handled a tick late) is delivered at the start of the first tick not
        # yet processed: deliveries stay in time order.
        self.clamped += self._ticks.file(np.asarray(rows, np.int64), att,
                                         np.asarray(due_s, np.float64),
                                         self.floor_tick * self.tick_s)
        self.size += n

    def pop(self, tick: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remove and return the deliveries due in `tick` (or before), ordered by due time."""
        rows, att, due = self._ticks.take(tick)
        self.size -= len(rows)
        return rows, att, due
