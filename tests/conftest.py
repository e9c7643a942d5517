"""Shared fixtures: small hand-built Worlds, independent of the geo readers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from affine import Affine
from pyproj import CRS
from shapely.geometry import LineString, Point

from emtwin.geo.world import EdgeCellIndex, Places, RoadNetwork, Terrain, World

DATA = Path(__file__).parent / "data"
UTM33 = CRS.from_epsg(32633)


def hand_roads(
    nodes: dict[int, tuple[float, float]],
    links: list[tuple[int, int, str, float]],
) -> RoadNetwork:
    """A RoadNetwork from node coordinates and (u, v, road_id, speed m/s) links."""
    G = nx.MultiDiGraph()
    for nid, (k, (x, y)) in enumerate(sorted(nodes.items())):
        G.add_node(k, x=x, y=y, nid=nid)
    nid_of = {k: G.nodes[k]["nid"] for k in G.nodes}
    us, vs, lengths, speeds, ids, geoms = [], [], [], [], [], []
    for eid, (u, v, rid, speed) in enumerate(links):
        geom = LineString([nodes[u], nodes[v]])
        G.add_edge(u, v, eid=eid, road_id=rid, length=geom.length, speed_m_s=speed,
                   geometry=geom)  # fmt: skip
        us.append(nid_of[u])
        vs.append(nid_of[v])
        lengths.append(geom.length)
        speeds.append(speed)
        ids.append(rid)
        geoms.append(geom)
    n = len(links)
    keys = sorted(nodes)
    return RoadNetwork(
        graph=G,
        node_id=np.array(keys),
        node_x=np.array([nodes[k][0] for k in keys]),
        node_y=np.array([nodes[k][1] for k in keys]),
        edge_u=np.array(us),
        edge_v=np.array(vs),
        length_m=np.array(lengths),
        speed_m_s=np.array(speeds),
        lanes=np.ones(n, dtype=np.int64),
        capacity_veh_h=np.full(n, 1000.0),
        road_id=np.array(ids, dtype=object),
        name=np.array([f"{r} street" for r in ids], dtype=object),
        highway=np.array(["residential"] * n, dtype=object),
        geometry=geoms,
    )


def points(crs: CRS, xy: list[tuple[float, float]], **cols: list) -> gpd.GeoDataFrame:
    """Point GeoDataFrame with extra columns, plus node = -1 and snap_m = NaN."""
    data = dict(cols)
    data.setdefault("node", [-1] * len(xy))
    data.setdefault("snap_m", [np.nan] * len(xy))
    return gpd.GeoDataFrame(data, geometry=[Point(p) for p in xy], crs=crs)


@pytest.fixture()
def small_world() -> World:
    """A flat 20 x 20 grid of 10 m cells and a square of four two-way roads."""
    x0, y0 = 500000.0, 5500200.0
    z = np.zeros((20, 20))
    terrain = Terrain(
        z=z, mask=np.ones_like(z, dtype=bool), transform=Affine(10.0, 0, x0, 0, -10.0, y0),
        dx=10.0, manning=0.03,
    )  # fmt: skip
    nodes = {1: (x0 + 50, y0 - 50), 2: (x0 + 150, y0 - 50),
             3: (x0 + 150, y0 - 150), 4: (x0 + 50, y0 - 150)}  # fmt: skip
    links = []
    for a, b, rid in ((1, 2, "north"), (2, 3, "east"), (3, 4, "south"), (4, 1, "west")):
        links += [(a, b, rid, 10.0), (b, a, rid, 10.0)]
    roads = hand_roads(nodes, links)
    places = Places(
        population=points(UTM33, [(x0 + 60, y0 - 60)], people=[100.0]),
        shelters=points(UTM33, [(x0 + 140, y0 - 140)], name=["School"], capacity=[50.0]),
        stations=points(UTM33, [(x0 + 50, y0 - 60)], name=["North"]),
        hospitals=points(UTM33, [], name=[]),
    )
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places,
                 edge_cells=EdgeCellIndex(np.zeros(9, dtype=np.int64), np.zeros(0, dtype=np.int64)),
                 name="small")  # fmt: skip
