"""The typhoon wired into the engine: fields, flash-flood rules, state-set breaches, the drill.

Hand-computed checks: a rain threshold crossed at a time worked out by hand
fires its action then; a reservoir fed at a known rate passes its crest (or
its inflow threshold for a duration) at the time worked out by hand. The
chained drill (a short, time-shifted copy of the built-in `typhoon`)
conserves water and households, gives the same result on the same seed, and
resumes from a checkpoint exactly. A flood without a typhoon is unchanged by
the typhoon's registration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pytest
import yaml

from emtwin.scenarios.loader import builtin_path, load_scenario
from emtwin.scenarios.models import Scenario, _Model
from emtwin.sim import Component, Simulation
from emtwin.sim.checkpoint import Checkpoint
from emtwin.sim.components import HAZARDS, REGISTRY, register_hazard, unregister_hazard
from emtwin.sim.components.typhoon import TyphoonComponent
from emtwin.sim.triggers import rain_total_mm

# ---------------------------------------------------------------------------- a toy rain


class ToyRain(_Model):
    """A toy storm: `rate_mm_h` on every cell from `start_s` on."""

    type: Literal["toyrain"] = "toyrain"
    start_s: float = 0.0
    rate_mm_h: float = 30.0


class ToyRainComponent(Component):
    """Writes ``rain__rate``: 0 before ``start_s``, ``rate_mm_h`` from it on."""

    name: ClassVar[str] = "toyrain"
    hazard_type: ClassVar[str | None] = "toyrain"
    writes: ClassVar[tuple[str, ...]] = ("rain__rate",)

    def advance_to(self, time_s: float) -> None:
        spec = self.scenario.hazards_of("toyrain")[0]
        rate = spec.rate_mm_h if time_s >= spec.start_s else 0.0
        self.fields.set("rain__rate", np.full(self.world.terrain.shape, rate), writer=self.name)


@pytest.fixture
def toyrain() -> Iterator[None]:
    register_hazard(ToyRain, ToyRainComponent)
    yield
    unregister_hazard(ToyRain, ToyRainComponent)


X0, Y0 = 500000.0, 5500200.0
SQUARE = [[X0, Y0 - 200], [X0 + 200, Y0 - 200], [X0 + 200, Y0], [X0, Y0]]


def _small(**over: Any) -> Scenario:
    data = {"name": "t", "seed": 1, "duration": "2h", "crs": "EPSG:32633",
            "outputs": {"every": "10min"}, "coupling": "5min",
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.gpkg"}}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


def test_registry_puts_the_typhoon_before_the_flood() -> None:
    assert HAZARDS.index(TyphoonComponent) < [h.hazard_type for h in HAZARDS].index("flood")
    assert REGISTRY.index(TyphoonComponent) < REGISTRY.index(HAZARDS[1])


def test_rain_threshold_fires_at_the_hand_computed_time(small_world, toyrain) -> None:
    # 30 mm/h from 30 min: 10 mm in the last 30 min first at 30 + 20 = 50 min (3000 s),
    # a coupling step (5 min); the 15 mm/h rule never gets there (7.5 mm at most)
    sc = _small(
        hazards=[{"type": "toyrain", "start_s": 1800.0, "rate_mm_h": 30.0}],
        warning_rules=[{"area": SQUARE, "rain_mm": 10, "over": "30min",
                        "then": {"close_road": "north"}},
                       {"area": SQUARE, "rain_mm": 15.1, "over": "30min",
                        "then": {"close_road": "south"}}],
    )  # fmt: skip
    res = Simulation(sc, world=small_world).run()
    acts = res.events[res.events.kind == "action"]
    assert acts.entity.tolist() == ["close_road"]
    assert acts.time_s.tolist() == [3000.0]
    assert '"rain"' in acts.details.iloc[0] and '"north"' in acts.details.iloc[0]


def _rule_runs(small_world, tmp_path: Path, at_s: float) -> tuple[Any, Any]:
    """The toy storm with a 10 mm / 30 min warning rule (fires at 3000 s, as above), run
    whole, and forked at *at_s* with a plan that only adds an action at 3500 s."""
    sc = _small(
        hazards=[{"type": "toyrain", "start_s": 1800.0, "rate_mm_h": 30.0}],
        warning_rules=[{"area": SQUARE, "rain_mm": 10, "over": "30min",
                        "then": {"close_road": "north"}}],
        actions=[{"at": "10min", "close_road": "east"}],
    )  # fmt: skip
    whole = Simulation(sc, world=small_world).run()
    sim = Simulation(sc, world=small_world)
    sim.run_until(at_s)
    plan = tmp_path / "plan.yaml"
    plan.write_text("actions:\n  - {at: 3500, close_road: west}\n")
    fork = Simulation.from_checkpoint(sim.checkpoint(), plans=[plan], world=small_world).run()
    return whole, fork


def _rule_fired(res: Any) -> list[float]:
    ev = res.events
    return ev[(ev.kind == "action") & ev.details.str.contains('"north"')].time_s.tolist()


def test_a_fork_keeps_the_rain_window_of_a_warning_rule(small_world, toyrain, tmp_path) -> None:
    # forked at 40 min with 5 mm in the window: the rule still fires at 50 min (3000 s),
    # not at 60 min (30 min of rain counted from the fork)
    whole, fork = _rule_runs(small_world, tmp_path, 2400.0)
    assert _rule_fired(whole) == _rule_fired(fork) == [3000.0]


def test_a_fork_after_a_warning_rule_fired_does_not_fire_it_again(small_world, toyrain,
                                                                  tmp_path) -> None:
    whole, fork = _rule_runs(small_world, tmp_path, 3300.0)
    assert _rule_fired(whole) == _rule_fired(fork) == [3000.0]
    acts = fork.events[fork.events.kind == "action"]
    assert acts.time_s.tolist() == [600.0, 3000.0, 3500.0]


def test_rain_window_sum_by_hand() -> None:
    hist = [(0.0, 0.0), (300.0, 12.0), (600.0, 24.0)]
    # over [300, 900]: 12 mm/h for 300 s + 24 mm/h for 300 s = 1 + 2 mm
    assert rain_total_mm(hist, 900.0, 600.0) == pytest.approx(3.0, rel=1e-12)
    # over [450, 900]: 12 mm/h for 150 s + 24 mm/h for 300 s
    assert rain_total_mm(hist, 900.0, 450.0) == pytest.approx(0.5 + 2.0, rel=1e-12)


def test_a_rain_trigger_without_a_rain_field_is_refused(small_world) -> None:
    from emtwin.errors import ScenarioError

    sc = _small(warning_rules=[{"area": SQUARE, "rain_mm": 10, "over": "1h",
                                "then": {"close_road": "north"}}])  # fmt: skip
    with pytest.raises(ScenarioError, match="rain__rate"):
        Simulation(sc, world=small_world)


# ---------------------------------------------------------------------------- breach by state

POND = [[X0 + 50, Y0 - 100], [X0 + 100, Y0 - 100], [X0 + 100, Y0 - 50], [X0 + 50, Y0 - 50]]


def _pond(release_when: dict) -> Scenario:
    # 5 x 5 cells of 10 m (2,500 m2) on flat ground at 0 m, filled to 1.0 m, fed 1 m3/s
    pond = {"area": POND, "level": 1.0, "release_when": release_when}
    flood = {"type": "flood", "coupling": "1min",
             "inflows": [{"at": [X0 + 75, Y0 - 75], "hydrograph": [[0, 1.0], [7200, 1.0]]}],
             "breaches": [{"name": "pond", "reservoir": pond}]}  # fmt: skip
    return _small(hazards=[flood], coupling="1min", duration="15min", outputs={"every": "5min"})


def test_reservoir_breaches_when_its_level_passes_the_crest(small_world) -> None:
    # level = 1.0 + q t / A = 1.0 + t / 2500: 1.1 m at 250 s -> the step at 300 s
    res = Simulation(_pond({"level_above": 1.1}), world=small_world).run()
    br = res.events[res.events.kind == "breach"]
    assert br.time_s.tolist() == [300.0]
    assert '"cause": "level"' in br.details.iloc[0]
    assert abs(res.summary["flood"]["mass_error_rel"]) < 1e-9


def test_reservoir_breaches_when_inflow_holds_above_a_threshold(small_world) -> None:
    # net inflow 1 m3/s from the first step: above 0.5 since 0 s, for 2 min at 120 s
    res = Simulation(_pond({"inflow_above": 0.5, "for": "2min"}), world=small_world).run()
    br = res.events[res.events.kind == "breach"]
    assert br.time_s.tolist() == [120.0]
    assert '"cause": "inflow"' in br.details.iloc[0]


def test_a_state_set_breach_survives_a_dump_and_reload() -> None:
    # a fork re-validates the dumped scenario, and scenario.yaml is such a dump: the
    # default release_at must not come back beside release_when
    sc = load_scenario("typhoon")
    for mode in ("python", "json"):
        data = sc.model_dump(mode=mode, by_alias=True, exclude={"source"}, exclude_none=True)
        res = data["hazards"][0]["breaches"][0]["reservoir"]
        assert "release_at" not in res and res["release_when"]["level_above"] == 31.3
        again = Scenario.model_validate(data, context={"check_files": False})
        assert again.hazards[0].breaches[0].reservoir == sc.hazards[0].breaches[0].reservoir


# ---------------------------------------------------------------------------- flood unchanged


@pytest.mark.slow
def test_flood_without_a_typhoon_is_unchanged() -> None:
    """A riverside run takes the flood's own path (no field read) and equals the run
    with the typhoon taken out of the registry (the seam's registry)."""
    sc = load_scenario("riverside", overrides={"duration": "10min", "evacuation": None,
                                               "response": None, "actions": []})  # fmt: skip
    sim = Simulation(sc)
    a = sim.run()
    assert sim.component("flood")._ext_rain is None and sim.component("typhoon") is None
    i = REGISTRY.index(TyphoonComponent)
    REGISTRY.remove(TyphoonComponent)
    try:
        b = Simulation(sc).run()
    finally:
        REGISTRY.insert(i, TyphoonComponent)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
    pd.testing.assert_frame_equal(a.tables["gauges"], b.tables["gauges"], check_exact=True)


# ---------------------------------------------------------------------------- the drill


def _drill(tmp: Path, shift_h: float = 4.5, duration: str = "20min") -> Scenario:
    """The built-in drill, short, with the storm *shift_h* hours on (at the start the
    storm is where the drill has it *shift_h* hours in)."""
    src = builtin_path("typhoon")
    data = yaml.safe_load(src.read_text())
    track = pd.read_csv(src.parent / "typhoon-track.csv")
    track["time_s"] -= shift_h * 3600.0
    track.to_csv(tmp / "track.csv", index=False)
    data["duration"] = duration
    storm = next(h for h in data["hazards"] if h["type"] == "typhoon")
    storm["track"] = "track.csv"
    storm.pop("evacuation_warning")  # the forecast arrival is before this copy's start
    data["outputs"] = {"every": "10min", "map": False, "report": False}
    (tmp / "drill.yaml").write_text(yaml.safe_dump(data))
    return load_scenario(tmp / "drill.yaml")


@pytest.fixture(scope="module")
def drill_runs(tmp_path_factory) -> tuple[Any, Any, Any, Any]:
    """The drill run twice, resumed from a checkpoint at 10 min, and forked there with a
    plan that warns the shore at 15 min (an evacuation action: the hazards are untouched)."""
    tmp = tmp_path_factory.mktemp("drill")
    sc = _drill(tmp)
    a = Simulation(sc).run()
    b = Simulation(sc).run()
    half = Simulation(sc)
    half.run_until(600.0)
    path = half.checkpoint().save(tmp / "half.ck")
    c = Simulation.from_checkpoint(Checkpoint.load(path)).run()
    plan = tmp / "warn-shore.yaml"
    plan.write_text("actions:\n  - {at: 15min, warn: shore}\n")
    d = Simulation.from_checkpoint(Checkpoint.load(path), plans=[plan]).run()
    return a, b, c, d


@pytest.mark.slow
def test_drill_chains_wind_rain_surge_and_closures(drill_runs) -> None:
    a, *_ = drill_runs
    ty, fl = a.summary["typhoon"], a.summary["flood"]
    assert ty["max_wind_m_s"] > 17.5 and ty["roads_blocked"] > 0
    assert ty["clearance_calls"] > 0
    assert fl["ledger_m3"]["rain_in"] > 0  # the storm's rain reached the flood
    ev = a.events
    assert (ev[ev.kind == "road_closed"].details.str.contains('"wind"')).any()
    assert {"max_wind", "max_gust", "wind_arrival"} <= set(a.rasters)
    assert set(a.tables["wind_gauges"].gauge) == {"harbour", "town"}
    assert a.summary["consequences"]["buildings"] > 0  # the drill reports damage and life loss


@pytest.mark.slow
def test_drill_conserves_water_and_households(drill_runs) -> None:
    a, *_ = drill_runs
    assert abs(a.summary["flood"]["mass_error_rel"]) < 1e-9
    ev = a.summary["evacuation"]
    parts = ("sheltered", "out", "stranded", "never_left", "travelling")
    assert sum(ev[k] for k in parts) == ev["people"] == 20000
    assert sum(ev["households_by_state"].values()) == ev["households"]


@pytest.mark.slow
def test_drill_same_seed_same_result(drill_runs) -> None:
    a, b, *_ = drill_runs
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)
    for k in a.rasters:
        np.testing.assert_array_equal(a.rasters[k], b.rasters[k])


