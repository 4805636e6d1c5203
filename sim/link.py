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
import fcntl
import gc
import multiprocessing as mp
import threading
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from time import perf_counter, process_time
from typing import Any

from core import Engine, Program, check_invariants
from sim.feed import EngineLike, NullEngine, apply_prepared, feed, prepare
from sim.inputs import Batch, FeedContext
from sim.timing import WallSplit
from sim.wire import Inbox, frame, pipe, send, write

TICK, ADVANCE, STATS, FINAL, CLOSE = range(5)  # commands to an engine process
BROKEN = -1  # the engine process's stand-in for a command it cannot read
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
        mpc = _engine_context()
        inbox, self._out = pipe(mpc)  # model -> engine
        self._in, outbox = pipe(mpc)  # engine -> model
        self._proc = mpc.Process(target=_serve, args=(inbox, outbox, list(programs)),
                                 name="paymember-engine", daemon=True)
        self._proc.start()
        inbox.close()
        outbox.close()
        self.ctx = ctx
        self._inbox = Inbox(self._in)
        self._final_requested = False
        self._answers = 0  # results read so far

    def _send(self, cmd: int, arg: Any) -> None:
        try:
            send(self._out, (cmd, arg))
        except BrokenPipeError:
            raise RuntimeError(self._gone("before taking a command")) from None

    def _gone(self, when: str) -> str:
        """What to say when the engine process has ended `when`."""
        self._proc.join(timeout=5)
        why = f"the engine process ended {when} (exit code {self._proc.exitcode})"
        if not self._answers and self._proc.exitcode:  # it never started serving
            why += (". A script that runs a simulation with an engine process must run it "
                    "under `if __name__ == \"__main__\":`: the engine process imports the "
                    "script's module first, as multiprocessing's forkserver and spawn methods do")
        return why

    def _result(self, res: Any) -> Any:
        t = perf_counter()
        try:
            out = self._inbox.recv()
        except EOFError:
            raise RuntimeError(self._gone("without an answer")) from None
        except ValueError as e:  # a frame cut short (the process ended while sending)
            raise RuntimeError(f"the engine process's answer is broken: {e}") from e
        self.wall.wait_s += perf_counter() - t
        self._answers += 1
        if isinstance(out, _Failure):
            raise RuntimeError(f"the engine process failed:\n{out.text}")
        return out

    def tick(self, b: Batch, handler: Handler,
             on_input: Callable[[int, Any], None] | None = None) -> None:
        """Send batch `b`; `handler((code, points, flags))` gets its outcomes when settled
        (the columns are views on the link's receiving buffer: kept, they stay valid).
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
            send(self._out, (CLOSE, None))
        self._proc.join(timeout=30)
        if self._proc.is_alive():  # pragma: no cover - a hung child
            self._proc.kill()
            self._proc.join()
        self._out.close()
        self._in.close()


class _Failure:
    """An exception in the engine process, as text (sent instead of a result)."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Outbox:
    """The engine process's sending end. A result that could fill the pipe (past a quarter
    of its buffer: a huge tick's outcomes) is written by a thread while this process goes
    on to read the next command, so that neither side can wait on the other with both
    pipes full; sends stay in order (a send first waits for the thread before it)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.limit = fcntl.fcntl(conn.fileno(), fcntl.F_GETPIPE_SZ) // 4
        self._writer: threading.Thread | None = None

    def send(self, obj: Any) -> None:
        parts = frame(obj)  # views on obj's arrays: the thread below keeps them alive
        self.drain()
        if sum(len(x) for x in parts) <= self.limit:
            write(self.conn, parts)
            return
        self._writer = threading.Thread(target=write, args=(self.conn, parts),
                                        name="engine-outbox", daemon=True)
        self._writer.start()

    def drain(self) -> None:
        """Wait until every result sent so far is in the pipe."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None


def _engine_context() -> Any:
    """Where engine processes come from: forked from a small server process (started once,
    with this module imported), not from the model's process. A child forked from the
    model shares every page of the model's heap copy-on-write, so each page either side
    writes afterwards is copied first (2 MiB at a time with huge pages); when the model
    had run before in the same process (`paymember bench sim` runs the 200k comparisons
    first) that cost both processes about a quarter of their CPU in the city day:
    engine 53.7 -> 40.7 s, model 47.9 -> 40.3 s, wall 73.8 -> 58.5 s."""
    mpc = mp.get_context("forkserver")
    mpc.set_forkserver_preload(["sim.link"])
    return mpc


def _serve(commands: Any, conn: Any, programs: list[Program]) -> None:
    """The engine process: apply commands from `commands` in order and send their results
    over `conn` (only these ends of the pipes reach this process, so the model's end
    closing reads as the end of the commands).

    One thread reads a command, applies it and sends its result. (A reader thread beside
    it used to take commands off the pipe as they came; it had to get the GIL from the
    thread applying the previous tick for every chunk it read, and the model's writes
    waited for that.) The pipes are large (`sim.wire.pipe`) and a large result goes out from a
    thread (`_Outbox`), so neither side waits on the other.
    """
    gc.disable()  # as in the model's process: millions of objects, few cycles
    out = _Outbox(conn)
    inbox = Inbox(commands)

    def command() -> tuple[int, Any]:
        try:
            return inbox.recv()
        except EOFError:
            return CLOSE, None
        except Exception:  # a bad message: reported to the model
            return BROKEN, traceback.format_exc()

    wall = WallSplit()
    try:
        eng = Engine(programs)
        while True:
            arg = None  # the last command's views on the inbox's buffer go before the next
            cmd, arg = command()
            t0 = perf_counter()
            if cmd == TICK:
                out.send(apply_prepared(eng, arg, wall))
            elif cmd == ADVANCE:
                wall.start()
                eng.advance(arg)
                wall.clock_done()
            elif cmd == STATS:
                wall.start()
                st = eng.point_totals()
                wall.clock_done()
                out.send(st)
            elif cmd == FINAL:
                st = eng.stats()
                t = perf_counter()
                errors = check_invariants(eng)
                wall.invariants_s = perf_counter() - t
                wall.engine_busy_s += perf_counter() - t0
                wall.engine_cpu_s = process_time()
                out.send((st, errors, wall))
                continue
            elif cmd == BROKEN:
                raise RuntimeError(f"reading a command failed:\n{arg}")
            else:
                out.drain()
                return
            wall.engine_busy_s += perf_counter() - t0
    except BaseException:  # every failure goes back to the model, as text
        out.send(_Failure(traceback.format_exc()))
        out.drain()
