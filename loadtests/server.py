"""Running the service: one uvicorn server per shard, each in its own process.

Shard i listens on port+i (or on its own free port when port is 0) and owns
one Engine; clients route each request with `core.shard_of(openid, shards)`.
The parent binds every socket first (so a port in use is a clear start-up
error), then starts one process per shard and forwards SIGTERM/SIGINT to them.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

from loadtests import limits
from loadtests.app import Service
from loadtests.settings import Settings, StartupError, bind, check, shard_config

log = logging.getLogger("paymember.service")
GC_GEN0_THRESHOLD = 50_000


def build_service(settings: Settings, shard: int) -> Service:
    """Return the ASGI app of `shard` with a fresh engine; raises StartupError."""
    from core import Engine, check_invariants, load_program, shard_of

    config = shard_config(settings, shard)
    journal = None
    if settings.journal is not None:
        from loadtests.durability import open_journal

        engine, journal = open_journal(Path(settings.journal), shard, settings.shards,
                                       settings.programs, settings.fsync)
    else:
        engine = Engine([load_program(p) for p in settings.programs])
    return Service(config, engine, journal, shard_of=shard_of, check_invariants=check_invariants)


def serve_socket(app: Service, sock: socket.socket,
                 buffer_bytes: int = limits.RECEIVE_BUFFER_BYTES) -> None:
    """Serve `app` on the listening `sock` with uvicorn (uvloop, httptools) until signalled,
    letting a connection buffer up to `buffer_bytes` of a body before it stops reading."""
    import uvicorn
    from uvicorn.protocols.http import httptools_impl

    # uvicorn stops reading a connection once 64 KiB of body wait for the app, and hands
    # the app each piece as a new bytes: a 6 MB columnar body came as ~100 pieces, each a
    # wake-up, a copy and a pause/resume of reading. The app holds a body whole anyway
    # (up to its route's limit), so the buffer may hold as much before pausing.
    httptools_impl.HIGH_WATER_LIMIT = buffer_bytes

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after draining, which turns a clean
            # stop into "killed by SIGTERM"; a drained stop is exit status 0.
            self._captured_signals.clear()

    config = uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="on",
                            access_log=False, log_level="warning", server_header=False,
                            date_header=False, backlog=2048,
                            timeout_graceful_shutdown=limits.SHUTDOWN_DRAIN_S)
    # The engine holds millions of long-lived objects: freeze them out of the
    # collector's sight and collect the young generation less often, so that a
    # full collection does not stall requests for tens of milliseconds.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)
    Server(config).run(sockets=[sock])


def _shard_main(settings: Settings, shard: int, sock: socket.socket) -> None:
    try:
        app = build_service(settings, shard)
    except StartupError as e:
        print(f"paymember serve: shard {shard}: {e}", file=sys.stderr)
        sys.exit(2)
    serve_socket(app, sock, max(limits.RECEIVE_BUFFER_BYTES, settings.columns_body_bytes_max))


def urls_of(settings: Settings, socks: list[socket.socket]) -> list[str]:
    """Return the base URL of each shard's socket."""
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    return [f"http://{host}:{s.getsockname()[1]}" for s in socks]


def run(settings: Settings) -> int:
    """Start every shard and wait for them; returns the exit status (2: start-up error)."""
    try:
        check(settings)
        socks = [bind(settings.host, settings.port + i if settings.port else 0)
                 for i in range(settings.shards)]
    except StartupError as e:
        print(f"paymember serve: {e}", file=sys.stderr)
        return 2
    urls = urls_of(settings, socks)
    if settings.urls_file:
        tmp = Path(settings.urls_file + ".tmp")
        tmp.write_text(json.dumps({"urls": urls, "shards": settings.shards}))
        tmp.replace(settings.urls_file)
    for i, url in enumerate(urls):
        print(f"paymember serve: shard {i}/{settings.shards} on {url}", flush=True)
    if settings.shards == 1:
        try:
            app = build_service(settings, 0)
        except StartupError as e:
            print(f"paymember serve: {e}", file=sys.stderr)
            return 2
        serve_socket(app, socks[0], max(limits.RECEIVE_BUFFER_BYTES,
                                        settings.columns_body_bytes_max))
        return 0
    return _supervise(settings, socks)


def _supervise(settings: Settings, socks: list[socket.socket]) -> int:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_shard_main, args=(settings, i, s), name=f"shard-{i}")
             for i, s in enumerate(socks)]
    for p in procs:
        p.start()

    signalled: set[int] = set()

    def stop(signum: int, frame: FrameType | None) -> None:
        # One SIGTERM per shard: uvicorn drains on the first and treats a second
        # one that lands after it restored its handlers as "die now".
        for i, p in enumerate(procs):
            if i not in signalled and p.is_alive():
                signalled.add(i)
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # When one shard dies the service is incomplete: stop the others too.
    while all(p.is_alive() for p in procs):
        multiprocessing.connection.wait([p.sentinel for p in procs])
    stop(signal.SIGTERM, None)
    for p in procs:
        p.join(limits.SHUTDOWN_DRAIN_S + 5)
        if p.is_alive():
            p.kill()
            p.join()
    codes = [p.exitcode or 0 for p in procs]
    if 2 in codes:
        return 2
    # A shard that got a terminal's SIGINT as well as our SIGTERM may end "by signal".
    clean = (0, -signal.SIGTERM, -signal.SIGINT) if signalled else (0,)
    return 0 if all(c in clean for c in codes) else 1
