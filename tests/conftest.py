"""Fixtures: every engine a test builds is checked against its invariants afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core import Engine, Program, check_invariants
from tests.helpers import program


@pytest.fixture
def make_engine() -> Iterator[Callable[..., Engine]]:
    """Build engines (default: the example program with no return window and no
    campaigns' surprises unless asked); their invariants are checked at teardown."""
    made: list[Engine] = []

    def make(*programs: Program, **changes: object) -> Engine:
        eng = Engine(list(programs) or [program(**changes)])
        made.append(eng)
        return eng

    yield make
    for eng in made:
        bad = check_invariants(eng)
        assert not bad, "invariants violated after the test:\n" + "\n".join(bad)


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    """The example program with points available at once (no return window)."""
    return make_engine(return_window_days=0)
