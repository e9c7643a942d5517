"""Places: reading, population, snapping, domain and reachability checks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from affine import Affine
from shapely.geometry import LineString, Point, Polygon

from emtwin.errors import CRSError, InputDataError, NetworkError
from emtwin.geo.places import (
    check_inside,
    check_not_cut_off,
    check_reachable,
    population_from,
    read_points,
    snap_to_network,
)
from emtwin.geo.roads import roads_from_lines
from emtwin.geo.world import RoadNetwork, Terrain

DATA = Path(__file__).parent / "data"
BUBENEC = DATA / "bubenec.gpkg"
UTM33 = "EPSG:32633"


@pytest.fixture(scope="module")
def grid_roads() -> RoadNetwork:
    """3 x 3 nodes 100 m apart (0..200 m), every street two-way."""
    lines = [LineString([(0, y), (100, y), (200, y)]) for y in (0, 100, 200)]
    lines += [LineString([(x, 0), (x, 100), (x, 200)]) for x in (0, 100, 200)]
    return roads_from_lines(gpd.GeoDataFrame(geometry=lines, crs=UTM33), crs=UTM33)


def _terrain(mask: np.ndarray | None = None) -> Terrain:
    """4 x 4 cells of 10 m, grid corner at (0, 40)."""
    return Terrain(
        z=np.zeros((4, 4)),
        mask=np.ones((4, 4), dtype=bool) if mask is None else mask,
        transform=Affine(10.0, 0.0, 0.0, 0.0, -10.0, 40.0),
        dx=10.0,
    )


# ----------------------------------------------------------------------------
# population
# ----------------------------------------------------------------------------


def test_population_spread_over_bubenec_floor_area():
    b = read_points(
        f"{BUBENEC}:buildings",
        crs=UTM33,
        kind="population",
        keep_polygons=True,
        file_label="world.population.source",
    )
    assert len(b) == 144 and set(b.geom_type) == {"Polygon"}
    pop = population_from(b, total=5000, crs=UTM33)
    assert len(pop) == 144
    assert pop["people"].sum() == pytest.approx(5000)
    area = b.area.to_numpy()
    assert int(np.argmax(pop["people"])) == int(np.argmax(area))
    assert np.allclose(pop["people"] / 5000, area / area.sum())
    assert set(pop.geom_type) == {"Point"}
    assert shapely.within(pop.geometry.values, b.geometry.values).all()
    assert pop.crs.to_epsg() == 32633


def test_population_levels_weight_floor_area():
    squares = [
        Polygon([(0, 0), (10, 0), (10, 10), (0, 10)]),
        Polygon([(20, 0), (30, 0), (30, 10), (20, 10)]),
    ]
    gdf = gpd.GeoDataFrame({"building:levels": ["3", None]}, geometry=squares, crs=UTM33)
    pop = population_from(gdf, total=400, crs=UTM33)
    assert pop["people"].tolist() == pytest.approx([300, 100])


def test_population_uses_occupants_column():
    gdf = gpd.GeoDataFrame(
        {"occupants": [3, 5, 0]}, geometry=[Point(0, 0), Point(10, 0), Point(20, 0)], crs=UTM33
    )
    pop = population_from(gdf, total=1000, crs=UTM33)
    assert pop["people"].tolist() == [3.0, 5.0, 0.0]


def test_population_points_evenly():
    gdf = gpd.GeoDataFrame(
        geometry=[Point(0, 0), Point(10, 0), Point(20, 0), Point(5, 5)], crs=UTM33
    )
    pop = population_from(gdf, total=100, crs=UTM33)
    assert pop["people"].tolist() == [25.0] * 4


def test_population_over_road_nodes(grid_roads):
    pop = population_from(None, total=900, roads=grid_roads, crs=UTM33)
    assert len(pop) == grid_roads.n_nodes == 9
    assert np.allclose(pop["people"], 100.0)
    xy = shapely.get_coordinates(pop.geometry.values)
    assert np.allclose(xy[:, 0], grid_roads.node_x) and np.allclose(xy[:, 1], grid_roads.node_y)


def test_empty_population_is_an_error(grid_roads):
    empty = gpd.GeoDataFrame(geometry=[], crs=UTM33)
    with pytest.raises(InputDataError, match="no features"):
        population_from(empty, total=100, crs=UTM33)
    pts = gpd.GeoDataFrame(geometry=[Point(0, 0)], crs=UTM33)
    with pytest.raises(InputDataError, match="population is empty"):
        population_from(pts, total=0, crs=UTM33)
    zero = pts.assign(occupants=[0])
    with pytest.raises(InputDataError, match="population is empty"):
        population_from(zero, crs=UTM33)
    with pytest.raises(InputDataError, match="no `occupants` column and no `total`"):
        population_from(pts, crs=UTM33)
    with pytest.raises(InputDataError, match="no road nodes"):
        population_from(None, total=10, roads=None, crs=UTM33)


# ----------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------


def test_read_points_from_csv_and_polygons(tmp_path):
    csv = tmp_path / "shelters.csv"
    csv.write_text("name,capacity,x,y\nSchool,300,120.5,80\nHall,150,10,10\n")
    gdf = read_points(csv, crs=UTM33, required_columns=("capacity",), default_crs=UTM33)
    assert gdf["name"].tolist() == ["School", "Hall"]
    assert shapely.get_coordinates(gdf.geometry.values).tolist() == [[120.5, 80.0], [10.0, 10.0]]
    b = read_points(f"{BUBENEC}:buildings", crs=UTM33, kind="buildings")
    assert set(b.geom_type) == {"Point"} and len(b) == 144


def test_read_points_from_one_column_wkt_csv(tmp_path):
    # one column only: a separator guesser must not split the header into letters
    csv = tmp_path / "shelters.csv"
    csv.write_text("geometry\nPOINT (120.5 80)\nPOINT (10 10)\n")
    gdf = read_points(csv, crs=UTM33, default_crs=UTM33)
    assert shapely.get_coordinates(gdf.geometry.values).tolist() == [[120.5, 80.0], [10.0, 10.0]]
    assert list(gdf.columns) == ["geometry"]


def test_read_points_from_semicolon_and_tab_csv(tmp_path):
    semi = tmp_path / "shelters.csv"
    semi.write_text("name;capacity;geometry\nSchool;300;POINT (120.5 80)\nHall;150;POINT (10 10)\n")
    gdf = read_points(semi, crs=UTM33, required_columns=("capacity",), default_crs=UTM33)
    assert gdf["name"].tolist() == ["School", "Hall"]
    assert gdf["capacity"].tolist() == [300, 150]
    assert shapely.get_coordinates(gdf.geometry.values).tolist() == [[120.5, 80.0], [10.0, 10.0]]
    tab = tmp_path / "stations.tsv"
    tab.write_text("name\tx\ty\nNorth\t5\t6\n")
    gdf = read_points(tab, crs=UTM33, default_crs=UTM33)
    assert gdf["name"].tolist() == ["North"]
    assert shapely.get_coordinates(gdf.geometry.values).tolist() == [[5.0, 6.0]]


def test_read_points_without_geometry(tmp_path):
    csv = tmp_path / "shelters.csv"
    csv.write_text("name,capacity\nSchool,300\n")
    with pytest.raises(InputDataError, match="no geometry"):
        read_points(csv, crs=UTM33, file_label="shelters")
    gj = tmp_path / "null.geojson"
    feats = [{"type": "Feature", "geometry": None, "properties": {"name": "A", "capacity": 5}}]
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with pytest.raises(InputDataError, match="no geometry"):
        read_points(gj, crs=UTM33, file_label="shelters")


def test_read_points_missing_column_empty_file_and_missing_file(tmp_path):
    gj = tmp_path / "shelters.geojson"
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [14.39, 50.1]},
            "properties": {"name": "School"},
        }
    ]
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with pytest.raises(InputDataError, match=r"shelters: .*missing required column 'capacity'"):
        read_points(gj, crs=UTM33, required_columns=("capacity",), file_label="shelters")
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(InputDataError, match="empty"):
        read_points(empty, crs=UTM33, file_label="shelters")
    with pytest.raises(InputDataError, match="file not found"):
        read_points(tmp_path / "nope.geojson", crs=UTM33, file_label="shelters")


def test_read_points_wrong_crs(tmp_path):
    # metric coordinates in a file that says (by default) lon/lat degrees
    gj = tmp_path / "metric.geojson"
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [458000.0, 5550000.0]},
            "properties": {},
        }
    ]
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with pytest.raises(CRSError, match="not degrees"):
        read_points(gj, crs=UTM33, file_label="stations")
    df = gpd.GeoDataFrame(geometry=[Point(1, 2)])
    with pytest.raises(CRSError, match="no CRS"):
        read_points(df, crs=UTM33, default_crs=None)


# ----------------------------------------------------------------------------
# snapping and checks
# ----------------------------------------------------------------------------


def test_snap_distance_is_hand_computed(grid_roads, caplog):
    gdf = gpd.GeoDataFrame(
        {"name": ["a", "b"]}, geometry=[Point(30, 40), Point(160, 230)], crs=UTM33
    )
    with caplog.at_level(logging.WARNING, logger="emtwin.geo.places"):
        out = snap_to_network(gdf, grid_roads, warn_m=45.0, what="shelters")
    # (30, 40) -> node (0, 0): 3-4-5 triangle, 50 m; (160, 230) -> (200, 200): hypot(40, 30) = 50 m
    assert out["snap_m"].tolist() == pytest.approx([50.0, 50.0])
    nodes = out["node"].to_numpy()
    assert (grid_roads.node_x[nodes].tolist(), grid_roads.node_y[nodes].tolist()) == (
        [0.0, 200.0],
        [0.0, 200.0],
    )
    assert any("shelters: 2 of 2 are more than 45 m" in r.getMessage() for r in caplog.records)
    none = snap_to_network(gdf, None, what="shelters")
    assert none["node"].tolist() == [-1, -1] and none["snap_m"].isna().all()


def test_places_outside_the_dem():
    mask = np.ones((4, 4), dtype=bool)
    mask[0, 0] = False
    gdf = gpd.GeoDataFrame(
        {"name": ["in", "east", "south", "masked"]},
        geometry=[Point(5, 5), Point(50, 5), Point(5, -5), Point(5, 35)],
        crs=UTM33,
    )
    check_inside(gdf.iloc[:1], _terrain(mask), what="shelters", file_label="shelters")
    with pytest.raises(
        InputDataError, match=r"shelters: 3 of 4 shelters lie outside .*east, south, masked"
    ):
        check_inside(gdf, _terrain(mask), what="shelters", file_label="shelters")


def test_check_reachable(grid_roads):
    check_reachable(grid_roads, [0, 1, 2], [8], what="shelters")
    with pytest.raises(NetworkError, match="no shelters"):
        check_reachable(grid_roads, [0], [], what="shelters")
    with pytest.raises(NetworkError, match="no origins"):
        check_reachable(grid_roads, [], [1], what="shelters")
    with pytest.raises(NetworkError, match="not on the road network"):
        check_reachable(grid_roads, [0], [-1], what="shelters")
    # two one-way pieces: 0 -> 1 and 2 <-> 3; a shelter at 3 is out of reach from 0
    z = np.zeros(3)
    net = RoadNetwork(
        graph=nx.MultiDiGraph(),
        node_id=np.arange(4),
        node_x=np.arange(4.0),
        node_y=np.zeros(4),
        edge_u=np.array([0, 2, 3]),
        edge_v=np.array([1, 3, 2]),
        length_m=z + 1,
        speed_m_s=z + 1,
        lanes=z + 1,
        capacity_veh_h=z + 1,
        road_id=np.array(["a", "b", "c"]),
        name=np.array(["", "", ""]),
        highway=np.array(["residential"] * 3),
    )
    check_reachable(net, [0], [1], what="shelters")
    with pytest.raises(NetworkError, match=r"1 of 2 shelters nodes cannot be reached"):
        check_reachable(net, [0], [1, 3], what="shelters")
    with pytest.raises(NetworkError, match=r"1 of 2 origin nodes reach no shelters"):
        check_reachable(net, [0, 2], [1], what="shelters")


def _grid_and_island() -> RoadNetwork:
    """The 3 x 3 grid (0..200 m) plus a two-way island of 3 nodes at y = 1000 m."""
    lines = [LineString([(0, y), (100, y), (200, y)]) for y in (0, 100, 200)]
    lines += [LineString([(x, 0), (x, 100), (x, 200)]) for x in (0, 100, 200)]
    lines += [LineString([(1000, 1000), (1100, 1000)]), LineString([(1100, 1000), (1200, 1000)])]
    return roads_from_lines(gpd.GeoDataFrame(geometry=lines, crs=UTM33), crs=UTM33)


def test_dropped_island_is_remembered():
    net = _grid_and_island()
    assert net.n_nodes == 9
    assert sorted(map(tuple, net.dropped_xy.tolist())) == [
        (1000.0, 1000.0), (1100.0, 1000.0), (1200.0, 1000.0)
    ]  # fmt: skip
    assert np.bincount(net.dropped_part).tolist() == [3]


def test_shelter_on_a_cut_off_island_is_an_error():
    net = _grid_and_island()
    gdf = gpd.GeoDataFrame(
        {"name": ["Grid School", "Island Hall"]},
        geometry=[Point(110, 90), Point(1100, 1010)],
        crs=UTM33,
    )
    snapped = snap_to_network(gdf, net, what="shelters")
    # the island shelter is silently snapped to the grid corner (200, 200):
    # hypot(900, 810) = 1210.8 m away
    assert snapped["snap_m"].iloc[1] == pytest.approx(np.hypot(900.0, 810.0))
    check_not_cut_off(snapped.iloc[:1], net, what="shelters", file_label="world.shelters")
    with pytest.raises(NetworkError) as exc:
        check_not_cut_off(snapped, net, what="shelters", file_label="world.shelters")
    msg = str(exc.value)
    assert msg.startswith("world.shelters: 1 of 2 shelters cannot be reached by road")
    assert "'Island Hall' (#1) is on a part of the road network cut off from the rest " \
        "(3 nodes dropped)" in msg
    assert "1,211 m away" in msg and "Grid School" not in msg


def test_nothing_dropped_nothing_to_check(grid_roads):
    gdf = gpd.GeoDataFrame({"name": ["far"]}, geometry=[Point(1100, 1010)], crs=UTM33)
    assert len(grid_roads.dropped_xy) == 0
    check_not_cut_off(snap_to_network(gdf, grid_roads), grid_roads, what="shelters")


def test_place_beside_a_cut_off_stub_is_snapped_with_a_warning(caplog):
    """Within near_m of the kept network (a one-way stub at a clip edge) it is a warning."""
    net = _grid_and_island()
    gdf = gpd.GeoDataFrame({"name": ["Island Hall"]}, geometry=[Point(1100, 1010)], crs=UTM33)
    snapped = snap_to_network(gdf, net, what="shelters")
    with caplog.at_level("WARNING"):
        check_not_cut_off(snapped, net, what="shelters", file_label="world.shelters",
                          near_m=1500.0)  # fmt: skip
    assert "1 shelters stand on pieces of road cut off from the network" in caplog.text
    assert "(at most 1211 m)" in caplog.text
