"""The engine behind a link (sim.link): in the model's process or in its own, a run is the
same; the process's failures reach the model; the wall split adds up."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import PaymentBlock
from core.payment_block import id_spans
from sim import run_scenario
from sim.feed import NullEngine
from sim.inputs import FeedContext
from sim.link import TICK, ProcessLink, _Outbox
from sim.model import Model
from sim.timing import WallSplit
from sim.wire import PIPE_BYTES, Inbox, frame, pipe, pipe_max, send, write
from tests.test_sim_model import _strip, small


def test_engine_process_gives_the_same_run(tmp_path: Path) -> None:
    """The same scenario and seed give the same summary and engine timeline with the engine
    in its own process, in the model's process (batches) and traced (one input at a time)."""
    sc = small(shoppers=4000, hours=2.0)
    local, ml = run_scenario(sc, seed=11, process=False, report=False)
    remote, mr = run_scenario(sc, seed=11, process=True, report=False)
    traced, mt = run_scenario(sc, seed=11, trace=tmp_path / "t.jsonl", report=False)
    assert _strip(local) == _strip(remote) == _strip(traced)
    assert ml.rec.timeline == mr.rec.timeline == mt.rec.timeline and len(ml.rec.timeline) > 2
    assert remote["invariants_ok"] and remote["payments"] > 0
    assert mr.wall.process and not ml.wall.process
    sp = mr.wall.as_dict()
    assert sp["engine_process_busy_s"] > 0 and sp["engine_inputs_s"] > 0
    assert (sp["model_s"] + sp["engine_wait_s"] + sp["invariants_s"]
            + sp["setup_and_summary_s"]) == pytest.approx(mr.wall.total_s, abs=0.01)


def test_engine_process_failure_reaches_the_model() -> None:
    """An exception in the engine process (here: a tick command whose inputs are not
    `prepare`'s) ends the run with RuntimeError carrying the child's traceback, and the
    process is gone afterwards."""
    sc = small(shoppers=2000, hours=0.5)
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        link._send(TICK, "not a tick's inputs")
        link._queue(True, print)
        with pytest.raises(RuntimeError, match=r"engine process failed:(.|\n)*AttributeError"):
            link.settle(0)
        link._proc.join(timeout=30)
        assert not link._proc.is_alive()
    finally:
        link.close()


def test_the_engine_process_is_not_forked_from_the_model() -> None:
    """The engine process comes from the fork server, not from the model's process (whose
    heap it would otherwise share copy-on-write): its parent is not this process."""
    sc = small(shoppers=2000, hours=0.5)
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        with open(f"/proc/{link._proc.pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        assert ppid != os.getpid()
        got: list[Any] = []
        link.stats(got.append)
        link.settle(0)
        assert got and isinstance(got[0], dict)
    finally:
        link.close()


def test_bad_links_are_refused(tmp_path: Path) -> None:
    """A trace or a null engine cannot go to an engine process: ValueError, nothing run."""
    sc = small(shoppers=2000, hours=0.5)
    with pytest.raises(ValueError, match="real engine"):
        run_scenario(sc, engine="null", process=True, report=False)
    with pytest.raises(ValueError, match="trace"):
        Model(sc, 1, None, trace=object())  # type: ignore[arg-type]
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        with pytest.raises(ValueError, match="trace"):
            link.tick({"row": np.zeros(0, np.int64)}, print, on_input=print)
    finally:
        link.close()
    assert not link._proc.is_alive()
    assert isinstance(Model(sc, 1, NullEngine()).link.eng, NullEngine)


def test_pipes_are_large_and_a_bad_command_is_reported() -> None:
    """Both pipes get a buffer as large as the kernel grants (a tick crosses in one
    write); a command the engine process cannot read ends in RuntimeError, not a hang."""
    sc = small(shoppers=2000, hours=0.5)
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        want = min(PIPE_BYTES, max(pipe_max(), 1 << 16))
        for end in (link._out, link._in):
            assert fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) >= want
        got: list[Any] = []
        link.stats(got.append)
        link.settle(0)
        assert got and isinstance(got[0], dict)
        link._out.send_bytes(b"not a pickle")
        link.stats(got.append)
        with pytest.raises(RuntimeError, match="reading a command failed"):
            link.settle(0)
    finally:
        link.close()
    assert not link._proc.is_alive()


