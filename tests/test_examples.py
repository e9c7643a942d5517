"""The example plans shipped in examples/plans lay over their built-in drill as they say."""

from __future__ import annotations

from pathlib import Path

from emtwin.scenarios.loader import load_scenario

PLANS = Path(__file__).parent.parent / "examples" / "plans"


def test_more_boats_plan_doubles_the_boats() -> None:
    base = load_scenario("riverside", check_files=False)
    plan = load_scenario("riverside", plans=[PLANS / "riverside-more-boats.yaml"],
                         check_files=False)  # fmt: skip

    def boats(s) -> int:
        return sum(r.count for r in s.response.resources if r.type == "boat")

    assert (boats(base), boats(plan)) == (3, 6)
    others = [r for r in plan.response.resources if r.type != "boat"]
    assert others == [r for r in base.response.resources if r.type != "boat"]


def test_early_warning_plan_warns_half_an_hour_earlier() -> None:
    base = load_scenario("riverside", check_files=False)
    plan = load_scenario("riverside", plans=[PLANS / "riverside-early-warning.yaml"],
                         check_files=False)  # fmt: skip
    assert base.evacuation.warning.at - plan.evacuation.warning.at == 1800.0
    assert plan.evacuation.zones == base.evacuation.zones  # the valley keeps its own
