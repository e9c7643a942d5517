"""The consequences component in the engine: building damage, life loss, facilities.

Uniform rain on a flat closed box gives depth = rate x t exactly everywhere,
so every figure below is computed by hand from the published curves and
functions (Huizinga et al. 2017 JRC Europe; Jonkman et al. 2008).
"""

from __future__ import annotations

import json
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from conftest import UTM33
from shapely.geometry import Point, box
from test_dispatch import NODE, bridge_world, inject, of
from test_dispatch import scenario as dispatch_scenario

from emtwin.geo.buildings import buildings_from_frame, prepare_buildings
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation

RAIN_MM_H = 500.0  # 0.5 m/h


def scenario(**over: Any) -> Scenario:
    data = {"name": "t", "seed": 5, "duration": "2h", "coupling": "5min",
            "outputs": {"every": "30min"},
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"},
            "hazards": [{"type": "flood", "rain": [[0, RAIN_MM_H]]}],
            "consequences": {"facilities": {"station": {"fail_depth_m": 0.6}}}}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


def _with_buildings(world):  # noqa: ANN001, ANN202
    x0, y0 = 500000.0, 5500200.0
    gdf = gpd.GeoDataFrame(
        {"building_id": ["home", "shop", "works"],
         "occupancy": ["residential", "commercial", "industrial"],
         "value": [100_000.0, 200_000.0, 300_000.0]},
        geometry=[box(x0 + 20, y0 - 40, x0 + 40, y0 - 20), Point(x0 + 105, y0 - 105),
                  box(x0 + 150, y0 - 190, x0 + 170, y0 - 170)],
        crs=UTM33,
    )  # fmt: skip
    world.buildings = prepare_buildings(buildings_from_frame(gdf), world.terrain)
    return world


def test_buildings_flood_to_rate_times_t_and_take_the_jrc_damage(small_world) -> None:
    res = Simulation(scenario(), world=_with_buildings(small_world)).run()
    b = res.tables["buildings"].set_index("building")
    depth = RAIN_MM_H / 1000.0 * 2.0  # 1.0 m after 2 h
    assert b["max_depth_m"].to_numpy() == pytest.approx([depth] * 3, rel=1e-6)
    assert (b["time_of_max_s"] == 7200.0).all()  # still rising at the end
    # JRC Europe, read at depth minus first-floor height (0.3 m homes, 0.15 m others)
    home = 0.25 + (0.7 - 0.5) / 0.5 * (0.40 - 0.25)
    shop = 0.15 + (0.85 - 0.5) / 0.5 * (0.30 - 0.15)
    works = 0.15 + (0.85 - 0.5) / 0.5 * (0.27 - 0.15)
    assert b["damage_ratio"].to_numpy() == pytest.approx([home, shop, works], rel=1e-6)
    want = 100_000 * home + 200_000 * shop + 300_000 * works
    c = res.summary["consequences"]
    assert c["damage_total"] == pytest.approx(want, rel=1e-6)
    assert c["buildings"] == 3 and c["buildings_damaged"] == 3


def test_people_at_home_in_deep_water_have_a_jonkman_probability(small_world) -> None:
    res = Simulation(scenario(), world=_with_buildings(small_world)).run()
    c = res.summary["consequences"]
    # 100 people at home, 1.0 m at the end, rising 0.5 m/h but below 2.1 m: the
    # remaining zone, F = Phi((ln h - 7.60) / 2.75)
    p = 0.5 * math.erfc(-((math.log(1.0) - 7.60) / 2.75) / math.sqrt(2.0))
    assert c["life_loss_mean"] == pytest.approx(100 * p, rel=1e-4)
    assert c["life_loss_mean"] > 0 and c["people_exposed"] == 100.0


def test_the_station_fails_at_its_depth_and_the_field_says_so(small_world) -> None:
    sim = Simulation(scenario(), world=_with_buildings(small_world))
    res = sim.run()
    lost = of(res.events, "facility_lost")
    # 0.5 m/h: the shelter (0.3 m) is passed at 2160 s, the station (set to 0.6 m) at
    # 4320 s; the first 5-min steps after are 2400 s and 4500 s
    got = dict(zip(lost.entity, lost.time_s, strict=True))
    assert got == {"School": 2400.0, "North": 4500.0}
    assert sim.state.get("facility__lost") == {"shelter": {"School": 2400.0},
                                               "station": {"North": 4500.0}}
    assert res.summary["consequences"]["facilities_lost"] == 2



