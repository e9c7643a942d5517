"""Road networks from OSM XML/PBF, vector lines and GraphML."""

from __future__ import annotations

import bz2
import json
import logging
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString

from emtwin.errors import CRSError, InputDataError, NetworkError
from emtwin.geo.roads import ROAD_CLASS_DEFAULTS, read_roads, roads_from_graph, roads_from_lines
from emtwin.geo.world import RoadNetwork

DATA = Path(__file__).parent / "data"
OAKLAND = DATA / "West-Oakland.osm.bz2"
BUBENEC = DATA / "bubenec.gpkg"
DRIVABLE = set(ROAD_CLASS_DEFAULTS)


def _haversine_m(lon: np.ndarray, lat: np.ndarray) -> float:
    """Great-circle length of a lon/lat polyline, m (R = 6371009 m, as osmnx)."""
    lon, lat = np.radians(lon), np.radians(lat)
    h = (
        np.sin(np.diff(lat) / 2) ** 2
        + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(np.diff(lon) / 2) ** 2
    )
    return float((2 * 6371009.0 * np.arcsin(np.sqrt(h))).sum())


def _raw_drivable_km(path: Path) -> float:
    """Directed km of the file's drivable ways, straight from the XML."""
    with bz2.open(path) as f:
        root = ET.parse(f).getroot()
    nodes = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    total = 0.0
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("highway") not in DRIVABLE:
            continue
        lonlat = np.array([nodes[nd.get("ref")] for nd in way.iter("nd")])
        one_way = tags.get("oneway") in ("yes", "-1", "true", "1")
        total += _haversine_m(lonlat[:, 0], lonlat[:, 1]) * (1 if one_way else 2)
    return total / 1000.0


def _check_consistent(net: RoadNetwork) -> None:
    """Arrays aligned with the graph's nid/eid attributes."""
    G = net.graph
    assert G.number_of_nodes() == net.n_nodes and G.number_of_edges() == net.n_edges
    assert sorted(d["nid"] for _, d in G.nodes(data=True)) == list(range(net.n_nodes))
    assert sorted(d["eid"] for _, _, d in G.edges(data=True)) == list(range(net.n_edges))
    for n, d in G.nodes(data=True):
        k = d["nid"]
        assert net.node_id[k] == n
        assert (net.node_x[k], net.node_y[k]) == (d["x"], d["y"])
    for u, v, d in G.edges(data=True):
        i = d["eid"]
        assert net.edge_u[i] == G.nodes[u]["nid"] and net.edge_v[i] == G.nodes[v]["nid"]
        assert net.length_m[i] == d["length"] and net.speed_m_s[i] == d["speed_m_s"]
        assert net.capacity_veh_h[i] == d["capacity_veh_h"] and net.lanes[i] == d["lanes"]
        assert net.road_id[i] == d["road_id"] and net.highway[i] == d["highway"]
        geom = net.geometry[i]
        assert geom is d["geometry"]
        assert geom.coords[0] == pytest.approx((G.nodes[u]["x"], G.nodes[u]["y"]), abs=1e-6)
        assert geom.coords[-1] == pytest.approx((G.nodes[v]["x"], G.nodes[v]["y"]), abs=1e-6)
    assert np.allclose(net.length_m, shapely.length(np.array(net.geometry, dtype=object)))
    assert (net.lanes >= 1).all() and (net.capacity_veh_h > 0).all()
    # the core is strongly connected; the sinks (last) are reached from it, never back
    core = [n for n, d in G.nodes(data=True) if not net.sink[d["nid"]]]
    assert nx.is_strongly_connected(G.subgraph(core))
    k = int((~net.sink).sum())
    assert not net.sink[:k].any() and net.sink[k:].all()
    reach = set().union(*(nx.descendants(G, n) for n in core[:1])) | set(core[:1])
    assert reach == set(G.nodes)
    for n, d in G.nodes(data=True):
        if net.sink[d["nid"]]:
            assert not (nx.descendants(G, n) & set(core))


