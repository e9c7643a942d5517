"""The World: terrain, roads, places and the edge->cell index, in one metric CRS.

A :class:`World` is built once per run by :func:`emtwin.geo.build_world` and is
then read (never rebuilt) by the simulation components. Every coordinate held
here is in ``World.crs``, a projected CRS whose unit is the metre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from emtwin.defaults import MANNING_N

if TYPE_CHECKING:
    import geopandas as gpd
    import networkx as nx
    from affine import Affine
    from pyproj import CRS

    from emtwin.geo.buildings import Buildings

__all__ = ["Terrain", "RoadNetwork", "Places", "EdgeCellIndex", "World"]


@dataclass
class Terrain:
    """A north-up elevation grid with square cells.

    Attributes
    ----------
    z
        Bed elevation, m, shape (nrows, ncols), float64. Cells outside the
        domain hold a finite filler value (never NaN); use *mask*.
    mask
        True where the cell is inside the domain, shape (nrows, ncols), bool.
    transform
        Affine transform from (col, row) to (x, y) in the World CRS, m; row 0 is
        the northern edge.
    dx
        Cell size, m (square cells).
    manning
        Manning's n, s/m^(1/3): a scalar, or an array of shape (nrows, ncols).
    source
        Where the grid came from (a path, ``builtin:NAME`` ...), for messages.
    water
        True on cells of standing water at rest (river channel, sea, reservoir
        bed), shape (nrows, ncols), bool; None where the source does not say
        (a DEM file). Flood figures of flooded *land* leave these cells out.
    """

    z: np.ndarray
    mask: np.ndarray
    transform: Affine
    dx: float
    manning: float | np.ndarray = MANNING_N
    source: str = ""
    water: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(nrows, ncols) of the grid."""
        return self.z.shape  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid's outer edges, m in the World CRS."""
        nrows, ncols = self.shape
        x0, y0 = self.transform.c, self.transform.f
        return (x0, y0 - nrows * self.dx, x0 + ncols * self.dx, y0)

    def cell_of(
        self, x: np.ndarray | float, y: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cells holding points (x, y), m in the World CRS.

        Points outside the grid get row or column -1 (no clipping).
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        nrows, ncols = self.shape
        col = np.floor((x - self.transform.c) / self.dx).astype(np.int64)
        row = np.floor((self.transform.f - y) / self.dx).astype(np.int64)
        bad = (col < 0) | (col >= ncols) | (row < 0) | (row >= nrows)
        col = np.where(bad, -1, col)
        row = np.where(bad, -1, row)
        return row, col

    def cell_centre(
        self, row: np.ndarray | int, col: np.ndarray | int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of cell centres, m in the World CRS."""
        row = np.asarray(row)
        col = np.asarray(col)
        return (
            self.transform.c + (col + 0.5) * self.dx,
            self.transform.f - (row + 0.5) * self.dx,
        )

    def inside(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """True where the points (x, y) fall in a cell that is inside the domain."""
        row, col = self.cell_of(x, y)
        ok = row >= 0
        out = np.zeros(np.shape(row), dtype=bool)
        out[ok] = self.mask[row[ok], col[ok]]
        return out


@dataclass
class RoadNetwork:
    """A directed road graph plus flat edge arrays for the kernels.

    Edge ``i`` of the arrays is the graph edge whose attribute ``eid == i``.
    Node ``k`` of the arrays is the graph node whose attribute ``nid == k``.

    Attributes
    ----------
    graph
        ``networkx.MultiDiGraph`` in the World CRS; nodes carry ``x``, ``y`` (m)
        and ``nid``; edges carry ``eid``, ``road_id``, ``name``, ``highway``,
        ``length`` (m), ``speed_m_s``, ``lanes``, ``capacity_veh_h`` (per
        direction), ``oneway`` and ``geometry`` (a shapely LineString).
    node_id
        Original node ids (OSM ids or generated), shape (n_nodes,).
    node_x, node_y
        Node coordinates, m, shape (n_nodes,).
    edge_u, edge_v
        Array node indices (``nid``) of edge tails and heads, shape (n_edges,).
    length_m, speed_m_s, lanes, capacity_veh_h
        Per edge: length (m), free speed (m/s), lanes (count, >= 1) and flow
        capacity (veh/h, whole edge), shape (n_edges,).
    road_id
        The road each edge belongs to (OSM way id or the source's ``id``),
        as strings, shape (n_edges,); plan actions name roads by this id or
        by ``name``.
    name, highway
        Street name and road class per edge (strings, "" when missing).
    geometry
        Shapely LineStrings per edge, in the World CRS.
    bridge
        True for edges on a bridge (OSM ``bridge=*`` or a ``bridge`` column):
        water under them does not close them; water above their deck does.
    dropped_xy, dropped_part
        Nodes the reader dropped when it kept the largest strongly connected
        component: coordinates, m, shape (k, 2), and for each the label of the
        dropped piece it belongs to (pieces joined by dropped edges), shape (k,).
        Empty when nothing was dropped. Used to refuse a facility standing on a
        piece of road cut off from the rest.
    sink
        True for the nodes the reader kept although they lead nowhere back: one-way
        dead ends downstream of the strongly connected core (a one-way exit road).
        They come after the core nodes, and their edges after the core's edges.
        Only evacuation exits and shelters snap to them (``nearest_node(...,
        sinks=True)``); None means none, shape (n_nodes,).
    """

    graph: nx.MultiDiGraph
    node_id: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    length_m: np.ndarray
    speed_m_s: np.ndarray
    lanes: np.ndarray
    capacity_veh_h: np.ndarray
    road_id: np.ndarray
    name: np.ndarray
    highway: np.ndarray
    geometry: list = field(repr=False, default_factory=list)
    bridge: np.ndarray | None = None
    dropped_xy: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2)))
    dropped_part: np.ndarray = field(
        repr=False, default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    sink: np.ndarray | None = field(repr=False, default=None)

    def __post_init__(self) -> None:
        if self.bridge is None:
            self.bridge = np.zeros(self.edge_u.shape[0], dtype=bool)
        if self.sink is None:
            self.sink = np.zeros(self.node_x.shape[0], dtype=bool)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_x.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.edge_u.shape[0])

    @property
    def total_km(self) -> float:
        """Total length of directed edges, km."""
        return float(self.length_m.sum() / 1000.0)

    def edges_named(self, key: str) -> np.ndarray:
        """Indices of the edges whose ``road_id`` or ``name`` equals *key*."""
        return np.flatnonzero((self.road_id == key) | (self.name == key))

    @property
    def core_nodes(self) -> np.ndarray:
        """Indices of the nodes that are not one-way dead ends (``sink``)."""
        return np.flatnonzero(~self.sink)

    def nearest_node(
        self, x: np.ndarray | float, y: np.ndarray | float, *, sinks: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node index and its distance (m) for points (x, y) in the World CRS.

        Only core nodes unless *sinks* (exits and shelters): the one-way dead
        ends (``sink``) lead nowhere back, so nothing that must leave again
        (homes, stations, incidents) stands on them.
        """
        from scipy.spatial import cKDTree

        attr = "_kdtree_all" if sinks else "_kdtree"
        tree = getattr(self, attr, None)
        ids = np.arange(self.n_nodes) if sinks else self.core_nodes
        if tree is None:
            tree = cKDTree(np.column_stack([self.node_x[ids], self.node_y[ids]]))
            object.__setattr__(self, attr, tree)
        pts = np.column_stack([np.atleast_1d(x), np.atleast_1d(y)]).astype(float)
        dist, idx = tree.query(pts)
        return ids[idx].astype(np.int64), dist


@dataclass
class Places:
    """People and facilities, each snapped to the road network.

    Every GeoDataFrame is in the World CRS with point geometry and columns
    ``node`` (array node index, or -1 when the World has no roads) and
    ``snap_m`` (distance to that node, m).

    Attributes
    ----------
    population
        Where people live: column ``people`` (float, persons).
    shelters
        Columns ``name`` and ``capacity`` (persons).
    stations
        Column ``name``.
    hospitals
        Column ``name``.
    """

    population: gpd.GeoDataFrame
    shelters: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    hospitals: gpd.GeoDataFrame

    @property
    def total_people(self) -> float:
        """Total number of residents."""
        return float(self.population["people"].sum()) if len(self.population) else 0.0


@dataclass
class EdgeCellIndex:
    """For every road edge, the terrain cells under its geometry (CSR layout).

    The cells of edge ``i`` are ``cells[indptr[i]:indptr[i + 1]]``, each a flat
    index ``row * ncols + col`` into the terrain grid. Edges off the grid have
    no cells. ``deck_z`` is the deck elevation of bridge edges, m (NaN for the
    others): the water on a bridge is the water surface above its deck.
    """

    indptr: np.ndarray
    cells: np.ndarray
    deck_z: np.ndarray | None = None

    def of(self, edge: int) -> np.ndarray:
        """Flat cell indices under edge *edge*."""
        return self.cells[self.indptr[edge] : self.indptr[edge + 1]]


@dataclass
class World:
    """Everything a run knows of the place, in one metric CRS.

    Attributes
    ----------
    crs
        The World's projected CRS (metres).
    terrain
        The elevation grid and domain mask.
    roads
        The road network, or None for a flood-only World.
    places
        Population, shelters, stations and hospitals.
    edge_cells
        The edge->cell index, or None without roads.
    name
        A label for messages and outputs.
    buildings
        Buildings for the consequence models (occupancy, value, covered
        cells), or None when the scenario has none.
    """

    crs: CRS
    terrain: Terrain
    roads: RoadNetwork | None
    places: Places
    edge_cells: EdgeCellIndex | None
    name: str = "world"
    notes: list[str] = field(default_factory=list)
    buildings: Buildings | None = None

    def summary(self) -> dict:
        """Counts and sizes for logs and ``emtwin validate``."""
        nrows, ncols = self.terrain.shape
        out = {
            "crs": self.crs.to_string(),
            "cells": int(nrows * ncols),
            "cells_inside": int(self.terrain.mask.sum()),
            "cell_size_m": float(self.terrain.dx),
            "extent_km": [
                round(ncols * self.terrain.dx / 1000, 3),
                round(nrows * self.terrain.dx / 1000, 3),
            ],
            "nodes": self.roads.n_nodes if self.roads else 0,
            "edges": self.roads.n_edges if self.roads else 0,
            "road_km": round(self.roads.total_km, 3) if self.roads else 0.0,
            "people": round(self.places.total_people, 1),
            "shelters": len(self.places.shelters),
            "shelter_capacity": float(self.places.shelters["capacity"].sum())
            if len(self.places.shelters)
            else 0.0,
            "stations": len(self.places.stations),
            "hospitals": len(self.places.hospitals),
        }
        return out
