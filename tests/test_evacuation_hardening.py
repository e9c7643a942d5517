"""Evacuation hardening: one-way exits, household tables, households.parquet, stranded."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from conftest import UTM33, points
from shapely.geometry import LineString

from emtwin.geo.index import edge_cell_index
from emtwin.geo.roads import roads_from_lines
from emtwin.geo.world import Places, Terrain, World
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation

X0, Y0 = 500_000.0, 5_500_000.0
SPACING = 200.0
EXIT_CAP = 3600.0  # veh/h per one-way exit link (2 lanes)


def grid_lines(k: int) -> tuple[gpd.GeoDataFrame, list[list[float]]]:
    """A k x k two-way street grid (200 m, 1800 veh/h each way) with one one-way,
    two-lane, 3600 veh/h exit link beyond the midpoint of each side; and the exits."""
    rows, m = [], k // 2

    def xy(c: float, r: float) -> tuple[float, float]:
        return (X0 + c * SPACING, Y0 + r * SPACING)

    for r in range(k):
        for c in range(k):
            if c + 1 < k:
                rows.append((LineString([xy(c, r), xy(c + 1, r)]), "no", 2, 1800.0))
            if r + 1 < k:
                rows.append((LineString([xy(c, r), xy(c, r + 1)]), "no", 2, 1800.0))
    ends = [((0, m), (-1, m)), ((k - 1, m), (k, m)), ((m, 0), (m, -1)), ((m, k - 1), (m, k))]
    for a, b in ends:
        rows.append((LineString([xy(*a), xy(*b)]), "yes", 2, EXIT_CAP))
    geom, oneway, lanes, cap = zip(*rows, strict=True)
    gdf = gpd.GeoDataFrame({"oneway": oneway, "lanes": lanes, "capacity": cap,
                            "maxspeed": 50, "highway": "residential"},
                           geometry=list(geom), crs=UTM33)  # fmt: skip
    return gdf, [list(xy(*b)) for _, b in ends]


def lines_world(k: int, people_per_node: int) -> tuple[World, list[list[float]]]:
    """A World whose roads are built by the road reader from :func:`grid_lines`."""
    lines, exits = grid_lines(k)
    roads = roads_from_lines(lines, crs=UTM33, source="grid")
    dx = 100.0
    n = int((k + 3) * SPACING / dx)
    z = np.zeros((n, n))
    west, north = X0 - 2 * SPACING, Y0 + (k + 1) * SPACING
    terrain = Terrain(z=z, mask=np.ones_like(z, bool), dx=dx,
                      transform=Affine(dx, 0, west, 0, -dx, north), manning=0.03)  # fmt: skip
    homes = [(X0 + c * SPACING, Y0 + r * SPACING) for r in range(k) for c in range(k)]
    hx, hy = np.array(homes).T
    node, dist = roads.nearest_node(hx, hy)
    places = Places(
        population=points(UTM33, homes, people=[float(people_per_node)] * len(homes),
                          node=node.tolist(), snap_m=dist.tolist()),
        shelters=points(UTM33, [], name=[], capacity=[]),
        stations=points(UTM33, [], name=[]), hospitals=points(UTM33, [], name=[]),
    )  # fmt: skip
    world = World(crs=UTM33, terrain=terrain, roads=roads, places=places,
                  edge_cells=edge_cell_index(roads, terrain), name="grid")  # fmt: skip
    return world, exits


def scenario(evacuation: dict, **over: object) -> Scenario:
    data = {"name": "t", "seed": 5, "duration": "3h", "crs": "EPSG:32633",
            "outputs": {"every": "10min"},
            "world": {"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                      "population": {"total": 1, "household_size": 1}},
            "evacuation": evacuation}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


AT_ONCE = {"curve": "table", "table": [[0, 1.0]]}


# ---------------------------------------------------------------------------- one-way exits


def test_one_way_exit_links_are_kept_and_clearance_respects_the_capacity_bound(caplog) -> None:
    # 5 x 5 grid, 80 one-person households per node (2000), all leaving at once.
    # Four one-way exit links of 3600 veh/h: no clearance can beat N / 14,400 veh/h
    # = 500 s. Dropping those links snaps the exits to the side midpoints, each fed
    # by three 1800 veh/h streets (21,600 veh/h in all), and clears in ~400 s.
    k, per = 5, 80
    world, exits = lines_world(k, per)
    roads = world.roads
    assert int(roads.sink.sum()) == 4 and roads.n_nodes == k * k + 4
    with caplog.at_level(logging.WARNING):
        sim = Simulation(scenario({"departure": AT_ONCE, "exits": exits}), world=world)
    assert not [r for r in caplog.records if "moved" in r.getMessage()]
    ev = sim.component("evacuation")
    assert roads.sink[ev.exits].all()
    res = sim.run()
    s = res.summary["evacuation"]
    n = k * k * per
    assert s["out"] == n
    assert s["clearance_s"] >= n / (4 * EXIT_CAP) * 3600
    # homes never snap to the dead ends
    assert not roads.sink[world.places.population["node"]].any()


def test_an_exit_moved_past_a_dropped_road_is_reported(caplog) -> None:
    # An exit at the far end of a one-way road INTO the grid (a source, dropped):
    # it snaps to the grid corner 200 m away, and says so.
    lines, _ = grid_lines(3)
    inbound = gpd.GeoDataFrame({"oneway": ["yes"], "lanes": [1], "capacity": [900.0],
                                "maxspeed": [50], "highway": ["residential"]},
                               geometry=[LineString([(X0 - SPACING, Y0), (X0, Y0)])], crs=UTM33)
    both = gpd.GeoDataFrame(pd.concat([lines, inbound], ignore_index=True), crs=UTM33)
    roads = roads_from_lines(both, crs=UTM33)
    from emtwin.sim.evacuation.shelters import exit_nodes

    world = type("W", (), {"roads": roads, "crs": UTM33})()
    with caplog.at_level(logging.WARNING):
        node = exit_nodes([[X0 - SPACING, Y0]], world, "EPSG:32633")
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "evacuation.exits.0" in msg and "moved 200 m" in msg and "dropped" in msg
    assert (roads.node_x[node[0]], roads.node_y[node[0]]) == (X0, Y0)


# ---------------------------------------------------------------------------- households.parquet


def test_households_table_has_every_household_and_conserves_people(tmp_path) -> None:
    # the rich grid run: walkers, a never-warned share, a closure, two shelters, exits
    from test_evacuation import grid_world, rich

    from emtwin.sim.outputs import write_results

    sim = Simulation(rich(1), world=grid_world())
    res = sim.run()
    out = write_results(res, tmp_path / "out")
    hh = pd.read_parquet(out / "households.parquet")
    assert not (out / "households.csv").exists()
    s = res.summary["evacuation"]
    assert len(hh) == s["households"] == 36 * 16 and hh["household"].is_unique
    assert list(hh.columns[:10]) == ["household", "people", "zone", "mode", "warned_s",
                                     "departed_s", "entered_road_s", "arrived_s",
                                     "destination", "state"]  # fmt: skip
    by_state = hh.groupby("state")["people"].sum()
    for state in ("sheltered", "out", "stranded", "never_left", "travelling"):
        assert int(by_state.get(state, 0)) == s[state], state
    assert int(hh["people"].sum()) == s["people"]
    # times in order: warned <= set off <= on the road <= arrived
    d = hh.dropna(subset=["departed_s", "entered_road_s"])
    assert (d.warned_s <= d.departed_s).all() and (d.departed_s <= d.entered_road_s).all()
    a = hh.dropna(subset=["arrived_s"])
    assert (a.entered_road_s <= a.arrived_s).all() and a.state.isin(["sheltered", "out"]).all()
    # the people at each shelter by the table equal the shelter's final occupancy
    sheltered = hh[hh.state == "sheltered"].groupby("destination")["people"].sum()
    assert sheltered.to_dict() == {k: v for k, v in s["shelters"].items() if v > 0}
    # the departure times are those of the departed events
    ev = res.events[res.events.kind == "departed"].set_index("entity")["time_s"]
    left = hh.set_index("household").loc[ev.index]
    assert np.allclose(left.entered_road_s, ev.to_numpy())
    assert (hh[hh.state == "never_left"].arrived_s.isna()).all()


# ---------------------------------------------------------------------------- replayed demand


def _replay_run(tmp_path, table: pd.DataFrame, name: str = "hh.csv", **evac):
    from test_evacuation import grid_world, node_xy
    from test_evacuation import scenario as grid_scenario

    w = grid_world()
    path = tmp_path / name
    if name.endswith(".csv"):
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    spec = {"departure": AT_ONCE, "households": str(path), "warning": {"at": "10h"},
            "exits": [node_xy(w, 0), {"name": "north", "at": node_xy(w, 35)}]}  # fmt: skip
    spec.update(evac)
    sim = Simulation(grid_scenario(spec, duration="1h"), world=w)
    return sim, sim.run(), w


def _at(w, k: int) -> tuple[float, float]:
    return float(w.roads.node_x[k]), float(w.roads.node_y[k])


@pytest.mark.parametrize("fmt", ["hh.csv", "hh.parquet"])
def test_a_households_table_replays_departures_and_destinations(tmp_path, fmt) -> None:
    # 6 x 6 grid (200 m); shelters West (node 12) and East (node 23), exits exit_1
    # (node 0) and north (node 35). Each household is sent past nearer places.
    from test_evacuation import grid_world

    w = grid_world()
    homes = [1, 34, 14, 5]
    xy = [_at(w, k) for k in homes]
    table = pd.DataFrame({
        "household": ["a", "b", "c", "d"],
        "departure_s": [100.0, 250.5, 1000.0, 7200.0],  # d sets off after the end
        "destination": ["East", "exit_1", "", "West"],
        "people": [3, 2, 1, 4], "mode": ["car", "foot", "car", "car"],
        "x": [p[0] for p in xy], "y": [p[1] for p in xy],
    })  # fmt: skip
    sim, res, w = _replay_run(tmp_path, table, fmt)
    s = res.summary["evacuation"]
    assert s["households"] == 4 and s["people"] == 10
    hh = res.tables["households"].set_index("input_household")
    assert hh.loc[["a", "b", "c"], "departed_s"].tolist() == [100.0, 250.5, 1000.0]
    assert np.isnan(hh.loc["d", "departed_s"]) and hh.loc["d", "state"] == "never_left"
    # the walker leaves at exactly its time and walks 34 -> 0 (5 + 4 blocks) at 1.2 m/s,
    # not to the exit north one block away
    ev = res.events.set_index("entity")
    assert ev[ev.kind == "departed"].loc[hh.loc["b", "household"], "time_s"] == 250.5
    assert hh.loc["b", "arrived_s"] == pytest.approx(250.5 + 1800 / 1.2)
    assert hh.loc[["a", "b", "c"], "destination"].tolist() == ["East", "exit_1", "West"]
    assert hh.loc[["a", "b", "c"], "state"].tolist() == ["sheltered", "out", "sheltered"]
    assert hh.loc["a", "entered_road_s"] >= 100.0
    assert hh.loc[["a", "b", "c", "d"], "mode"].tolist() == ["car", "foot", "car", "car"]
    assert s["shelters"] == {"West": 1.0, "East": 3.0}


def test_a_table_naming_the_worlds_households_replays_them(tmp_path) -> None:
    # no x/y/node: the ids are the World's households; those not listed stay home
    table = pd.DataFrame({"household": ["h3", "h40"], "departure": ["2min", "1min30s"],
                          "destination": ["north", "West"]})  # fmt: skip
    _, res, _ = _replay_run(tmp_path, table)
    hh = res.tables["households"].set_index("household")
    assert hh.loc[["h3", "h40"], "departed_s"].tolist() == [120.0, 90.0]
    assert hh.loc[["h3", "h40"], "destination"].tolist() == ["north", "West"]
    assert (hh.drop(index=["h3", "h40"]).state == "never_left").all()
    assert res.summary["evacuation"]["households"] == 36 * 40  # one person each


@pytest.mark.parametrize(("table", "match"), [
    ({"household": ["h1", "h2"], "departure_s": [0, 5], "destination": ["West", "Nowhere"]},
     r"hh\.csv: row 2: `destination` 'Nowhere' is no shelter or exit"),
    ({"household": ["h1", "h2", "h3"], "departure_s": [0, -5, "soon"], "destination": ""},
     r"hh\.csv: rows 2, 3: `departure_s` must be a time >= 0"),
    ({"household": ["h1", "h1"], "departure_s": [0, 5], "destination": ""},
     r"row 2: `household` repeats"),
    ({"household": ["h1"], "destination": ["West"]}, r"no `departure_s`"),
    ({"household": ["h1"], "departure_s": [0]}, r"no `destination` column"),
    ({"household": ["zz"], "departure_s": [0], "destination": [""]},
     r"row 1: `household` 'zz' is none of the World's households"),
    ({"household": ["a"], "departure_s": [0], "destination": [""], "node": [999]},
     r"row 1: `node` must be a road node index"),
])  # fmt: skip
def test_bad_household_tables_are_clear_errors(tmp_path, table, match) -> None:
    from emtwin.errors import ScenarioError

    with pytest.raises(ScenarioError, match=match) as err:
        _replay_run(tmp_path, pd.DataFrame(table))
    assert "evacuation.households" in str(err.value)


# ---------------------------------------------------------------------------- unserved calls


def test_every_unserved_call_has_a_reason() -> None:
    # zones 0..2: from 0, zone 1 has no way (inf), zone 2 is 5000 s away. Two
    # ambulances at zone 0; the run stops at 500 s.
    import simpy

    from emtwin.sim.dispatch import Call, DispatchCore, MatrixTravel, Unit, closest
    from emtwin.sim.dispatch.metrics import calls_table, dispatch_summary
    from emtwin.sim.recorder import Recorder

    inf = np.inf
    times = np.array([[0.0, inf, 5000.0], [inf, 0.0, inf], [5000.0, inf, 0.0]])
    env = simpy.Environment()
    units = [Unit("a1", "ambulance", "S", 0), Unit("a2", "ambulance", "S", 0)]
    core = DispatchCore(env, units, MatrixTravel(times), closest, recorder=Recorder())
    calls = [Call("busy", 0.0, 0, on_scene_s=10_000.0),  # a1 on scene past the end
             Call("far", 1.0, 2),  # a2 on its way (5000 s) when the run ends
             Call("island", 2.0, 1),  # no way there
             Call("queued", 3.0, 0),  # reachable, both units busy
             Call("boat", 4.0, 0, needs=("boat",))]  # no such unit at all  # fmt: skip

    def feed():
        for c in calls:
            yield env.timeout(c.time_s - env.now)
            core.submit(c)

    env.process(feed())
    env.run(until=500.0)
    core.finish()
    assert [c.reason for c in calls] == ["", "ended", "unreachable", "no_unit", "no_unit"]
    s = dispatch_summary(core.calls, core.units, [500.0, 499.0], 500.0)
    assert s["unserved"] == 4
    assert s["unserved_by_reason"] == {"unreachable": 1, "no_unit": 2, "ended": 1}
    tab = calls_table(core.calls).set_index("id")["unserved_reason"]
    assert tab.to_dict() == {"busy": "", "far": "ended", "island": "unreachable",
                             "queued": "no_unit", "boat": "no_unit"}  # fmt: skip


# ---------------------------------------------------------------------------- after the water


def _receding_square(response: bool, warn_at: object = 0, on_foot: float = 0.0):
    """The rain square of test_evacuation with the rain stopping at 30 min and 400 mm/h
    of infiltration: the depth rises at 700 mm/h to 0.35 m, then falls at 400 mm/h."""
    from test_evacuation import X0 as TX0
    from test_evacuation import Y0 as TY0
    from test_evacuation import node_xy, world_of
    from test_evacuation import scenario as ev_scenario

    nodes = {0: (20, 150), 1: (270, 150), 2: (20, 50)}
    links = [(0, 1, "a", 0.05)]
    if response:  # the station, 100 m north of node 0 on a two-way 10 m/s road b
        nodes[3] = (20, 250)
        links += [(3, 0, "b", 10.0), (0, 3, "b", 10.0)]
    w = world_of(nodes, links, homes=[(0, 2), (2, 3)], cells=30)
    over: dict = {}
    if response:
        st = (float(w.roads.node_x[3]), float(w.roads.node_y[3]))
        w.places.stations = points(UTM33, [st], name=["S"], node=[3], snap_m=[0.0])
        over["response"] = {
            "resources": [{"type": "truck", "station": "S", "count": 1}],
            "incidents": {"from_hazard": True, "hazard_share": 1.0,
                          "hazard_types": [{"name": "stranded", "needs": "truck",
                                            "on_scene": "5min"}]},
        }  # fmt: skip
    sc = ev_scenario(
        {"departure": AT_ONCE, "exits": [node_xy(w, 1)], "exposure_depth": 0.4,
         "warning": {"at": "10h"}, "on_foot_share": on_foot,
         "zones": [{"name": "z", "area": [[TX0, TY0 - 100], [TX0 + 300, TY0 - 100],
                                          [TX0 + 300, TY0 - 200], [TX0, TY0 - 200]],
                    "warning": {"at": warn_at}}]},
        duration="50min",
        hazards=[{"type": "flood", "rain": [[0, 1100], [1800, 0]],
                  "infiltration": {"rate_mm_h": 400}}],
        world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
               "population": {"total": 5, "household_size": 5}},
        **over,
    )  # fmt: skip
    return w, sc


def test_stranded_occupants_walk_out_when_the_water_recedes() -> None:
    # Depth 0.7/3600 m/s x t: roads close at 0.3 m (1543 s), seen at the 1560 s step;
    # the car (0.05 m/s from node 0) stalls 78 m along road a, nearer node 0. The rain
    # stops at 1800 s (0.35 m); the water falls at 0.4/3600 m/s below 0.3 m (AIDR H1,
    # wadeable) after 2250 s, seen at the 2280 s step: the two walk out from node 0
    # and walk the 250 m to the exit at 1.2 m/s (208.3 s).
    w, sc = _receding_square(response=False)
    sim = Simulation(sc, world=w)
    res = sim.run()
    ev = res.events
    strand = ev[(ev.kind == "stranded") & (ev.entity == "h0")]
    assert strand.time_s.tolist() == [1560.0]
    walk = ev[(ev.kind == "walked_out") & (ev.entity == "h0")]
    assert walk.time_s.tolist() == [2280.0] and walk.node.tolist() == [0]
    out = ev[(ev.kind == "out") & (ev.entity == "h0")]
    assert out.time_s.tolist() == pytest.approx([2280.0 + 250 / 1.2])
    s = res.summary["evacuation"]
    assert s["stranded"] == 0 and s["out"] == 2 and s["walked_out"] == 2
    hh = res.tables["households"].set_index("household")
    assert hh.loc["h0", "state"] == "out" and hh.loc["h0", "mode"] == "car"
    assert hh.loc["h0", "departed_s"] == 0.0
    assert hh.groupby("state")["people"].sum().to_dict() == {"out": 2, "never_left": 3}


def test_a_walker_stranded_by_water_walks_on_when_it_recedes() -> None:
    # Warned at 1700 s (0.33 m, every road closed), the household sets off on foot and
    # is stranded at once at node 0; it walks out at the 2280 s step like the car's.
    w, sc = _receding_square(response=False, warn_at="1700s", on_foot=1.0)
    sim = Simulation(sc, world=w)
    res = sim.run()
    ev = res.events[res.events.entity == "h0"]
    assert ev.kind.tolist() == ["departed", "stranded", "walked_out", "departed", "out"]
    assert ev.time_s.tolist() == pytest.approx([1700, 1700, 2280, 2280, 2280 + 250 / 1.2])
    comp = sim.component("evacuation")
    assert len(comp.walk) == 2 and comp.walker[0] == 1  # the first walker superseded
    assert comp.check_conservation()["out"] == 1


def test_a_rescue_that_comes_first_ends_the_wait() -> None:
    # Same water; a high-clearance truck (drives through up to 0.6 m) 100 m away
    # answers the stranded call at once: the household is rescued, and does not walk.
    w, sc = _receding_square(response=True)
    res = Simulation(sc, world=w).run()
    ev = res.events
    arrival = ev[ev.kind == "arrival"]
    assert len(arrival) == 1
    rescued = ev[(ev.kind == "rescued") & (ev.entity == "h0")]
    assert rescued.time_s.tolist() == arrival.time_s.tolist()
    # called at the 1560 s stall; 100 m of road b under water at 30 % of 10 m/s
    assert rescued.time_s.iloc[0] == pytest.approx(1560.0 + 100.0 / 3.0)
    assert ev[ev.kind == "walked_out"].empty
    s = res.summary["evacuation"]
    assert s["rescued"] == 2 and s["stranded"] == 0 and s["households_by_state"]["rescued"] == 1
    last = res.timeseries.iloc[-1]
    assert (last.rescued, last.stranded, last.departed) == (2, 0, 2)
    assert res.summary["dispatch"]["unserved_by_reason"] == {"unreachable": 0, "no_unit": 0,
                                                             "ended": 0}  # fmt: skip


def test_only_shelters_stand_on_one_way_dead_ends(caplog) -> None:
    # a place at the far end of the west exit link: a shelter snaps there; a station
    # snaps to the grid 200 m away, with a warning (a unit could not drive back)
    from emtwin.geo.places import check_not_cut_off, snap_to_network

    world, exits = lines_world(3, 1)
    roads = world.roads
    at = [tuple(exits[0])]
    shelter = snap_to_network(points(UTM33, at, name=["S"], capacity=[10.0]), roads,
                              what="shelters", sinks=True)  # fmt: skip
    assert roads.sink[shelter.node[0]] and shelter.snap_m[0] == 0.0
    check_not_cut_off(shelter, roads, what="shelters")
    station = snap_to_network(points(UTM33, at, name=["A"]), roads, what="stations")
    assert not roads.sink[station.node[0]] and station.snap_m[0] == 200.0
    with caplog.at_level(logging.WARNING):
        check_not_cut_off(station, roads, what="stations", file_label="world.stations")
    assert any("cut off" in r.getMessage() for r in caplog.records)
    far = points(UTM33, at, name=["A"]).assign(node=[0], snap_m=[300.0])
    with pytest.raises(Exception, match="one-way dead end of 1 nodes"):
        check_not_cut_off(far, roads, what="stations", file_label="world.stations")
