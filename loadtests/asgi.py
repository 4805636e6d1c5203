"""ASGI plumbing shared by the service and the benchmark reference: types, answers, lifespan.

The answer to nearly every request is the same 200 `{"code":"SUCCESS"}`: its two
ASGI messages are built once (uvicorn only reads them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = dict[bytes, bytes]

SUCCESS_BODY = b'{"code":"SUCCESS"}'
JSON = [(b"content-type", b"application/json")]
TEXT = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
OK_START = {"type": "http.response.start", "status": 200,
            "headers": [*JSON, (b"content-length", b"%d" % len(SUCCESS_BODY))]}
OK_BODY = {"type": "http.response.body", "body": SUCCESS_BODY}


async def respond(send: Send, status: int, payload: bytes,
                  headers: list[tuple[bytes, bytes]]) -> None:
    """Send one whole answer: `status`, `headers` plus Content-Length, then `payload`."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", b"%d" % len(payload))]})
    await send({"type": "http.response.body", "body": payload})


async def lifespan(receive: Receive, send: Send, on_shutdown: Callable[[], None]) -> None:
    """Serve the ASGI lifespan protocol; `on_shutdown` runs once the server has drained."""
    while True:  # bounded: the server sends startup, then shutdown
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
