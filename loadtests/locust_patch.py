"""A work-around for a Locust worker stall on every change of the user count.

Locust 2.x workers, on each `spawn` message from the master, filter the
master's options with `k not in argument_parser.default_args_dict()` once per
option, and that call builds and runs a whole argparse parser (~2.5 ms) each
time: some 70 options stall the worker's gevent loop, and so every user in it,
for about 0.1-0.25 s whenever the count changes (measured here: every send
stops for 0.18-0.25 s at each stage change of a closed-loop scenario). The
defaults cannot change during a run, so they are computed once.

Imported only from modules that Locust loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from locust import argument_parser


def cache_default_args() -> Callable[[], Mapping[str, Any]]:
    """Make `locust.argument_parser.default_args_dict` compute its (read-only) answer once;
    returns the function now installed. Idempotent."""
    current = argument_parser.default_args_dict
    if getattr(current, "paymember_cached", False):
        return current
    defaults = MappingProxyType(current())

    def default_args_dict() -> Mapping[str, Any]:
        return defaults

    default_args_dict.paymember_cached = True  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict  # type: ignore[assignment]
    return default_args_dict
