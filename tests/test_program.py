"""Program files: the example loads; bad files are named by file, key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import ConfigError, load_program
from tests.helpers import PROGRAM_FILE

MINIMAL = """
[program]
id = "p"
appids = ["wxapp"]
[program.merchants]
"100" = "store"
"""


def _load(tmp_path: Path, text: str):
    f = tmp_path / "p.toml"
    f.write_text(text)
    return load_program(f)


def test_example_program_loads() -> None:
    """The shipped example program is valid and complete."""
    p = load_program(PROGRAM_FILE)
    assert p.id == "quickmart" and len(p.tiers) == 3 and p.campaigns and p.events


def test_minimal_program_takes_defaults(tmp_path: Path) -> None:
    """Only id, appids and merchants are required."""
    p = _load(tmp_path, MINIMAL)
    assert (p.points_per_unit, p.expiry, p.tiers[0].name) == (1, "none", "member")


@pytest.mark.parametrize(("extra", "path", "reason"), [
    ("[program.earn]\npoints_per_unit = -1\n", "program.earn.points_per_unit", "between"),
    ("[program.earn]\npoint_per_unit = 1\n", "program.earn.point_per_unit", "unknown key"),
    ("[program.lifecycle]\nexpiry = \"weekly\"\n", "program.lifecycle.expiry", "one of"),
    ("[program.lifecycle]\nexpiry = \"rolling\"\n", "program.lifecycle.expiry_days", "required"),
    ("[[program.tiers]]\nname = \"a\"\nthreshold = 5\n", "program.tiers", "start at 0"),
    ("[[program.events]]\nkind = \"dance\"\npoints = 1\n", "program.events[0].kind", "one of"),
    ("[program.earn.fx]\nJPY = { num = 0, den = 1 }\n", "program.earn.fx.JPY.num", "> 0"),
    ("[[program.campaigns]]\nname = \"x\"\nstart = 2026-01-02T00:00:00+08:00\n"
     "end = 2026-01-01T00:00:00+08:00\nmultiplier_pct = 200\n",
     "program.campaigns[0].end", "after start"),
    ("[program.membership]\nwelcome_bonus = \"lots\"\n", "program.membership.welcome_bonus",
     "expected int"),
])
def test_bad_values_are_named(tmp_path: Path, extra: str, path: str, reason: str) -> None:
    """Each bad value names its key path and why."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, MINIMAL + extra)
    assert err.value.path == path and reason in err.value.reason
    assert str(tmp_path / "p.toml") in str(err.value)


def test_errors_name_the_line_of_the_key(tmp_path: Path) -> None:
    """A bad value's message names the file, the line of the key and the key path."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, MINIMAL + "[[program.tiers]]\nname = \"a\"\nthreshold = 0\n"
                                  "[[program.tiers]]\nname = \"b\"\nthreshold = 1\n"
                                  "multiplier_pct = -3\n")
    assert err.value.line == 13 and err.value.path == "program.tiers[1].multiplier_pct"
    assert "p.toml:13: program.tiers[1].multiplier_pct" in str(err.value)


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    """A TOML syntax error names the file and the line."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, MINIMAL + "oops = \n")
    assert "line 7" in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError, not a traceback."""
    with pytest.raises(ConfigError, match="file not found"):
        load_program(tmp_path / "nope.toml")


def test_unknown_channel(tmp_path: Path) -> None:
    """A merchant with an unknown channel is named."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, MINIMAL.replace('"store"', '"spaceport"'))
    assert err.value.path == "program.merchants.100"


def test_welcome_bonus_from_reads_a_datetime(tmp_path: Path) -> None:
    """welcome_bonus_from takes an offset datetime; a naive one is named."""
    p = _load(tmp_path, MINIMAL + "[program.membership]\n"
                                  "welcome_bonus_from = 2026-03-10T12:00:00+08:00\n")
    assert p.welcome_bonus_from_s == 1773115200
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, MINIMAL + "[program.membership]\n"
                                  "welcome_bonus_from = 2026-03-10T12:00:00\n")
    assert err.value.path == "program.membership.welcome_bonus_from"
