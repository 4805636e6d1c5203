"""The `paymember` command line: one entry point, subcommands registered by each package."""

from paymember.cli import main

__all__ = ["main"]