# ----------------------------------------------------------------------------
# OSM
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oakland() -> tuple[RoadNetwork, list[str]]:
    handler = _ListHandler()
    logger = logging.getLogger("emtwin.geo.roads")
    logger.addHandler(handler)
    try:
        net = read_roads(OAKLAND, crs="EPSG:32610")
    finally:
        logger.removeHandler(handler)
    return net, handler.messages


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_oakland_graph_is_consistent_and_strongly_connected(oakland):
    net, _ = oakland
    # the core: 27 nodes, 61 edges (as before the one-way dead ends were kept);
    # plus 7 dead-end nodes (one-way streets leaving the extract) and their 10 edges
    assert net.n_nodes == 34 and net.n_edges == 71 and int(net.sink.sum()) == 7
    assert int((~net.sink[net.edge_v]).sum()) == 61
    _check_consistent(net)
    assert set(net.highway) <= DRIVABLE
    assert "footway" not in set(net.highway)
    assert net.graph.graph["crs"].to_epsg() == 32610


def test_oakland_lengths_agree_with_great_circle(oakland):
    net, messages = oakland
    # each edge: UTM length within 1 % of the (spherical) haversine length, and
    # within 0.05 % of the WGS84 geodesic length (UTM scale factor ~0.9997 here)
    to_ll = Transformer.from_crs(32610, 4326, always_xy=True)
    geod = Geod(ellps="WGS84")
    for geom, length in zip(net.geometry, net.length_m, strict=True):
        xy = np.asarray(geom.coords)
        lon, lat = to_ll.transform(xy[:, 0], xy[:, 1])
        assert length == pytest.approx(_haversine_m(lon, lat), rel=1e-2)
        assert length == pytest.approx(geod.line_length(lon, lat), rel=5e-4)
    # before pruning, the whole network equals the raw ways' haversine sum
    raw_km = _raw_drivable_km(OAKLAND)
    warning = next(m for m in messages if "strongly connected" in m)
    dropped, before = map(float, re.findall(r"([\d.]+) of ([\d.]+) km", warning)[0])
    assert before == pytest.approx(raw_km, rel=2e-3)
    assert net.total_km == pytest.approx(before - dropped, rel=1e-3)
    assert 10.0 < net.total_km < raw_km


def test_oakland_speeds_lanes_and_oneway(oakland):
    net, _ = oakland
    assert ((net.speed_m_s >= 5) & (net.speed_m_s <= 40)).all()
    res = net.highway == "residential"
    assert res.any()
    # no maxspeed tags in this file: the class defaults apply
    assert np.allclose(net.speed_m_s[res], 30 / 3.6)
    assert np.allclose(net.capacity_veh_h[res], 800.0)
    # 7th Street is a tagged one-way secondary; one of its ways has lanes=3
    seventh = net.edges_named("7th Street")
    assert seventh.size > 0
    assert all(net.graph.edges[e]["oneway"] for e in _edge_keys(net, seventh))
    three = seventh[net.lanes[seventh] == 3]
    assert three.size > 0
    assert np.allclose(net.capacity_veh_h[three], 3 * 1600.0)
    # two-way residential streets have both directions
    willow = net.edges_named("Willow Street")
    pairs = {(net.edge_u[i], net.edge_v[i]) for i in willow}
    assert all((v, u) in pairs for u, v in pairs)


def _edge_keys(net: RoadNetwork, eids: np.ndarray) -> list[tuple]:
    want = set(eids.tolist())
    return [(u, v, k) for u, v, k, d in net.graph.edges(keys=True, data=True) if d["eid"] in want]


def test_osm_pbf_matches_xml(tmp_path, oakland):
    osmium = pytest.importorskip("osmium")
    pbf = tmp_path / "west-oakland.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(OAKLAND)):
            writer.add(obj)
    net = read_roads(pbf, crs="EPSG:32610")
    ref, _ = oakland
    assert (net.n_nodes, net.n_edges) == (ref.n_nodes, ref.n_edges)
    assert net.total_km == pytest.approx(ref.total_km, rel=1e-6)


def test_osm_pbf_without_osmium(tmp_path, monkeypatch):
    pbf = tmp_path / "x.osm.pbf"
    pbf.write_bytes(b"\x00")
    monkeypatch.setitem(sys.modules, "osmium", None)
    with pytest.raises(InputDataError, match=r"`pbf` extra"):
        read_roads(pbf, crs="EPSG:32610")


