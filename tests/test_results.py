"""Results hold plain tables and arrays: no live World or RoadState, and the roads table
carries each edge's first closure (time and reason) as the run recorded it."""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import networkx as nx
import numpy as np
import pytest
from affine import Affine
from conftest import UTM33, hand_roads, points
from pyproj import CRS

from emtwin.geo.index import edge_cell_index
from emtwin.geo.world import EdgeCellIndex, Places, RoadNetwork, Terrain, World
from emtwin.scenarios.models import Scenario
from emtwin.sim.engine import Simulation
from emtwin.sim.results import GridInfo, Results, edges_named, world_parts
from emtwin.sim.state import RoadState

X0, Y0 = 500000.0, 5500400.0
LIVE = (World, RoadState, RoadNetwork, Terrain, Places, EdgeCellIndex, nx.Graph)


@pytest.fixture(scope="module")
def valley() -> World:
    """40 x 40 cells of 10 m sloping down to the west (1 %); a west road in the low ground,
    an east road on the high side, joined by two cross roads."""
    z = np.tile(0.1 * np.arange(40), (40, 1)).astype(float)
    terrain = Terrain(z=z, mask=np.ones_like(z, dtype=bool), dx=10.0, manning=0.03,
                      transform=Affine(10.0, 0, X0, 0, -10.0, Y0))  # fmt: skip
    nodes = {1: (X0 + 25, Y0 - 45), 2: (X0 + 375, Y0 - 45),
             3: (X0 + 375, Y0 - 355), 4: (X0 + 25, Y0 - 355)}  # fmt: skip
    links = []
    for a, b, rid in ((1, 2, "north"), (2, 3, "east"), (3, 4, "south"), (4, 1, "west")):
        links += [(a, b, rid, 10.0), (b, a, rid, 10.0)]
    roads = hand_roads(nodes, links)
    places = Places(
        population=points(UTM33, [], people=[]),
        shelters=points(UTM33, [nodes[2]], name=["Hill"], capacity=[500.0], node=[1],
                        snap_m=[0.0]),
        stations=points(UTM33, [], name=[]),
        hospitals=points(UTM33, [], name=[]),
    )  # fmt: skip
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places,
                 edge_cells=edge_cell_index(roads, terrain), name="valley")  # fmt: skip


def scenario() -> Scenario:
    """A river inflow on the west edge floods the west road; the plan closes 'east' at 10 min."""
    flood = {"type": "flood", "road_closure_depth": 0.05,
             "inflows": [{"name": "river", "along": [[X0 + 5, Y0 - 5], [X0 + 5, Y0 - 395]],
                          "hydrograph": [[0, 4], [1800, 8]]}]}  # fmt: skip
    data = {"name": "valley", "seed": 5, "duration": "30min", "crs": "EPSG:32633",
            "outputs": {"every": "5min"},
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"},
            "hazards": [flood], "actions": [{"at": "10min", "close_road": "east"}]}  # fmt: skip
    return Scenario.model_validate(data, context={"check_files": False})


@pytest.fixture(scope="module")
def run(valley: World) -> Results:
    return Simulation(scenario(), world=valley).run()


class _Seen(pickle.Pickler):
    """A pickler that notes the class of every object it is handed."""

    def __init__(self, buf: io.BytesIO) -> None:
        super().__init__(buf, protocol=pickle.HIGHEST_PROTOCOL)
        self.types: set[type] = set()

    def reducer_override(self, obj: Any) -> Any:
        self.types.add(type(obj))
        return NotImplemented


def test_results_pickle_without_the_live_world(run: Results) -> None:
    assert not hasattr(run, "world") and not hasattr(run, "road_state")
    p = _Seen(io.BytesIO())
    p.dump(run)
    live = sorted(t.__name__ for t in p.types if issubclass(t, LIVE))
    assert live == []
    back = pickle.loads(pickle.dumps(run))
    assert CRS.from_wkt(back.crs).to_epsg() == 32633
    assert isinstance(back.grid, GridInfo) and back.grid.shape == (40, 40)
    assert len(back.roads) == 8 and back.roads.crs.to_epsg() == 32633


