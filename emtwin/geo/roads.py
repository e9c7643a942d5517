"""Road networks: read OSM XML/PBF, vector lines or GraphML into a :class:`RoadNetwork`.

Every builder returns a directed network in the metric ``crs`` it is given,
keeps the largest strongly connected component and the one-way dead ends it
leads into (``RoadNetwork.sink``: where exits and shelters may stand), drops
the rest with a warning, and fills the attributes
the simulation needs (length m, free speed m/s, lanes, capacity veh/h) from
tags where present and from :data:`ROAD_CLASS_DEFAULTS` otherwise. See
``docs/roads.md`` for the rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as ProjCRSError
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components
from scipy.spatial import cKDTree

from emtwin.errors import CRSError, InputDataError, NetworkError
from emtwin.geo import _osm
from emtwin.geo.world import RoadNetwork

__all__ = [
    "ROAD_CLASS_DEFAULTS",
    "DEFAULT_ROAD_CLASS",
    "read_roads",
    "roads_from_lines",
    "roads_from_graph",
]

log = logging.getLogger(__name__)

#: Defaults per OSM ``highway`` class, used where a way carries no tag of its
#: own: ``lanes`` per direction, free speed ``speed_kph`` (km/h) and flow
#: capacity ``capacity_per_lane`` (veh/h per lane). Lanes and speeds are MATSim's
#: ``OsmNetworkReader`` highway defaults; ``service`` (20 km/h, SUMO's
#: ``osmNetconvert.typ.xml`` speed) and ``road`` (40 km/h) are added. Per-lane
#: capacities are raised from MATSim's (2000/1500/1000/600/600/300) towards
#: saturation flows, after references.md section 4. The order is the class rank
#: (most important first), used when a way carries several classes. Only these
#: classes are roads.
ROAD_CLASS_DEFAULTS: dict[str, dict[str, float]] = {
    "motorway": {"lanes": 2, "speed_kph": 120.0, "capacity_per_lane": 2000.0},
    "trunk": {"lanes": 1, "speed_kph": 80.0, "capacity_per_lane": 2000.0},
    "primary": {"lanes": 1, "speed_kph": 80.0, "capacity_per_lane": 1800.0},
    "secondary": {"lanes": 1, "speed_kph": 60.0, "capacity_per_lane": 1600.0},
    "tertiary": {"lanes": 1, "speed_kph": 45.0, "capacity_per_lane": 1200.0},
    "motorway_link": {"lanes": 1, "speed_kph": 80.0, "capacity_per_lane": 1500.0},
    "trunk_link": {"lanes": 1, "speed_kph": 50.0, "capacity_per_lane": 1500.0},
    "primary_link": {"lanes": 1, "speed_kph": 60.0, "capacity_per_lane": 1500.0},
    "secondary_link": {"lanes": 1, "speed_kph": 60.0, "capacity_per_lane": 1500.0},
    "tertiary_link": {"lanes": 1, "speed_kph": 45.0, "capacity_per_lane": 1200.0},
    "unclassified": {"lanes": 1, "speed_kph": 45.0, "capacity_per_lane": 1000.0},
    "road": {"lanes": 1, "speed_kph": 40.0, "capacity_per_lane": 800.0},
    "residential": {"lanes": 1, "speed_kph": 30.0, "capacity_per_lane": 800.0},
    "living_street": {"lanes": 1, "speed_kph": 15.0, "capacity_per_lane": 600.0},
    "service": {"lanes": 1, "speed_kph": 20.0, "capacity_per_lane": 600.0},
}

#: Class given to every line of a source that has no ``highway`` attribute at all.
DEFAULT_ROAD_CLASS = "residential"

_RANK = {name: i for i, name in enumerate(ROAD_CLASS_DEFAULTS)}
_MIN_SPEED_KPH = 5.0  # floor for tagged speeds ("maxspeed=walk" and typos)
_SNAP_M = 0.5  # line ends this close to another vertex are joined
_SPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph|knots)?\s*$", re.I)
_NUM_RE = re.compile(r"(\d+(?:\.\d+)?)")
_XML_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.xml", ".xml")
_VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".parquet")
# simplify_graph keeps a node where these differ, so every edge is one way's piece
_SIMPLIFY_KEEP = ["osmid", "highway", "name", "lanes", "maxspeed", "bridge"]
_LANES_PER_DIRECTION = "per direction"  # G.graph["lanes"] of the graphs built here


# ----------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------


def read_roads(
    path: str | Path,
    *,
    crs: Any,
    bbox: Sequence[float] | None = None,
    file_label: str = "world.roads.source",
    default_crs: Any = None,
) -> RoadNetwork:
    """Read a road network from a file.

    Parameters
    ----------
    path
        OSM XML (``.osm``, ``.osm.bz2``, ``.osm.gz``), OSM PBF (``.pbf``, needs
        the ``pbf`` extra: ``osmium``), vector lines (GeoPackage, GeoJSON,
        Shapefile, FlatGeobuf, GeoParquet; ``file.gpkg:layer`` picks a layer),
        or GraphML (``.graphml``, osmnx or networkx written).
    crs
        The World CRS: projected, metres. Everything returned is in it.
    bbox
        Optional (xmin, ymin, xmax, ymax), m in *crs*: keep only edges whose
        geometry intersects this box (before the connectivity pruning).
    file_label
        The scenario key the path came from, for messages.
    default_crs
        CRS assumed for a vector or GraphML source that declares none
        (the scenario's ``crs``); None makes such a source an error.

    Returns
    -------
    RoadNetwork
        The largest strongly connected component and its one-way dead ends
        (``sink`` nodes), in *crs*.

    Raises
    ------
    InputDataError
        Missing, unreadable or unsupported file.
    NetworkError
        No usable roads in the file.
    CRSError
        A CRS that cannot be used.
    """
    src, layer = _split_layer(path)
    if not src.exists():
        raise InputDataError(f"{file_label}: road file not found: {src}")
    name = src.name.lower()
    where = str(src) + (f" (layer {layer!r})" if layer else "")
    try:
        if name.endswith(_XML_SUFFIXES) or name.endswith(".pbf"):
            reader = _osm.osm_pbf_graph if name.endswith(".pbf") else _osm.osm_xml_graph
            G = reader(src, where=where, is_road=_is_road, keep=_SIMPLIFY_KEEP)
            return roads_from_graph(G, crs=crs, bbox=bbox, source=where)
        if name.endswith(".graphml"):
            G = _osm.load_graphml(src, where=where)
            return roads_from_graph(G, crs=crs, bbox=bbox, default_crs=default_crs, source=where)
        if name.endswith(_VECTOR_SUFFIXES):
            lines = _read_vector(src, layer=layer, where=where)
            return roads_from_lines(
                lines, crs=crs, bbox=bbox, default_crs=default_crs, source=where
            )
    except InputDataError as exc:  # and its subclasses: say which scenario key
        raise type(exc)(f"{file_label}: {exc}") from exc
    accepted = ", ".join(_XML_SUFFIXES + (".pbf", ".graphml") + _VECTOR_SUFFIXES)
    raise InputDataError(
        f"{file_label}: {where}: unsupported road file type; expected one of {accepted}"
    )


def roads_from_lines(
    lines: gpd.GeoDataFrame,
    *,
    crs: Any,
    bbox: Sequence[float] | None = None,
    default_crs: Any = None,
    source: str = "<lines>",
) -> RoadNetwork:
    """Build a road network from line features.

    Lines are joined into nodes where they share end points or interior
    vertices (two lines crossing without a shared vertex, e.g. a bridge, stay
    apart); line ends within 0.5 m of another vertex are snapped to it. A
    two-way line becomes two directed edges (the reverse one with reversed
    geometry); ``oneway=-1`` keeps only the reverse direction.

    Parameters
    ----------
    lines
        (Multi)LineStrings with optional OSM-style columns: ``id`` (becomes
        ``road_id``), ``name``, ``highway`` (class; a source without the column
        is taken as ``DEFAULT_ROAD_CLASS``, and rows whose value is missing or
        not a road class are dropped), ``lanes`` (OSM meaning: both directions
        together on a two-way road), ``maxspeed`` (km/h, or strings such as
        ``"30 mph"``), ``oneway`` (bool, ``"yes"``, ``"-1"``) and ``capacity``
        (veh/h per direction).
    crs
        The World CRS (projected, metres).
    bbox
        Optional (xmin, ymin, xmax, ymax), m in *crs*; keep edges that intersect it.
    default_crs
        CRS assumed when *lines* has none.
    source
        Label for messages (the file name).

    Returns
    -------
    RoadNetwork
        The largest strongly connected component and its one-way dead ends
        (``sink`` nodes), in *crs*.
    """
    crs = _metric_crs(crs, source)
    if not isinstance(lines, gpd.GeoDataFrame):
        raise InputDataError(f"{source}: expected a GeoDataFrame of lines, got {type(lines)}")
    try:
        geom = lines.geometry
    except AttributeError:
        geom = None
    if len(lines) == 0 or geom is None:
        raise NetworkError(f"no roads found in {source}: no line features")
    gdf = lines[~(lines.geometry.isna() | lines.geometry.is_empty)].copy()
    gdf["_row"] = [str(i) for i in gdf.index]
    gdf = gdf.explode(index_parts=False, ignore_index=True)
    is_line = np.asarray(gdf.geom_type == "LineString")
    if (~is_line).any():
        log.warning("%s: ignored %d non-line features", source, int((~is_line).sum()))
        gdf = gdf[is_line]
    if len(gdf) == 0:
        raise NetworkError(f"no roads found in {source}: no line features")
    gdf = _to_crs(gdf, crs, default_crs, source)

    recs = gdf.drop(columns=[gdf.geometry.name]).to_dict("records")
    attrs = _edge_attrs(recs, fallback_ids=list(gdf["_row"]), source=source)
    ok = np.array([c is not None for c in attrs["highway"]], dtype=bool)
    if not ok.any():
        raise NetworkError(f"no roads found in {source}: no line has a road `highway` class")
    gdf, attrs = gdf[ok].reset_index(drop=True), {k: v[ok] for k, v in attrs.items()}
    oneway = attrs["oneway"]
    geoms = _add_t_junctions(np.asarray(gdf.geometry.values), _SNAP_M)
    node_xy, pu, pv, pgeom, pline = _node_lines(geoms, _SNAP_M)
    if len(pu) == 0:
        raise NetworkError(f"no roads found in {source}: all lines are shorter than 0.5 m")

    # directed edges: forward unless oneway == -1, reverse unless oneway == 1
    ow = oneway[pline]
    fwd, rev = np.flatnonzero(ow >= 0), np.flatnonzero(ow <= 0)
    e_u = np.concatenate([pu[fwd], pv[rev]])
    e_v = np.concatenate([pv[fwd], pu[rev]])
    geoms = np.concatenate([pgeom[fwd], shapely.reverse(pgeom[rev])])
    rows = np.concatenate([pline[fwd], pline[rev]])
    eattrs = {k: v[rows] for k, v in attrs.items()}
    keys = np.arange(len(node_xy), dtype=np.int64)
    return _assemble(keys, node_xy, e_u, e_v, geoms, eattrs, crs=crs, bbox=bbox, source=source)


def roads_from_graph(
    G: nx.Graph,
    *,
    crs: Any,
    bbox: Sequence[float] | None = None,
    default_crs: Any = None,
    source: str = "<graph>",
) -> RoadNetwork:
    """Build a road network from a networkx graph (osmnx style).

    Parameters
    ----------
    G
        Nodes with ``x``, ``y`` in ``G.graph["crs"]`` (or *default_crs*); edges
        with optional ``geometry`` (LineString or WKT), ``osmid`` (or ``id``)
        and the tags read by :func:`roads_from_lines`. A directed graph is taken
        as is; an undirected one gets both directions (one where ``oneway``).
    crs
        The World CRS (projected, metres); nodes and geometries are projected to it.
    bbox
        Optional (xmin, ymin, xmax, ymax), m in *crs*.
    default_crs
        CRS assumed when the graph declares none.
    source
        Label for messages.

    Returns
    -------
    RoadNetwork
        The largest strongly connected component and its one-way dead ends
        (``sink`` nodes), in *crs*.
    """
    crs = _metric_crs(crs, source)
    if G.number_of_edges() == 0:
        raise NetworkError(f"no roads found in {source}: the graph has no edges")
    src_crs = G.graph.get("crs") or default_crs
    if src_crs is None:
        raise CRSError(f"{source}: the graph has no 'crs' attribute and no default CRS was given")
    src_crs = _any_crs(src_crs, source)
    keys = list(G.nodes)
    try:
        xy = np.array([[float(G.nodes[n]["x"]), float(G.nodes[n]["y"])] for n in keys])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(f"{source}: every graph node needs numeric 'x' and 'y'") from exc
    pos = {n: i for i, n in enumerate(keys)}
    directed = G.is_directed()
    raw: dict[str, list] = {k: [] for k in ("u", "v", "geometry", "data")}
    for u, v, d in G.edges(data=True):
        ow = _parse_oneway(d.get("oneway"))
        if directed:
            pairs = [(u, v, False)]
        else:
            pairs = [(u, v, False)] if ow == 1 else [(v, u, True)] if ow == -1 else []
            pairs = pairs or [(u, v, False), (v, u, True)]
        for a, b, flip in pairs:
            raw["u"].append(pos[a])
            raw["v"].append(pos[b])
            raw["geometry"].append((_as_geom(d.get("geometry"), source), flip))
            raw["data"].append(d)
    data = raw["data"]
    e_u, e_v = np.array(raw["u"], dtype=np.int64), np.array(raw["v"], dtype=np.int64)
    oneway = None
    if directed:  # untagged: one-way unless the reverse edge exists
        oneway = [
            _parse_oneway(d["oneway"]) if d.get("oneway") is not None else int(not G.has_edge(v, u))
            for (u, v, d) in G.edges(data=True)
        ]
    attrs = _edge_attrs(
        data,
        fallback_ids=[f"{keys[a]}-{keys[b]}" for a, b in zip(e_u, e_v, strict=True)],
        source=source,
        oneway=oneway,
        per_direction=str(G.graph.get("lanes", "")) == _LANES_PER_DIRECTION,
    )

    # project nodes and geometries
    tr = Transformer.from_crs(src_crs, crs, always_xy=True)
    px, py = tr.transform(xy[:, 0], xy[:, 1])
    node_xy = np.column_stack([px, py])
    if not np.isfinite(node_xy).all():
        raise CRSError(f"{source}: node coordinates cannot be projected from {src_crs} to {crs}")
    geoms = np.array([g for g, _ in raw["geometry"]], dtype=object)
    flips = np.array([f for _, f in raw["geometry"]], dtype=bool)
    has = ~shapely.is_missing(geoms)
    if has.any():
        geoms[has] = shapely.transform(
            geoms[has], lambda x, y: tr.transform(x, y), interleaved=False
        )
        geoms[has & flips] = shapely.reverse(geoms[has & flips])
    keep = np.array([c is not None for c in attrs["highway"]], dtype=bool)
    if not keep.any():
        raise NetworkError(f"no roads found in {source}: no edge has a road `highway` class")
    attrs = {k: v[keep] for k, v in attrs.items()}
    node_keys = np.array(keys, dtype=object)
    if all(isinstance(k, int | np.integer) for k in keys):
        node_keys = node_keys.astype(np.int64)
    e_u, e_v, geoms = e_u[keep], e_v[keep], geoms[keep]
    return _assemble(node_keys, node_xy, e_u, e_v, geoms, attrs, crs=crs, bbox=bbox, source=source)


# ----------------------------------------------------------------------------
# readers
# ----------------------------------------------------------------------------


def _read_vector(path: Path, *, layer: str | None, where: str) -> gpd.GeoDataFrame:
    """Read a vector file (one layer) with pyogrio."""
    try:
        if path.name.lower().endswith(".parquet"):
            return gpd.read_parquet(path)
        return gpd.read_file(path, layer=layer)
    except Exception as exc:  # pyogrio raises several unrelated classes
        raise InputDataError(f"{where}: cannot read vector data: {exc}") from exc


def _split_layer(path: str | Path) -> tuple[Path, str | None]:
    """``file.gpkg:layer`` -> (Path, layer); an existing path is taken whole."""
    p = Path(path)
    if p.exists() or ":" not in str(path):
        return p, None
    head, _, tail = str(path).rpartition(":")
    if head and tail and not any(c in tail for c in "/\\"):
        return Path(head), tail
    return p, None


# ----------------------------------------------------------------------------
# noding of lines
# ----------------------------------------------------------------------------


def _add_t_junctions(geoms: np.ndarray, tol: float) -> np.ndarray:
    """Give a vertex to every line that another line ends on (within *tol* m)."""
    n = len(geoms)
    ends = np.concatenate([shapely.get_point(geoms, 0), shapely.get_point(geoms, -1)])
    owner = np.tile(np.arange(n), 2)
    pi, li = shapely.STRtree(geoms).query(ends, predicate="dwithin", distance=tol)
    other = owner[pi] != li
    pi, li = pi[other], li[other]
    d = shapely.line_locate_point(geoms[li], ends[pi])
    inner = (d > tol) & (d < shapely.length(geoms[li]) - tol)
    pi, li, d = pi[inner], li[inner], d[inner]
    if len(li) == 0:
        return geoms
    out = geoms.copy()
    for line in np.unique(li):  # only the lines that get a junction
        at = np.sort(d[li == line])
        xy = shapely.get_coordinates(geoms[line])
        cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
        new = shapely.get_coordinates(shapely.line_interpolate_point(geoms[line], at))
        out[line] = shapely.linestrings(np.insert(xy, np.searchsorted(cum, at), new, axis=0))
    return out


def _node_lines(
    geoms: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split LineStrings into pieces between nodes.

    Nodes are line ends, vertices shared by two lines (or visited twice by one),
    and clusters of vertices within *tol* m of a line end. Returns node
    coordinates (k, 2), piece tail and head node indices, piece geometries and
    the input line index of every piece.
    """
    coords, li = shapely.get_coordinates(geoms, return_index=True)
    n_lines = len(geoms)
    count = np.bincount(li, minlength=n_lines)
    first = np.zeros(len(coords), dtype=bool)
    last = np.zeros(len(coords), dtype=bool)
    start = np.cumsum(count) - count
    first[start[count > 0]] = True
    last[(start + count - 1)[count > 0]] = True
    uniq, vid = np.unique(coords, axis=0, return_inverse=True)
    vid = vid.ravel()
    nu = len(uniq)
    occ = np.bincount(vid, minlength=nu)
    nlines = np.bincount(np.unique(vid * n_lines + li) // n_lines, minlength=nu)
    end_v = np.zeros(nu, dtype=bool)
    end_v[vid[first | last]] = True
    node_v = end_v | (nlines >= 2) | (occ > nlines)
    # snap line ends to vertices within tol (pairs with at least one line end)
    pairs = cKDTree(uniq).query_pairs(tol, output_type="ndarray")
    pairs = pairs[end_v[pairs[:, 0]] | end_v[pairs[:, 1]]]
    node_v[pairs.ravel()] = True
    adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(nu, nu))
    ncomp, comp = connected_components(adj, directed=False)
    size = np.bincount(comp, minlength=ncomp)
    cxy = np.column_stack(
        [np.bincount(comp, uniq[:, 0], ncomp) / size, np.bincount(comp, uniq[:, 1], ncomp) / size]
    )
    comp_node = np.bincount(comp, node_v.astype(float), ncomp) > 0
    c = comp[vid]
    is_node = comp_node[c] | first | last
    xy = cxy[c]
    # pieces: each node vertex that is not a line's last starts one; interior
    # nodes also end the previous piece
    piece = np.cumsum(is_node & ~last) - 1
    dup = np.flatnonzero(is_node & ~first & ~last)
    order = np.concatenate([np.arange(len(coords)), dup])
    pid = np.concatenate([piece, piece[dup] - 1])
    srt = np.lexsort((order, pid))
    pid, order = pid[srt], order[srt]
    pxy, pc = xy[order], c[order]
    # drop repeated points inside a piece, then pieces left with < 2 points
    keep = np.ones(len(pid), dtype=bool)
    keep[1:] = (pid[1:] != pid[:-1]) | np.any(pxy[1:] != pxy[:-1], axis=1)
    pid, order, pxy, pc = pid[keep], order[keep], pxy[keep], pc[keep]
    npts = np.bincount(pid, minlength=piece.max() + 1 if len(piece) else 0)
    good = npts[pid] >= 2
    pid, order, pxy, pc = pid[good], order[good], pxy[good], pc[good]
    if len(pid) == 0:
        e = np.zeros(0, dtype=np.int64)
        return np.zeros((0, 2)), e, e, np.zeros(0, dtype=object), e
    _, pid = np.unique(pid, return_inverse=True)
    pid = pid.ravel()
    heads = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    tails = np.r_[heads[1:], len(pid)] - 1
    pgeom = shapely.linestrings(pxy, indices=pid)
    used, node_of = np.unique(np.r_[pc[heads], pc[tails]], return_inverse=True)
    node_of = node_of.ravel()
    npc = len(heads)
    return cxy[used], node_of[:npc], node_of[npc:], pgeom, li[order[heads]]


# ----------------------------------------------------------------------------
# assembly
# ----------------------------------------------------------------------------


def _assemble(
    node_keys: np.ndarray,
    node_xy: np.ndarray,
    e_u: np.ndarray,
    e_v: np.ndarray,
    geoms: np.ndarray,
    attrs: dict[str, np.ndarray],
    *,
    crs: CRS,
    bbox: Sequence[float] | None,
    source: str,
) -> RoadNetwork:
    """Fill attributes, clip, keep the largest SCC and build the RoadNetwork."""
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms)
    if missing.any():
        geoms[missing] = shapely.linestrings(
            np.stack([node_xy[e_u[missing]], node_xy[e_v[missing]]], axis=1)
        )
    # orient every geometry from its tail node to its head node
    p0 = shapely.get_coordinates(shapely.get_point(geoms, 0))
    flip = (e_u != e_v) & (np.hypot(*(p0 - node_xy[e_v]).T) < np.hypot(*(p0 - node_xy[e_u]).T))
    if flip.any():
        geoms[flip] = shapely.reverse(geoms[flip])
    length = shapely.length(geoms)
    keep = length > 0.0
    if bbox is not None:
        keep &= shapely.intersects(geoms, shapely.box(*bbox))
    if not keep.any():
        inside = " inside the bbox" if bbox is not None else ""
        raise NetworkError(f"no roads found in {source}{inside}")
    e_u, e_v, geoms, length = e_u[keep], e_v[keep], geoms[keep], length[keep]
    attrs = {k: v[keep] for k, v in attrs.items()}

    # the largest strongly connected component (the core), plus the one-way
    # "sink" pieces downstream of it: nodes the core reaches that lead nowhere
    # back (a one-way exit road, a clipped one-way street). Sinks come after the
    # core in node and edge order, so the core's numbering is as without them.
    n = len(node_xy)
    adj = sparse.coo_matrix((np.ones(len(e_u)), (e_u, e_v)), shape=(n, n))
    _, lab = connected_components(adj, directed=True, connection="strong")
    used = np.zeros(n, dtype=bool)
    used[e_u] = used[e_v] = True
    size = np.bincount(lab[used])
    best = int(np.argmax(size))
    in_scc = lab == best
    sink = _downstream(adj.tocsr(), in_scc) & ~in_scc
    ekeep = in_scc[e_u] & in_scc[e_v]
    esink = (in_scc[e_u] | sink[e_u]) & sink[e_v]  # every edge out of a sink node is one
    kept = in_scc | sink
    dropped_nodes = int(used.sum() - kept.sum())
    if dropped_nodes or not (ekeep | esink).all():
        log.warning(
            "%s: kept the largest strongly connected component; dropped %d of %d nodes "
            "and %.3f of %.3f km of directed edges (roads that cannot be reached from it)",
            source, dropped_nodes, int(used.sum()),
            length[~(ekeep | esink)].sum() / 1000.0, length.sum() / 1000.0,
        )  # fmt: skip
    if sink.any():
        log.info(
            "%s: kept %d one-way dead-end nodes (%.3f km of directed edges) that the network "
            "leads into but not back from (e.g. one-way exit roads); only evacuation exits "
            "and shelters snap to them", source, int(sink.sum()), length[esink].sum() / 1000.0,
        )  # fmt: skip
    # the dropped nodes and the pieces they form (joined by edges between them)
    dropped = used & ~kept
    both = dropped[e_u] & dropped[e_v]
    dadj = sparse.coo_matrix((np.ones(int(both.sum())), (e_u[both], e_v[both])), shape=(n, n))
    _, dlab = connected_components(dadj, directed=False)
    dropped_xy = node_xy[dropped].copy()
    dropped_part = np.unique(dlab[dropped], return_inverse=True)[1].ravel().astype(np.int64)
    eorder = np.concatenate([np.flatnonzero(ekeep), np.flatnonzero(esink)])
    e_u, e_v, geoms, length = e_u[eorder], e_v[eorder], geoms[eorder], length[eorder]
    attrs = {k: v[eorder] for k, v in attrs.items()}
    n_core = int(in_scc.sum())
    new_id = np.where(in_scc, np.cumsum(in_scc) - 1, n_core + np.cumsum(sink) - 1)
    nodes = np.concatenate([np.flatnonzero(in_scc), np.flatnonzero(sink)])
    e_u, e_v = new_id[e_u], new_id[e_v]

    lanes, speed_m_s, capacity = _fill(attrs)
    hw = attrs["highway"].astype(str)
    road_id = attrs["road_id"].astype(str)
    name = attrs["name"].astype(str)
    oneway = attrs["oneway"] != 0
    bridge = attrs["bridge"].astype(bool)
    keys = node_keys[nodes]
    nx_, ny_ = node_xy[nodes, 0].copy(), node_xy[nodes, 1].copy()
    G = nx.MultiDiGraph(crs=crs, source=source, lanes=_LANES_PER_DIRECTION)
    G.add_nodes_from(
        (k.item() if isinstance(k, np.generic) else k, {"x": float(x), "y": float(y), "nid": i})
        for i, (k, x, y) in enumerate(zip(keys, nx_, ny_, strict=True))
    )
    kl = [k.item() if isinstance(k, np.generic) else k for k in keys]
    names = ("eid", "road_id", "name", "highway", "length", "speed_m_s", "lanes")
    names += ("capacity_veh_h", "oneway", "bridge", "geometry")
    cols = (range(len(e_u)), road_id, name, hw, length, speed_m_s, lanes, capacity, oneway, bridge)
    G.add_edges_from(
        (kl[a], kl[b], dict(zip(names, vals, strict=True)))
        for a, b, *vals in zip(
            e_u.tolist(), e_v.tolist(), *(np.asarray(c).tolist() for c in cols), geoms, strict=True
        )
    )
    net = RoadNetwork(
        graph=G, node_id=keys, node_x=nx_, node_y=ny_, edge_u=e_u.astype(np.int64),
        edge_v=e_v.astype(np.int64), length_m=length.astype(np.float64), speed_m_s=speed_m_s,
        lanes=lanes, capacity_veh_h=capacity, road_id=road_id, name=name, highway=hw,
        geometry=list(geoms), bridge=bridge, dropped_xy=dropped_xy, dropped_part=dropped_part,
        sink=np.arange(len(nodes)) >= n_core,
    )  # fmt: skip
    log.info("%s: road network with %d nodes, %d directed edges, %.3f km",
             source, net.n_nodes, net.n_edges, net.total_km)  # fmt: skip
    return net


