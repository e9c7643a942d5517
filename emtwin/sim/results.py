"""What a run produced: :class:`Results`, and the map frames a component returns.

:class:`Results` holds plain tables and arrays only: the place (grid, roads,
nodes, facilities, buildings) as :func:`world_parts` copies it out of the live
World and road state at the end of the run, never the live objects. Results
therefore pickle small, and maps and reports need nothing of the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from emtwin.geo.world import World
    from emtwin.scenarios.models import Scenario
    from emtwin.sim.state import RoadState

__all__ = ["Results", "Frames", "GridInfo", "world_parts", "edges_named", "PLACE_LAYERS"]

#: The World's point layers copied into :attr:`Results.places`.
PLACE_LAYERS = ("population", "shelters", "stations", "hospitals")

#: Columns of :attr:`Results.buildings` kept from the World's buildings (besides geometry).
_BUILDING_KEEP = ("building", "occupancy", "kind")


@dataclass(frozen=True, eq=False)
class GridInfo:
    """The World grid, as plain values.

    Attributes
    ----------
    name
        The World's label (for titles and messages).
    transform
        Affine transform from (col, row) to (x, y) in the World CRS, m; row 0
        is the northern edge.
    dx_m
        Cell size, m (square cells).
    shape
        (nrows, ncols).
    z
        Bed elevation, m, shape (nrows, ncols); finite filler outside the domain.
    mask
        True on cells inside the domain, bool, shape (nrows, ncols).
    bounds
        (xmin, ymin, xmax, ymax) of the grid's outer edges, m in the World CRS.
    """

    name: str
    transform: Any
    dx_m: float
    shape: tuple[int, int]
    z: np.ndarray
    mask: np.ndarray
    bounds: tuple[float, float, float, float]


@dataclass
class Frames:
    """A stack of map frames a component returns from ``outputs()``.

    ``times_s`` (n,), ``stack`` (n, rows, cols) and the grid's affine
    ``transform`` in the World CRS.
    """

    times_s: np.ndarray
    stack: np.ndarray
    transform: Any


@dataclass
class Results:
    """What a run produced.

    Attributes
    ----------
    summary
        The headline metrics (``summary.json``), nested by section; SI units.
    events
        One row per event: ``time_s, kind, entity, node, edge, details``.
    timeseries
        One row per output time: ``time_s`` and each component's columns.
    rasters
        Named 2-D float arrays on the World grid (NaN outside the domain).
    tables
        Other tables by file stem (for example ``gauges``).
    frames
        Named stacks of map frames: ``(times_s, stack)`` with ``stack`` of shape
        (n_times, rows, cols) on a grid that may be coarser than the World's
        (see ``frame_transforms``); for example the flood depth at every output time.
    frame_transforms
        The affine transform (World CRS) of each frame stack's grid.
    crs
        The World CRS as WKT ("" when unknown).
    grid
        The World grid (:class:`GridInfo`), or None.
    roads
        One row per directed road edge (row ``i`` is edge ``i``), in the World
        CRS: ``edge, road_id, name, highway, u, v`` (node indices),
        ``length_m, speed_m_s, lanes, capacity_veh_h, bridge``, and from the
        run ``first_closed_s`` (s, NaN if never closed), ``first_closed_reason``
        (``flood``, ``plan``, ``wind``; "" if never) and ``max_depth_m`` (m);
        None for a World without roads.
    nodes
        One row per road node (row ``k`` is node ``k``): ``node_id, x, y``
        (m, World CRS) and ``sink``; None without roads.
    places
        The World's point layers by name (:data:`PLACE_LAYERS`), GeoDataFrames
        in the World CRS with ``node`` and ``snap_m`` columns.
    buildings
        The World's buildings (``building, occupancy, kind``, geometry) when
        the scenario has them, else None.
    scenario
        The scenario that was run.
    """

    summary: dict[str, Any]
    events: pd.DataFrame
    timeseries: pd.DataFrame
    rasters: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    frame_transforms: dict[str, Any] = field(default_factory=dict)
    crs: str = ""
    grid: GridInfo | None = None
    roads: gpd.GeoDataFrame | None = None
    nodes: pd.DataFrame | None = None
    places: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    buildings: gpd.GeoDataFrame | None = None
    scenario: Scenario | None = None


def edges_named(roads: pd.DataFrame, key: str) -> np.ndarray:
    """Indices of the edges of a :attr:`Results.roads` table whose ``road_id`` or ``name``
    equals *key* (as :meth:`emtwin.geo.world.RoadNetwork.edges_named`)."""
    rid = roads["road_id"].astype(str).to_numpy()
    name = roads["name"].astype(str).to_numpy()
    return np.flatnonzero((rid == key) | (name == key))


def world_parts(world: World, road_state: RoadState | None = None) -> dict[str, Any]:
    """The place of a run as plain tables and arrays: the :class:`Results` fields
    ``crs``, ``grid``, ``roads``, ``nodes``, ``places`` and ``buildings``.

    Parameters
    ----------
    world
        The run's World (only read; everything returned is a copy).
    road_state
        The run's road state, for each edge's first closure (time, s, and
        reason) and deepest water (m); None gives never-closed, dry roads.
    """
    import geopandas as gpd
    import pandas as pd

    t = world.terrain
    grid = GridInfo(
        name=str(world.name), transform=t.transform, dx_m=float(t.dx),
        shape=(int(t.shape[0]), int(t.shape[1])), z=np.array(t.z), mask=np.array(t.mask),
        bounds=tuple(float(b) for b in t.bounds),  # type: ignore[arg-type]
    )  # fmt: skip
    roads = nodes = None
    r = world.roads
    if r is not None:
        n = r.n_edges
        rs = road_state
        data = {
            "edge": np.arange(n),
            "road_id": r.road_id,
            "name": r.name,
            "highway": r.highway,
            "u": np.asarray(r.edge_u, dtype=np.int64),
            "v": np.asarray(r.edge_v, dtype=np.int64),
            "length_m": r.length_m,
            "speed_m_s": r.speed_m_s,
            "lanes": r.lanes,
            "capacity_veh_h": r.capacity_veh_h,
            "bridge": np.asarray(r.bridge, dtype=bool),
            "first_closed_s": rs.first_closed_s.copy() if rs is not None else np.full(n, np.nan),
            "first_closed_reason": (rs.first_closed_reason.astype(str) if rs is not None
                                    else np.full(n, "", dtype=object)),
            "max_depth_m": rs.max_depth_m.copy() if rs is not None else np.zeros(n),
        }  # fmt: skip
        roads = gpd.GeoDataFrame(data, geometry=list(r.geometry), crs=world.crs)
        nodes = pd.DataFrame({"node_id": r.node_id, "x": r.node_x, "y": r.node_y,
                              "sink": np.asarray(r.sink, dtype=bool)})  # fmt: skip
    places = {k: getattr(world.places, k).copy() for k in PLACE_LAYERS}
    buildings = None
    if world.buildings is not None:
        table = world.buildings.table
        keep = [c for c in _BUILDING_KEEP if c in table.columns]
        buildings = table[[*keep, "geometry"]].copy()
    return {"crs": world.crs.to_wkt(), "grid": grid, "roads": roads, "nodes": nodes,
            "places": places, "buildings": buildings}  # fmt: skip