def test_first_closure_in_the_roads_table_is_the_closure_event(run: Results) -> None:
    ev = run.events[run.events["kind"] == "road_closed"]
    cause = ev["details"].map(lambda d: json.loads(d).get("cause"))
    flood = ev[cause == "flood"]
    assert set(flood["entity"]) >= {"west"}  # the low road floods
    roads = run.roads
    plan = set(edges_named(roads, "east").tolist())  # closed by the plan at 600 s
    for e in range(len(roads)):
        times = flood.loc[flood["edge"] == e, "time_s"].tolist()
        want, why = (min(times), "flood") if times else (np.nan, "")
        if e in plan and not want <= 600.0:
            want, why = 600.0, "plan"
        got = roads.loc[e, "first_closed_s"]
        assert got == want or (np.isnan(want) and np.isnan(got)), e
        assert roads.loc[e, "first_closed_reason"] == why
    for e in edges_named(roads, "west"):
        assert roads.loc[e, "first_closed_reason"] == "flood"
        assert roads.loc[e, "max_depth_m"] >= 0.05  # closed at 5 cm, so at least that deep


def test_world_parts_of_a_small_world(small_world: World) -> None:
    rs = RoadState(small_world.roads)
    rs.set_plan_closed(np.array([2, 3]), True, 120.0)
    rs.set_plan_closed(np.array([3]), True, 300.0)  # a second closure keeps the first
    parts = world_parts(small_world, rs)
    assert set(parts) == {"crs", "grid", "roads", "nodes", "places", "buildings"}
    assert CRS.from_wkt(parts["crs"]) == small_world.crs
    g = parts["grid"]
    x0, y0 = 500000.0, 5500200.0
    assert g.name == "small" and g.shape == (20, 20) and g.dx_m == 10.0
    assert g.bounds == (x0, y0 - 200.0, x0 + 200.0, y0)
    assert g.mask.sum() == 400 and g.z.shape == (20, 20)
    roads, nodes = parts["roads"], parts["nodes"]
    assert len(roads) == 8 and len(nodes) == 4  # a square of four two-way roads
    assert roads["road_id"].tolist() == ["north", "north", "east", "east", "south", "south",
                                         "west", "west"]  # fmt: skip
    assert roads["u"].tolist() == [0, 1, 1, 2, 2, 3, 3, 0]
    assert roads["v"].tolist() == [1, 0, 2, 1, 3, 2, 0, 3]
    assert roads["length_m"].tolist() == [100.0] * 8
    assert nodes["x"].tolist() == [x0 + 50, x0 + 150, x0 + 150, x0 + 50]
    assert nodes["y"].tolist() == [y0 - 50, y0 - 50, y0 - 150, y0 - 150]
    assert roads.loc[[2, 3], "first_closed_s"].tolist() == [120.0, 120.0]
    assert roads.loc[[2, 3], "first_closed_reason"].tolist() == ["plan", "plan"]
    assert roads.loc[[0, 1, 4, 5, 6, 7], "first_closed_s"].isna().all()
    assert edges_named(roads, "east street").tolist() == [2, 3]
    places = parts["places"]
    counts = {k: len(v) for k, v in places.items()}
    assert counts == {"population": 1, "shelters": 1, "stations": 1, "hospitals": 0}
    assert places["shelters"]["name"].tolist() == ["School"]
    assert parts["buildings"] is None
    # copies: changing the live state afterwards leaves the parts alone
    rs.first_closed_s[:] = 0.0
    small_world.terrain.z[0, 0] = 99.0
    assert roads["first_closed_s"].isna().sum() == 6 and g.z[0, 0] == 0.0


def test_world_parts_without_a_road_state_or_roads(small_world: World) -> None:
    parts = world_parts(small_world)
    assert parts["roads"]["first_closed_s"].isna().all()
    assert (parts["roads"]["max_depth_m"] == 0.0).all()
    small_world.roads = None
    parts = world_parts(small_world)
    assert parts["roads"] is None and parts["nodes"] is None


def test_a_road_state_from_an_older_checkpoint_gets_empty_reasons(small_world: World) -> None:
    rs = RoadState(small_world.roads)
    del rs.__dict__["first_closed_reason"]  # as pickled before the reason existed
    back = pickle.loads(pickle.dumps(rs))
    assert back.first_closed_reason.tolist() == [""] * 8
    back.note_first_closed(np.array([0]), 60.0, "wind")
    assert back.first_closed_reason[0] == "wind" and back.first_closed_s[0] == 60.0