def _hospital_sim(duration: str) -> Simulation:
    """The bridge world with the Valley hospital on a dry cell, General failing at 0.1 m
    under RAIN_MM_H of rain, and one ambulance at A that takes patients to hospital."""
    world = bridge_world(valley=True)
    t = world.terrain
    r, c = t.cell_of(world.roads.node_x[NODE["g"]], world.roads.node_y[NODE["g"]])
    t.mask[int(r), int(c)] = False  # Valley stands on a cell the water never reaches
    sc = dispatch_scenario(
        duration=duration, coupling="5min",
        consequences={"facilities": {"hospital": {"fail_depth_m": 0.1}}},
        hazards=[{"type": "flood", "rain": [[0, RAIN_MM_H]]}],
        response={"resources": [{"type": "ambulance", "station": "A"}],
                  "incidents": {"hazard_types": [{"name": "stranded", "needs": "ambulance",
                                                  "on_scene": "5min", "to_hospital": 1.0,
                                                  "handover": "10min"}]}},
    )  # fmt: skip
    return Simulation(sc, world=world)

def test_a_flooded_hospital_takes_no_more_patients() -> None:
    """General fails at 900 s (0.5 m/h, fail depth set to 0.1 m, passed at 720 s, 5-min
    steps); Valley is dry. The call at c stays shallower than the road closure depth."""
    sim = _hospital_sim("1h")
    inject(sim, [(60.0, NODE["c"]), (1200.0, NODE["c"])])
    res = sim.run()
    lost = of(res.events, "facility_lost")
    assert lost[lost.d.map(lambda d: d["facility"]) == "hospital"].entity.tolist() == ["General"]
    assert lost.set_index("entity").loc["General", "time_s"] == 900.0
    h = of(res.events, "hospital_arrival")
    assert [d["hospital"] for d in h.d] == ["General", "Valley"]
    # call 2: 50 s to c, 300 s on scene, 800 m at 10 m/s to Valley
    assert h.time_s[1] == pytest.approx(1200 + 50 + 300 + 80)
    assert json.loads(json.dumps(res.summary["consequences"]))["facilities_lost"] >= 1


def test_no_buildings_still_reports_life_loss(small_world) -> None:
    res = Simulation(scenario(), world=small_world).run()
    c = res.summary["consequences"]
    assert c["buildings"] == 0 and c["damage_total"] == 0.0
    assert c["life_loss_mean"] > 0
    assert np.isfinite(c["life_loss_p95"])


def test_the_index_has_damage_and_life_loss_parts() -> None:
    from emtwin.batch.index import response_index

    m = {"consequences.damage_total": 2.0e6, "consequences.value_total": 1.0e8,
         "consequences.life_loss_mean": 5.0, "consequences.people": 10_000.0}  # fmt: skip
    ix = response_index(m)
    # 2 % of the value damaged, target [0, 5 %]: 60; 5e-4 deaths per resident of [0, 1e-3]: 50
    assert ix.values["damage"] == pytest.approx(0.02) and ix.scores["damage"] == pytest.approx(60)
    assert ix.scores["life_loss"] == pytest.approx(50)
    # only these two parts are in the run: weights 0.10 and 0.20, renormalised
    assert ix.score == pytest.approx((0.10 * 60 + 0.20 * 50) / 0.30)


def test_household_fields_follow_a_car_from_home_to_the_exit() -> None:
    from test_evacuation import AT_ONCE, node_xy, world_of
    from test_evacuation import scenario as evac_scenario

    # home at node 0, 1000 m at 10 m/s to node 1, 1000 m more to the exit at node 2
    w = world_of({0: (0, 0), 1: (1000, 0), 2: (1990, 0)},
                 [(0, 1, "a", 10.0), (1, 2, "b", 10.0)], homes=[(0, 1)])  # fmt: skip
    sim = Simulation(evac_scenario({"departure": AT_ONCE, "exits": [node_xy(w, 2)]}), world=w)
    t = w.terrain
    cell = {k: int(np.ravel_multi_index(tuple(int(a) for a in t.cell_of(*node_xy(w, k))),
                                        t.shape)) for k in (0, 1)}  # fmt: skip
    sim.start()
    assert sim.state.get("household__location").tolist() == [0]  # at home
    assert sim.state.get("household__cell").tolist() == [cell[0]]
    sim.run_until(60.0)  # on link a, about 600 m along: its downstream node's cell
    assert sim.state.get("household__location").tolist() == [1]
    assert sim.state.get("household__cell").tolist() == [cell[1]]
    sim.run_until(600.0)  # out through the exit
    assert sim.state.get("household__location").tolist() == [-1]
    assert sim.state.get("household__cell").tolist() == [-1]
    assert sim.state.get("household__people").tolist() == [1.0]


