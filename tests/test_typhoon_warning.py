"""The hurricane-planning warning per zone: warning times and margins worked out by hand.

A stationary storm appears at 2 h with the town inside its storm-force wind,
so storm-force wind arrives over every zone at exactly 7200 s (the forecast's
first step is the track's start). Two zones: `west` with a 1 h clearance is
warned at 7200 - 3600 = 3600 s; `east` with 3 h would need a warning at
-3600 s, so it is warned at 0 s, 3600 s too late. Each zone's margin is 7200 s
minus the last arrival in safety of its own households, taken here from the
evacuation's households table (its zone column), not from the typhoon.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import UTM33, points

from emtwin.geo.crs import to_crs_xy
from emtwin.geo.world import World
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation
from emtwin.typhoon.warning import ZoneWarning, plan_zone, zone_table

X0, Y0 = 500000.0, 5500200.0  # the small world's north-west corner (UTM 33N)
WEST = [[X0, Y0 - 200], [X0 + 100, Y0 - 200], [X0 + 100, Y0], [X0, Y0]]
EAST = [[X0 + 100, Y0 - 200], [X0 + 200, Y0 - 200], [X0 + 200, Y0], [X0 + 100, Y0]]


def test_plan_and_table_by_hand() -> None:
    arrival = np.array([[np.nan, 9000.0], [7200.0, 8000.0]])
    west = plan_zone("west", arrival, 3600.0)
    assert (west.wind_arrival_s, west.warning_s, west.too_late_s) == (7200.0, 3600.0, 0.0)
    east = plan_zone("east", arrival, 10800.0)
    assert (east.warning_s, east.too_late_s) == (0.0, 3600.0)
    never = plan_zone("hill", np.full(3, np.nan), 600.0)
    assert never.wind_arrival_s is None and never.warning_s is None
    west.households, east.households = np.array([0, 1]), np.array([2, 3, 4])
    never.households = np.array([5])
    t = zone_table([west, east, never], {0: 5000.0, 1: 6100.0, 2: 7000.0, 3: 8100.0})
    assert t.zone.tolist() == ["west", "east", "hill"]
    assert t.households.tolist() == [2, 3, 1]
    assert t.households_cleared.tolist() == [2, 2, 0]
    assert t.clearance_end_s.tolist()[:2] == [6100.0, 8100.0]
    assert t.margin_s.tolist()[:2] == [7200.0 - 6100.0, 7200.0 - 8100.0]
    assert np.isnan(t.margin_s.iloc[2]) and np.isnan(t.warning_s.iloc[2])
    # an older checkpoint's zone, households unknown: every household counts
    old = zone_table([ZoneWarning("all", 7200.0, 3600.0, 3600.0, 0.0)], {0: 5000.0, 3: 8100.0})
    assert old.households.tolist() == [-1] and old.margin_s.tolist() == [-900.0]


@pytest.fixture()
def two_zone_world(small_world) -> World:
    # 10 people in each half of the town, well inside their zone, at the corner nodes 1
    # (west) and 2 (east); the School (capacity 50) at node 3
    pop = points(UTM33, [(X0 + 55, Y0 - 55), (X0 + 145, Y0 - 55)], people=[10.0, 10.0],
                 node=[0, 1], snap_m=[5.0, 5.0])  # fmt: skip
    school = points(UTM33, [(X0 + 140, Y0 - 140)], name=["School"], capacity=[50.0], node=[2],
                    snap_m=[10.0])  # fmt: skip
    places = dataclasses.replace(small_world.places, population=pop, shelters=school)
    return dataclasses.replace(small_world, places=places)


def _scenario(tmp_path: Path) -> Scenario:
    # stationary, 970 hPa, Rmax 30 km, centre 30 km west: ~40 m/s over the town
    lon, lat = to_crs_xy(X0 + 100 - 30e3, Y0 - 100, "EPSG:32633", "EPSG:4326")
    track = tmp_path / "track.csv"
    track.write_text("time_s,lon,lat,pressure_hpa,rmax_km\n"
                     f"7200,{lon[0]:.6f},{lat[0]:.6f},970,30\n"
                     f"30000,{lon[0]:.6f},{lat[0]:.6f},970,30\n")  # fmt: skip
    storm = {"type": "typhoon", "track": str(track), "holland_b": 1.5, "asymmetry": False,
             "surface_factor": 1.0, "road_blockage": False, "coupling": "5min",
             "evacuation_warning": [{"zone": "west", "clearance": "1h"},
                                    {"zone": "east", "clearance": "3h"}]}  # fmt: skip
    late = {"at": "10h"}  # the zones are warned by the rule only
    data = {"name": "t", "seed": 3, "duration": "3h", "crs": "EPSG:32633",
            "outputs": {"every": "10min"}, "coupling": "5min",
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.gpkg"},
            "hazards": [storm],
            "evacuation": {"warning": late, "departure": {"curve": "rayleigh", "sigma": "10min"},
                           "zones": [{"name": "west", "area": WEST, "warning": late},
                                     {"name": "east", "area": EAST, "warning": late}]}}  # fmt: skip
    return Scenario.model_validate(data, context={"check_files": False})


def test_two_zones_warned_and_their_margins_by_hand(two_zone_world, tmp_path) -> None:
    res = Simulation(_scenario(tmp_path), world=two_zone_world).run()
    ev = res.events
    acts = ev[(ev.kind == "action") & ev.details.str.contains("hurrevac")]
    assert acts.time_s.tolist() == [0.0, 3600.0]  # east at 0 (too late), west at 1 h
    assert acts.details.iloc[0].count('"east"') == 1 and '"west"' in acts.details.iloc[1]
    table = res.tables["warning_zones"]
    assert table.zone.tolist() == ["west", "east"]
    assert table.wind_arrival_s.tolist() == [7200.0, 7200.0]
    assert table.clearance_s.tolist() == [3600.0, 10800.0]
    assert table.warning_s.tolist() == [3600.0, 0.0]
    assert table.too_late_s.tolist() == [0.0, 3600.0]
    # each zone's own households, from the evacuation's table
    hh = res.tables["households"]
    for zone in ("west", "east"):
        mine = hh[hh.zone == zone]
        row = table[table.zone == zone].iloc[0]
        assert row.households == len(mine) > 0
        done = mine[mine.state.isin(["sheltered", "out"])]
        assert row.households_cleared == len(done) > 0
        assert row.clearance_end_s == done.arrived_s.max()
        assert row.margin_s == 7200.0 - done.arrived_s.max()
        assert float(done.warned_s.min()) >= row.warning_s
    ty = res.summary["typhoon"]
    assert ty["min_margin_s"] == table.margin_s.min()
    assert list(ty["warning_zones"]) == ["west", "east"]
    assert ty["warning_zones"]["east"]["too_late_s"] == 3600.0
    assert ty["warning_zones"]["west"]["margin_s"] == table.margin_s.iloc[0]
    from emtwin.batch.worker import flatten

    flat = flatten(res.summary)
    assert flat["typhoon.warning_zones.east.margin_s"] == table.margin_s.iloc[1]
    assert flat["typhoon.min_margin_s"] == table.margin_s.min()


def test_a_zone_warned_twice_is_refused(tmp_path) -> None:
    from emtwin.errors import ScenarioError

    sc = _scenario(tmp_path).model_dump(mode="json", exclude_none=True)
    sc["hazards"][0]["evacuation_warning"] = [{"zone": "west", "clearance": 60},
                                              {"zone": "west", "clearance": 90}]  # fmt: skip
    with pytest.raises((ScenarioError, ValueError), match="one rule per zone, repeated: west"):
        Scenario.model_validate(sc, context={"check_files": False})


def test_a_checkpoint_of_an_older_emtwin_resumes(two_zone_world, tmp_path) -> None:
    """A checkpoint written before per-zone warnings and wind frames: one warning dict,
    a timer tagged ("typhoon", "warn"), no frames. It resumes, warns as the whole run
    does, and reports the zone with its households unknown (-1)."""
    from emtwin.sim.checkpoint import Checkpoint
    from emtwin.sim.timers import _TAG, tag_of

    sc = _scenario(tmp_path)
    whole = Simulation(sc, world=two_zone_world).run()
    sim = Simulation(sc, world=two_zone_world)
    sim.run_until(1800.0)
    c = sim.component("typhoon")
    c._warning = {"zone": "west", "forecast_arrival_s": 7200.0, "clearance_estimate_s": 3600.0,
                  "warn_at_s": 3600.0, "too_late_s": 0.0}  # fmt: skip
    del c._warnings, c.wind_frames, c.direction
    retagged = 0
    for ev in sim.env._queue:  # west (rule 0) still waits for 3600 s; east was warned at 0
        if tag_of(ev[3]) == ("typhoon", "warn", 0):
            owner = ev[3] if getattr(ev[3], _TAG, None) else ev[3].callbacks[0].__self__
            setattr(owner, _TAG, ("typhoon", "warn"))
            retagged += 1
    assert retagged == 1
    ck = Checkpoint.from_bytes(sim.checkpoint().to_bytes())
    res = Simulation.from_checkpoint(ck, world=two_zone_world).run()
    assert res.events.equals(whole.events)
    t = res.tables["warning_zones"]
    assert t.zone.tolist() == ["west"] and t.households.tolist() == [-1]
    hh = whole.tables["households"]
    assert t.margin_s.iloc[0] == 7200.0 - hh.arrived_s.max()
    times, _ = res.frames["wind_speed"]
    assert times[0] == 2400.0 and times[-1] == 10800.0  # frames from the resume on