def test_osm_bbox_keeps_intersecting_edges(oakland):
    net, _ = oakland
    xmin, ymin = net.node_x[~net.sink].min(), net.node_y[~net.sink].min()
    box = (xmin - 1, ymin - 1, xmin + 150, ymin + 150)
    small = read_roads(OAKLAND, crs="EPSG:32610", bbox=box)
    assert 0 < small.n_edges < net.n_edges
    assert shapely.intersects(np.array(small.geometry, dtype=object), shapely.box(*box)).all()


# ----------------------------------------------------------------------------
# vector lines
# ----------------------------------------------------------------------------


def test_bubenec_streets_layer():
    utm = read_roads(f"{BUBENEC}:streets", crs="EPSG:32633")
    lines = gpd.read_file(BUBENEC, layer="streets")
    assert len(lines) == 35
    # the layer has no attributes: all two-way residential, nothing pruned
    assert utm.n_edges == 70 and utm.n_nodes == 29
    assert utm.total_km == pytest.approx(2 * lines.to_crs(32633).length.sum() / 1000, rel=1e-9)
    assert set(utm.highway) == {"residential"}
    assert np.allclose(utm.speed_m_s, 30 / 3.6)
    _check_consistent(utm)
    krovak = read_roads(f"{BUBENEC}:streets", crs="EPSG:5514")
    assert krovak.n_edges == 70
    assert krovak.total_km == pytest.approx(utm.total_km, rel=2e-3)


def _grid_lines() -> gpd.GeoDataFrame:
    """3 x 3 nodes 100 m apart, drawn as whole rows and columns, plus extras.

    - the middle row (y=100) is one-way west -> east;
    - the left column is drawn south -> north with oneway=-1: travel north -> south;
    - the bottom row starts 0.36 m off the corner (snapped);
    - a footway diagonal (not a road) and a detached two-way spur far away.
    """
    rows = [
        (
            "r0",
            "South Street",
            "residential",
            LineString([(0.3, -0.2), (100, 0), (200, 0)]),
            None,
            "2",
            None,
            None,
        ),
        (
            "r1",
            "Main Street",
            "primary",
            LineString([(0, 100), (100, 100), (200, 100)]),
            "yes",
            "2",
            "30 mph",
            None,
        ),
        (
            "r2",
            "North Street",
            "residential",
            LineString([(0, 200), (100, 200), (200, 200)]),
            "no",
            None,
            None,
            999.0,
        ),
        (
            "c0",
            "West Lane",
            "residential",
            LineString([(0, 0), (0, 100), (0, 200)]),
            "-1",
            None,
            None,
            None,
        ),
        (
            "c1",
            "Mid Lane",
            "tertiary",
            LineString([(100, 0), (100, 100), (100, 200)]),
            False,
            None,
            "40",
            None,
        ),
        (
            "c2",
            "East Lane",
            "residential",
            LineString([(200, 0), (200, 100), (200, 200)]),
            None,
            None,
            None,
            None,
        ),
        (
            "f0",
            "Path",
            "footway",
            LineString([(0, 0), (100, 100), (200, 200)]),
            None,
            None,
            None,
            None,
        ),
        (
            "s0",
            "Spur",
            "residential",
            LineString([(1000, 1000), (1100, 1000)]),
            None,
            None,
            None,
            None,
        ),
    ]
    cols = ["id", "name", "highway", "geometry", "oneway", "lanes", "maxspeed", "capacity"]
    return gpd.GeoDataFrame([dict(zip(cols, r, strict=True)) for r in rows], crs="EPSG:32633")


