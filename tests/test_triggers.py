"""Trigger-based actions (`when:`): conditions checked at every coupling step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation
from emtwin.sim.engine import check_actions

RAIN_MM_H = 36.0  # 1e-5 m/s on a flat closed basin: depth = 1e-5 * t exactly, no flow


def scenario(actions: list[dict], **over: Any) -> Scenario:
    x0, y0 = 500000.0, 5500200.0
    data = {
        "name": "t", "seed": 1, "duration": "30min", "crs": "EPSG:32633",
        "outputs": {"every": "10min"},
        "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"},
        "hazards": [{"type": "flood", "rain": [[0, RAIN_MM_H]],
                     "gauges": [{"name": "g", "at": [x0 + 95, y0 - 95]}]}],
        "actions": actions,
    }  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


def _actions(res: Any) -> list[tuple[float, str, dict]]:
    ev = res.events[res.events.kind == "action"]
    return [(t, e, json.loads(d)) for t, e, d in zip(ev.time_s, ev.entity, ev.details,
                                                     strict=True)]  # fmt: skip


@pytest.mark.parametrize("key", ["depth_above", "level_above"])
def test_gauge_trigger_fires_at_first_step_after_crossing(small_world, key: str) -> None:
    # rain of 1e-5 m/s on a flat bed (z = 0): depth = level = 1e-5 t; it passes
    # 0.005 m at t = 500 s, between the coupling steps at 480 s and 540 s
    limit = 0.005
    cross_s = limit / (RAIN_MM_H / 1000.0 / 3600.0)
    assert cross_s == pytest.approx(500.0)
    sc = scenario([{"when": {"gauge": "g", key: limit}, "close_road": "north"}])
    res = Simulation(sc, world=small_world).run()
    (t, kind, details), = _actions(res)
    assert t == 540.0 and kind == "close_road"
    assert details["trigger"] == {"gauge": "g", key: limit}
    closed = res.events[res.events.kind == "road_closed"]
    assert closed.time_s.tolist() == [540.0]


def test_road_and_time_after_triggers_fire_once(small_world) -> None:
    sc = scenario([
        {"at": "15min", "close_road": "north"},
        {"when": {"road_closed": "north"}, "close_road": "east"},
        {"when": {"time_after": {"event": "road_closed", "entity": "east", "delay": "7min"}},
         "open_road": "north"},
    ])  # fmt: skip
    res = Simulation(sc, world=small_world).run()
    acts = [(t, k) for t, k, _ in _actions(res)]
    # the plan closes north at 900 s; the trigger sees it at the coupling step of 900 s;
    # east closes at 900 s, so "7 min after" is 1320 s, a coupling step
    assert acts == [(900.0, "close_road"), (900.0, "close_road"), (1320.0, "open_road")]


def test_trigger_names_are_checked() -> None:
    sc = scenario([{"when": {"gauge": "nowhere", "depth_above": 1.0}, "close_road": "north"}])
    (problem,) = check_actions(sc)
    assert "actions.0.when.gauge" in problem and "'nowhere'" in problem and "g" in problem


def test_trigger_road_is_checked_against_the_world(small_world) -> None:
    sc = scenario([{"when": {"road_closed": "nope"}, "close_road": "north"}])
    with pytest.raises(ScenarioError, match=r"actions\.0\.when\.road_closed: no road"):
        Simulation(sc, world=small_world)


@pytest.mark.parametrize("bad", [
    {"when": {"gauge": "g"}, "close_road": "north"},
    {"when": {"gauge": "g", "depth_above": 1, "level_above": 1}, "close_road": "north"},
    {"at": 60, "when": {"road_closed": "north"}, "close_road": "east"},
    {"close_road": "east"},
])  # fmt: skip
def test_malformed_triggers_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        scenario([bad])
