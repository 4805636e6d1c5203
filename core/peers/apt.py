"""Debian packages the benchmarks drive (redis-server for the Redis peer, wrk for the
service bench), installed with apt-get the first time they are missing, so that a fresh
machine needs no setup beyond the project's own commands."""

from __future__ import annotations

import os
import shutil
import subprocess

__all__ = ["ensure_program"]


def ensure_program(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` first when it is missing.

    Raises RuntimeError, naming the apt-get command and its error, when it cannot be
    installed (no apt-get, no network to the package registry, not root)."""
    path = shutil.which(command)
    if path:
        return path
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{command} is missing and apt-get is not available "
                           f"to install Debian's {package}")
    wait = ["-o", "DPkg::Lock::Timeout=120"]  # another apt run may hold the lock a while
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", *wait, "update"], ["apt-get", *wait, "install", "-y", package]):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    path = shutil.which(command)
    if not path:
        raise RuntimeError(f"{command} is still missing after apt-get install {package}")
    return path