def test_grid_lines_hand_counted(caplog):
    with caplog.at_level(logging.WARNING, logger="emtwin.geo.roads"):
        net = roads_from_lines(_grid_lines(), crs="EPSG:32633", source="grid")
    # 12 segments of 100 m: 10 two-way, 2 one-way (middle row), 2 one-way (left column)
    # -> 8 * 2 + 2 + 2 = 20 directed edges; the spur (2 nodes, 2 edges) is pruned
    assert net.n_nodes == 9
    assert net.n_edges == 20
    assert net.total_km == pytest.approx(2.0, abs=1e-3)
    assert any(
        "dropped 2 of 11 nodes" in r.getMessage() and "0.200" in r.getMessage()
        for r in caplog.records
    )
    _check_consistent(net)
    assert "footway" not in set(net.highway) and "s0" not in set(net.road_id)
    main = net.edges_named("Main Street")
    assert len(main) == 2
    assert all(net.node_x[net.edge_v[i]] > net.node_x[net.edge_u[i]] for i in main)
    assert np.allclose(net.speed_m_s[main], 30 * 1.609344 / 3.6)
    assert np.allclose(net.lanes[main], 2) and np.allclose(net.capacity_veh_h[main], 3600)
    west = net.edges_named("c0")
    assert len(west) == 2
    assert all(net.node_y[net.edge_v[i]] < net.node_y[net.edge_u[i]] for i in west)
    assert all(net.geometry[i].coords[0][1] > net.geometry[i].coords[-1][1] for i in west)
    south = net.edges_named("South Street")
    assert len(south) == 4 and np.allclose(net.lanes[south], 1)  # lanes=2 on a two-way road
    assert np.allclose(net.capacity_veh_h[net.edges_named("r2")], 999.0)
    mid = net.edges_named("Mid Lane")
    assert np.allclose(net.speed_m_s[mid], 40 / 3.6) and np.allclose(net.capacity_veh_h[mid], 1200)
    # the snapped corner joins the bottom row and the left column
    corner = np.flatnonzero((np.abs(net.node_x) < 0.5) & (np.abs(net.node_y) < 0.5))
    assert corner.size == 1


def test_line_end_snaps_to_interior_vertex_or_segment():
    main = [(0, 0), (100, 0), (200, 0)]
    side = LineString([(100.3, 0.2), (100, 100)])
    gdf = gpd.GeoDataFrame({"geometry": [LineString(main), side]}, crs="EPSG:32633")
    net = roads_from_lines(gdf, crs="EPSG:32633")
    assert (net.n_nodes, net.n_edges) == (4, 6)
    assert set(net.road_id) == {"0", "1"}
    # a T-junction with no vertex on the main street: the main street is split there
    t = gpd.GeoDataFrame(
        {"geometry": [LineString([(0, 0), (200, 0)]), LineString([(60.0, 0.4), (60, 100)])]},
        crs="EPSG:32633",
    )
    net = roads_from_lines(t, crs="EPSG:32633")
    assert (net.n_nodes, net.n_edges) == (4, 6)
    assert net.total_km == pytest.approx(2 * (0.2 + 0.1), abs=1e-3)
    # a bridge crossing without a shared vertex stays apart: two pieces, pruned to one
    x = gpd.GeoDataFrame(
        {"geometry": [LineString([(0, 50), (200, 50)]), LineString([(100, 0), (100, 120)])]},
        crs="EPSG:32633",
    )
    assert roads_from_lines(x, crs="EPSG:32633").n_edges == 2


def test_lines_without_crs_use_default_or_fail():
    gdf = _grid_lines().set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="no CRS"):
        roads_from_lines(gdf, crs="EPSG:32633")
    net = roads_from_lines(gdf, crs="EPSG:32633", default_crs="EPSG:32633")
    assert net.n_edges == 20
    with pytest.raises(CRSError, match="not projected"):
        roads_from_lines(_grid_lines(), crs="EPSG:4326")


# ----------------------------------------------------------------------------
# GraphML
# ----------------------------------------------------------------------------


def test_graphml_round_trip(tmp_path, oakland):
    import osmnx as ox

    ref, _ = oakland
    path = tmp_path / "ours.graphml"
    ox.save_graphml(ref.graph, path)
    back = read_roads(path, crs="EPSG:32610")
    assert (back.n_nodes, back.n_edges) == (ref.n_nodes, ref.n_edges)
    order = np.lexsort((ref.edge_v, ref.edge_u))
    border = np.lexsort((back.edge_v, back.edge_u))
    assert np.allclose(back.length_m[border], ref.length_m[order])
    for name in ("lanes", "speed_m_s", "capacity_veh_h"):
        assert np.allclose(np.sort(getattr(back, name)), np.sort(getattr(ref, name)))
    assert sorted(back.road_id) == sorted(ref.road_id)
    _check_consistent(back)