@pytest.mark.slow
def test_drill_resumed_from_a_checkpoint_equals_the_uninterrupted_run(drill_runs) -> None:
    a, _, c, _ = drill_runs
    pd.testing.assert_frame_equal(a.events, c.events, check_exact=True)
    pd.testing.assert_frame_equal(a.timeseries, c.timeseries, check_exact=True)
    assert a.summary["typhoon"] == c.summary["typhoon"]
    for k in ("max_wind", "max_gust", "wind_arrival", "max_depth"):
        np.testing.assert_array_equal(a.rasters[k], c.rasters[k])


@pytest.mark.slow
def test_drill_forked_mid_storm_keeps_the_storm(drill_runs) -> None:
    """The fork's plan acts on the evacuation only: the storm's wind, rain and surge, and
    so the water and the wind damage, continue exactly as in the uninterrupted run."""
    a, _, _, d = drill_runs
    for k in ("max_wind", "max_gust", "wind_arrival", "max_depth"):
        np.testing.assert_array_equal(a.rasters[k], d.rasters[k])
    assert a.summary["flood"]["ledger_m3"] == d.summary["flood"]["ledger_m3"]
    assert a.summary["typhoon"]["roads_blocked"] == d.summary["typhoon"]["roads_blocked"]
    pd.testing.assert_frame_equal(a.tables["wind_gauges"], d.tables["wind_gauges"])
    pd.testing.assert_frame_equal(a.tables["gauges"], d.tables["gauges"])
    pd.testing.assert_frame_equal(a.tables["storm_track"], d.tables["storm_track"])
    np.testing.assert_array_equal(a.frames["wind_speed"][1], d.frames["wind_speed"][1])
    ev_a, ev_d = a.events, d.events
    pd.testing.assert_frame_equal(ev_a[ev_a.time_s <= 600.0].reset_index(drop=True),
                                  ev_d[ev_d.time_s <= 600.0].reset_index(drop=True))  # fmt: skip
    acts = ev_d[ev_d.kind == "action"]
    assert 900.0 in acts.time_s.tolist()


