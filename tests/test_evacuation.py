"""The evacuation component against hand-computed and independent numbers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from conftest import UTM33, hand_roads, points
from rasterio.transform import from_origin
from scipy import stats
from shapely.geometry import LineString, Point

from emtwin.errors import ScenarioError, SimulationError
from emtwin.geo.index import edge_cell_index
from emtwin.geo.world import Places, Terrain, World
from emtwin.scenarios import load_scenario
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation

X0, Y0 = 500000.0, 5502000.0  # north-west corner of the test grids, UTM 33N


def world_of(nodes: dict[int, tuple[float, float]], links: list[tuple], *,
             homes: list[tuple[int, float]], shelters: list[tuple[str, int, float]] = (),
             cells: int = 200, dx: float = 10.0, lanes=None, capacity=None) -> World:  # fmt: skip
    """A flat World from nodes (x, y offsets in m), links (u, v, road_id, speed m/s).

    ``homes``: (node, people) placed exactly at nodes; ``shelters``: (name, node,
    capacity). ``lanes``/``capacity`` override per link (else 1 lane, 1000 veh/h).
    """
    xy = {k: (X0 + dx_ + 5.0, Y0 - dy - 5.0) for k, (dx_, dy) in nodes.items()}
    roads = hand_roads(xy, links)
    if lanes is not None:
        roads.lanes = np.asarray(lanes, float)
    if capacity is not None:
        roads.capacity_veh_h = np.asarray(capacity, float)
    nid = {k: i for i, k in enumerate(sorted(nodes))}
    z = np.zeros((cells, cells))
    terrain = Terrain(z=z, mask=np.ones_like(z, bool), dx=dx,
                      transform=Affine(dx, 0, X0, 0, -dx, Y0), manning=0.03)  # fmt: skip
    places = Places(
        population=points(UTM33, [xy[n] for n, _ in homes], people=[float(p) for _, p in homes],
                          node=[nid[n] for n, _ in homes], snap_m=[0.0] * len(homes)),
        shelters=points(UTM33, [xy[n] for _, n, _ in shelters], name=[s for s, _, _ in shelters],
                        capacity=[float(c) for _, _, c in shelters],
                        node=[nid[n] for _, n, _ in shelters], snap_m=[0.0] * len(shelters)),
        stations=points(UTM33, [], name=[]),
        hospitals=points(UTM33, [], name=[]),
    )  # fmt: skip
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places,
                 edge_cells=edge_cell_index(roads, terrain), name="t")  # fmt: skip


def node_xy(world: World, k: int) -> list[float]:
    return [float(world.roads.node_x[k]), float(world.roads.node_y[k])]


def scenario(evacuation: dict[str, Any], **over: Any) -> Scenario:
    data = {"name": "t", "seed": 3, "duration": "2h", "crs": "EPSG:32633",
            "outputs": {"every": "5min"},
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson",
                      "population": {"total": 1, "household_size": 1}},
            "evacuation": evacuation}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


AT_ONCE = {"curve": "table", "table": [[0, 1.0]]}  # everyone leaves when warned


def run(sc: Scenario, world: World, listen: list | None = None):
    sim = Simulation(sc, world=world)
    if listen is not None:
        sim.recorder.subscribe("stranded", lambda t, e, **kw: listen.append((t, e, kw)))
    res = sim.run()
    return sim, res


def hh_events(res, kind: str) -> pd.DataFrame:
    ev = res.events[res.events.kind == kind].copy()
    ev["d"] = ev.details.map(json.loads)
    return ev


# ---------------------------------------------------------------------------- traffic


def test_bottleneck_clears_in_n_over_c_plus_free_time() -> None:
    # N cars ready at once at node 0; a wide feeder a (750 m, 15 m/s) leads to the
    # bottleneck b (500 m, 10 m/s, C = 1800 veh/h) and the exit. Hand: N/C + L/v.
    n, c = 2000, 1800.0
    w = world_of({0: (0, 0), 1: (750, 0), 2: (1250, 0)}, [(0, 1, "a", 15.0), (1, 2, "b", 10.0)],
                 homes=[(0, n)], lanes=[n * 7.5 / 750, 1], capacity=[36_000.0, c])  # fmt: skip
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 2)]},
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": n, "household_size": 1}})  # fmt: skip
    _, res = run(sc, w)
    s = res.summary["evacuation"]
    expected = n / c * 3600 + 750 / 15 + 500 / 10  # 4100 s
    assert abs(s["clearance_s"] - expected) / expected < 0.01
    # Arrival quantiles (people-weighted, one person per car). The first car needs
    # the free-flow time 750/15 + 500/10 = 100 s; a (20 lanes, 36,000 veh/h) feeds
    # b faster than b's C = 1800 veh/h (one car per 2 s) lets out, so the k-th car
    # is out at about 100 + k x 3600/C s: t50 (1000th car) ~ 0.5 N/C x 3600 + 100 =
    # 2100 s, t90 (1800th) ~ 0.9 N/C x 3600 + 100 = 3700 s.
    for key, share in (("t50_s", 0.5), ("t90_s", 0.9)):
        want = share * n / c * 3600 + 100
        assert abs(s[key] - want) / want < 0.01, (key, s[key], want)
    assert s["out"] == n and s["households_by_state"]["out"] == n
    assert res.tables["roads"]["passed"].tolist() == [n, n]


def test_spillback_blocks_the_upstream_link_by_hand_count() -> None:
    # a: 1000 m at 10 m/s (100 s), 3600 veh/h; b: 75 m x 1 lane -> storage 10,
    # 360 veh/h (one exit per 10 s), 10 s free time. 60 cars leave at 0.
    # Hand (as in test_traffic): cars reach the head of a at 100 s, 10 fill b at
    # 100..109 s; b discharges at 110, 120, ..., 300 s (20 out); each freed place
    # is taken one step later (19 entries), so at 300 s a holds 31, b 9.
    w = world_of({0: (0, 0), 1: (1000, 0), 2: (1075, 0)}, [(0, 1, "a", 10.0), (1, 2, "b", 7.5)],
                 homes=[(0, 60)], capacity=[3600.0, 360.0])  # fmt: skip
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 2)]}, duration=300,
                  outputs={"every": "60s"},
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": 60, "household_size": 1}})  # fmt: skip
    sim, res = run(sc, w)
    last = res.timeseries.iloc[-1]
    assert last["time_s"] == 300 and last["vehicles_on_road"] == 40 and last["out"] == 20
    assert sim.component("evacuation").net.link_occupancy.tolist() == [31, 9]
    roads = res.tables["roads"]
    assert roads["passed"].tolist() == [29, 20]
    assert roads["peak_queue"].iloc[0] >= 31 and roads["peak_queue"].iloc[1] <= 10


def test_contraflow_doubles_the_outbound_capacity() -> None:
    # as the bottleneck, with b two-way and reversed from the start: the
    # outbound link gets 2 C, so N/(2C) + L/v = 2000 + 100 = 2100 s.
    n, c = 2000, 1800.0
    w = world_of({0: (0, 0), 1: (750, 0), 2: (1250, 0)},
                 [(0, 1, "a", 15.0), (1, 2, "b", 10.0), (2, 1, "b", 10.0)], homes=[(0, n)],
                 lanes=[n * 7.5 / 750, 1, 1], capacity=[36_000.0, c, c])  # fmt: skip
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 2)], "contraflow": ["b"]},
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": n, "household_size": 1}})  # fmt: skip
    sim, res = run(sc, w)
    expected = n / (2 * c) * 3600 + 100
    assert abs(res.summary["evacuation"]["clearance_s"] - expected) / expected < 0.01
    assert sim.roads.closed_contraflow.tolist() == [False, False, True]  # inbound b closed
    assert sim.roads.capacity_veh_h[1] == 2 * c


# ---------------------------------------------------------------------------- shelters


@pytest.mark.parametrize("on_foot", [0.0, 1.0])
def test_shelter_capacity_is_hard_and_the_turned_away_go_on(on_foot: float) -> None:
    # home 0 -> A (node 1, 5 places, 100 m) -> B (node 2, 100 places, 500 m on).
    # 12 households of one: the first 5 fill A, the other 7 end in B.
    w = world_of({0: (0, 0), 1: (100, 0), 2: (600, 0)},
                 [(0, 1, "a", 10.0), (1, 2, "b", 10.0)], homes=[(0, 12)],
                 shelters=[("A", 1, 5), ("B", 2, 100)])  # fmt: skip
    sc = scenario({"departure": AT_ONCE, "on_foot_share": on_foot},
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": 12, "household_size": 1}})  # fmt: skip
    _, res = run(sc, w)
    tab = res.tables["shelters"]
    assert (tab.occupancy <= tab.capacity).all()
    final = tab[tab.time_s == tab.time_s.max()].set_index("shelter").occupancy
    assert final.to_dict() == {"A": 5.0, "B": 7.0}
    sheltered = hh_events(res, "sheltered")
    in_a = sheltered[sheltered.d.map(lambda d: d["shelter"]) == "A"]
    assert len(in_a) == 5
    if on_foot == 0.0:
        # cars: the 7 behind were on their last link when A filled: turned away there
        away = hh_events(res, "turned_away")
        assert len(away) == 7 and set(away.node) == {1}
        later = sheltered.set_index("entity").loc[away.entity]
        assert (later.d.map(lambda d: d["shelter"]) == "B").all()
        assert (later.time_s.to_numpy() > away.time_s.to_numpy()).all()
    assert res.summary["evacuation"]["sheltered"] == 12
    # A fills once: one shelter_full event, for A (B, 7 of 100, never fills)
    full = res.events[res.events.kind == "shelter_full"]
    assert full.entity.tolist() == ["A"] and json.loads(full.details.iloc[0])["occupancy"] == 5
    # the time series against the households: all 12 warned at 0 (instant reach);
    # who left home is on the road, sheltered, out or stranded; the sheltered and
    # departed columns are the people of those events up to each row's time. (The
    # t = 0 row is the state before what happens at 0, the warning included.)
    ts = res.timeseries[res.timeseries.time_s > 0]
    assert len(ts) == 24 and (ts.warned == 12).all()
    assert (ts.departed == ts.on_road + ts.sheltered + ts.out + ts.stranded).all()
    for col in ("departed", "sheltered"):
        ev = hh_events(res, col)
        upto = [int(ev.d[ev.time_s <= t].map(lambda d: d["people"]).sum()) for t in ts.time_s]
        assert ts[col].tolist() == upto
    last = ts.iloc[-1]
    assert (last.sheltered, last.departed, last.on_road, last.out) == (12, 12, 0, 0)


@pytest.mark.parametrize("on_foot", [0.0, 1.0])
def test_assigned_shelter_then_the_nearest_other_when_it_is_full(on_foot: float) -> None:
    # the zone around home 0 is assigned far shelter B (6 places) although A is
    # nearer: 6 go to B; the 6 turned away there are re-routed once, to A.
    w = world_of({0: (0, 0), 1: (100, 0), 2: (600, 0)},
                 [(0, 1, "a", 10.0), (1, 2, "b", 10.0), (2, 1, "b", 10.0)], homes=[(0, 12)],
                 shelters=[("A", 1, 100), ("B", 2, 6)])  # fmt: skip
    zone = [[X0, Y0], [X0 + 50, Y0], [X0 + 50, Y0 - 50], [X0, Y0 - 50]]
    sc = scenario({"departure": AT_ONCE, "shelter_choice": "assigned", "on_foot_share": on_foot,
                   "zones": [{"name": "z", "area": zone, "shelter": "B"}]},
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": 12, "household_size": 1}})  # fmt: skip
    _, res = run(sc, w)
    where = hh_events(res, "sheltered").d.map(lambda d: d["shelter"]).value_counts()
    assert where.to_dict() == {"B": 6, "A": 6}
    moved = hh_events(res, "rerouted")
    assert len(moved) == 6 and (moved.node == 2).all()
    assert res.summary["evacuation"]["sheltered"] == 12


def test_actions_naming_unknown_zones_or_shelters_are_errors() -> None:
    w = world_of({0: (0, 0), 1: (100, 0)}, [(0, 1, "a", 10.0)], homes=[(0, 2)],
                 shelters=[("A", 1, 10)])  # fmt: skip
    for action, msg in (({"warn": "nowhere"}, "no evacuation zone named 'nowhere'"),
                        ({"close_shelter": "Z"}, "no shelter named 'Z'")):  # fmt: skip
        sc = scenario({}, actions=[{"at": "5min", **action}])
        with pytest.raises(ScenarioError, match=msg):
            Simulation(sc, world=w)


def test_shelter_named_in_open_shelter_starts_closed() -> None:
    # A (near) opens at 30 min: earlier leavers go to B, later ones to A.
    w = world_of({0: (0, 0), 1: (100, 0), 2: (600, 0)},
                 [(0, 1, "a", 10.0), (1, 2, "b", 10.0)], homes=[(0, 2)],
                 shelters=[("A", 1, 50), ("B", 2, 50)])  # fmt: skip
    sc = scenario({"departure": AT_ONCE}, actions=[{"at": "30min", "open_shelter": "A"}],
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": 2, "household_size": 1}})  # fmt: skip
    sc2 = sc.model_copy(update={"actions": []})
    late = scenario({"departure": AT_ONCE, "warning": {"at": "40min"}},
                    actions=[{"at": "30min", "open_shelter": "A"}],
                    world=sc.world.model_dump())  # fmt: skip
    where = [hh_events(run(s, w)[1], "sheltered").d.map(lambda d: d["shelter"]).tolist()
             for s in (sc, sc2, late)]  # fmt: skip
    assert where == [["B", "B"], ["A", "A"], ["A", "A"]]


# ---------------------------------------------------------------------------- routing


def detour_world(on_foot: float) -> tuple[World, Scenario]:
    # 0 -a-> 1 -b-> 3 (direct) or 1 -c-> 2 -d-> 3 (detour); exit at 3.
    w = world_of({0: (0, 0), 1: (1000, 0), 2: (1000, 300), 3: (1500, 0)},
                 [(0, 1, "a", 10.0), (1, 3, "b", 10.0), (1, 2, "c", 10.0), (2, 3, "d", 10.0)],
                 homes=[(0, 3)])  # fmt: skip
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 3)], "on_foot_share": on_foot,
                   "walk_speed": 10.0},
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": 3, "household_size": 3}})  # fmt: skip
    return w, sc


@pytest.mark.parametrize("on_foot", [0.0, 1.0])
def test_a_closure_ahead_makes_the_traveller_reroute(on_foot: float) -> None:
    # b closes at 50 s (seen at the 60 s coupling step); the traveller reaches
    # node 1 at 100 s and takes the detour: 100 + 30 + 50 (1-2 is 300 m, 2-3 is
    # sqrt(500^2 + 300^2) = 583.1 m) = 100 + 30 + 58.31 s.
    w, sc = detour_world(on_foot)
    sc = sc.model_copy(update={"actions": scenario(
        {}, actions=[{"at": "50s", "close_road": "b"}]).actions})  # fmt: skip
    _, res = run(sc, w)
    rer = hh_events(res, "rerouted")
    assert len(rer) >= 1 and rer.time_s.min() <= 100.0 + 1e-6
    out = hh_events(res, "out")
    assert out.time_s.tolist() == pytest.approx([100 + 30 + np.hypot(500, 300) / 10], abs=1e-6)
    assert res.summary["evacuation"]["out"] == 3


@pytest.mark.parametrize("on_foot", [0.0, 1.0])
def test_with_every_route_closed_the_traveller_is_stranded(on_foot: float) -> None:
    w, sc = detour_world(on_foot)
    sc = sc.model_copy(update={"actions": scenario({}, actions=[
        {"at": "50s", "close_road": "b"}, {"at": "50s", "close_road": "c"}]).actions})  # fmt: skip
    heard: list = []
    _, res = run(sc, w, heard)
    (t, entity, kw), = heard
    assert t == pytest.approx(100.0) and entity == "h0"
    assert kw["node"] == 1 and kw["people"] == 3 and kw["vehicle"] is (on_foot == 0.0)
    assert (kw["x"], kw["y"]) == (w.roads.node_x[1], w.roads.node_y[1])
    s = res.summary["evacuation"]
    assert s["stranded"] == 3 and s["households_by_state"]["stranded"] == 1


def test_walkers_walk_the_shortest_path_at_walking_speed() -> None:
    w, sc = detour_world(1.0)
    sc = sc.model_copy(update={"evacuation": sc.evacuation.model_copy(update={"walk_speed": 1.5})})
    _, res = run(sc, w)
    assert hh_events(res, "out").time_s.tolist() == pytest.approx([1500 / 1.5])
    trips = res.tables["trips"]
    assert trips.kind.unique().tolist() == ["pedestrian"]
    assert trips.time_s.tolist() == pytest.approx([0, 1000 / 1.5, 1500 / 1.5])


# ---------------------------------------------------------------------------- warnings


def grid_world(k: int = 6, people: int = 40) -> World:
    """k x k grid, 200 m apart, two-way; people at every node; two shelters."""
    nodes = {r * k + c: (c * 200.0, r * 200.0) for r in range(k) for c in range(k)}
    links = []
    for r in range(k):
        for c in range(k):
            n = r * k + c
            if c + 1 < k:
                links += [(n, n + 1, f"h{r}-{c}", 13.9), (n + 1, n, f"h{r}-{c}", 13.9)]
            if r + 1 < k:
                links += [(n, n + k, f"v{r}-{c}", 13.9), (n + k, n, f"v{r}-{c}", 13.9)]
    return world_of(nodes, links, homes=[(n, people) for n in nodes],
                    shelters=[("West", 2 * k, 300), ("East", 3 * k + k - 1, 200)])  # fmt: skip


def rich(seed: int, **evac: Any) -> Scenario:
    w = grid_world()
    spec = {"warning": {"at": "5min", "reach": "exponential", "reach_time": "10min",
                        "never": 0.05},
            "departure": {"curve": "rayleigh", "sigma": "15min"}, "on_foot_share": 0.2,
            "exits": [node_xy(w, 0), node_xy(w, 35)],
            "zones": [{"name": "north", "area": [[X0, Y0], [X0 + 1200, Y0],
                                                 [X0 + 1200, Y0 - 300], [X0, Y0 - 300]]}]}
    spec.update(evac)
    return scenario(spec, seed=seed, actions=[{"at": "20min", "close_road": "v2-2"},
                                              {"at": "30min", "warn": "north"}],
                    world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                           "population": {"total": 1, "household_size": 2.5}})  # fmt: skip


def test_same_seed_same_events_and_every_household_accounted_for() -> None:
    w = grid_world()
    r1, r2, r3 = (run(rich(s), w)[1] for s in (1, 1, 2))
    pd.testing.assert_frame_equal(r1.events, r2.events)
    pd.testing.assert_frame_equal(r1.timeseries, r2.timeseries)
    pd.testing.assert_frame_equal(r1.tables["trips"], r2.tables["trips"])
    assert not r1.events.equals(r3.events)
    for res in (r1, r3):
        s = res.summary["evacuation"]
        assert sum(s["households_by_state"].values()) == s["households"] == 36 * 16
        assert s["sheltered"] + s["out"] + s["stranded"] + s["never_left"] + s["travelling"] \
            == s["people"] == 36 * 40
        # the north zone (rows 0 and 1: 12 nodes) is warned by the action at 30 min only
        dep = hh_events(res, "departed")
        north = set(np.flatnonzero(np.repeat(np.arange(36) < 12, 16)))
        ids = dep.entity.str[1:].astype(int)
        assert dep.time_s[ids.isin(north)].min() >= 1800.0
        assert dep.time_s[~ids.isin(north)].min() < 1800.0
        tab = res.tables["shelters"]
        assert (tab.occupancy <= tab.capacity).all()


def test_conservation_check_catches_a_lost_household() -> None:
    sim, _ = run(rich(1), grid_world())
    comp = sim.component("evacuation")
    assert comp.check_conservation()  # as it ended
    h = int(np.flatnonzero(comp.state == 2)[0])  # a sheltered household ...
    comp.state[h] = 3  # ... booked as out
    with pytest.raises(SimulationError, match="conservation"):
        comp.check_conservation()


def test_departure_delays_follow_the_rayleigh_curve() -> None:
    # 10,000 households warned at once; their departure delays against F(t) =
    # 1 - exp(-t^2 / (2 sigma^2)) (Kolmogorov-Smirnov).
    w = world_of({0: (0, 0), 1: (100, 0)}, [(0, 1, "a", 10.0)], homes=[(0, 10_000)])
    sc = scenario({"departure": {"curve": "rayleigh", "sigma": "15min"},
                   "exits": [node_xy(w, 1)]}, duration=1, seed=11,
                  world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                         "population": {"total": 1, "household_size": 1}})  # fmt: skip
    sim, _ = run(sc, w)
    delays = sim.component("evacuation").depart_t
    assert delays.size == 10_000
    sigma = 900.0
    p = stats.kstest(delays, lambda t: 1 - np.exp(-(t**2) / (2 * sigma**2))).pvalue
    assert p > 0.01


# ---------------------------------------------------------------------------- water


def _rain_square(zone_warned_at: object, duration: str):
    """A flat closed 300 m square under 1100 mm/h of rain; a 250 m road with an
    exit at its end; h0 (2 people) in a zone warned at *zone_warned_at*, h1 (3)
    never warned; exposure from 0.4 m. Returns (world, scenario)."""
    w = world_of({0: (20, 150), 1: (270, 150), 2: (20, 50)}, [(0, 1, "a", 0.1)],
                 homes=[(0, 2), (2, 3)], cells=30)  # fmt: skip
    sc = scenario(
        {"departure": AT_ONCE, "exits": [node_xy(w, 1)], "exposure_depth": 0.4,
         "warning": {"at": "10h"},
         "zones": [{"name": "z", "area": [[X0, Y0 - 100], [X0 + 300, Y0 - 100],
                                          [X0 + 300, Y0 - 200], [X0, Y0 - 200]],
                    "warning": {"at": zone_warned_at}}]},
        duration=duration, hazards=[{"type": "flood", "rain": [[0, 1100]]}],
        world={"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
               "population": {"total": 5, "household_size": 5}},
    )  # fmt: skip
    return w, sc


def test_water_stalls_vehicles_and_exposes_people_at_home() -> None:
    # Flat closed 300 m square, rain 1100 mm/h: depth = 1.1/3600 m/s x t on
    # every cell (no flow on a flat bed). Roads close at 0.3 m (t = 981.8 s),
    # seen at the 1020 s coupling step: the car crawling along a (250 m at
    # 0.1 m/s, left at 0) stalls there, 1020/2500 of the way along. The
    # household outside the warned zone stays home and is exposed when the
    # depth passes 0.4 m (t = 1309 s -> 1320 s step), depth 0.403 m, AIDR H2.
    w, sc = _rain_square(zone_warned_at=0, duration="30min")
    heard: list = []
    _, res = run(sc, w, heard)
    (t, entity, kw), = heard
    assert t == 1020.0 and entity == "h0" and kw["vehicle"] is True and kw["people"] == 2
    assert kw["x"] == pytest.approx(X0 + 25 + 250 * 1020 / 2500)
    assert kw["node"] == 0  # nearer the tail
    (_, row), = hh_events(res, "exposed").iterrows()
    assert row.time_s == 1320.0 and row.entity == "h1"
    assert row.d["aidr"] == 2 and row.d["people"] == 3
    assert row.d["depth_m"] == pytest.approx(1.1 / 3600 * 1320, abs=1e-3)
    s = res.summary["evacuation"]
    assert s["stranded"] == 2 and s["never_left"] == 3 and s["exposed_by_aidr"]["2"] == 3
    # still home at the end (30 min): 0.55 m of still water is H3 (d <= 1.2 m, dv <= 0.6)
    assert s["stayed_exposed_by_peak_aidr"]["3"] == 3
    # first met H2, then H3 while still exposed at home: the peak key counts H3
    assert s["exposed_by_peak_aidr"] == {"1": 0, "2": 0, "3": 3, "4": 0, "5": 0, "6": 0}


def test_the_peak_class_while_exposed_stops_when_the_household_leaves() -> None:
    # Flat closed square, rain 1100 mm/h: depth 1.1/3600 m/s x t everywhere, still
    # water, so the AIDR class goes by depth alone: H2 above 0.3 m, H3 above 0.5 m
    # (t = 1636 s), H4 above 1.2 m (t = 3927 s). Both households are exposed at
    # the 1320 s step (0.403 m, H2). h0's zone is warned at 1700 s (0.519 m, H3):
    # its car sets off into closed roads and is stranded, which ends its exposure
    # at H3. h1 is never warned and meets 1.375 m (H4) at the end (75 min).
    w, sc = _rain_square(zone_warned_at="1700s", duration="75min")
    _, res = run(sc, w)
    (_, row), = hh_events(res, "stranded").iterrows()
    assert row.time_s == 1700.0 and row.entity == "h0"
    s = res.summary["evacuation"]
    assert s["exposed_by_aidr"] == {"1": 0, "2": 5, "3": 0, "4": 0, "5": 0, "6": 0}
    assert s["exposed_by_peak_aidr"] == {"1": 0, "2": 0, "3": 2, "4": 3, "5": 0, "6": 0}
    assert s["stayed_exposed_by_peak_aidr"]["4"] == 3


# ---------------------------------------------------------------------------- bad input


@pytest.fixture()
def town(tmp_path: Path) -> Path:
    """A scenario folder: a 1 km DEM, a 3 x 3 street grid, homes, one shelter."""
    d = tmp_path / "town"
    d.mkdir()
    x0, y0 = 500000.0, 5501000.0
    with rasterio.open(d / "dem.tif", "w", driver="GTiff", height=50, width=50, count=1,
                       dtype="float32", crs="EPSG:32633",
                       transform=from_origin(x0, y0, 20, 20)) as dst:  # fmt: skip
        dst.write(np.full((1, 50, 50), 10.0, "float32"))
    xs, ys = x0 + np.array([200.0, 500.0, 800.0]), y0 - np.array([200.0, 500.0, 800.0])
    lines = [LineString([(x, ys[0]), (x, ys[-1])]) for x in xs]
    lines += [LineString([(xs[0], y), (xs[-1], y)]) for y in ys]
    gpd.GeoDataFrame({"id": [f"r{i}" for i in range(6)], "highway": ["residential"] * 6},
                     geometry=lines, crs=32633).to_file(d / "roads.geojson")  # fmt: skip
    gpd.GeoDataFrame({"occupants": [40, 60]}, crs=32633,
                     geometry=[Point(x0 + 210, y0 - 300), Point(x0 + 520, y0 - 480)],
                     ).to_file(d / "people.geojson")  # fmt: skip
    gpd.GeoDataFrame({"name": ["Hall"], "capacity": [500]}, crs=32633,
                     geometry=[Point(x0 + 790, y0 - 790)]).to_file(d / "shelters.geojson")
    (d / "s.yaml").write_text(textwrap.dedent("""\
        name: town
        duration: 30min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif}
          roads: roads.geojson
          population: {source: people.geojson}
          shelters: shelters.geojson
        evacuation:
          departure: {curve: rayleigh, sigma: 5min}
        """))
    return d


def load_and_build(town: Path, plan: str) -> Simulation:
    (town / "plan.yaml").write_text(textwrap.dedent(plan))
    return Simulation(load_scenario(town / "s.yaml", plans=[town / "plan.yaml"]))


def test_the_valid_town_runs(town: Path) -> None:
    res = load_and_build(town, "seed: 2\n").run()
    assert res.summary["evacuation"]["people"] == 100


def test_shelters_with_zero_total_capacity_are_an_error(town: Path) -> None:
    gpd.GeoDataFrame({"name": ["Hall"], "capacity": [0]}, crs=32633,
                     geometry=[Point(500790, 5500210)]).to_file(town / "shelters.geojson")
    with pytest.raises(ScenarioError, match=r"world.shelters: the total capacity .* is 0 people"):
        load_and_build(town, "seed: 2\n")


def test_a_zone_that_contains_nobody_is_an_error_naming_it(town: Path) -> None:
    plan = """\
        evacuation:
          zones:
            - {name: empty-corner, area: [[500900, 5500100], [500990, 5500100], [500990, 5500010]]}
        """
    with pytest.raises(ScenarioError, match=r"evacuation.zones.0 \(empty-corner\).*no household"):
        load_and_build(town, plan)


def test_a_contraflow_road_that_does_not_exist_is_an_error(town: Path) -> None:
    with pytest.raises(ScenarioError, match=r"evacuation.contraflow.0.road: no road .*'r99'"):
        load_and_build(town, "evacuation:\n  contraflow: [r99]\n")
    with pytest.raises(ScenarioError, match=r"actions.0: contraflow: no road .*'r77'"):
        load_and_build(town, "actions:\n  - {at: 5min, contraflow: r77}\n")


def test_a_departure_curve_with_negative_spread_is_an_error(town: Path) -> None:
    (town / "plan.yaml").write_text("evacuation:\n  departure: {curve: rayleigh, sigma: -5min}\n")
    with pytest.raises(ScenarioError, match=r"evacuation.departure.*sigma.*must be positive"):
        load_scenario(town / "s.yaml", plans=[town / "plan.yaml"])
    (town / "plan.yaml").write_text(
        "evacuation:\n  departure: {curve: lognormal, mean: 20min, sd: -1min}\n"
    )
    with pytest.raises(ScenarioError, match=r"evacuation.departure.*sd.*must be positive"):
        load_scenario(town / "s.yaml", plans=[town / "plan.yaml"])