def test_graphml_written_by_networkx(tmp_path):
    G = nx.MultiDiGraph(crs="EPSG:32633")
    for k, (x, y) in enumerate([(0, 0), (100, 0), (100, 100), (0, 100)]):
        G.add_node(k, x=float(x), y=float(y))
    for u, v in [(0, 1), (1, 2), (2, 3), (3, 0)]:
        G.add_edge(u, v, name=f"s{u}")
        G.add_edge(v, u, name=f"s{u}")
    path = tmp_path / "plain.graphml"
    nx.write_graphml(G, path)
    net = read_roads(path, crs="EPSG:32633")
    assert (net.n_nodes, net.n_edges) == (4, 8)
    assert net.total_km == pytest.approx(0.8)
    assert set(net.highway) == {"residential"}
    _check_consistent(net)


def test_graph_in_lonlat_is_projected():
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_node(1, x=14.0, y=50.0)
    G.add_node(2, x=14.001, y=50.0)
    G.add_edge(1, 2, highway="secondary", oneway=False, lanes="4", osmid=[7, 8])
    G.add_edge(2, 1, highway="secondary", oneway=False, lanes="4", osmid=[7, 8])
    net = roads_from_graph(G, crs="EPSG:32633")
    assert net.total_km == pytest.approx(2 * 0.0715, rel=0.01)
    assert set(net.road_id) == {"7"} and np.allclose(net.lanes, 2)


# ----------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------


def test_empty_geojson_has_no_roads(tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(
        NetworkError, match=r"^world\.roads\.source: no roads found in .*empty\.geojson"
    ):
        read_roads(path, crs="EPSG:32633")


def test_osm_with_only_buildings_has_no_roads(tmp_path):
    nodes = "".join(
        f'<node id="{i}" lat="{50 + d[1] * 1e-4}" lon="{14 + d[0] * 1e-4}"/>'
        for i, d in enumerate([(0, 0), (1, 0), (1, 1), (0, 1)], start=1)
    )
    way = '<way id="9"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>'
    way += '<tag k="building" v="yes"/></way>'
    path = tmp_path / "buildings.osm"
    path.write_text(
        f"<?xml version='1.0' encoding='UTF-8'?><osm version=\"0.6\">{nodes}{way}</osm>"
    )
    with pytest.raises(NetworkError, match=r"no roads found in .*buildings\.osm"):
        read_roads(path, crs="EPSG:32633")


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(
        InputDataError, match=r"world\.roads\.source: road file not found: .*nope\.osm"
    ):
        read_roads(tmp_path / "nope.osm", crs="EPSG:32633")
    bad = tmp_path / "roads.xlsx"
    bad.write_text("x")
    with pytest.raises(InputDataError, match="unsupported road file type"):
        read_roads(bad, crs="EPSG:32633")
    with pytest.raises(InputDataError, match="cannot read"):
        read_roads(f"{BUBENEC}:no_such_layer", crs="EPSG:32633")


def test_parsers_of_tags():
    from emtwin.geo import roads as r

    assert r._parse_speed_kph("30 mph") == pytest.approx(48.28032)
    assert r._parse_speed_kph("50") == 50 and r._parse_speed_kph(["50", "70"]) == 60
    assert math.isnan(r._parse_speed_kph("DE:urban")) and math.isnan(r._parse_speed_kph(None))
    assert (
        r._parse_oneway("-1") == -1 and r._parse_oneway("yes") == 1 and r._parse_oneway(True) == 1
    )
    assert r._parse_oneway("no") == 0 and r._parse_oneway(float("nan")) == 0
    assert r._parse_lanes("2;3") == 2 and math.isnan(r._parse_lanes(""))
    assert r._road_class(["residential", "primary"]) == "primary"
    assert r._road_class("footway") is None and r._road_class(None) is None
