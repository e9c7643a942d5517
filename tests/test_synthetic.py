"""The built-in synthetic town: determinism, sizes, plausible terrain and variants."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
import shapely

from emtwin.errors import InputDataError
from emtwin.geo.synthetic import VARIANTS, SyntheticTown, synthetic_town
from emtwin.geo.world import Terrain

HIGHWAYS = {"primary", "secondary", "tertiary", "residential"}


@pytest.fixture(scope="module")
def town() -> SyntheticTown:
    return synthetic_town()


@pytest.fixture(scope="module")
def big() -> tuple[SyntheticTown, float]:
    t0 = time.perf_counter()
    t = synthetic_town("riverside", scale=8)
    return t, time.perf_counter() - t0


def _z_at(terrain: Terrain, x, y) -> np.ndarray:
    row, col = terrain.cell_of(np.atleast_1d(x), np.atleast_1d(y))
    assert (row >= 0).all(), "point outside the grid"
    return terrain.z[row, col]


def _graph(roads) -> nx.Graph:
    G = nx.Graph()
    for geom in roads.geometry.values:
        c = shapely.get_coordinates(geom)
        G.add_edge(tuple(c[0]), tuple(c[-1]))
    return G


def _check_roads_and_places(t: SyntheticTown) -> None:
    """What the World builder validates for real data, and noding for roads_from_lines."""
    terrain, roads = t.terrain, t.roads
    coords = shapely.get_coordinates(roads.geometry.values)
    assert terrain.inside(coords[:, 0], coords[:, 1]).all()
    for gdf in (t.shelters, t.stations, t.hospitals):
        assert terrain.inside(gdf.geometry.x.values, gdf.geometry.y.values).all()
    cent = t.buildings.geometry.centroid
    assert terrain.inside(cent.x.values, cent.y.values).all()
    xy = np.array(list(t.anchors.values()))
    assert terrain.inside(xy[:, 0], xy[:, 1]).all()
    # noded: lines meet only at shared end points, no duplicates, one piece
    tree = shapely.STRtree(roads.geometry.values)
    crossing, _ = tree.query(roads.geometry.values, predicate="crosses")
    assert crossing.size == 0
    G = _graph(roads)
    assert G.number_of_edges() == len(roads)
    assert nx.is_connected(G)
    # every bridge crosses the river
    bridges = roads[roads["bridge"]]
    assert len(bridges) >= 1
    assert shapely.crosses(bridges.geometry.values, t.river).all()
    # no street other than a bridge touches the channel
    others = roads[~roads["bridge"]].geometry.values
    assert not shapely.intersects(others, t.river).any()
    # buildings and roads on dry land above the river bed
    z_roads = _z_at(terrain, coords[:, 0], coords[:, 1])
    assert z_roads.min() > 0.5


def test_deterministic():
    a, b = synthetic_town("riverside"), synthetic_town("riverside")
    assert a.terrain.z.tobytes() == b.terrain.z.tobytes()
    assert np.asarray(a.terrain.manning).tobytes() == np.asarray(b.terrain.manning).tobytes()
    for name in ("roads", "buildings", "shelters", "stations", "hospitals"):
        ga, gb = getattr(a, name), getattr(b, name)
        assert ga.drop(columns="geometry").equals(gb.drop(columns="geometry"))
        assert list(shapely.to_wkb(ga.geometry.values)) == list(shapely.to_wkb(gb.geometry.values))
    assert a.anchors == b.anchors and a.levels == b.levels
    assert a.description == b.description


def test_sizes_at_scale_1(town: SyntheticTown):
    t = town.terrain
    assert town.crs.to_epsg() == 32633
    assert t.shape == (300, 400) and t.dx == 10.0
    assert t.bounds == (400000.0, 5550000.0, 404000.0, 5553000.0)
    assert t.mask.all() and t.z.dtype == np.float64 and np.isfinite(t.z).all()
    assert set(np.unique(t.manning)) == {0.03, 0.035}
    assert town.buildings["occupants"].dtype.kind == "i"
    assert int(town.buildings["occupants"].sum()) == 20000
    assert (town.buildings["occupants"] >= 0).all()
    assert len(town.shelters) == 3
    assert 7000 <= town.shelters["capacity"].sum() <= 9000
    assert sorted(town.stations["name"]) == ["North", "River"]
    assert len(town.hospitals) == 1
    r = town.roads
    assert {"id", "name", "highway", "lanes", "maxspeed", "oneway", "bridge"} <= set(r.columns)
    assert set(r["highway"]) == HIGHWAYS
    assert r["id"].map(type).eq(str).all()
    assert r["lanes"].dtype.kind == "i" and r["maxspeed"].dtype.kind == "i"
    assert r["oneway"].dtype == bool
    assert int(r["bridge"].sum()) == 2
    assert set(r.loc[r["bridge"], "id"]) == {"bridge-west", "bridge-east"}
    assert 800 <= len(r) <= 1400  # about 2,100 directed edges


def test_river_lower_than_banks(town: SyntheticTown):
    t = town.terrain
    line = town.river
    d = np.arange(50.0, line.length - 50.0, 100.0)
    pts = shapely.line_interpolate_point(line, d)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    z_river = _z_at(t, x, y)
    # 60 m north and south of the centre line: the floodplain, 2 m or more higher
    for dy in (60.0, -60.0):
        assert (_z_at(t, x, y + dy) - z_river >= 2.0).all()
    # the bed falls downstream
    assert z_river[0] > z_river[-1]
    assert (np.diff(z_river) < 0.2).all()
    bed = town.levels["bed_gauge_bridge"]
    gx, gy = town.anchors["gauge_bridge"]
    assert abs(float(_z_at(t, gx, gy)[0]) - bed) < 0.1
    assert town.levels["deck_bridge-west"] >= bed + 3.0


def test_high_ground(town: SyntheticTown):
    t = town.terrain
    z_bed = t.z[np.asarray(t.manning) == 0.03]
    for gdf in (town.shelters, town.hospitals):
        z = _z_at(t, gdf.geometry.x.values, gdf.geometry.y.values)
        assert (z > z_bed.max() + 10.0).all()
    north = town.stations.set_index("name").geometry["North"]
    assert _z_at(t, north.x, north.y)[0] > z_bed.max() + 10.0
    # the two underpasses are dips below the street around them
    for key in ("underpass", "underpass_south"):
        x, y = town.anchors[key]
        assert _z_at(t, x + 60.0, y)[0] - _z_at(t, x, y)[0] > 2.0


def test_roads_and_places_valid(town: SyntheticTown):
    _check_roads_and_places(town)


def test_scale_8_grows_downstream(town: SyntheticTown, big: tuple[SyntheticTown, float]):
    t8, seconds = big
    assert seconds < 15.0
    nrows, ncols = t8.terrain.shape
    assert nrows == 300 and ncols == 3200
    b1, b8 = town.terrain.bounds, t8.terrain.bounds
    assert b8[0] == b1[0] and b8[1] == b1[1] and b8[3] == b1[3]
    assert b8[2] - b8[0] == 8 * (b1[2] - b1[0])
    assert t8.anchors["river_inflow"] == town.anchors["river_inflow"]
    assert t8.anchors["gauge_bridge"] == town.anchors["gauge_bridge"]
    assert int(t8.buildings["occupants"].sum()) == 160000
    assert 18000 <= 2 * len(t8.roads) <= 22000  # directed edges
    assert len(t8.shelters) == 24 and len(t8.stations) == 16 and len(t8.hospitals) == 8
    assert t8.stations["name"].is_unique and t8.shelters["name"].is_unique
    assert {"North", "River"} <= set(t8.stations["name"])
    _check_roads_and_places(t8)


def test_scale_1_is_fast():
    t0 = time.perf_counter()
    synthetic_town("riverside", 1.0)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_build(variant: str):
    t = synthetic_town(variant)
    assert t.variant == variant
    assert int(t.buildings["occupants"].sum()) == 20000
    assert len(t.shelters) == 3 and len(t.stations) == 2 and len(t.hospitals) == 1
    _check_roads_and_places(t)
    assert t.description


def test_coast_opens_to_the_sea():
    t = synthetic_town("coast")
    z = t.terrain.z
    assert (z[:, -1] < 0.0).all()  # the east edge is sea
    sx, sy = t.anchors["sea_gauge"]
    assert _z_at(t.terrain, sx, sy)[0] < -3.0
    assert (z[:, 0] > 0.0).all()  # the west edge is land
    assert t.levels["sea_level"] == 0.0


def test_dam_holds_a_reservoir():
    t = synthetic_town("dam")
    res = t.reservoir
    assert res is not None and res.area > 1.0e6
    cx, cy = t.anchors["reservoir_centre"]
    assert res.contains(shapely.Point(cx, cy))
    full, crest = t.levels["reservoir_full"], t.levels["dam_crest"]
    assert _z_at(t.terrain, cx, cy)[0] < full - 5.0
    bx, by = t.anchors["dam_breach"]
    # the DEM shows the dam after failure: a 120 m gap at the river, the crest beside it
    assert _z_at(t.terrain, bx, by)[0] < full - 10.0
    for off in (-200.0, 200.0):
        assert abs(_z_at(t.terrain, bx, by + off)[0] - crest) < 0.5
    # the town lies downstream of the dam, below the crest
    assert t.buildings.total_bounds[0] > bx
    assert t.anchors["river_inflow"][0] < cx < bx


def test_bad_arguments():
    with pytest.raises(InputDataError, match="unknown built-in town"):
        synthetic_town("atlantis")
    with pytest.raises(InputDataError, match="scale"):
        synthetic_town("riverside", scale=0.1)


def test_small_scale_keeps_every_place():
    t = synthetic_town("riverside", scale=0.5)
    assert t.terrain.shape == (300, 200)
    assert len(t.shelters) == 3 and sorted(t.stations["name"]) == ["North", "River"]
    assert int(t.buildings["occupants"].sum()) == 10000
    _check_roads_and_places(t)


def test_roads_become_a_network(town: SyntheticTown):
    from emtwin.geo.roads import roads_from_lines

    net = roads_from_lines(town.roads, crs=town.crs)
    assert net.n_edges == 2 * len(town.roads)  # every segment two-way, nothing dropped
    assert len(net.edges_named("bridge-west")) == 2
    assert len(net.edges_named("Ring Road")) > 0
