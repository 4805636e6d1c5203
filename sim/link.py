"""The engine behind a link: called in the model's process, or run in a process of its own.

The model sends the engine commands (a tick's inputs, `advance`, `stats`, the final
check) and handles their results in command order when it calls `settle`. The engine's
state after a command depends only on the commands before it, and the model handles a
tick's outcomes at the same point whichever link carries them (one tick late, see
`sim.platform`), so a run is the same pure function of (scenario, seed, commit) over
either link. Over `ProcessLink` the model works on the next tick while the engine, on
the machine's other core, applies this one: a run's wall time is about the larger of
the two, not their sum.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import io
import multiprocessing as mp
import pickle
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from time import perf_counter, process_time
from typing import Any

import numpy as np

from core import Engine, PaymentBlock, Program, check_invariants
from sim.feed import EngineLike, NullEngine, apply_prepared, feed, prepare
from sim.inputs import Batch, FeedContext
from sim.timing import WallSplit

TICK, ADVANCE, STATS, FINAL, CLOSE = range(5)  # commands to an engine process
Handler = Callable[[Any], None]
Final = tuple[dict[str, Any], list[str]]  # the engine's stats and invariant errors at the end


class _Link:
    """Results waiting for their handlers, oldest first."""

    def __init__(self, wall: WallSplit) -> None:
        self.wall = wall
        self._pending: deque[tuple[bool, Handler, Any]] = deque()
        self._ticks = 0  # tick results among them

    def settle(self, ticks_left: int) -> None:
        """Handle results in command order until at most `ticks_left` ticks' results are
        outstanding (with 0: every result)."""
        while self._pending and (self._ticks > ticks_left or not ticks_left):
            is_tick, handler, res = self._pending.popleft()
            self._ticks -= is_tick
            handler(self._result(res))

    def _result(self, res: Any) -> Any:
        return res

    def _queue(self, is_tick: bool, handler: Handler, res: Any = None) -> None:
        self._pending.append((is_tick, handler, res))
        self._ticks += is_tick


class LocalLink(_Link):
    """The engine in this process: each command runs at once, its result waits in order."""

    def __init__(self, eng: EngineLike, ctx: FeedContext, wall: WallSplit) -> None:
        """Link to `eng`, making its inputs with `ctx`; `wall` times the engine's calls."""
        super().__init__(wall)
        self.eng, self.ctx = eng, ctx
        self.null = isinstance(eng, NullEngine)

    def tick(self, b: Batch, handler: Handler,
             on_input: Callable[[int, Any], None] | None = None) -> None:
        """Apply batch `b`; `handler((code, points, flags))` gets the outcomes when settled.
        `on_input(k, obj)` sees each typed input in order (traces)."""
        self._queue(True, handler, feed(self.eng, self.ctx, b, on_input, self.wall))

    def advance(self, now_s: int) -> None:
        """Advance the engine's clock to `now_s`."""
        self.wall.start()
        self.eng.advance(now_s)
        self.wall.clock_done()

    def stats(self, handler: Handler) -> None:
        """Take the engine's point totals now; `handler(totals)` gets them when settled."""
        self.wall.start()
        st = self.eng.point_totals()
        self.wall.clock_done()
        self._queue(False, handler, st)

    def request_final(self) -> None:
        """Announce the end of the run (the final check runs in `final`)."""

    def final(self) -> Final:
        """The engine's stats and invariant errors at the end (settles everything first)."""
        self.settle(0)
        st = self.eng.stats()
        return st, [] if self.null else check_invariants(self.eng)  # type: ignore[arg-type]

    def close(self) -> None:
        """Nothing to release."""