def test_typhoon_without_a_flood_runs_wind_only(tmp_path: Path) -> None:
    sc = _drill(tmp_path, duration="10min")
    data = yaml.safe_load((tmp_path / "drill.yaml").read_text())
    data["hazards"] = [h for h in data["hazards"] if h["type"] == "typhoon"]
    for k in ("evacuation", "response", "warning_rules", "consequences"):
        data.pop(k)
    (tmp_path / "wind.yaml").write_text(yaml.safe_dump(data))
    sc = load_scenario(tmp_path / "wind.yaml")
    sim = Simulation(sc)
    res = sim.run()
    assert [c.name for c in sim.components][:1] == ["typhoon"]
    assert sim.state.has("wind__speed") and not sim.state.has("rain__rate")
    assert not sim.state.has("sea__level")
    assert res.summary["typhoon"]["max_wind_m_s"] > 17.5


# ---------------------------------------------------------------------------- facility losses


def test_facility_lost_is_one_field_that_several_components_write() -> None:
    """``facility__lost`` merges its writers' parts (earliest time wins); any other field
    still has one writer."""
    from emtwin.errors import SimulationError
    from emtwin.sim.state import State

    class Part:
        def __init__(self, part: dict) -> None:
            self.part = part

        def __call__(self) -> dict:
            return self.part

    st = State(None)
    st.provide("facility__lost", Part({"hospital": {"A": 900.0}, "pump": {"P": 50.0}}),
               writer="consequences")  # fmt: skip
    st.provide("facility__lost", Part({"hospital": {"A": 600.0, "B": 1200.0}}),
               writer="typhoon")  # fmt: skip
    assert st.get("facility__lost") == {"hospital": {"A": 600.0, "B": 1200.0},
                                        "pump": {"P": 50.0}}  # fmt: skip
    st.set("water__time", 0.0, writer="flood")
    with pytest.raises(SimulationError, match="written by flood"):
        st.set("water__time", 1.0, writer="typhoon")


def test_a_facility_lost_to_wind_is_in_the_shared_field(small_world, tmp_path: Path) -> None:
    """The storm's wind losses act through ``facility__lost`` (the field the dispatch and
    the evacuation read), with the time of the ``facility_lost`` event."""
    from test_typhoon_map import _scenario

    data = _scenario(tmp_path, typhoon=True).model_dump(mode="json", by_alias=True,
                                                        exclude_none=True)  # fmt: skip
    data["duration"] = "20min"
    data["hazards"][1]["facility_wind_limits"] = {"stations": 5.0}
    sc = Scenario.model_validate(data, context={"check_files": False})
    sim = Simulation(sc, world=small_world)
    sim.run()
    ev = sim.recorder.events()
    lost = ev[ev.kind == "facility_lost"]
    assert list(lost.entity) == ["North"] and '"facility": "station"' in lost.details.iloc[0]
    assert sim.state.get("facility__lost") == {"station": {"North": lost.time_s.iloc[0]}}