def test_the_map_colours_buildings_by_damage_ratio(small_world) -> None:
    from emtwin.viz.layers import buildings_layer

    res = Simulation(scenario(), world=_with_buildings(small_world)).run()
    layer = buildings_layer(res)
    data = layer.layers[0].data
    assert [d["name"] for d in data] == ["home", "shop", "works"]
    # ratios 0.31 (30-50 %), 0.255 and 0.234 (10-30 %)
    assert [d["col"][:3] for d in data] == [[225, 80, 40], [250, 160, 60], [250, 160, 60]]
    assert all(len(d["p"]) >= 4 for d in data)  # closed rings, the point as a square


def test_the_report_has_a_buildings_table(small_world) -> None:
    from emtwin.viz.report import buildings_rows, render_report

    res = Simulation(scenario(), world=_with_buildings(small_world)).run()
    rows = buildings_rows(res)
    # kinds default to the occupancy; one building each, all damaged, 1.00 m deep
    assert [r[0] for r in rows] == ["commercial", "industrial", "residential"]
    assert [r[2] for r in rows] == ["1", "1", "1"] and {r[4] for r in rows} == {"1.00"}
    assert rows[2][3] == f"{100_000 * 0.31:,.0f}"
    assert "Consequences: buildings" in render_report(res, charts={})


def test_a_sheltered_household_is_in_a_building_at_the_shelter() -> None:
    from test_evacuation import AT_ONCE, node_xy, world_of
    from test_evacuation import scenario as evac_scenario

    w = world_of({0: (0, 0), 1: (1000, 0), 2: (1990, 0)},
                 [(0, 1, "a", 10.0), (1, 2, "b", 10.0)], homes=[(0, 1)],
                 shelters=[("Hall", 2, 10)])  # fmt: skip
    sim = Simulation(evac_scenario({"departure": AT_ONCE}), world=w)
    sim.run_until(600.0)
    t = w.terrain
    hall = int(np.ravel_multi_index(tuple(int(a) for a in t.cell_of(*node_xy(w, 2))), t.shape))
    assert sim.state.get("household__location").tolist() == [0]
    assert sim.state.get("household__cell").tolist() == [hall]


def test_a_unit_driving_to_a_hospital_that_floods_turns_to_the_next_one() -> None:
    """General fails at 900 s (as above) while the ambulance is on hospital-rd.

    Call at c at 530 s: 50 s from A over the bridge (arrives 580 s), 300 s on scene
    (leaves 880 s), 400 m at 10 m/s to General: due at 920 s. At 900 s General is lost:
    the unit finishes its stretch to General's node h (920 s), drives back to c (40 s)
    and on to Valley (800 m at 10 m/s, 80 s): at Valley at 1040 s.
    """
    sim = _hospital_sim("40min")
    inject(sim, [(530.0, NODE["c"])])
    res = sim.run()
    lost = of(res.events, "facility_lost")
    assert lost.set_index("entity").loc["General", "time_s"] == 900.0
    rr = of(res.events, "reroute")
    assert len(rr) == 1 and rr.time_s[0] == 900.0
    d = rr.d[0]
    assert d["reason"] == "hospital_lost" and d["found"] and d["to"] == "hospital"
    assert rr.node[0] == NODE["h"] and d["eta_s"] == pytest.approx(1040.0 - 900.0)
    h = of(res.events, "hospital_arrival")
    assert [x["hospital"] for x in h.d] == ["Valley"]
    assert h.time_s[0] == pytest.approx(530 + 50 + 300 + 40 + 40 + 80)
    calls = res.tables["calls"].set_index("id")
    assert calls["hospital"].tolist() == ["Valley"]


def test_a_unit_on_its_way_to_a_working_hospital_is_not_rerouted() -> None:
    """The same call with General's limit out of reach (5 m): no re-route, at General at 920 s."""
    world = bridge_world(valley=True)
    sc = dispatch_scenario(
        duration="40min", coupling="5min",
        consequences={"facilities": {"hospital": {"fail_depth_m": 5.0}}},
        hazards=[{"type": "flood", "rain": [[0, RAIN_MM_H]]}],
        response={"resources": [{"type": "ambulance", "station": "A"}],
                  "incidents": {"hazard_types": [{"name": "stranded", "needs": "ambulance",
                                                  "on_scene": "5min", "to_hospital": 1.0}]}},
    )  # fmt: skip
    sim = Simulation(sc, world=world)
    inject(sim, [(530.0, NODE["c"])])
    res = sim.run()
    assert of(res.events, "reroute").empty
    h = of(res.events, "hospital_arrival")
    assert [x["hospital"] for x in h.d] == ["General"]
    assert h.time_s[0] == pytest.approx(530 + 50 + 300 + 40)
