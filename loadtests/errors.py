"""The named rejections of the service: HTTP status, a metric-safe code and a message."""

from __future__ import annotations


class Rejection(Exception):
    """A request refused with `status` (4xx/5xx), `code` (snake_case) and a `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def missing_headers() -> Rejection:
    """Return the rejection for a request without the Wechatpay-* signature headers."""
    return Rejection(401, "missing_signature", "missing Wechatpay-Timestamp, -Nonce or -Signature")


def bad_signature() -> Rejection:
    """Return the rejection for a signature that does not verify."""
    return Rejection(401, "bad_signature", "signature verification failed")


def stale_timestamp() -> Rejection:
    """Return the rejection for a timestamp outside the accepted window."""
    return Rejection(401, "stale_timestamp", "timestamp outside the accepted window")


def replayed_nonce() -> Rejection:
    """Return the rejection for a nonce already seen within the window."""
    return Rejection(401, "replayed_nonce", "nonce already used")


def malformed(message: str) -> Rejection:
    """Return the rejection for a body that is not the expected JSON (`message` says why)."""
    return Rejection(400, "malformed", message)


def bad_type(message: str) -> Rejection:
    """Return the rejection for a field of the wrong JSON type (`message` names it)."""
    return Rejection(400, "bad_type", message)


def bad_value(message: str) -> Rejection:
    """Return the rejection for a field with a value out of its domain (`message` names it)."""
    return Rejection(400, "bad_value", message)


def too_large(limit: int) -> Rejection:
    """Return the rejection for a body above `limit` bytes."""
    return Rejection(413, "body_too_large", f"body exceeds {limit} bytes")
