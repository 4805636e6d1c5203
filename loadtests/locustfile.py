"""Locust entry point for a scenario's mix: `locust -f loadtests/locustfile.py` (via the runner)."""

import locust  # noqa: F401 - first: gevent monkey-patching

from loadtests.users import MixUser, StagesShape

__all__ = ["MixUser", "StagesShape"]