class ProcessLink(_Link):
    """The real engine in a child process, fed through a pipe; results come back in order.

    Raises RuntimeError (with the child's traceback) when the engine process fails.
    """

    eng = None  # the engine lives in the child
    null = False

    def __init__(self, programs: Sequence[Program], ctx: FeedContext, wall: WallSplit) -> None:
        """Start an engine process over `programs`, making its inputs with `ctx`."""
        super().__init__(wall)
        # fork: the child starts at once with this process's imports (nothing is pickled).
        mpc = mp.get_context("fork")
        self._conn, child = mpc.Pipe()
        self._proc = mpc.Process(target=_serve, args=(child, list(programs)),
                                 name="paymember-engine", daemon=True)
        self._proc.start()
        child.close()
        self.ctx = ctx
        self._final_requested = False

    def _send(self, cmd: int, arg: Any) -> None:
        _send_to(self._conn, (cmd, arg))

    def _result(self, res: Any) -> Any:
        t = perf_counter()
        try:
            out = pickle.loads(self._conn.recv_bytes())
        except EOFError:
            raise RuntimeError("the engine process ended without an answer") from None
        self.wall.wait_s += perf_counter() - t
        if isinstance(out, _Failure):
            raise RuntimeError(f"the engine process failed:\n{out.text}")
        return out

    def tick(self, b: Batch, handler: Handler,
             on_input: Callable[[int, Any], None] | None = None) -> None:
        """Send batch `b`; `handler((code, points, flags))` gets its outcomes when settled.
        Raises ValueError with `on_input` (traces run over a `LocalLink`)."""
        if on_input is not None:
            raise ValueError("an engine process cannot trace inputs: use a LocalLink")
        # The inputs are made here, not in the engine process: the engine's process is the
        # run's critical path, and made inputs cross the pipe as buffers and str lists.
        self._send(TICK, prepare(self.ctx, b))
        self._queue(True, handler)

    def advance(self, now_s: int) -> None:
        """Advance the engine's clock to `now_s`."""
        self._send(ADVANCE, now_s)

    def stats(self, handler: Handler) -> None:
        """Take the engine's point totals at this point; `handler(totals)` gets them when
        settled."""
        self._send(STATS, None)
        self._queue(False, handler)

    def request_final(self) -> None:
        """Start the final stats and invariant check in the engine process now, so that it
        runs while this process summarises."""
        if not self._final_requested:
            self._send(FINAL, None)
            self._final_requested = True

    def final(self) -> Final:
        """The engine's stats and invariant errors at the end (settles everything first),
        and the child's wall split folded into this run's."""
        self.settle(0)
        self.request_final()
        w = self.wall
        waited = w.wait_s
        st, errors, child = self._result(None)
        w.wait_s = waited  # this wait is the final check's, timed by the caller
        w.engine_inputs_s, w.engine_clock_s, w.calls = (child.engine_inputs_s,
                                                        child.engine_clock_s, child.calls)
        w.engine_busy_s, w.engine_invariants_s = child.engine_busy_s, child.invariants_s
        w.engine_cpu_s = child.engine_cpu_s
        w.process = True
        return st, errors

    def close(self) -> None:
        """Stop the engine process (it exits on its own after CLOSE; killed if stuck)."""
        with contextlib.suppress(OSError):  # the child may be gone already
            self._send(CLOSE, None)
        self._proc.join(timeout=30)
        if self._proc.is_alive():  # pragma: no cover - a hung child
            self._proc.kill()
            self._proc.join()
        self._conn.close()


