"""Shared type names of the service: what it needs from an engine and from a journal."""

from __future__ import annotations

from typing import Any, Protocol


class OutcomeLike(Protocol):
    """The engine's Outcome as the service reads it."""

    @property
    def ok(self) -> bool:
        """True when the input is acknowledged."""
        ...

    @property
    def code(self) -> str:
        """The result code (a StrEnum)."""
        ...

    @property
    def message(self) -> str:
        """Why, for a rejection."""
        ...


class EngineLike(Protocol):
    """The part of `core.Engine` the service calls."""

    def pay_columns(self, cols: Any) -> list[Any]:
        """Apply payments given as `core.PaymentColumns`; one Outcome each."""
        ...

    def pay_block(self, block: Any) -> list[Any]:
        """Apply payments given as a `core.PaymentBlock`; one Outcome each."""
        ...

    def submit(self, kind: str, data: Any) -> OutcomeLike:
        """Apply one plain-dict input; never raises."""
        ...

    def balance(self, program_id: str, unionid: str = "", appid: str = "",
                openid: str = "") -> Any:
        """Return the Balance of an account, or None."""
        ...

    def stats(self) -> dict[str, Any]:
        """Return counters of the engine's state."""
        ...


class Journal(Protocol):
    """Durability hook: records acknowledged inputs before the service answers 200."""

    def append(self, kind: str, data: Any) -> None:
        """Record one applied input."""
        ...

    def append_payments_record(self, payload: bytes, count: int) -> None:
        """Record `count` payments received as one compact payments record."""
        ...

    def append_payments(self, cols: Any) -> None:
        """Record applied payments given as `core.PaymentColumns`, in order."""
        ...

    def flush(self) -> None:
        """Make every appended input durable."""
        ...

    def close(self) -> None:
        """Flush and release the journal."""
        ...
