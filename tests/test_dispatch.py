"""Dispatch on roads and water: travel times after closures, re-routing, boats, policies, input.

Every expected time below is worked out by hand from the road lengths and
speeds of the hand-built worlds (no number is taken from the code's output).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from conftest import UTM33, hand_roads, points

from emtwin.errors import ScenarioError
from emtwin.geo.index import edge_cell_index
from emtwin.geo.world import EdgeCellIndex, Places, Terrain, World
from emtwin.scenarios import load_scenario
from emtwin.scenarios.models import Scenario, UnitType
from emtwin.sim import SUMMARY_KEYS, Simulation
from emtwin.sim.dispatch import Call
from emtwin.sim.dispatch.travel import WADE_FACTOR, WorldTravel
from emtwin.sim.outputs import write_results
from emtwin.sim.state import RoadState

X0, Y0 = 500000.0, 5501000.0


# ---------------------------------------------------------------------------- worlds


def bridge_world(*, valley: bool = False) -> World:
    """Station A west of a bridge, station B far east; the call is at c.

    a (0, 0) -- e (500, 0) -- c (1000, 0): approach and bridge, 500 m each at 20 m/s;
    a -- d (500, -600) -- c: a slow detour, 781.02 m each way at 10 m/s;
    e -- d: 600 m at 10 m/s; b (3000, 0) -- c: 2000 m at 25 m/s (80 s).
    A reaches c in 50 s over the bridge (1000 m), B in 80 s (2000 m). With the
    bridge closed A needs 2 x 78.102 s = 156.2 s over 1562 m: still shorter than
    B's 2000 m, but slower. A hospital stands at h (1000, 400), 400 m from c at 10 m/s.
    With *valley*, a second hospital (Valley) stands at g (1000, -800), 800 m from c
    at 10 m/s (road ``valley-rd``): farther than General.
    """
    p = {1: (0, 0), 2: (500, 0), 3: (1000, 0), 4: (500, -600), 5: (3000, 0), 6: (1000, 400)}
    if valley:
        p[7] = (1000, -800)
    nodes = {k: (X0 + x, Y0 - 1000 + y) for k, (x, y) in p.items()}
    ways = [(1, 2, "approach", 20.0), (2, 3, "bridge", 20.0), (1, 4, "detour-w", 10.0),
            (4, 3, "detour-e", 10.0), (2, 4, "link", 10.0), (5, 3, "east", 25.0),
            (3, 6, "hospital-rd", 10.0)]  # fmt: skip
    if valley:
        ways.append((3, 7, "valley-rd", 10.0))
    links = []
    for a, b, rid, v in ways:
        links += [(a, b, rid, v), (b, a, rid, v)]
    roads = hand_roads(nodes, links)
    z = np.zeros((40, 70))
    terrain = Terrain(z=z, mask=np.ones_like(z, dtype=bool), dx=50.0,
                      transform=Affine(50.0, 0, X0 - 250, 0, -50.0, Y0), manning=0.03)  # fmt: skip
    nid = {k: i for i, k in enumerate(sorted(nodes))}
    hosp = {6: "General", 7: "Valley"} if valley else {6: "General"}
    places = Places(
        population=points(UTM33, [nodes[3]], people=[10.0], node=[nid[3]], snap_m=[0.0]),
        shelters=points(UTM33, [], name=[], capacity=[]),
        stations=points(UTM33, [nodes[1], nodes[5]], name=["A", "B"],
                        node=[nid[1], nid[5]], snap_m=[0.0, 0.0]),  # fmt: skip
        hospitals=points(UTM33, [nodes[k] for k in hosp], name=[hosp[k] for k in hosp],
                         node=[nid[k] for k in hosp], snap_m=[0.0] * len(hosp)),  # fmt: skip
    )
    idx = EdgeCellIndex(np.zeros(roads.n_edges + 1, dtype=np.int64), np.zeros(0, np.int64))
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places, edge_cells=idx,
                 name="bridge")  # fmt: skip


NODE = {"a": 0, "e": 1, "c": 2, "d": 3, "b": 4, "h": 5, "g": 6}


def scenario(**over: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "t", "seed": 3, "duration": "1h", "outputs": {"every": "10min"},
        "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"},
        "response": {
            "resources": [{"type": "ambulance", "station": "A", "count": 1},
                          {"type": "ambulance", "station": "B", "count": 1}],
            "incidents": {"hazard_types": [{"name": "stranded", "needs": "ambulance",
                                            "on_scene": "60s", "priority": 1}]},
        },
    }  # fmt: skip
    for k, v in over.items():
        if k == "response":
            data["response"].update(v)
        else:
            data[k] = v
    return Scenario.model_validate(data, context={"check_files": False})


def inject(sim: Simulation, calls: list[tuple[float, int]] | list[tuple[float, int, str]]) -> None:
    """Publish ``stranded`` events (as the evacuation would) at (time s, node).

    A third item names another event kind (``exposed``) for that call.
    """
    roads = sim.world.roads

    def go():
        for i, (t, node, *kind) in enumerate(calls):
            yield sim.env.timeout(t - sim.env.now)
            sim.recorder.event(sim.env.now, kind[0] if kind else "stranded", f"hh{i}",
                               node=node, people=2,
                               vehicle=True, x=float(roads.node_x[node]),
                               y=float(roads.node_y[node]))  # fmt: skip

    sim.env.process(go())


def of(ev: pd.DataFrame, kind: str) -> pd.DataFrame:
    out = ev[ev.kind == kind].copy()
    out["d"] = out.details.map(json.loads)
    return out.reset_index(drop=True)


DETOUR = 2 * math.hypot(500, 600) / 10.0  # a -> d -> c, s


# ---------------------------------------------------------------------------- closest_idle


def test_closest_idle_uses_current_travel_time_not_distance_after_bridge_closes() -> None:
    sc = scenario(actions=[{"at": "10min", "close_road": "bridge"}])
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(300.0, NODE["c"]), (1200.0, NODE["c"])])
    res = sim.run()
    disp, arr = of(res.events, "dispatch"), of(res.events, "arrival")
    # before the closure: A (50 s) beats B (80 s)
    assert disp.d[0]["unit"] == "ambulance-1"
    assert arr.time_s[0] == pytest.approx(300.0 + 50.0)
    # after it: A's way is 1562 m (< B's 2000 m) but takes 156.2 s; B takes 80 s
    assert disp.d[1]["unit"] == "ambulance-2"
    assert arr.d[1]["response_s"] == pytest.approx(80.0)
    assert DETOUR > 80.0 and 2 * math.hypot(500, 600) < 2000.0
    calls = res.tables["calls"].set_index("id")
    assert calls.loc["call-2", "unit"] == "ambulance-2"
    assert calls.loc["call-2", "response_s"] == pytest.approx(80.0)


def test_unit_reroutes_when_the_road_ahead_closes() -> None:
    # A leaves at 100 s for c (via e and the bridge, e at 125 s); the bridge closes at
    # 110 s while A is on the approach: at e it turns to d (60 s) and on to c (78.1 s).
    sc = scenario(actions=[{"at": "110s", "close_road": "bridge"}],
                  response={"resources": [{"type": "ambulance", "station": "A"}]})  # fmt: skip
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(100.0, NODE["c"])])
    res = sim.run()
    rr = of(res.events, "reroute")
    assert len(rr) == 1 and rr.time_s[0] == 110.0 and rr.node[0] == NODE["e"]
    arr = of(res.events, "arrival")
    assert arr.time_s[0] - 100.0 == pytest.approx(25.0 + 60.0 + math.hypot(500, 600) / 10.0)
    # the unit went home the slow way round (bridge still closed): c -> d -> a
    back = of(res.events, "return")
    assert back.time_s[0] == pytest.approx(arr.time_s[0] + 60.0 + DETOUR)


def test_hospital_transport_and_time_to_hospital() -> None:
    sc = scenario(response={
        "resources": [{"type": "ambulance", "station": "A"}],
        "incidents": {"hazard_types": [{"name": "stranded", "needs": "ambulance",
                                        "on_scene": "5min", "to_hospital": 1.0,
                                        "handover": "10min"}]},
    })  # fmt: skip
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(60.0, NODE["c"])])
    res = sim.run()
    h = of(res.events, "hospital_arrival")
    # 50 s to c, 300 s on scene, 400 m at 10 m/s to the hospital
    assert h.time_s[0] == pytest.approx(60 + 50 + 300 + 40)
    assert h.d[0]["hospital"] == "General" and h.d[0]["since_call_s"] == pytest.approx(390.0)
    # free after the 600 s handover; home: h -> c (40 s) -> e -> a (50 s)
    back = of(res.events, "return")
    assert back.time_s[0] == pytest.approx(h.time_s[0] + 600 + 40 + 50)
    assert res.summary["dispatch"]["to_hospital_mean_s"] == pytest.approx(390.0)
    u = res.tables["units"].set_index("id")
    assert u.loc["ambulance-1", "busy_s"] == pytest.approx(50 + 300 + 40 + 600)


def test_transport_goes_to_the_nearest_reachable_hospital() -> None:
    # General (h) is 40 s from c, Valley (g) 80 s; General's road closes at 20 min
    sc = scenario(
        actions=[{"at": "20min", "close_road": "hospital-rd"}],
        response={"resources": [{"type": "ambulance", "station": "A"}],
                  "incidents": {"hazard_types": [{"name": "stranded", "needs": "ambulance",
                                                  "on_scene": "5min", "to_hospital": 1.0,
                                                  "handover": "10min"}]}},
    )  # fmt: skip
    sim = Simulation(sc, world=bridge_world(valley=True))
    inject(sim, [(60.0, NODE["c"]), (1500.0, NODE["c"])])
    res = sim.run()
    h = of(res.events, "hospital_arrival")
    assert [d["hospital"] for d in h.d] == ["General", "Valley"]
    # call 1: 50 s to c, 300 s on scene, 40 s to General; home by 60+390+600+90 = 1140 s < 1200 s
    assert h.time_s[0] == pytest.approx(60 + 50 + 300 + 40)
    # call 2, General cut off: 50 s to c, 300 s on scene, 800 m at 10 m/s to Valley
    assert h.time_s[1] == pytest.approx(1500 + 50 + 300 + 80)
    assert h.d[1]["since_call_s"] == pytest.approx(430.0)
    assert of(res.events, "hospital_unreachable").empty
    calls = res.tables["calls"].set_index("id")
    assert calls.loc["call-2", "hospital"] == "Valley"
    assert calls.loc["call-2", "hospital_s"] == pytest.approx(430.0)


def test_hospital_unreachable_when_every_hospital_is_cut_off() -> None:
    sc = scenario(
        actions=[{"at": "10s", "close_road": "hospital-rd"},
                 {"at": "10s", "close_road": "valley-rd"}],
        response={"resources": [{"type": "ambulance", "station": "A"}],
                  "incidents": {"hazard_types": [{"name": "stranded", "needs": "ambulance",
                                                  "on_scene": "5min", "to_hospital": 1.0}]}},
    )  # fmt: skip
    sim = Simulation(sc, world=bridge_world(valley=True))
    inject(sim, [(60.0, NODE["c"])])
    res = sim.run()
    assert of(res.events, "hospital_arrival").empty
    miss = of(res.events, "hospital_unreachable")
    # at the end of the work on scene: 60 + 50 + 300 s, at c
    assert len(miss) == 1 and miss.entity[0] == "call-1"
    assert miss.time_s[0] == pytest.approx(410.0) and miss.node[0] == NODE["c"]
    assert miss.d[0]["unit"] == "ambulance-1"
    # the unit is free at once and drives home: c -> e -> a, 50 s
    back = of(res.events, "return")
    assert back.time_s[0] == pytest.approx(410.0 + 50.0)
    calls = res.tables["calls"].set_index("id")
    assert calls.loc["call-1", "state"] == "served" and np.isnan(calls.loc["call-1", "hospital_s"])
    assert res.summary["dispatch"]["hospital_transports"] == 0


def test_move_units_lets_the_busy_unit_finish_first() -> None:
    sc = scenario(actions=[{"at": "100s", "move_units": {"type": "ambulance", "count": 1,
                                                           "from": "A", "to": "B"}}],
                  response={"resources": [{"type": "ambulance", "station": "A"}]})  # fmt: skip
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(60.0, NODE["c"])])
    res = sim.run()
    # busy from 60 s: on scene 110..170 s; then to its new base B (80 s), not A
    back = of(res.events, "return")
    assert back.d[0]["station"] == "B" and back.node[0] == NODE["b"]
    assert back.time_s[0] == pytest.approx(60 + 50 + 60 + 80)
    assert res.tables["units"].station.tolist() == ["B"]


# ---------------------------------------------------------------------------- high clearance


def flood_road(sim: Simulation, t: float, road_id: str, depth_m: float) -> None:
    """At *t* s put *road_id* under *depth_m* of water, as the flood component would."""
    rs = sim.roads
    edges = np.flatnonzero(np.asarray(sim.world.roads.road_id) == road_id)

    def go():
        yield sim.env.timeout(t)
        rs.flood_depth_m[edges] = depth_m
        rs.flood_factor[edges] = 0.0  # Pregnolato: no car at or above the 0.3 m closure depth
        rs.closed_by_flood[edges] = True
        rs.mark_changed()
        for e in edges.tolist():
            sim.recorder.event(sim.env.now, "road_closed", road_id, edge=e, cause="flood",
                               depth_m=depth_m)  # fmt: skip

    sim.env.process(go())


BRIDGE_WADE = 500.0 / (WADE_FACTOR * 20.0)  # 500 m of bridge at 30 % of 20 m/s = 6 m/s


@pytest.mark.parametrize(
    ("unit", "unit_types", "response"),
    [
        # a road unit cannot use the flooded bridge: round by d (2 x 78.102 s)
        ("ambulance", {}, DETOUR),
        # the default truck (0.6 m) wades the 0.45 m bridge at 6 m/s: 25 s + 83.33 s
        ("truck", {}, 25.0 + BRIDGE_WADE),
        # a set wading speed: 500 m at 8 m/s
        ("truck", {"truck": {"mode": "high_clearance", "speed": 8.0}}, 25.0 + 62.5),
        # a truck for 0.4 m of water is refused the bridge too
        ("truck", {"truck": {"mode": "high_clearance", "max_depth": 0.4}}, DETOUR),
    ],
)  # fmt: skip
def test_high_clearance_truck_wades_water_up_to_its_max_depth(unit, unit_types, response) -> None:
    sc = scenario(response={
        "resources": [{"type": unit, "station": "A"}],
        "unit_types": unit_types,
        "incidents": {"hazard_types": [{"name": "stranded", "needs": ["ambulance", "truck"],
                                        "on_scene": "60s"}]},
    })  # fmt: skip
    sim = Simulation(sc, world=bridge_world())
    flood_road(sim, 10.0, "bridge", 0.45)
    inject(sim, [(300.0, NODE["c"])])
    res = sim.run()
    disp, arr = of(res.events, "dispatch"), of(res.events, "arrival")
    assert disp.d[0]["unit"] == f"{unit}-1"
    assert disp.d[0]["eta_s"] == pytest.approx(response, abs=1e-3)
    assert arr.d[0]["response_s"] == pytest.approx(response, abs=1e-3)
    # home the same way: 60 s on scene, then the way back takes as long as the way out
    back = of(res.events, "return")
    assert back.time_s[0] == pytest.approx(300.0 + response + 60.0 + response)


def test_high_clearance_truck_serves_a_call_in_water_up_to_its_max_depth() -> None:
    world = bridge_world()
    t = world.terrain
    xc, yc = float(world.roads.node_x[NODE["c"]]), float(world.roads.node_y[NODE["c"]])
    r, c = (int(v) for v in t.cell_of(xc, yc))
    h = np.zeros(t.shape)
    h[r, c] = 0.45  # the call's cell; the roads stay dry
    types = {"ambulance": UnitType(mode="road"), "truck": UnitType(mode="high_clearance"),
             "low_truck": UnitType(mode="high_clearance", max_depth=0.4)}  # fmt: skip
    assert types["truck"].max_depth == 0.6  # the default
    travel = WorldTravel(world, RoadState(world.roads), types, depth=lambda: (h, 0.0),
                         closure_depth_m=0.3)  # fmt: skip
    call = Call("call-1", 0.0, NODE["c"], x=xc, y=yc, cell=r * t.shape[1] + c)
    at_a = np.array([NODE["a"]])
    assert np.isinf(travel.etas("ambulance", at_a, call)[0])  # 0.45 m >= 0.3 m closure depth
    assert travel.etas("truck", at_a, call)[0] == pytest.approx(50.0)  # dry roads: 1000 m at 20
    assert np.isinf(travel.etas("low_truck", at_a, call)[0])
    assert travel.leg_to_call("ambulance", NODE["a"], call, 0.0) is None
    leg = travel.leg_to_call("truck", NODE["a"], call, 0.0)
    assert leg is not None and leg.end_s == pytest.approx(50.0)


# ---------------------------------------------------------------------------- boats


def basin_world() -> World:
    """A flat basin (z = 0, columns 0-19) beside high ground (z = 3 m, columns 20-39).

    10 m cells, 20 rows. Nodes at cell centres on row 10: S (column 35, the
    station), L (column 21, the water's edge), W (column 10, in the basin).
    S-L runs on high ground (140 m at 10 m/s); L-W runs into the basin.
    """
    z = np.zeros((20, 40))
    z[:, 20:] = 3.0
    x0, y0 = X0, Y0
    terrain = Terrain(z=z, mask=np.ones_like(z, dtype=bool), dx=10.0,
                      transform=Affine(10.0, 0, x0, 0, -10.0, y0), manning=0.03)  # fmt: skip
    cx = lambda col: x0 + (col + 0.5) * 10.0  # noqa: E731
    yc = y0 - 10.5 * 10.0
    nodes = {1: (cx(35), yc), 2: (cx(21), yc), 3: (cx(10), yc)}
    links = []
    for a, b, rid in ((1, 2, "high"), (2, 3, "low")):
        links += [(a, b, rid, 10.0), (b, a, rid, 10.0)]
    roads = hand_roads(nodes, links)
    places = Places(
        population=points(UTM33, [nodes[3]], people=[4.0], node=[2], snap_m=[0.0]),
        shelters=points(UTM33, [], name=[], capacity=[]),
        stations=points(UTM33, [nodes[1]], name=["S"], node=[0], snap_m=[0.0]),
        hospitals=points(UTM33, [], name=[], node=[], snap_m=[]),
    )
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places,
                 edge_cells=edge_cell_index(roads, terrain), name="basin")  # fmt: skip


def test_boat_reaches_a_call_in_a_flooded_cell_no_road_unit_can_reach() -> None:
    sc = scenario(
        duration="40min",
        hazards=[{"type": "flood", "boundary": {"west": {"level": [[0, 1.5], ["1h", 1.5]]}},
                  "coupling": "60s"}],
        response={
            "resources": [{"type": "ambulance", "station": "S", "count": 2},
                          {"type": "boat", "station": "S", "count": 1}],
            "unit_types": {"boat": {"mode": "water", "speed": 2.0, "launch_time": "60s"}},
            "incidents": {"hazard_types": [{"name": "flooded", "needs": ["ambulance", "boat"],
                                            "on_scene": "2min"}]},
        },
    )  # fmt: skip
    res = Simulation(sc, world=basin_world()).run()
    calls = of(res.events, "call")
    assert len(calls) == 1 and calls.d[0]["source"] == "flooded" and calls.d[0]["people"] == 4
    assert calls.d[0]["depth_m"] > 1.2  # AIDR H4 at rest: 1.2 < d <= 2 m
    closed = of(res.events, "road_closed")
    assert "low" in set(closed.entity) and "high" not in set(closed.entity)
    disp = of(res.events, "dispatch")
    assert disp.d.map(lambda d: d["unit_type"]).tolist() == ["boat"]
    # 140 m by road at 10 m/s, 60 s launch, 20 m carried to the launch cell (column 19)
    # and 9 cells of 10 m on the water at 2 m/s
    # (from its dispatch: a boat is sent once the water at the launch point is deep enough)
    arr = of(res.events, "arrival")
    t_call, t_disp, t_arr = calls.time_s.iloc[0], disp.time_s.iloc[0], arr.time_s.iloc[0]
    assert t_arr - t_disp == pytest.approx(14.0 + 60 + 10 + 45)
    assert arr.d[0]["response_s"] == pytest.approx(t_arr - t_call)
    s = res.summary["dispatch"]
    assert s["served"] == 1 and s["by_type"]["flooded"]["served"] == 1
    trips = res.tables["trips"]
    boat = trips[trips.id == "boat-1"]
    # the boat went out on the water (west of the edge at column 20) and came back ashore
    assert boat.x.min() < X0 + 200 and boat.x.iloc[-1] == pytest.approx(X0 + 355.0)
    assert (res.tables["units"].set_index("id").loc[["ambulance-1", "ambulance-2"], "calls"]
            == 0).all()  # fmt: skip


# ---------------------------------------------------------------------------- user policies


POLICY = '''
def farthest(call, units, now_s, travel_time_s):
    """Send the unit with the longest travel time (to show the policy is used)."""
    return max(units, key=lambda u: travel_time_s(u, call))

not_a_function = 3
'''


@pytest.fixture()
def policy_module(tmp_path, monkeypatch):
    (tmp_path / "my_policies.py").write_text(POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_policies"
    sys.modules.pop("my_policies", None)


def test_user_policy_runs_with_allow_code(policy_module) -> None:
    sc = scenario(response={"dispatch": f"{policy_module}:farthest"})
    sim = Simulation(sc, world=bridge_world(), allow_code=True)
    inject(sim, [(300.0, NODE["c"])])
    res = sim.run()
    # closest_idle would send A (50 s); the user's policy sends B (80 s)
    assert of(res.events, "dispatch").d[0]["unit"] == "ambulance-2"
    assert of(res.events, "arrival").d[0]["response_s"] == pytest.approx(80.0)


def test_user_policy_refused_without_allow_code(policy_module) -> None:
    sc = scenario(response={"dispatch": f"{policy_module}:farthest"})
    with pytest.raises(ScenarioError, match=r"dispatch: .*names Python code.*--allow-code"):
        Simulation(sc, world=bridge_world())
    assert policy_module not in sys.modules  # nothing was imported


@pytest.mark.parametrize(
    ("ref", "pattern"),
    [("no_such_module_xyz:pick", r"cannot import module 'no_such_module_xyz'"),
     ("my_policies:missing", r"module 'my_policies' has no function 'missing'"),
     ("my_policies:not_a_function", r"has a non-callable attribute 'not_a_function'")],
)  # fmt: skip
def test_bad_policy_reference_is_a_clear_error(policy_module, ref, pattern) -> None:
    with pytest.raises(ScenarioError, match=pattern):
        Simulation(scenario(response={"dispatch": ref}), world=bridge_world(), allow_code=True)


def test_policy_without_a_colon_is_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match="closest_idle, priority_then_closest or a Python"):
        scenario(response={"dispatch": "nearest"})


# ---------------------------------------------------------------------------- bad input


def test_resource_at_an_unknown_station_is_an_error() -> None:
    sc = scenario(response={"resources": [{"type": "ambulance", "station": "Nowhere"}]})
    with pytest.raises(ScenarioError, match=r"response.resources.0.station: no station named "
                                            r"'Nowhere'.*\(it has: A, B\)"):  # fmt: skip
        Simulation(sc, world=bridge_world())


def test_unit_type_no_call_can_use_is_a_warning(caplog) -> None:
    sc = scenario(response={"resources": [{"type": "ambulance", "station": "A"},
                                          {"type": "hovercraft", "station": "B", "count": 2}]})
    with caplog.at_level(logging.WARNING):
        Simulation(sc, world=bridge_world())
    assert "response.resources.1: no call can use unit type 'hovercraft'" in caplog.text


def test_units_for_a_storms_road_clearance_are_not_warned_about(caplog) -> None:
    """The typhoon drill's crews answer the storm's road clearance calls
    (``road_clearance: {needs: crew}``), which no incident type lists: no warning."""
    with caplog.at_level(logging.WARNING):
        Simulation(load_scenario("typhoon"))
    assert "no call can use unit type" not in caplog.text


def _yaml(tmp_path, response: str) -> Any:
    f = tmp_path / "s.yaml"
    f.write_text("name: t\nworld:\n  terrain: {builtin: riverside}\n" + response)
    return f


def test_negative_count_is_refused_through_the_loader(tmp_path) -> None:
    f = _yaml(tmp_path, "response:\n  resources:\n    - {type: boat, station: River, count: -2}\n")
    with pytest.raises(ScenarioError, match=r"s.yaml:6: response.resources.0.count: .*"
                                            r"greater than or equal to 0"):  # fmt: skip
        load_scenario(f)


def test_rate_with_an_unknown_unit_is_refused_through_the_loader(tmp_path) -> None:
    f = _yaml(tmp_path, "response:\n  incidents:\n    background_rate: 4/x\n")
    with pytest.raises(ScenarioError, match=r"s.yaml:6: response.incidents.background_rate: "
                                            r"expected a rate such as 4/h .*'4/x'"):  # fmt: skip
        load_scenario(f)


def test_background_rate_without_types_is_an_error() -> None:
    sc = scenario(response={"incidents": {"background_rate": "2/h"}})
    with pytest.raises(ScenarioError, match="response.incidents.types: background_rate is set"):
        Simulation(sc, world=bridge_world())


def test_move_units_from_an_unknown_station_is_an_error() -> None:
    sc = scenario(actions=[{"at": "1min", "move_units": {"type": "ambulance", "from": "A",
                                                          "to": "Harbour"}}])  # fmt: skip
    with pytest.raises(ScenarioError, match="actions.0: move_units: to: no station named 'Harb"):
        Simulation(sc, world=bridge_world())


# ---------------------------------------------------------------------------- a whole run


def test_background_run_fills_the_contract_and_writes_tables(tmp_path) -> None:
    sc = scenario(duration="6h", response={
        "incidents": {"background_rate": "6/h",
                      "types": [{"name": "medical", "share": 1, "priority": 2,
                                 "on_scene": {"exponential": "20min"}, "to_hospital": 0.5}]},
    })  # fmt: skip
    runs = [Simulation(sc, world=bridge_world()).run() for _ in range(2)]
    a, b = runs
    pd.testing.assert_frame_equal(a.events, b.events)  # same seed, same events
    s = a.summary["dispatch"]
    assert all(s[k] is not None for k in SUMMARY_KEYS["dispatch"])
    calls = a.tables["calls"]
    assert s["calls"] == len(calls) == (a.events.kind == "call").sum()
    assert s["served"] + s["unserved"] == s["calls"]
    # busy time from the events: dispatch to on-scene end, or to hospital arrival + handover
    ev = a.events
    free = of(ev, "on_scene_end").set_index("entity").time_s.to_dict()
    for _, r in of(ev, "hospital_arrival").iterrows():
        free[r.entity] = r.time_s + 600.0
    busy = sum(min(free.get(r.entity, 6 * 3600.0), 6 * 3600.0) - r.time_s
               for _, r in of(ev, "dispatch").iterrows())  # fmt: skip
    assert a.tables["units"].busy_s.sum() == pytest.approx(busy)
    assert s["utilisation_mean"] == pytest.approx(busy / 2 / (6 * 3600))
    assert s["by_priority"]["2"]["calls"] == s["calls"]
    ts = a.timeseries
    assert {"calls_waiting", "units_busy", "units_busy_ambulance", "calls_total"} <= set(ts)
    assert (ts.units_busy <= 2).all()
    out = write_results(a, tmp_path / "run")
    for name in ("calls.csv", "units.csv", "trips.csv"):
        assert (out / name).exists()
    trips = pd.read_csv(out / "trips.csv")
    assert list(trips.columns) == ["id", "kind", "time_s", "x", "y"]
    assert (trips.kind == "unit").all()
    assert (trips.groupby("id").time_s.diff().dropna() >= 0).all()
    # the calls and units as map layers (GeoJSON, EPSG:4326 as roads.geojson)
    _check_map_layers(out)


def _check_map_layers(out) -> None:
    """calls.geojson / units.geojson agree with calls.csv / units.csv and stand where
    the calls were and at the units' stations (bridge_world: A at (X0, Y0 - 1000), B
    at (X0 + 3000, Y0 - 1000))."""
    import geopandas as gpd

    calls_csv, units_csv = pd.read_csv(out / "calls.csv"), pd.read_csv(out / "units.csv")
    calls = gpd.read_file(out / "calls.geojson")
    units = gpd.read_file(out / "units.geojson")
    roads = gpd.read_file(out / "roads.geojson")
    assert len(calls_csv) > 0
    assert len(calls) == len(calls_csv) and len(units) == len(units_csv) == 2
    assert calls.crs == roads.crs and units.crs == roads.crs
    assert (calls.geom_type == "Point").all() and (units.geom_type == "Point").all()
    assert calls.id.tolist() == calls_csv.id.tolist()
    for col in ("priority", "type", "source", "state"):
        assert calls[col].tolist() == calls_csv[col].tolist()
    for col in ("time_s", "response_s", "wait_s"):
        np.testing.assert_allclose(calls[col].astype(float), calls_csv[col], rtol=1e-9)
    # the points are the calls' x, y (World CRS) ...
    back = calls.to_crs(UTM33)
    np.testing.assert_allclose(back.geometry.x, calls_csv.x, atol=1e-3)
    np.testing.assert_allclose(back.geometry.y, calls_csv.y, atol=1e-3)
    # ... and each unit stands at its station: A at a (X0, Y0 - 1000), B at b (X0 + 3000, ...)
    u = units.to_crs(UTM33).set_index("id")
    assert u.loc["ambulance-1", "station"] == "A" and u.loc["ambulance-2", "station"] == "B"
    assert (u.loc["ambulance-1"].geometry.x, u.loc["ambulance-1"].geometry.y) == pytest.approx(
        (X0, Y0 - 1000), abs=1e-3)  # fmt: skip
    assert (u.loc["ambulance-2"].geometry.x, u.loc["ambulance-2"].geometry.y) == pytest.approx(
        (X0 + 3000, Y0 - 1000), abs=1e-3)  # fmt: skip
    ucsv = units_csv.set_index("id")
    assert u.calls.tolist() == ucsv.calls.tolist()
    np.testing.assert_allclose(u.utilisation, ucsv.utilisation, rtol=1e-9)


def test_summary_by_priority_gives_response_percentiles_per_priority() -> None:
    # hazard calls of two priorities, 10 min apart so A is always home (each job
    # takes at most 90 + 60 + 90 s); A is the closest unit for every one of them
    sc = scenario(duration="2h", response={"incidents": {"hazard_types": [
        {"name": "stranded", "needs": "ambulance", "on_scene": "60s", "priority": 1},
        {"name": "exposed", "needs": "ambulance", "on_scene": "60s", "priority": 2}]}})  # fmt: skip
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(60.0, NODE["c"]), (660.0, NODE["h"], "exposed"), (1260.0, NODE["e"]),
                 (1860.0, NODE["d"], "exposed"), (2460.0, NODE["d"]),
                 (3060.0, NODE["c"], "exposed"), (3660.0, NODE["e"], "exposed"),
                 (7190.0, NODE["h"], "exposed")])  # fmt: skip
    res = sim.run()
    # from A: c 50 s (over the bridge), e 25 s, d 78.102 s (781.02 m at 10 m/s), h 50 + 40 s
    to_d = math.hypot(500, 600) / 10.0
    p1 = np.array([50.0, 25.0, to_d])
    p2 = np.array([90.0, to_d, 50.0, 25.0])  # the last call (10 s before the end) is unserved
    by = res.summary["dispatch"]["by_priority"]
    assert set(by) == {"1", "2"}
    assert (by["1"]["calls"], by["1"]["served"], by["1"]["unserved"]) == (3, 3, 0)
    assert (by["2"]["calls"], by["2"]["served"], by["2"]["unserved"]) == (5, 4, 1)
    for key, hand in (("1", p1), ("2", p2)):
        # numpy's default (linear) percentile, as documented in docs/dispatch.md
        assert by[key]["response_p50_s"] == pytest.approx(np.percentile(hand, 50))
        assert by[key]["response_p90_s"] == pytest.approx(np.percentile(hand, 90))
        assert by[key]["response_mean_s"] == pytest.approx(hand.mean())
    # worked out: p1 sorted 25, 50, 78.10 -> p50 50, p90 50 + 0.8 x 28.10 = 72.48
    assert by["1"]["response_p90_s"] == pytest.approx(50 + 0.8 * (to_d - 50))
    # p2 sorted 25, 50, 78.10, 90 -> p50 (50 + 78.10) / 2, p90 78.10 + 0.7 x 11.90
    assert by["2"]["response_p50_s"] == pytest.approx((50 + to_d) / 2)
    assert by["2"]["response_p90_s"] == pytest.approx(to_d + 0.7 * (90 - to_d))


def test_no_dispatch_no_calls_or_units_layers(tmp_path) -> None:
    sc = Scenario.model_validate(
        {"name": "t", "duration": "10min",
         "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"}},
        context={"check_files": False},
    )  # fmt: skip
    res = Simulation(sc, world=bridge_world()).run()
    out = write_results(res, tmp_path / "run")
    assert (out / "roads.geojson").exists()
    assert not (out / "calls.geojson").exists() and not (out / "units.geojson").exists()