def _downstream(adj: sparse.csr_matrix, start: np.ndarray) -> np.ndarray:
    """Nodes reachable along the edges of *adj* from any node where *start* is True."""
    n = adj.shape[0]
    src = np.flatnonzero(start)
    rows = np.concatenate([adj.nonzero()[0], np.full(src.size, n)])
    cols = np.concatenate([adj.nonzero()[1], src])
    g = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n + 1, n + 1))
    order = breadth_first_order(g, n, directed=True, return_predecessors=False)
    seen = np.zeros(n + 1, dtype=bool)
    seen[order] = True
    return seen[:n]


def _fill(attrs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lanes per direction, free speed (m/s) and capacity (veh/h) per edge."""
    hw = attrs["highway"]
    d_lanes = np.array([ROAD_CLASS_DEFAULTS[h]["lanes"] for h in hw], dtype=float)
    d_speed = np.array([ROAD_CLASS_DEFAULTS[h]["speed_kph"] for h in hw], dtype=float)
    d_cap = np.array([ROAD_CLASS_DEFAULTS[h]["capacity_per_lane"] for h in hw], dtype=float)
    tag = attrs["lanes_tag"].astype(float)
    two_way = attrs["oneway"] == 0
    tagged = np.where(two_way, tag / 2.0, tag)  # OSM lanes count both directions
    lanes = np.where(np.isnan(tag), d_lanes, np.maximum(tagged, 1.0))
    sp = attrs["speed_tag"].astype(float)
    speed_kph = np.where(np.isnan(sp), d_speed, np.maximum(sp, _MIN_SPEED_KPH))
    cap = attrs["capacity_tag"].astype(float)
    capacity = np.where(np.isnan(cap) | (cap <= 0), lanes * d_cap, cap)
    return lanes, speed_kph / 3.6, capacity


# ----------------------------------------------------------------------------
# small parsers
# ----------------------------------------------------------------------------


def _metric_crs(crs: Any, source: str) -> CRS:
    """The World CRS as a pyproj CRS; must be projected in metres."""
    out = _any_crs(crs, source)
    if not out.is_projected:
        raise CRSError(f"{source}: the World CRS {out.to_string()} is not projected (metres)")
    return out


def _any_crs(crs: Any, source: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except ProjCRSError as exc:
        raise CRSError(f"{source}: PROJ cannot use the CRS {crs!r}: {exc}") from exc


def _to_crs(gdf: gpd.GeoDataFrame, crs: CRS, default_crs: Any, source: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        if default_crs is None:
            raise CRSError(f"{source}: the data has no CRS and no default CRS was given")
        gdf = gdf.set_crs(_any_crs(default_crs, source))
    out = gdf.to_crs(crs)
    if not np.isfinite(shapely.get_coordinates(out.geometry.values)).all():
        raise CRSError(f"{source}: coordinates cannot be projected from {gdf.crs} to {crs}")
    return out


def _edge_attrs(
    recs: list[dict],
    *,
    fallback_ids: list[str],
    source: str,
    oneway: list[int] | None = None,
    per_direction: bool = False,
) -> dict[str, np.ndarray]:
    """Parsed tags per feature (class None where it is not a road).

    *per_direction*: ``lanes`` already counts one direction (graphs built here).
    """
    n = len(recs)
    hw = [r.get("highway") for r in recs]
    if all(_missing(h) for h in hw):
        log.info(
            "%s: no `highway` values; all %d features taken as %r", source, n, DEFAULT_ROAD_CLASS
        )
        cls = np.array([DEFAULT_ROAD_CLASS] * n, dtype=object)
    else:
        cls = np.array([_road_class(h) for h in hw], dtype=object)
        if bad := sum(c is None for c in cls):
            log.info(
                "%s: %d of %d features have no drivable highway class; ignored", source, bad, n
            )
    ow = np.array(oneway if oneway is not None else [_parse_oneway(r.get("oneway")) for r in recs])
    ids = [_as_id(r.get("road_id", r.get("osmid", r.get("id")))) for r in recs]
    speed = [
        _parse_speed_kph(r["maxspeed"]) if not _missing(r.get("maxspeed", None))
        else _parse_float(r.get("speed_m_s")) * 3.6
        for r in recs
    ]  # fmt: skip
    lanes = np.array([_parse_lanes(r.get("lanes")) for r in recs], dtype=float)
    return {
        "road_id": np.array([i or f for i, f in zip(ids, fallback_ids, strict=True)], dtype=object),
        "name": np.array([_as_text(r.get("name")) for r in recs], dtype=object),
        "highway": cls,
        "lanes_tag": lanes * np.where(per_direction & (ow == 0), 2.0, 1.0),
        "speed_tag": np.array(speed, dtype=float),
        "capacity_tag": np.array(
            [_parse_float(r.get("capacity", r.get("capacity_veh_h"))) for r in recs], dtype=float
        ),
        "oneway": ow.astype(np.int64).reshape(n),
        "bridge": np.array([_parse_bridge(r.get("bridge")) for r in recs], dtype=bool),
    }


def _parse_bridge(v: Any) -> bool:
    """OSM ``bridge=*`` (yes, viaduct, ...) or a boolean column -> bool."""
    v = _first(v)
    if _missing(v):
        return False
    if isinstance(v, bool | np.bool_):
        return bool(v)
    return str(v).strip().lower() not in ("no", "false", "0", "")


def _missing(v: Any) -> bool:
    """None, NaN, pd.NA or a blank string (lists are not missing)."""
    if isinstance(v, str):
        return not v.strip()
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _is_road(data: dict) -> bool:
    """Whether an OSM edge's tags make it a road of :data:`ROAD_CLASS_DEFAULTS`."""
    return _road_class(data.get("highway")) is not None and str(data.get("area", "no")) != "yes"


def _road_class(value: Any) -> str | None:
    """Highest-ranked road class in a tag value (str, ``a;b`` or list), or None."""
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [str(p) for p in value if not _missing(p)]
    elif _missing(value):
        return None
    else:
        parts = str(value).split(";")
    found = [p.strip().lower() for p in parts if p.strip().lower() in _RANK]
    return min(found, key=_RANK.__getitem__) if found else None


def _first(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        vals = [x for x in v if not _missing(x)]
        return vals[0] if vals else None
    return v


def _as_id(v: Any) -> str:
    v = _first(v)
    if _missing(v):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _as_text(v: Any) -> str:
    v = _first(v)
    return "" if _missing(v) else str(v)


def _parse_oneway(v: Any) -> int:
    """1: one way along the geometry, -1: against it, 0: both ways."""
    v = _first(v)
    if _missing(v):
        return 0
    if isinstance(v, (bool, np.bool_)):
        return int(bool(v))
    s = str(v).strip().lower()
    if s in ("-1", "-1.0", "reverse"):
        return -1
    return 1 if s in ("yes", "true", "1", "1.0", "t", "y") else 0


def _parse_speed_kph(v: Any) -> float:
    """Speed in km/h from a maxspeed value (``50``, ``"30 mph"``, lists averaged)."""
    if isinstance(v, (list, tuple, np.ndarray)):
        vals = [_parse_speed_kph(x) for x in v]
        vals = [x for x in vals if not np.isnan(x)]
        return float(np.mean(vals)) if vals else np.nan
    if _missing(v) or isinstance(v, (bool, np.bool_)):
        return np.nan
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v) if v > 0 else np.nan
    if ";" in str(v) or "|" in str(v):
        return _parse_speed_kph(re.split(r"[;|]", str(v)))
    m = _SPEED_RE.match(str(v))
    if not m:
        return np.nan
    val = float(m.group(1))
    unit = (m.group(2) or "").lower()
    val *= 1.609344 if unit == "mph" else 1.852 if unit == "knots" else 1.0
    return val if val > 0 else np.nan


def _parse_lanes(v: Any) -> float:
    """Lane count from a tag (``2``, ``"2;3"``, lists: the smallest)."""
    if isinstance(v, (list, tuple, np.ndarray)):
        vals = [x for x in (_parse_lanes(x) for x in v) if not np.isnan(x)]
        return float(min(vals)) if vals else np.nan
    if _missing(v) or isinstance(v, (bool, np.bool_)):
        return np.nan
    nums = [float(x) for x in _NUM_RE.findall(str(v))]
    nums = [x for x in nums if x > 0]
    return float(min(nums)) if nums else np.nan


def _parse_float(v: Any) -> float:
    v = _first(v)
    if _missing(v) or isinstance(v, (bool, np.bool_)):
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def _as_geom(g: Any, source: str) -> Any:
    """A shapely LineString, or None; WKT strings are parsed."""
    if g is None or isinstance(g, shapely.Geometry):
        return g
    if isinstance(g, str):
        try:
            return shapely.from_wkt(g)
        except shapely.errors.GEOSException as exc:
            raise InputDataError(f"{source}: bad edge geometry {g[:40]!r}") from exc
    return None