def test_an_answer_cut_short_is_a_runtime_error() -> None:
    """An engine process that ends in the middle of an answer: RuntimeError, not a hang."""
    sc = small(shoppers=2000, hours=0.5)
    link = ProcessLink(sc.programs, FeedContext.of(sc, ("CNY",)), WallSplit())
    try:
        link.close()  # the engine process is gone; an answer's first bytes stand in
        r, w = pipe(mp.get_context("fork"))
        link._in.close()
        link._in, link._inbox = r, Inbox(r)
        raw = b"".join(bytes(memoryview(x).cast("B")) for x in frame(np.arange(100)))
        os.write(w.fileno(), raw[:100])
        w.close()
        with pytest.raises(RuntimeError, match="answer is broken"):
            link._result(None)
    finally:
        link._in.close()


def test_outbox_sends_a_result_larger_than_the_pipe_without_blocking() -> None:
    """A result past the outbox's limit goes out from a thread: `send` returns with nobody
    reading yet, and the results arrive whole and in order."""
    r, w = pipe(mp.get_context("fork"))
    try:
        out, inbox = _Outbox(w), Inbox(r)
        big = np.arange(1 << 19)  # 4 MiB: more than any pipe buffer here
        out.send(("big", big))  # returns at once although nobody reads yet
        got = [inbox.recv()]
        out.send("small")
        out.drain()
        got.append(inbox.recv())
        assert got[0][0] == "big" and np.array_equal(got[0][1], big) and got[1] == "small"
    finally:
        r.close()
        w.close()


def test_arrays_cross_with_their_own_dtypes() -> None:
    # int64 ("l") must not come back as long long ("q"): equal dtypes, but another type,
    # on which numpy's add.at takes a slower casting loop.
    arrays = [np.arange(5, dtype=np.int64), np.arange(3, dtype=np.longlong),
              np.arange(4, dtype=">i8"), np.ones((2, 3), np.uint8), np.array([True, False]),
              np.arange(6, dtype=np.int16)[::2]]
    with _pipe() as (r, w):
        inbox = Inbox(r)
        for a in arrays:
            send(w, a)
            back = inbox.recv()
            assert back.dtype.type is a.dtype.type and back.dtype == a.dtype
            assert back.shape == a.shape and (back == a).all()


@pytest.fixture(name="pair")
def _pair() -> Iterator[tuple[Any, Any]]:
    with _pipe() as ends:
        yield ends


class _pipe:
    """A link pipe (reader, writer), closed at the end of a with block."""

    def __enter__(self) -> tuple[Any, Any]:
        self.ends = pipe(mp.get_context("fork"))
        return self.ends

    def __exit__(self, *_exc: object) -> None:
        for c in self.ends:
            c.close()


def _sent(w: Any, obj: Any) -> threading.Thread:
    """Send `obj` from a thread (a message larger than the pipe needs a reader at once)."""
    t = threading.Thread(target=send, args=(w, obj))
    t.start()
    return t


def test_a_kept_message_is_not_overwritten_by_the_next(pair: tuple[Any, Any]) -> None:
    """Arrays received are views on the inbox's buffer: one still held when the next
    message comes keeps its values (the buffer is replaced, not overwritten); once nothing
    holds one, the buffer is reused."""
    r, w = pair
    inbox = Inbox(r)
    send(w, (np.arange(1000), np.full(7, 3, np.int16)))
    kept = inbox.recv()
    fresh = inbox.fresh
    send(w, (np.arange(1000) * -1, np.zeros(7, np.int16)))
    other = inbox.recv()
    assert inbox.fresh == fresh + 1  # `kept` still views the first buffer
    assert (kept[0] == np.arange(1000)).all() and (kept[1] == 3).all()
    assert (other[0] == -np.arange(1000)).all() and not other[1].any()
    del kept, other
    for k in range(3):  # nothing held now: the same buffer each time
        send(w, np.arange(1000) + k)
        assert (inbox.recv() == np.arange(1000) + k).all()
    assert inbox.fresh == fresh + 1


