"""Scenario files: every shipped scenario loads; bad ones name file, key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import ConfigError
from paymember.cli import main
from sim import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
REQUIRED = ("weekday_city", "transit_rush_hour", "welcome_bonus_whatif",
            "friend_membership_rollout", "singles_day_peak")


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (SCENARIOS / "weekday_city.toml").read_text()
    assert old in text
    path = tmp_path / "weekday_city.toml"
    path.write_text(text.replace(old, new, 1))
    (tmp_path / "programs").mkdir(exist_ok=True)
    for p in (SCENARIOS / "programs").glob("*.toml"):
        (tmp_path / "programs" / p.name).write_text(p.read_text())
    return path


@pytest.mark.parametrize("name", REQUIRED)
def test_required_scenarios_load(name: str) -> None:
    """Each scenario the issue names exists and loads without error."""
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    assert sc.name == name and sc.shoppers > 0 and sc.places and sc.segments


@pytest.mark.parametrize(("old", "new", "path", "reason"), [
    ("[population]", "[population]\nshopers = 3", "population.shopers", "unknown key"),
    ("share = 0.35", "share = 1.35", "segments[0].share", "probability"),
    ("convenience = 1.2, transit", "cafe = 1.2, transit", "segments[0].visits_per_day.cafe",
     "unknown place"),
    ('dist = "lognormal", mean = 40.0', 'dist = "gamma", mean = 40.0',
     "places[0].service_s.dist", "must be one of"),
    ("lanes = 2", "lanes = 0", "places[0].lanes", "between"),
    ('stock_id = "corner-5off20"', 'stock_id = "nope"', "campaigns[0].stock_id",
     "no coupon stock"),
    ('channel = "store"', 'channel = "transit"', "places[0].channel", "no merchant"),
    ("block_minutes = 15", "block_minutes = 7", "scenario.block_minutes", "divide 60"),
])
def test_bad_values_name_file_key_path_and_reason(tmp_path: Path, old: str, new: str, path: str,
                                                  reason: str) -> None:
    """A bad value raises ConfigError carrying the file, the key path and the reason."""
    f = _variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as e:
        load_scenario(f)
    assert e.value.path == path and reason in e.value.reason and str(f) in e.value.file


def test_missing_program_file_is_named(tmp_path: Path) -> None:
    """A program file that does not exist is reported at its key."""
    f = _variant(tmp_path, 'file = "programs/metro.toml"', 'file = "programs/none.toml"')
    with pytest.raises(ConfigError) as e:
        load_scenario(f)
    assert e.value.path == "programs[1].file"


def test_cli_bad_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`paymember simulate` on a bad scenario prints file, key path and reason; exit 2."""
    f = _variant(tmp_path, "[population]", "[population]\nshopers = 3")
    assert main(["simulate", str(f), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "population.shopers" in err and "unknown key" in err
