"""Places: population, shelters, stations and hospitals, read and snapped to the roads.

All functions return GeoDataFrames in the World ``crs`` (projected, metres).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components

from emtwin.errors import CRSError, InputDataError, NetworkError
from emtwin.geo.world import RoadNetwork, Terrain

__all__ = [
    "read_points",
    "population_from",
    "snap_to_network",
    "check_inside",
    "check_not_cut_off",
    "check_reachable",
]

log = logging.getLogger(__name__)

_X_NAMES = ("x", "lon", "lng", "long", "longitude", "easting")
_Y_NAMES = ("y", "lat", "latitude", "northing")
_WKT_NAMES = ("geometry", "wkt", "geom")
_LEVEL_NAMES = ("building:levels", "levels", "building_levels")
_SHOW = 5  # names listed in messages


def read_points(
    path_or_gdf: str | Path | gpd.GeoDataFrame,
    *,
    crs: Any,
    kind: str = "places",
    required_columns: Iterable[str] = (),
    file_label: str = "places",
    default_crs: Any = "EPSG:4326",
    keep_polygons: bool = False,
) -> gpd.GeoDataFrame:
    """Read point or polygon features into the World CRS.

    Parameters
    ----------
    path_or_gdf
        A GeoDataFrame, or a file: GeoJSON, GeoPackage (``file.gpkg:layer``),
        Shapefile, FlatGeobuf, or CSV with ``x``/``y`` (or ``lon``/``lat``,
        ``longitude``/``latitude``) columns or a WKT ``geometry`` column.
    crs
        The World CRS (projected, metres); the result is in it.
    kind
        What the features are (``"shelters"``, ``"population"``), for messages.
    required_columns
        Columns that must be present (e.g. ``capacity`` for shelters).
    file_label
        The scenario key the data came from, for messages.
    default_crs
        CRS assumed for data that declares none (a CSV, a GeoJSON without CRS):
        the scenario ``crs``. None makes such data an error.
    keep_polygons
        False: every feature becomes a point (polygons and lines give a
        representative point inside them); True: geometries are kept as they
        are (population reads building footprints this way).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per feature with a geometry, index 0..n-1, in *crs*.

    Raises
    ------
    InputDataError
        Missing or unreadable file, no geometry, no rows, a missing column.
    CRSError
        No CRS and no default, or coordinates that do not fit the CRS.
    """
    try:
        out_crs = CRS.from_user_input(crs)
    except ProjCRSError as exc:
        raise CRSError(f"{file_label}: PROJ cannot use the CRS {crs!r}") from exc
    if isinstance(path_or_gdf, gpd.GeoDataFrame | pd.DataFrame):
        gdf, where = path_or_gdf.copy(), f"{file_label}: <data frame>"
    else:
        gdf, where = _read_table(path_or_gdf, file_label=file_label, default_crs=default_crs)
    if not isinstance(gdf, gpd.GeoDataFrame) or _active_geometry(gdf) is None:
        gdf = _geometry_from_columns(gdf, where, default_crs)
    if len(gdf) == 0:
        raise InputDataError(f"{where}: the file is empty (no {kind})")
    missing = [c for c in required_columns if c not in gdf.columns]
    if missing:
        have = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        raise InputDataError(
            f"{where}: missing required column {missing[0]!r}"
            + (f" (and {missing[1:]})" if len(missing) > 1 else "")
            + f"; columns present: {have}"
        )
    null = gdf.geometry.isna() | gdf.geometry.is_empty
    if null.all():
        raise InputDataError(f"{where}: no geometry: none of the {len(gdf)} {kind} has one")
    if null.any():
        log.warning("%s: %d %s without geometry ignored", where, int(null.sum()), kind)
        gdf = gdf[~null]
    if gdf.crs is None:
        if default_crs is None:
            raise CRSError(f"{where}: the data has no CRS and no default CRS was given")
        gdf = gdf.set_crs(default_crs)
    src = CRS.from_user_input(gdf.crs)
    xy = shapely.get_coordinates(gdf.geometry.values)
    if src.is_geographic and (np.abs(xy[:, 0]).max() > 360 or np.abs(xy[:, 1]).max() > 90):
        raise CRSError(
            f"{where}: coordinates up to ({np.abs(xy[:, 0]).max():.6g}, "
            f"{np.abs(xy[:, 1]).max():.6g}) are not degrees of {src.to_string()}; "
            "the data's CRS (or the scenario crs assumed for it) is wrong"
        )
    gdf = gdf.to_crs(out_crs)
    if not np.isfinite(shapely.get_coordinates(gdf.geometry.values)).all():
        raise CRSError(f"{where}: coordinates cannot be projected from {src.to_string()}")
    if not keep_polygons:
        is_pt = np.asarray(gdf.geom_type == "Point")
        if not is_pt.all():
            geom = gdf.geometry.values.copy()
            geom[~is_pt] = shapely.point_on_surface(geom[~is_pt])
            gdf = gdf.set_geometry(gpd.GeoSeries(geom, index=gdf.index, crs=gdf.crs))
    return gdf.reset_index(drop=True)


def population_from(
    source: gpd.GeoDataFrame | None,
    *,
    total: float | None = None,
    roads: RoadNetwork | None = None,
    crs: Any,
    file_label: str = "world.population",
) -> gpd.GeoDataFrame:
    """Where people live, as points with a ``people`` column.

    The first rule that applies:

    1. *source* has an ``occupants`` column: people = occupants (*total* ignored);
    2. *source* has polygons: *total* spread over floor area, footprint area (m2)
       times ``building:levels``/``levels`` where given (points in a mixed
       source weigh as an average polygon);
    3. *source* has only points: *total* spread evenly over them;
    4. no *source*: *total* spread evenly over the road nodes.

    Parameters
    ----------
    source
        Buildings or address points (from :func:`read_points` with
        ``keep_polygons=True``), or None.
    total
        Number of residents, persons.
    roads
        The road network, for rule 4.
    crs
        The World CRS (projected, metres); *source* is projected to it.
    file_label
        The scenario key, for messages.

    Returns
    -------
    geopandas.GeoDataFrame
        Point geometry (representative points of polygons) in *crs* and
        ``people`` (float, persons), plus the source's other columns.

    Raises
    ------
    InputDataError
        No source, no total and no occupants; or an empty population.
    """
    crs = CRS.from_user_input(crs)
    if source is None:
        if roads is None or roads.n_nodes == 0:
            raise InputDataError(
                f"{file_label}: no population source and no road nodes to spread over"
            )
        if total is None:
            raise InputDataError(f"{file_label}: without a source, `total` is required")
        core = roads.core_nodes  # not on one-way dead ends: people must get out again
        pts = shapely.points(roads.node_x[core], roads.node_y[core])
        people = np.full(core.size, float(total) / core.size)
        out = gpd.GeoDataFrame({"people": people}, geometry=pts, crs=crs)
        return _check_people(out, file_label, "road nodes")
    if len(source) == 0:
        raise InputDataError(f"{file_label}: the population source has no features")
    src = source.to_crs(crs) if source.crs is not None else source.set_crs(crs)
    geom = src.geometry.values
    if "occupants" in src.columns:
        occ = pd.to_numeric(src["occupants"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(occ).any() or (occ < 0).any():
            raise InputDataError(
                f"{file_label}: `occupants` must be numbers >= 0 "
                f"({int(np.isnan(occ).sum() + (occ < 0).sum())} bad values)"
            )
        people, rule = occ, "occupants column"
        if total is not None:
            log.info("%s: `occupants` column used; total=%s ignored", file_label, total)
    elif total is None:
        raise InputDataError(
            f"{file_label}: the population source has no `occupants` column "
            "and no `total` was given"
        )
    else:
        areal = np.isin(shapely.get_type_id(geom), (3, 6))  # Polygon, MultiPolygon
        if areal.any():
            w = shapely.area(geom) * _levels(src)
            w[~areal] = w[areal].mean()
            rule = "floor area"
        else:
            w, rule = np.ones(len(src)), "points evenly"
        if w.sum() <= 0:
            raise InputDataError(f"{file_label}: building floor area sums to zero")
        people = float(total) * w / w.sum()
    out = src.copy()
    out["people"] = people.astype(float)
    is_pt = np.asarray(out.geom_type == "Point")
    if not is_pt.all():
        g = out.geometry.values.copy()
        g[~is_pt] = shapely.point_on_surface(g[~is_pt])
        out = out.set_geometry(gpd.GeoSeries(g, index=out.index, crs=crs))
    return _check_people(out.reset_index(drop=True), file_label, rule)


def snap_to_network(
    gdf: gpd.GeoDataFrame,
    roads: RoadNetwork | None,
    *,
    warn_m: float = 250.0,
    what: str = "places",
    sinks: bool = False,
) -> gpd.GeoDataFrame:
    """Attach every place to its nearest road node.

    Parameters
    ----------
    gdf
        Places in the World CRS (points; other geometries use their
        representative point).
    roads
        The road network, or None (then ``node=-1`` and ``snap_m=NaN``).
    warn_m
        Distance, m, beyond which a snap is reported (one warning with the count).
    what
        Name of the places in messages (``"shelters"``).
    sinks
        Whether the one-way dead ends (``roads.sink``) are candidates too:
        for shelters, which people drive into and stay at.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``node`` (array node index, int64) and ``snap_m``
        (straight-line distance to that node, m).
    """
    out = gdf.copy()
    if roads is None or len(out) == 0:
        out["node"] = np.full(len(out), -1, dtype=np.int64)
        out["snap_m"] = np.full(len(out), np.nan)
        return out
    pts = shapely.point_on_surface(out.geometry.values)
    xy = shapely.get_coordinates(pts)
    node, dist = roads.nearest_node(xy[:, 0], xy[:, 1], sinks=sinks)
    out["node"] = node.astype(np.int64)
    out["snap_m"] = dist.astype(float)
    far = dist > warn_m
    if far.any():
        log.warning(
            "%s: %d of %d are more than %.0f m from the nearest road node (farthest %.0f m)",
            what,
            int(far.sum()),
            len(out),
            warn_m,
            float(dist.max()),
        )
    return out


def check_inside(
    gdf: gpd.GeoDataFrame,
    terrain: Terrain,
    *,
    what: str = "places",
    file_label: str = "places",
) -> None:
    """Raise if any place lies outside the terrain domain (grid and mask).

    Raises
    ------
    InputDataError
        Naming how many places are outside and the first few (by ``name``,
        else by row number).
    """
    if len(gdf) == 0:
        return
    xy = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values))
    inside = terrain.inside(xy[:, 0], xy[:, 1])
    if inside.all():
        return
    bad = np.flatnonzero(~inside)
    labels = _labels(gdf, bad)
    xmin, ymin, xmax, ymax = terrain.bounds
    raise InputDataError(
        f"{file_label}: {len(bad)} of {len(gdf)} {what} lie outside the terrain (DEM) domain "
        f"[{xmin:.1f}, {ymin:.1f}, {xmax:.1f}, {ymax:.1f}]: {labels}"
    )


def check_not_cut_off(
    gdf: gpd.GeoDataFrame,
    roads: RoadNetwork | None,
    *,
    what: str = "shelters",
    file_label: str = "places",
    near_m: float = 250.0,
    sinks: bool | None = None,
) -> None:
    """Raise if a place stands on a piece of road the reader cut off from the network.

    The road readers keep only the largest strongly connected component; a
    place whose nearest node in the network as read (before that pruning) is a
    dropped node is on an island (or a one-way stub) that no vehicle can drive
    to and back from. Within *near_m* of the kept network it is snapped there
    with a warning (clipped OSM extracts leave one-way stubs at their edges,
    and a facility beside one is still a few steps from a kept road); farther
    away snapping would move it silently across whatever cuts it off, so it is
    an error.

    Parameters
    ----------
    gdf
        Places snapped by :func:`snap_to_network` (column ``snap_m``, m).
    roads
        The road network, with the dropped nodes it remembers.
    what
        Name of the places in messages (``"shelters"``).
    file_label
        The scenario key the places came from.
    near_m
        Distance to the kept network, m, up to which such a place is snapped
        with a warning instead.
    sinks
        Whether the places may stand on the one-way dead ends (``roads.sink``);
        when not, those count as cut off too (a unit could drive there but not
        back). Default: only shelters may.

    Raises
    ------
    NetworkError
        Naming the key, each such place (name and row) and the size of its piece.
    """
    if roads is None or len(gdf) == 0:
        return
    sinks = what == "shelters" if sinks is None else sinks
    cut_xy, cut_part = roads.dropped_xy, roads.dropped_part
    if not sinks and roads.sink.any():  # the dead ends: one piece each, past the dropped ones
        s = np.flatnonzero(roads.sink)
        cut_xy = np.vstack([cut_xy, np.column_stack([roads.node_x[s], roads.node_y[s]])])
        first = int(cut_part.max()) + 1 if cut_part.size else 0
        cut_part = np.concatenate([cut_part, first + _pieces(roads, s)])
    if len(cut_xy) == 0:
        return
    from scipy.spatial import cKDTree

    xy = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values))
    d_drop, i_drop = cKDTree(cut_xy).query(xy)
    snap = gdf["snap_m"].to_numpy(dtype=float)
    on_piece = d_drop < snap
    near = np.flatnonzero(on_piece & (snap <= near_m))
    if len(near):
        log.warning("%s: %d %s stand on pieces of road cut off from the network and were "
                    "snapped to the kept network (at most %.0f m)", file_label, len(near),
                    what, float(snap[near].max()))  # fmt: skip
    cut = np.flatnonzero(on_piece & (snap > near_m))
    if len(cut) == 0:
        return
    sizes = np.bincount(cut_part)
    n_dropped = len(roads.dropped_xy)

    def piece(k: int) -> str:
        if k < n_dropped:
            return f"{sizes[cut_part[k]]} nodes dropped"
        return (f"a one-way dead end of {sizes[cut_part[k]]} nodes, which units could drive "
                "into but not back from")  # fmt: skip

    names = gdf["name"].astype(str).to_numpy() if "name" in gdf.columns else None
    shown = []
    for i in cut[:_SHOW]:
        label = f"{names[i]!r} (#{i})" if names is not None else f"#{i}"
        shown.append(
            f"{label} is on a part of the road network cut off from the rest "
            f"({piece(int(i_drop[i]))}); the nearest kept road "
            f"node is {float(gdf['snap_m'].iloc[i]):,.0f} m away"
        )
    more = f"; and {len(cut) - _SHOW} more" if len(cut) > _SHOW else ""
    raise NetworkError(
        f"{file_label}: {len(cut)} of {len(gdf)} {what} cannot be reached by road: "
        + "; ".join(shown)
        + more
        + ". Only the largest strongly connected part of the roads is kept: join that "
        "part to it (in both directions) or move the place onto the main network"
    )


def check_reachable(
    roads: RoadNetwork,
    from_nodes: Sequence[int] | np.ndarray,
    to_nodes: Sequence[int] | np.ndarray,
    *,
    what: str = "shelters",
) -> None:
    """Raise unless every origin reaches some target and every target is reached.

    Parameters
    ----------
    roads
        The road network (directed).
    from_nodes, to_nodes
        Array node indices of origins (population) and targets (*what*).
    what
        Name of the targets in messages.

    Raises
    ------
    NetworkError
        An empty node set, a node index not in the network, targets that no
        origin can reach, or origins that reach no target.
    """
    src = np.unique(np.asarray(from_nodes, dtype=np.int64))
    dst = np.unique(np.asarray(to_nodes, dtype=np.int64))
    if len(src) == 0:
        raise NetworkError(f"no origins to route from to the {what}")
    if len(dst) == 0:
        raise NetworkError(f"no {what} to route to")
    n = roads.n_nodes
    for arr, label in ((src, "origin"), (dst, what)):
        if arr.min() < 0 or arr.max() >= n:
            raise NetworkError(
                f"{label} nodes not on the road network (indices outside 0..{n - 1})"
            )
    fwd = _reach(roads, src, reverse=False)
    back = _reach(roads, dst, reverse=True)
    lost_dst, lost_src = dst[~fwd[dst]], src[~back[src]]
    if len(lost_dst) or len(lost_src):
        parts = []
        if len(lost_dst):
            parts.append(
                f"{len(lost_dst)} of {len(dst)} {what} nodes cannot be reached from any "
                f"origin (nodes {lost_dst[:_SHOW].tolist()})"
            )
        if len(lost_src):
            parts.append(
                f"{len(lost_src)} of {len(src)} origin nodes reach no {what} "
                f"(nodes {lost_src[:_SHOW].tolist()})"
            )
        raise NetworkError("; ".join(parts))


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def _read_table(path: str | Path, *, file_label: str, default_crs: Any) -> tuple[Any, str]:
    p = Path(path)
    layer = None
    if not p.exists() and ":" in str(path):
        head, _, tail = str(path).rpartition(":")
        if head and tail and not any(c in tail for c in "/\\"):
            p, layer = Path(head), tail
    where = f"{file_label}: {p}" + (f" (layer {layer!r})" if layer else "")
    if not p.exists():
        raise InputDataError(f"{file_label}: file not found: {p}")
    try:
        if p.suffix.lower() in (".csv", ".txt", ".tsv"):
            return pd.read_csv(p, sep=_csv_separator(p)), where
        if p.suffix.lower() == ".parquet":
            return gpd.read_parquet(p), where
        return gpd.read_file(p, layer=layer), where
    except pd.errors.EmptyDataError as exc:
        raise InputDataError(f"{where}: the file is empty") from exc
    except Exception as exc:  # pyogrio/pandas raise several unrelated classes
        msg = str(exc)
        if "geometry" in msg.lower() and "no" in msg.lower():
            raise InputDataError(f"{where}: no geometry in the file ({msg})") from exc
        raise InputDataError(f"{where}: cannot read: {msg}") from exc


def _csv_separator(path: Path) -> str:
    """The field separator of a CSV file: ``,``, ``;``, tab or ``|``.

    Sniffed from the first 64 KiB among those four only (the sniffer would take
    a letter of a one-column file's header for a separator); ``,`` when the
    sample does not settle it, e.g. a file with a single column.
    """
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        sample = f.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _active_geometry(gdf: gpd.GeoDataFrame) -> Any:
    try:
        return gdf.geometry
    except AttributeError:
        return None


def _geometry_from_columns(df: pd.DataFrame, where: str, default_crs: Any) -> gpd.GeoDataFrame:
    """Geometry from x/y (lon/lat ...) or WKT columns of a plain table."""
    cols = {str(c).lower(): c for c in df.columns}
    xcol = next((cols[c] for c in _X_NAMES if c in cols), None)
    ycol = next((cols[c] for c in _Y_NAMES if c in cols), None)
    wcol = next((cols[c] for c in _WKT_NAMES if c in cols), None)
    if xcol is not None and ycol is not None:
        x = pd.to_numeric(df[xcol], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(df[ycol], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        geom = np.full(len(df), None, dtype=object)
        geom[ok] = shapely.points(x[ok], y[ok])
    elif wcol is not None:
        geom = shapely.from_wkt(
            df[wcol].astype(object).where(df[wcol].notna(), None), on_invalid="ignore"
        )
        df = df.drop(columns=[wcol])
    else:
        raise InputDataError(
            f"{where}: no geometry: expected x/y (or lon/lat) columns or a WKT "
            f"'geometry' column; columns present: {', '.join(map(str, df.columns)) or 'none'}"
        )
    return gpd.GeoDataFrame(pd.DataFrame(df), geometry=geom, crs=None)


def _levels(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Storeys per feature from a levels column (1 where missing or < 1)."""
    for name in _LEVEL_NAMES:
        if name in gdf.columns:
            lv = pd.to_numeric(gdf[name], errors="coerce").to_numpy(dtype=float)
            return np.where(np.isfinite(lv) & (lv >= 1), lv, 1.0)
    return np.ones(len(gdf))


def _check_people(out: gpd.GeoDataFrame, file_label: str, rule: str) -> gpd.GeoDataFrame:
    total = float(out["people"].sum()) if len(out) else 0.0
    if len(out) == 0 or not total > 0:
        raise InputDataError(
            f"{file_label}: the population is empty (0 people in {len(out)} places)"
        )
    log.info("%s: %.0f people in %d places (%s)", file_label, total, len(out), rule)
    return out


def _labels(gdf: gpd.GeoDataFrame, rows: np.ndarray) -> str:
    if "name" in gdf.columns:
        names = [str(gdf["name"].iloc[i]) for i in rows[:_SHOW]]
    else:
        names = [f"#{int(i)}" for i in rows[:_SHOW]]
    more = f" and {len(rows) - _SHOW} more" if len(rows) > _SHOW else ""
    return ", ".join(names) + more


def _pieces(roads: RoadNetwork, nodes: np.ndarray) -> np.ndarray:
    """Label (0..) of the piece each of *nodes* forms with the others (joined by edges)."""
    n = roads.n_nodes
    inside = np.zeros(n, bool)
    inside[nodes] = True
    both = inside[roads.edge_u] & inside[roads.edge_v]
    adj = sparse.coo_matrix((np.ones(int(both.sum())), (roads.edge_u[both], roads.edge_v[both])),
                            shape=(n, n))  # fmt: skip
    lab = connected_components(adj, directed=False)[1][nodes]
    return np.unique(lab, return_inverse=True)[1].ravel().astype(np.int64)


def _reach(roads: RoadNetwork, start: np.ndarray, *, reverse: bool) -> np.ndarray:
    """Nodes reachable from any of *start* (against edge direction if *reverse*)."""
    n = roads.n_nodes
    u, v = (roads.edge_v, roads.edge_u) if reverse else (roads.edge_u, roads.edge_v)
    # a super source n linked to every start node
    rows = np.concatenate([u, np.full(len(start), n)])
    cols = np.concatenate([v, start])
    adj = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1))
    order = breadth_first_order(adj, n, directed=True, return_predecessors=False)
    seen = np.zeros(n + 1, dtype=bool)
    seen[order] = True
    return seen[:n]
