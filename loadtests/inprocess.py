"""Calling the ASGI app in-process, without a server: for tests and for measuring its own cost."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from loadtests.app import Service


async def call_app_async(app: Service, method: str, path: str, body: bytes = b"",
                     headers: dict[str, str] | None = None, query: bytes = b"",
                     chunks: int = 1) -> tuple[int, bytes]:
    """Send one request to `app` (body split into `chunks` messages); return (status, body)."""
    size = max(1, -(-len(body) // chunks))
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    msgs = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)]
    msgs.reverse()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return msgs.pop() if msgs else {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    hdrs = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": hdrs}
    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def call_app(app: Service, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None, query: bytes = b"",
         chunks: int = 1) -> tuple[int, Any]:
    """Send one request to `app`; return (status, the answer as JSON, or text if not JSON)."""
    status, payload = asyncio.run(call_app_async(app, method, path, body, headers, query, chunks))
    try:
        return status, orjson.loads(payload)
    except orjson.JSONDecodeError:
        return status, payload.decode()
