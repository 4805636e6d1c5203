"""Reading a request's body within its size limit, and parsing a JSON body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from loadtests import errors, limits

Receive = Callable[[], Awaitable[dict[str, Any]]]

# Bodies above the notification limit are admitted only on these paths.
_LIMITS = {"/v1/events:batch": limits.BATCH_BODY_BYTES_MAX,
           "/v1/payments:columns": limits.COLUMNS_BODY_BYTES_MAX}


class Disconnected(Exception):
    """The client went away before its body arrived."""


def body_limit(path: str) -> int:
    """The largest body accepted on `path`, in bytes."""
    return _LIMITS.get(path, limits.NOTIFY_BODY_BYTES_MAX)


def check_declared(declared: bytes | None, limit: int) -> None:
    """Raise Rejection 400 for a bad Content-Length `declared`, 413 when it exceeds `limit`."""
    if declared is not None and not (declared.isdigit() and int(declared) <= limit):
        raise errors.too_large(limit) if declared.isdigit() else \
            errors.malformed("bad Content-Length")


async def read_body(headers: dict[bytes, bytes], receive: Receive, limit: int) -> bytes:
    """Return the whole body; raises Rejection 413 past `limit` bytes (by Content-Length
    or as streamed), 400 on a bad Content-Length, Disconnected when the client left."""
    check_declared(headers.get(b"content-length"), limit)
    msg = await receive()
    body = msg.get("body", b"")
    if msg.get("more_body", False) or msg["type"] != "http.request" or len(body) > limit:
        return await read_rest(msg, receive, limit)
    return body


async def read_rest(first: dict[str, Any], receive: Receive, limit: int) -> bytes:
    """Return the whole body whose first ASGI message is `first`, reading the rest from
    `receive`; raises Rejection 413 past `limit` bytes, Disconnected when the client left."""
    msg, parts, size = first, [], 0
    while True:  # bounded: each round adds bytes or ends, and size is capped
        if msg["type"] == "http.disconnect":
            raise Disconnected
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        parts.append(chunk)
        if not msg.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)
        msg = await receive()


def loads(raw: bytes) -> dict:
    """Parse a JSON object; raises Rejection 400 (malformed, or not an object)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise errors.malformed(f"malformed JSON: {str(e)[:80]}") from None
    if type(doc) is not dict:
        raise errors.bad_type("body must be a JSON object")
    return doc
