"""The Locust work-around: a worker no longer rebuilds argparse once per option per spawn.

Locust monkey-patches the process with gevent on import, so the checks run in a
subprocess.
"""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import inspect
from locust import argument_parser
from locust.runners import WorkerRunner

# The worker filters the master's options through the module attribute, so the
# patch reaches it; if Locust changes this, the work-around needs a new look.
assert "argument_parser.default_args_dict()" in inspect.getsource(WorkerRunner.handle_message)

expected = argument_parser.default_args_dict()
from loadtests.locust_patch import cache_default_args
installed = cache_default_args()
assert cache_default_args() is installed  # idempotent
assert argument_parser.default_args_dict is installed

builds = []
original_builder = argument_parser.get_empty_argument_parser


def counting_builder(*a, **k):
    builds.append(1)
    return original_builder(*a, **k)


argument_parser.get_empty_argument_parser = counting_builder
for _ in range(100):
    got = argument_parser.default_args_dict()
    assert dict(got) == expected
assert builds == [], f"parser rebuilt {len(builds)} times"
try:
    got["users"] = 5
except TypeError:
    pass
else:
    raise AssertionError("the cached defaults must be read-only")
print("ok")
"""


def test_default_args_are_computed_once_and_equal_locusts() -> None:
    """After the patch, Locust's defaults equal its own and no parser is built per call."""
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
