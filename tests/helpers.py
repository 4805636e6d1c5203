"""Builders shared by the engine tests: programs, payments, times."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from core import Payment, Program, Refund, load_program, parse_time

ROOT = Path(__file__).resolve().parent.parent
PROGRAM_FILE = ROOT / "scenarios/programs/convenience.toml"
APP = "wxquickmartmini00001"
APP2 = "wxquickmartoffacct01"
STORE = "1900000101"
STORE2 = "1900000102"
TRANSIT = "1900000201"
MINI = "1900000301"
T0 = parse_time("2026-03-02T09:00:00+08:00")  # a Monday morning, outside the lunch campaign
LUNCH = parse_time("2026-03-02T12:30:00+08:00")
DAY = 86_400


def program(**changes: object) -> Program:
    """The example program, with `changes` to its fields."""
    return dataclasses.replace(load_program(PROGRAM_FILE), **changes)


def oid(n: int) -> str:
    """A 28-character openid for shopper number `n`."""
    return f"oPENID{n:022d}"


def uid(n: int) -> str:
    """A 28-character unionid for person number `n`."""
    return f"uNION{n:023d}"


def pay(n: int, who: int, total: int = 2000, t: int = T0, app: str = APP, mch: str = STORE,
        **kw: object) -> Payment:
    """Payment number `n` by shopper `who`."""
    return Payment(f"42{n:030d}", app, mch, oid(who), total, t, **kw)  # type: ignore[arg-type]


def refund(n: int, of: int, amount: int, total: int = 2000, t: int = T0 + 3600,
           mch: str = STORE, **kw: object) -> Refund:
    """Refund number `n` of payment number `of`."""
    return Refund(f"50{n:030d}", f"42{of:030d}", mch, amount, total, t, **kw)  # type: ignore[arg-type]


def bad_outcome_columns(n: int) -> tuple[tuple[Any, ...], np.ndarray, list[tuple[str, tuple, Any]]]:
    """For an `_into` entry point of `n` rows: good outcome columns and positions, and the
    bad ones it must refuse, each with the start of its ValueError's message."""
    at = np.arange(n, dtype=np.int64)
    good = (np.zeros(n, np.int16), np.zeros(n, np.int64), np.zeros(n, np.int8))
    return good, at, [
        ("differ in length", (good[0], good[1][:-1], good[2]), at),
        ("positions for", good, at[:-1]),
        ("outside the columns", good, at + 1),
        ("outside the columns", good, at - 1),
        ("Buffer dtype mismatch", (good[1], good[1], good[2]), at),
    ]
