"""Locust entry point for trace replay: `locust -f loadtests/locustfile_trace.py`."""

import locust  # noqa: F401 - first: gevent monkey-patching

from loadtests.users_trace import TraceUser

__all__ = ["TraceUser"]
