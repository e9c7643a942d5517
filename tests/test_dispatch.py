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
from emtwin.scenarios.models import Scenario
from emtwin.sim import SUMMARY_KEYS, Simulation
from emtwin.sim.outputs import write_results

X0, Y0 = 500000.0, 5501000.0


# ---------------------------------------------------------------------------- worlds


def bridge_world() -> World:
    """Station A west of a bridge, station B far east; the call is at c.

    a (0, 0) -- e (500, 0) -- c (1000, 0): approach and bridge, 500 m each at 20 m/s;
    a -- d (500, -600) -- c: a slow detour, 781.02 m each way at 10 m/s;
    e -- d: 600 m at 10 m/s; b (3000, 0) -- c: 2000 m at 25 m/s (80 s).
    A reaches c in 50 s over the bridge (1000 m), B in 80 s (2000 m). With the
    bridge closed A needs 2 x 78.102 s = 156.2 s over 1562 m: still shorter than
    B's 2000 m, but slower. A hospital stands at h (1000, 400), 400 m from c at 10 m/s.
    """
    p = {1: (0, 0), 2: (500, 0), 3: (1000, 0), 4: (500, -600), 5: (3000, 0), 6: (1000, 400)}
    nodes = {k: (X0 + x, Y0 - 1000 + y) for k, (x, y) in p.items()}
    links = []
    for a, b, rid, v in ((1, 2, "approach", 20.0), (2, 3, "bridge", 20.0), (1, 4, "detour-w", 10.0),
                         (4, 3, "detour-e", 10.0), (2, 4, "link", 10.0), (5, 3, "east", 25.0),
                         (3, 6, "hospital-rd", 10.0)):  # fmt: skip
        links += [(a, b, rid, v), (b, a, rid, v)]
    roads = hand_roads(nodes, links)
    z = np.zeros((40, 70))
    terrain = Terrain(z=z, mask=np.ones_like(z, dtype=bool), dx=50.0,
                      transform=Affine(50.0, 0, X0 - 250, 0, -50.0, Y0), manning=0.03)  # fmt: skip
    nid = {k: i for i, k in enumerate(sorted(nodes))}
    places = Places(
        population=points(UTM33, [nodes[3]], people=[10.0], node=[nid[3]], snap_m=[0.0]),
        shelters=points(UTM33, [], name=[], capacity=[]),
        stations=points(UTM33, [nodes[1], nodes[5]], name=["A", "B"],
                        node=[nid[1], nid[5]], snap_m=[0.0, 0.0]),  # fmt: skip
        hospitals=points(UTM33, [nodes[6]], name=["General"], node=[nid[6]], snap_m=[0.0]),
    )
    idx = EdgeCellIndex(np.zeros(roads.n_edges + 1, dtype=np.int64), np.zeros(0, np.int64))
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places, edge_cells=idx,
                 name="bridge")  # fmt: skip


NODE = {"a": 0, "e": 1, "c": 2, "d": 3, "b": 4, "h": 5}


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


def inject(sim: Simulation, calls: list[tuple[float, int]]) -> None:
    """Publish ``stranded`` events (as the evacuation would) at (time s, node)."""
    roads = sim.world.roads

    def go():
        for i, (t, node) in enumerate(calls):
            yield sim.env.timeout(t - sim.env.now)
            sim.recorder.event(sim.env.now, "stranded", f"hh{i}", node=node, people=2,
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