def _send_to(conn: Any, obj: Any) -> None:
    """Send `obj` pickled (`Connection.send`'s pickler copies its dispatch table for every
    message, and these messages need none of its reducers), numpy arrays as raw buffers."""
    f = io.BytesIO()
    p = pickle.Pickler(f, pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = _DISPATCH
    p.dump(obj)
    conn.send_bytes(f.getbuffer())


# Dtypes whose one-character code says it all (native byte order), by dtype.
_PLAIN_CODES = {np.dtype(c): c for c in "?bBhHiIlLqQfd"}


def _array(buf: bytearray | bytes, code: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array `_reduce_array` pickled (writable when it was)."""
    return np.frombuffer(buf, code).reshape(shape)


def _reduce_array(a: np.ndarray) -> tuple[Any, ...]:
    """Pickle contiguous arrays of plain dtypes as their buffer, dtype code and shape: a
    quarter of numpy's own reduction's cost (which pickles each dtype in full)."""
    code = _PLAIN_CODES.get(a.dtype)
    if code is not None and a.flags.c_contiguous:
        return _array, (pickle.PickleBuffer(a), code, a.shape)
    return a.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


_BLOCK_INTS = ("tx_starts", "tx_ends", "openid_starts", "openid_ends", "total_fen", "time_s",
               "payer_total_fen")
_BLOCK_CODES = ("appid_codes", "mchid_codes", "currency_codes")


def _block(tx_data: bytes, openid_data: bytes, ints: np.ndarray, codes: np.ndarray,
           names: tuple[list[str], list[str], list[str]],
           coupon_ids: list[tuple[str, ...]] | None, ascii_ids: bool) -> PaymentBlock:
    """The payment block `_reduce_block` pickled (its arrays are rows of two)."""
    tx_lo, tx_hi, op_lo, op_hi, total, time_s, payer = ints
    app, mchid, currency = codes
    return PaymentBlock(tx_data, tx_lo, tx_hi, openid_data, op_lo, op_hi, app, names[0],
                        mchid, names[1], currency, names[2], total, time_s, payer, coupon_ids,
                        ascii_ids)


def _reduce_block(b: PaymentBlock) -> tuple[Any, ...]:
    """Pickle a payment block's ten arrays as two (int64 and uint16 rows): most of a
    tick's arrays are a block's, and each array pickles at a fixed cost."""
    ints = [getattr(b, k) for k in _BLOCK_INTS]
    codes = [getattr(b, k) for k in _BLOCK_CODES]
    if not (all(a.dtype == np.int64 and a.ndim == 1 for a in ints)
            and all(a.dtype == np.uint16 and a.ndim == 1 for a in codes)):
        return b.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    return _block, (b.tx_data, b.openid_data, np.stack(ints), np.stack(codes),
                    (b.appids, b.mchids, b.currencies), b.coupon_ids, b.ascii)


_DISPATCH = {**copyreg.dispatch_table, np.ndarray: _reduce_array, PaymentBlock: _reduce_block}


class _Failure:
    """An exception in the engine process, as text (sent instead of a result)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _serve(conn: Any, programs: list[Program]) -> None:
    """The engine process: apply commands in order and send back their results.

    A reader thread takes commands off the pipe as they come, so the model's sends never
    wait for this process to finish sending an earlier result (no deadlock on full pipes).
    """
    gc.disable()  # as in the model's process: millions of objects, few cycles
    inbox: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                msg = pickle.loads(conn.recv_bytes())
            except EOFError:
                msg = (CLOSE, None)
            inbox.put(msg)
            if msg[0] == CLOSE:
                return

    threading.Thread(target=read, name="engine-inbox", daemon=True).start()
    wall = WallSplit()
    try:
        eng = Engine(programs)
        while True:
            cmd, arg = inbox.get()
            t0 = perf_counter()
            if cmd == TICK:
                _send_to(conn, apply_prepared(eng, arg, wall))
            elif cmd == ADVANCE:
                wall.start()
                eng.advance(arg)
                wall.clock_done()
            elif cmd == STATS:
                wall.start()
                st = eng.point_totals()
                wall.clock_done()
                _send_to(conn, st)
            elif cmd == FINAL:
                st = eng.stats()
                t = perf_counter()
                errors = check_invariants(eng)
                wall.invariants_s = perf_counter() - t
                wall.engine_busy_s += perf_counter() - t0
                wall.engine_cpu_s = process_time()
                _send_to(conn, (st, errors, wall))
                continue
            else:
                return
            wall.engine_busy_s += perf_counter() - t0
    except BaseException:  # every failure goes back to the model, as text
        _send_to(conn, _Failure(traceback.format_exc()))
