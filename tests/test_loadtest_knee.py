"""The knee of a step-load run: the highest load met before the first stage that broke the SLO."""

from __future__ import annotations

from loadtests.scenario import Slo
from loadtests.summary import slo_breaches, sustainable

SLO = Slo(latency_ms_p99=5.0, error_rate_max=0.001)


def stage(i: int, offered: float, p99_ms: float, error_rate: float = 0.0,
          achieved: float | None = None, requests: int = 1000) -> dict:
    """A synthetic stage row as summary.stage_rows makes it."""
    broken_by = slo_breaches(requests, p99_ms, error_rate, SLO)
    return {"stage": i, "offered_per_s": offered,
            "achieved_per_s": offered if achieved is None else achieved,
            "error_rate": error_rate, "latency_ms": {"p99_ms": p99_ms},
            "slo_ok": not broken_by, "slo_broken_by": broken_by}


def test_breaches_name_each_broken_bound() -> None:
    """Each broken bound is named with its figure; a stage within the SLO has none."""
    assert slo_breaches(1000, 5.0, 0.001, SLO) == []
    assert slo_breaches(1000, 16.511, 0.0, SLO) == ["p99 16.511 ms > 5 ms"]
    assert slo_breaches(1000, 2.0, 0.02, SLO) == ["error rate 0.02 > 0.001"]
    assert slo_breaches(0, 0.0, 0.0, SLO) == ["no requests answered"]
    assert slo_breaches(10, 9.0, 0.5, SLO) == ["p99 9 ms > 5 ms", "error rate 0.5 > 0.001"]


def test_a_stage_passing_after_the_first_break_is_not_the_knee() -> None:
    """Last session's run: 6,000/s broke the SLO, 7,000/s passed by luck, 8,000/s broke.
    The knee is 5,000/s, and the report says which stage broke and why."""
    p99s = [1.279, 2.511, 2.319, 2.239, 2.191, 16.511, 4.383, 15.743, 185.3, 1499.0]
    offered = [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12000]
    rows = [stage(i, o, p) for i, (o, p) in enumerate(zip(offered, p99s, strict=True))]
    rows[4]["achieved_per_s"] = 4990.5
    knee = sustainable(rows)
    assert knee["sustainable_per_s"] == 4990.5
    assert knee["sustainable_offered_per_s"] == 5000
    assert knee["sustainable_stage"] == 4
    assert knee["first_stage_breaking_slo"] == 5
    assert knee["knee"] == "stage 5 (offered 6000/s) broke the SLO: p99 16.511 ms > 5 ms"
    assert knee["passed_after_break"] == [6]


def test_no_break_takes_the_highest_offered_load() -> None:
    """When every stage meets the SLO, the knee is the highest offered load, wherever it ran."""
    rows = [stage(0, 1000, 1.0), stage(1, 3000, 2.0, achieved=2990.0), stage(2, 2000, 1.5)]
    knee = sustainable(rows)
    assert (knee["sustainable_per_s"], knee["sustainable_stage"]) == (2990.0, 1)
    assert knee["first_stage_breaking_slo"] is None
    assert knee["knee"] == "no stage broke the SLO" and knee["passed_after_break"] == []


def test_only_stages_before_the_break_count_whatever_their_order() -> None:
    """A ramp that goes down before the break: the highest load met before it is the knee."""
    rows = [stage(0, 3000, 2.0), stage(1, 1000, 1.0), stage(2, 4000, 3.0, error_rate=0.01),
            stage(3, 5000, 2.0)]
    knee = sustainable(rows)
    assert knee["sustainable_stage"] == 0 and knee["sustainable_per_s"] == 3000
    assert knee["knee"] == "stage 2 (offered 4000/s) broke the SLO: error rate 0.01 > 0.001"
    assert knee["passed_after_break"] == [3]


def test_a_first_stage_that_breaks_leaves_nothing_sustainable() -> None:
    """When the first stage already breaks the SLO, nothing is sustainable."""
    knee = sustainable([stage(0, 1000, 0.0, requests=0), stage(1, 2000, 1.0)])
    assert knee["sustainable_per_s"] == 0.0 and knee["sustainable_stage"] is None
    assert knee["knee"] == "stage 0 (offered 1000/s) broke the SLO: no requests answered"
    assert knee["passed_after_break"] == [1]


def test_no_stages_no_knee() -> None:
    """A run without stages (a trace replay) has no knee."""
    knee = sustainable([])
    assert knee["sustainable_per_s"] == 0.0 and knee["first_stage_breaking_slo"] is None