def test_small_empty_and_large_messages_cross_whole(pair: tuple[Any, Any]) -> None:
    """Messages of no array, empty arrays, odd sizes, more than the pipe holds and more
    pieces than one `writev` takes arrive whole and in order through one inbox (its
    buffer grows as needed)."""
    r, w = pair
    inbox = Inbox(r)
    big = np.arange(3 << 20, dtype=np.int64)  # 24 MiB: several times the pipe's buffer
    msgs: list[Any] = [None, "text", np.zeros(0, np.int8), np.arange(3, dtype=np.uint8),
                       (big, np.arange(5)), {"a": np.ones((3, 5), np.uint8)}, 7,
                       tuple(np.arange(k % 9) for k in range(1500))]  # > IOV_MAX pieces
    for m in msgs:
        t = _sent(w, m)
        back = inbox.recv()
        t.join()
        if isinstance(m, tuple):
            assert all((x == y).all() for x, y in zip(back, m, strict=True))
        elif isinstance(m, dict):
            assert (back["a"] == m["a"]).all()
        elif isinstance(m, np.ndarray):
            assert back.dtype == m.dtype and (back == m).all()
        else:
            assert back == m
    assert len(inbox._buf) >= big.nbytes


def test_a_payment_block_crosses_with_its_ids(pair: tuple[Any, Any]) -> None:
    """A payment block's id bytes cross as buffers, not copies: the block that arrives
    has the same ids and columns."""
    r, w = pair
    tx, tx_lo, tx_hi, _ = id_spans(["t1", "t22", "t333"])
    op, op_lo, op_hi, _ = id_spans(["o1", "o2", "o3"])
    codes = np.zeros(3, np.uint16)
    b = PaymentBlock(tx, tx_lo, tx_hi, op, op_lo, op_hi, codes, ["app"], codes.copy(),
                     ["mch"], codes.copy(), ["CNY"], np.array([100, 200, 300]),
                     np.arange(3), np.full(3, -1), None, True)
    send(w, b)
    back = Inbox(r).recv()
    assert isinstance(back.tx_data, memoryview)
    assert back.record() == b.record()


def test_malformed_frames_are_refused(pair: tuple[Any, Any]) -> None:
    """Bytes that are not a frame, a frame cut short and a bad pickle in a frame are
    ValueError; the pipe's end before a frame is EOFError."""
    r, w = pair
    inbox = Inbox(r)
    w.send_bytes(b"not a pickle")  # Connection's own framing: 16 bytes, no magic number
    with pytest.raises(ValueError, match="not a link frame"):
        inbox.recv()
    parts = frame(np.arange(10))
    raw = b"".join(bytes(memoryview(x).cast("B")) for x in parts)
    bad = bytearray(raw)
    table = 8 * (struct.unpack_from("<I", raw, 4)[0] + 1)  # the sizes, after the head
    bad[16 + table + -table % 64] = 0xFF  # the pickle's first byte
    write(w, [bytes(bad)])
    with pytest.raises(pickle.UnpicklingError):
        inbox.recv()
    os.write(w.fileno(), raw[:40])
    w.close()
    with pytest.raises(ValueError, match="ended inside a frame"):
        inbox.recv()
    with pytest.raises(EOFError):
        inbox.recv()


def test_an_unguarded_script_gets_a_clear_error(tmp_path: Path) -> None:
    """A script that runs a simulation at import time (no `__main__` guard) cannot start
    an engine process: it ends with a RuntimeError that says what to do, not a bare
    BrokenPipeError or a hang."""
    script = tmp_path / "unguarded.py"
    script.write_text("from sim import run_scenario\n"
                      "from tests.test_sim_model import small\n"
                      "run_scenario(small(shoppers=2000, hours=0.5), seed=1, process=True,"
                      " report=False)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: the engine process ended")
    assert 'if __name__ == "__main__":' in last
