"""The built-in synthetic town: a river valley with a street grid, people and facilities.

Everything is generated without randomness (a fixed integer hash gives the
small irregularities), so the same ``(variant, scale)`` always gives
bit-identical arrays and tables. All coordinates are in EPSG:32633 (WGS 84 /
UTM 33N), metres; the south-west corner of the grid is at (400000, 5550000).

Layout (scale 1, ``riverside``): a 4 km (west-east) x 3 km valley at 10 m
cells. The river enters on the west edge near y = 5551500 and meanders east
in a channel about 50 m wide and 2.5 m deep; the floodplain rises gently away
from it and hills rise some 20 m to the north and south edges. A street grid
of 120 m x 105 m blocks covers both banks; a primary ring road runs along the
hills and crosses the river on the West and East bridges. ``scale`` stretches
the valley and the town downstream (east): the west edge, and with it the
river inflow, stays where it is.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from emtwin.defaults import MANNING_N
from emtwin.errors import InputDataError
from emtwin.geo.world import Terrain

__all__ = ["VARIANTS", "SyntheticTown", "synthetic_town", "TOWN_CRS", "TOWN_ORIGIN"]

log = logging.getLogger(__name__)

#: Built-in town variants.
VARIANTS = ("riverside", "coast", "dam")
#: CRS of every synthetic town.
TOWN_CRS = "EPSG:32633"
#: (easting, northing) of the grid's south-west corner, m in EPSG:32633.
TOWN_ORIGIN = (400000.0, 5550000.0)

_DX = 10.0  # cell size, m
_MODULE = 4000.0  # town length per unit of scale, m (west-east)
_HEIGHT = 3000.0  # valley width, m (south-north)
_AXIS = 1500.0  # valley axis, m from the south edge
_COL0, _COL_STEP = 400.0, 120.0  # first street column and block length (x), m
_ROW0, _ROW_STEP, _NROWS = 450.0, 105.0, 21  # street rows (y), m
_CHANNEL_DEPTH = 2.5  # bank-full depth, m
_BED_HALF, _BANK_W = 15.0, 10.0  # half-width of the flat bed, width of each bank slope, m
_CLEARANCE = 45.0  # no street closer than this to the river centre line, m
_HILL = 22.0  # height of the hills above the floodplain, m
_SLOPE = 0.0005  # downstream slope of the valley floor, m/m
_Z_WEST = 30.0  # floodplain elevation at the west edge (riverside, dam), m
_N_LAND, _N_WATER = MANNING_N, 0.03  # Manning's n, s/m^(1/3)
_SEED = 0x5EED_7017  # the fixed seed of the hash


@dataclass
class SyntheticTown:
    """A built-in town, every coordinate in :data:`TOWN_CRS` (m).

    Attributes
    ----------
    variant, scale
        What was built.
    crs
        EPSG:32633.
    terrain
        The DEM (10 m cells, all inside the domain) with Manning's n as an array
        (0.035 on land, 0.03 in the channel, the sea and the reservoir), and
        ``water`` marking those water cells (left out of the flooded-land figures).
    roads
        Noded LineStrings (endpoints shared exactly at every junction), OSM-style
        columns ``id`` (str), ``name``, ``highway``, ``lanes`` (int, both
        directions), ``maxspeed`` (km/h), ``oneway`` (bool) and ``bridge`` (bool).
    buildings
        Polygons with ``occupants`` (int, persons); they sum to ``round(20000 * scale)``.
    shelters, stations, hospitals
        Points with ``name`` (and ``capacity``, persons, for shelters).
    anchors
        Named points ``(x, y)``: ``river_inflow`` (on the west edge),
        ``river_outlet``, ``gauge_bridge``, ``gauge_town``, ``underpass``,
        ``underpass_south``, plus ``sea_gauge`` (coast) or ``reservoir_centre``
        and ``dam_breach`` (dam).
    levels
        Named elevations, m: ``bed_gauge_bridge``, ``bank_gauge_bridge``, bridge
        decks (``deck_<bridge id>``), ``sea_level`` (coast), ``dam_crest`` and
        ``reservoir_full`` (dam). The DEM is not raised under bridge decks: the
        channel runs on beneath them.
    river
        The river's centre line, west to east.
    reservoir
        The reservoir's outline at full level (dam variant), else None.
    description
        One paragraph for reports.
    """

    variant: str
    scale: float
    crs: CRS
    terrain: Terrain
    roads: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    shelters: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    hospitals: gpd.GeoDataFrame
    anchors: dict[str, tuple[float, float]]
    levels: dict[str, float] = field(default_factory=dict)
    river: shapely.LineString | None = None
    reservoir: shapely.Polygon | None = None
    description: str = ""


@dataclass(frozen=True)
class _Layout:
    """Geometry of one build, in local metres (u east of the west edge, v north of the south)."""

    variant: str
    scale: float
    offset: float  # u of the town's own origin (dam: room for the reservoir)
    width: float  # domain width, m
    town_len: float  # u-length of the town, m
    east_margin: float  # no street within this of the town's east end, m

    @property
    def ncols(self) -> int:
        return int(round(self.width / _DX))

    @property
    def nrows(self) -> int:
        return int(round(_HEIGHT / _DX))

    @property
    def town_end(self) -> float:
        return self.offset + self.town_len - self.east_margin


# ----------------------------------------------------------------------------- helpers


def _hash01(*keys: np.ndarray | int) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) from integer keys (splitmix64)."""
    with np.errstate(over="ignore"):
        h = np.uint64(_SEED) + np.zeros(np.broadcast(*keys).shape, dtype=np.uint64)
        for k in keys:
            h = h ^ (np.asarray(k).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def _river_v(t: np.ndarray | float) -> np.ndarray:
    """River centre line: v (m) at town coordinate t (m)."""
    t = np.asarray(t, dtype=float)
    return (
        _AXIS
        + 120.0 * np.sin(2 * np.pi * t / 1700.0 + 0.3)
        + 40.0 * np.sin(2 * np.pi * t / 640.0 + 1.1)
    )


def _river_dvdt(t: np.ndarray | float) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    return 120.0 * 2 * np.pi / 1700.0 * np.cos(2 * np.pi * t / 1700.0 + 0.3) + (
        40.0 * 2 * np.pi / 640.0 * np.cos(2 * np.pi * t / 640.0 + 1.1)
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _floodplain_z(lay: _Layout, u: np.ndarray) -> np.ndarray:
    """Floodplain (bank-top) elevation along the valley, m."""
    if lay.variant == "coast":
        shore = lay.width - 500.0
        return 2.5 + _SLOPE * (shore - u)
    return _Z_WEST - _SLOPE * u


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_TREES = ("Alder", "Birch", "Cedar", "Elm", "Fir", "Hazel", "Juniper", "Larch", "Maple", "Oak")
_TREES += ("Poplar", "Rowan", "Spruce", "Willow", "Yew", "Chestnut", "Linden")
_SPECIAL_ROWS = {
    0: "Ring Road South",
    4: "Station Road",
    16: "Market Street",
    20: "Ring Road North",
}
_ROW_NAMES = [_SPECIAL_ROWS.get(j, "") for j in range(21)]
for _j, _tree in zip([j for j in range(21) if j not in _SPECIAL_ROWS], _TREES, strict=True):
    _ROW_NAMES[_j] = f"{_tree} Street"


def _module_span(lay: _Layout, k: int) -> float:
    """Length (m) over which module *k* spreads its bridges and places."""
    if k > 0:
        return _MODULE
    return min(lay.scale, 1.0) * _MODULE - (lay.east_margin - 360.0)


def _module_name(base: str, k: int) -> str:
    return base if k == 0 else f"{base} {k + 1}"


def _module_id(base: str, k: int) -> str:
    return base if k == 0 else f"{base}-{k + 1}"


# ----------------------------------------------------------------------------- roads


def _bridge_columns(lay: _Layout, ncol: int) -> list[tuple[int, int, str]]:
    """(module k, column index, 'west'|'east') of every bridge."""
    out: list[tuple[int, int, str]] = []
    for k in range(math.ceil(lay.scale - 1e-9)):
        span = _module_span(lay, k)
        cols = []
        for frac, side in ((0.25, "west"), (0.75, "east")):
            t = k * _MODULE + frac * span
            i = int(round((t - _COL0) / _COL_STEP))
            if k == 0:
                i = min(max(i, 1), ncol - 2)
            elif i > ncol - 2:
                continue
            if i not in cols:
                cols.append(i)
                out.append((k, i, side))
    return out


def _build_roads(lay: _Layout) -> dict:
    """Nodes and noded segments of the street network, local metres."""
    ncol = int(math.floor((lay.town_len - lay.east_margin - _COL0) / _COL_STEP)) + 1
    t_col = _COL0 + _COL_STEP * np.arange(ncol)
    u_col = t_col + lay.offset
    v_row = _ROW0 + _ROW_STEP * np.arange(_NROWS)
    node_u = np.tile(u_col, _NROWS)
    node_v = np.repeat(v_row, ncol)
    node_i = np.tile(np.arange(ncol), _NROWS)
    node_j = np.repeat(np.arange(_NROWS), ncol)

    # grid segments: west-east (i, j)-(i+1, j) and south-north (i, j)-(i, j+1)
    gi, gj = np.meshgrid(np.arange(ncol - 1), np.arange(_NROWS))
    ew_a = (gj * ncol + gi).ravel()
    ew_b = ew_a + 1
    gi, gj = np.meshgrid(np.arange(ncol), np.arange(_NROWS - 1))
    ns_a = (gj * ncol + gi).ravel()
    ns_b = ns_a + ncol
    seg_a = np.concatenate([ew_a, ns_a])
    seg_b = np.concatenate([ew_b, ns_b])
    is_ns = np.concatenate([np.zeros(ew_a.size, bool), np.ones(ns_a.size, bool)])

    bridges = _bridge_columns(lay, ncol)
    bridge_cols = np.array([i for _, i, _ in bridges], dtype=np.int64)
    on_bridge_col = is_ns & np.isin(node_i[seg_a], bridge_cols)

    # river clearance: drop segments within _CLEARANCE of the centre line
    tt = np.arange(-_DX, lay.width + 2 * _DX, _DX) - lay.offset
    river_pts = np.column_stack([tt + lay.offset, _river_v(tt)])
    river_segs = shapely.linestrings(np.stack([river_pts[:-1], river_pts[1:]], axis=1))
    tree = shapely.STRtree(river_segs)
    ends = [np.column_stack([node_u[seg], node_v[seg]]) for seg in (seg_a, seg_b)]
    lines = shapely.linestrings(np.stack(ends, axis=1))
    hit, _ = tree.query(lines, predicate="dwithin", distance=_CLEARANCE)
    keep = np.ones(seg_a.size, bool)
    keep[np.unique(hit)] = False
    keep[on_bridge_col] = True

    # bridge columns: drop the nodes near the river, add abutments and the deck
    extra_u: list[float] = []
    extra_v: list[float] = []
    extra_segs: list[tuple[int, int, str]] = []  # (a, b, kind) kind: "bridge"/"approach"
    drop_node = np.zeros(node_u.size, bool)
    n0 = node_u.size
    for k, i, side in bridges:
        t = float(t_col[i])
        vc = float(_river_v(t))
        cos_t = 1.0 / math.hypot(1.0, float(_river_dvdt(t)))
        ab = (_BED_HALF + _BANK_W + 8.0) / cos_t  # abutment offset along the column, m
        near = (node_i == i) & (np.abs(node_v - vc) < ab + 10.0)
        drop_node |= near
        col_seg = on_bridge_col & (node_i[seg_a] == i)
        keep[col_seg & (node_v[seg_a] < vc) & (node_v[seg_b] > vc)] = False  # the crossing
        south = np.flatnonzero((node_i == i) & (node_v < vc) & ~near)
        north = np.flatnonzero((node_i == i) & (node_v > vc) & ~near)
        a_s, a_n = n0 + len(extra_u), n0 + len(extra_u) + 1
        extra_u += [float(u_col[i]), float(u_col[i])]
        extra_v += [vc - ab, vc + ab]
        tag = f"{k}:{side}"
        extra_segs.append((a_s, a_n, "bridge:" + tag))
        if south.size:
            extra_segs.append((int(south[node_v[south].argmax()]), a_s, "approach:" + tag))
        if north.size:
            extra_segs.append((a_n, int(north[node_v[north].argmin()]), "approach:" + tag))
    keep &= ~(drop_node[seg_a] | drop_node[seg_b])

    all_u = np.concatenate([node_u, np.array(extra_u)])
    all_v = np.concatenate([node_v, np.array(extra_v)])
    a = np.concatenate([seg_a[keep], np.array([s[0] for s in extra_segs], dtype=np.int64)])
    b = np.concatenate([seg_b[keep], np.array([s[1] for s in extra_segs], dtype=np.int64)])
    kind = ["grid"] * int(keep.sum()) + [s[2] for s in extra_segs]

    # keep the largest connected piece
    n = all_u.size
    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels[a], minlength=labels.max() + 1)
    main = int(sizes.argmax())
    in_main = labels[a] == main
    if (~in_main).any():
        log.debug("synthetic roads: dropped %d cut-off segments", int((~in_main).sum()))
    grid_idx = np.flatnonzero(keep)
    keep[grid_idx[~in_main[: grid_idx.size]]] = False
    a, b = a[in_main], b[in_main]
    kind = [kd for kd, m in zip(kind, in_main, strict=True) if m]
    net = {
        "u": all_u,
        "v": all_v,
        "a": a,
        "b": b,
        "kind": kind,
        "i": np.concatenate([node_i, np.full(len(extra_u), -1)]),
        "j": np.concatenate([node_j, np.full(len(extra_u), -1)]),
        "ncol": ncol,
        "t_col": t_col,
        "bridges": bridges,
        "river_segs": river_segs,
        "seg_keep_grid": keep,
    }
    return net


def _road_attributes(lay: _Layout, net: dict) -> dict[str, list]:
    """Name, class and id of every segment."""
    u, v, a, b, kinds = net["u"], net["v"], net["a"], net["b"], net["kind"]
    ni, nj, t_col = net["i"], net["j"], net["t_col"]
    bridges = net["bridges"]
    bridge_col = {i: (k, side) for k, i, side in bridges}
    # ring road of module k: rows 0 and 20 between its two bridge columns
    ring_span: dict[int, tuple[float, float]] = {}
    for k in {k for k, _, _ in bridges}:
        cols = sorted(i for kk, i, _ in bridges if kk == k)
        if len(cols) == 2:
            ring_span[k] = (float(t_col[cols[0]]), float(t_col[cols[1]]))
    names, hws, ids, is_bridge = [], [], [], []
    for s in range(a.size):
        ua, ub, va, vb = u[a[s]], u[b[s]], v[a[s]], v[b[s]]
        tm = 0.5 * (ua + ub) - lay.offset
        k = int(tm // _MODULE)
        kind = kinds[s]
        bridge = False
        if kind.startswith("bridge:") or kind.startswith("approach:"):
            kb, side = kind.split(":")[1], kind.split(":")[2]
            kb = int(kb)
            if kind.startswith("bridge:"):
                name = _module_name(f"{side.title()} Bridge", kb)
                rid = _module_id(f"bridge-{side}", kb)
                bridge = True
            else:
                name = "Ring Road"
                rid = _module_id(f"ring-{side}", kb)
            hw = "primary"
        elif ua == ub:  # south-north street
            i = int(ni[a[s]])
            bank = "s" if 0.5 * (va + vb) < float(_river_v(tm)) else "n"
            if i in bridge_col:
                kb, side = bridge_col[i]
                name, hw, rid = "Ring Road", "primary", _module_id(f"ring-{side}", kb)
            else:
                name = f"{_ordinal(i + 1)} Avenue"
                hw = "tertiary" if i % 6 == 3 else "residential"
                rid = f"av{i + 1:03d}-{bank}"
        else:  # west-east street
            j = int(nj[a[s]])
            name = _ROW_NAMES[j]
            span = ring_span.get(k)
            if j in (0, _NROWS - 1):
                edge = "south" if j == 0 else "north"
                if span and span[0] - 1e-6 <= tm <= span[1] + 1e-6:
                    name, hw, rid = "Ring Road", "primary", _module_id(f"ring-{edge}", k)
                else:
                    name = f"{edge.title()} Hill Road"
                    hw, rid = "secondary", f"hill-{edge}-{k + 1}"
            else:
                hw = "tertiary" if j in (4, 16) else "residential"
                rid = f"{name.split()[0].lower()}-{k + 1}"
        names.append(name)
        hws.append(hw)
        ids.append(rid)
        is_bridge.append(bridge)
    return {"id": ids, "name": names, "highway": hws, "bridge": is_bridge}


_LANES = {"primary": 4, "secondary": 2, "tertiary": 2, "residential": 2}
_MAXSPEED = {"primary": 60, "secondary": 50, "tertiary": 50, "residential": 30}


# ----------------------------------------------------------------------------- places


def _roads_table(net: dict, attrs: dict[str, list], crs: CRS) -> gpd.GeoDataFrame:
    """The noded road segments as an OSM-style GeoDataFrame in the town CRS."""
    x0, y0 = TOWN_ORIGIN
    nu, nv, a, b = net["u"], net["v"], net["a"], net["b"]
    start = np.column_stack([nu[a] + x0, nv[a] + y0])
    end = np.column_stack([nu[b] + x0, nv[b] + y0])
    hw = attrs["highway"]
    data = {
        "id": attrs["id"],
        "name": attrs["name"],
        "highway": hw,
        "lanes": np.array([_LANES[h] for h in hw], dtype=np.int64),
        "maxspeed": np.array([_MAXSPEED[h] for h in hw], dtype=np.int64),
        "oneway": np.zeros(a.size, dtype=bool),
        "bridge": np.array(attrs["bridge"], dtype=bool),
    }
    geom = shapely.linestrings(np.stack([start, end], axis=1))
    return gpd.GeoDataFrame(data, geometry=geom, crs=crs)


def _buildings(lay: _Layout, net: dict, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Building footprints (N, 4) boxes in local m and integer occupants."""
    ncol, keep = net["ncol"], net["seg_keep_grid"]
    n_ew = (ncol - 1) * _NROWS
    ew = keep[:n_ew].reshape(_NROWS, ncol - 1)
    ns = keep[n_ew:].reshape(_NROWS - 1, ncol)
    # a block (i, j) is built on when its four sides are streets
    block = ew[:-1, :] & ew[1:, :] & ns[:, :-1] & ns[:, 1:]
    bj, bi = np.nonzero(block)
    park = _hash01(bi, bj, 7) < 0.07
    bi, bj = bi[~park], bj[~park]
    # 3 x 2 buildings per block, inset 12 m from the street centre lines
    slot_c, slot_r = np.meshgrid(np.arange(3), np.arange(2))
    slot_c, slot_r = slot_c.ravel(), slot_r.ravel()
    bi_, sc = np.repeat(bi, 6), np.tile(slot_c, bi.size)
    bj_, sr = np.repeat(bj, 6), np.tile(slot_r, bi.size)
    cell_w, cell_h = (_COL_STEP - 24.0) / 3.0, (_ROW_STEP - 24.0) / 2.0
    x_c = lay.offset + _COL0 + bi_ * _COL_STEP + 12.0 + (sc + 0.5) * cell_w
    y_c = _ROW0 + bj_ * _ROW_STEP + 12.0 + (sr + 0.5) * cell_h
    w = cell_w * (0.55 + 0.3 * _hash01(bi_, bj_, sc, sr, 1))
    h = cell_h * (0.5 + 0.3 * _hash01(bi_, bj_, sc, sr, 2))
    boxes = np.column_stack([x_c - w / 2, y_c - h / 2, x_c + w / 2, y_c + h / 2])
    # none on the river banks
    polys = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
    near, _ = shapely.STRtree(net["river_segs"]).query(
        polys, predicate="dwithin", distance=_BED_HALF + _BANK_W + 15.0
    )
    ok = np.ones(len(polys), bool)
    ok[np.unique(near)] = False
    boxes = boxes[ok]
    # occupants: by floor area, denser (flats) near the town centre line
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    yc = 0.5 * (boxes[:, 1] + boxes[:, 3])
    weight = area * np.where(np.abs(yc - _AXIS) < 500.0, 1.6, 1.0)
    share = total * weight / weight.sum()
    occ = np.floor(share).astype(np.int64)
    rest = total - int(occ.sum())
    if rest > 0:
        order = np.argsort(-(share - occ), kind="stable")
        occ[order[:rest]] += 1
    return boxes, occ


# (fraction along module, v (m) or "river", name, capacity)
_SHELTERS = (
    (0.15, 2630.0, "Hill School", 3000),
    (0.48, 370.0, "Sports Hall", 2500),
    (0.82, 2630.0, "Community Centre", 2500),
)
_STATIONS = ((0.40, 2610.0, "North"), (0.58, None, "River"))
_HOSPITALS = ((0.30, 390.0, "Valley Hospital"),)


def _place_points(lay: _Layout, specs: tuple) -> list[tuple[float, float, str, tuple]]:
    """(u, v, name, extra) of repeated places, one set per module of the town."""
    out = []
    for k in range(math.ceil(lay.scale - 1e-9)):
        span = _module_span(lay, k)
        for spec in specs:
            frac, v, name = spec[0], spec[1], spec[2]
            t = k * _MODULE + frac * span + 17.0  # off the street columns
            if k > 0 and t + lay.offset > lay.town_end - 100.0:
                continue
            if v is None:  # near the river, on the north bank
                v = float(_river_v(t)) + 95.0
            out.append((t + lay.offset, float(v), _module_name(name, k), tuple(spec[3:])))
    return out


# ----------------------------------------------------------------------------- terrain


def _terrain(
    lay: _Layout, dips: list[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """Elevation, Manning's n, named levels and the water-at-rest mask (nrows, ncols), row 0 north.

    The mask marks the river channel, the sea (bed below 0 m, coast) and the
    reservoir bed (dam): the cells that hold water in a town at rest.
    """
    nrows, ncols = lay.nrows, lay.ncols
    u = (np.arange(ncols) + 0.5) * _DX
    v = _HEIGHT - (np.arange(nrows) + 0.5) * _DX
    t = u - lay.offset
    vc = _river_v(t)
    cos_t = 1.0 / np.hypot(1.0, _river_dvdt(t))
    zfp = _floodplain_z(lay, u)
    d = np.abs(v[:, None] - vc[None, :]) * cos_t[None, :]  # ~ distance to the river, m
    a = np.abs(v - _AXIS)
    hill = _smoothstep((a - 450.0) / 800.0)
    # gentle undulation on the hillsides only
    wave = 0.6 * np.sin(u / 190.0)[None, :] * np.sin(v / 130.0 + 0.7)[:, None]
    z_land = zfp[None, :] + 0.004 * d + (_HILL * hill)[:, None] + wave * hill[:, None]
    z_chan = (
        zfp[None, :] - _CHANNEL_DEPTH + np.maximum(d - _BED_HALF, 0.0) * (_CHANNEL_DEPTH / _BANK_W)
    )
    water = z_chan < z_land
    z = np.where(water, z_chan, z_land)
    levels: dict[str, float] = {}
    uu, vv = u[None, :], v[:, None]
    for du, dv in dips:  # street dips (underpasses), 2.5 m deep
        z -= 2.5 * np.exp(-(((uu - du) / 25.0) ** 2) - ((vv - dv) / 12.0) ** 2)
    if lay.variant == "coast":
        w = _smoothstep((lay.width - 150.0 - u) / 450.0)[None, :]
        z = w * z + (1.0 - w) * -6.0
        water |= z < 0.0
        levels["sea_level"] = 0.0
    if lay.variant == "dam":
        u_dam = lay.offset - 200.0
        crest = float(_floodplain_z(lay, np.array(u_dam))) + 15.0
        dam = crest - 0.5 * np.maximum(np.abs(u - u_dam) - 10.0, 0.0)
        # The DEM shows the dam after its failure: a 120 m breach where the river
        # crosses it. Until the breach, the scenario's reservoir holds the water
        # back (the flood kernel closes the reservoir's faces until its release).
        v_dam = float(_river_v(np.array([u_dam - lay.offset]))[0])
        breach = (np.abs(v - v_dam) < 60.0)[:, None] & (np.abs(u - u_dam) < 60.0)[None, :]
        z = np.where(breach, z, np.maximum(z, dam[None, :]))
        levels["breach_width"] = 120.0
        levels["dam_crest"] = crest
        levels["reservoir_full"] = crest - 2.0
        water |= (z < crest - 2.0) & (uu < u_dam - 10.0)
    manning = np.where(water, _N_WATER, _N_LAND)
    return np.ascontiguousarray(z, dtype=np.float64), manning, levels, water


def _reservoir_polygon(
    lay: _Layout, z: np.ndarray, level: float, transform: Affine, centre: tuple[float, float]
) -> shapely.Polygon:
    """Outline of the wet area upstream of the dam holding *centre* (local m) at *level*."""
    from rasterio.features import shapes
    from scipy.ndimage import label

    u = (np.arange(lay.ncols) + 0.5) * _DX
    wet = (z < level) & (u[None, :] < lay.offset - 210.0)
    lab, _ = label(wet)
    row = int((_HEIGHT - centre[1]) // _DX)
    col = int(centre[0] // _DX)
    core = (lab == lab[row, col]) & wet
    found = shapes(core.astype(np.uint8), mask=core, transform=transform)
    polys = [shapely.geometry.shape(g) for g, val in found if val]
    return max(polys, key=lambda p: p.area)


# ----------------------------------------------------------------------------- entry


def _describe(lay: _Layout, levels: dict[str, float], *tables: gpd.GeoDataFrame) -> str:
    """One paragraph saying what the town holds."""
    roads, buildings, shelters, stations, hospitals = tables
    cells = lay.nrows * lay.ncols
    text = (
        f"Built-in synthetic town '{lay.variant}' (scale {lay.scale:g}): a {lay.width / 1000:g} km"
        f" x {_HEIGHT / 1000:g} km river valley in {TOWN_CRS} at {_DX:g} m cells ({cells:,} "
        "cells), the river entering on the west edge in a 50 m wide, 2.5 m deep channel, "
        f"hills {_HILL:g} m above the floodplain to the north and south; a street grid on both "
        f"banks ({len(roads):,} segments, {int(roads['bridge'].sum())} bridges, a ring road on "
        f"the hills), {int(buildings['occupants'].sum()):,} residents in {len(buildings):,} "
        f"buildings, {len(shelters)} shelters ({int(shelters['capacity'].sum()):,} places), "
        f"{len(stations)} stations and {len(hospitals)} hospital(s)."
    )
    if lay.variant == "coast":
        text += " The valley opens to the sea on the east edge (bed down to -6 m)."
    if lay.variant == "dam":
        text += (
            " A reservoir 1.5 km upstream of the town is held by a dam with its crest at "
            f"{levels['dam_crest']:.1f} m (full level {levels['reservoir_full']:.1f} m)."
        )
    return text


def synthetic_town(variant: str = "riverside", scale: float = 1.0) -> SyntheticTown:
    """Build the built-in synthetic town.

    Parameters
    ----------
    variant
        One of ``{"riverside", "coast", "dam"}``: a river valley town; the same
        town where the valley opens to the sea on the east edge (bed down to
        -6 m); or the town 1.5 km downstream of a reservoir held by a 15 m dam.
    scale
        Length of the town and the valley, in units of 4 km (0.5 to 64). The
        west edge and the river inflow stay put; the town grows downstream
        (east) and repeats its bridges, ring road, shelters, stations and
        hospital every 4 km. Residents: ``round(20000 * scale)``.

    Returns
    -------
    SyntheticTown
        Everything in EPSG:32633, m.

    Raises
    ------
    InputDataError
        For an unknown variant or a scale out of range.
    """
    if variant not in VARIANTS:
        raise InputDataError(
            f"unknown built-in town {variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0.5 <= scale <= 64:
        raise InputDataError(f"built-in town scale must be between 0.5 and 64, got {scale!r}")
    scale = float(scale)
    offset = 1500.0 if variant == "dam" else 0.0
    town_len = _MODULE * scale
    width = math.ceil((town_len + offset) / _DX) * _DX
    lay = _Layout(variant, scale, offset, width, town_len, 700.0 if variant == "coast" else 360.0)
    x0, y0 = TOWN_ORIGIN
    transform = Affine(_DX, 0.0, x0, 0.0, -_DX, y0 + _HEIGHT)

    net = _build_roads(lay)
    bridges = net["bridges"]
    attrs = _road_attributes(lay, net)
    nu, nv, a, b = net["u"], net["v"], net["a"], net["b"]

    # underpasses: mid-points of residential west-east streets near two targets
    span0 = _module_span(lay, 0)
    is_res = np.array([h == "residential" for h in attrs["highway"]]) & (nv[a] == nv[b])
    mid_u, mid_v = 0.5 * (nu[a] + nu[b]), 0.5 * (nv[a] + nv[b])
    dips: list[tuple[float, float]] = []
    for frac, dv in ((0.42, 300.0), (0.63, -280.0)):
        tu = offset + frac * span0
        tv = float(_river_v(frac * span0)) + dv
        s = int(np.argmin(np.where(is_res, np.hypot(mid_u - tu, mid_v - tv), np.inf)))
        dips.append((float(mid_u[s]), float(mid_v[s])))

    z, manning, levels, water = _terrain(lay, dips)
    terrain = Terrain(
        z=z,
        mask=np.ones(z.shape, dtype=bool),
        transform=transform,
        dx=_DX,
        manning=manning,
        source=f"builtin:{variant}",
        water=water,
    )
    crs = CRS.from_user_input(TOWN_CRS)

    roads = _roads_table(net, attrs, crs)

    total = int(round(20000 * scale))
    boxes, occ = _buildings(lay, net, total)
    buildings = gpd.GeoDataFrame(
        {"id": [f"b{k}" for k in range(len(occ))], "occupants": occ},
        geometry=shapely.box(
            boxes[:, 0] + x0, boxes[:, 1] + y0, boxes[:, 2] + x0, boxes[:, 3] + y0
        ),
        crs=crs,
    )

    def points(specs: tuple, extra: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
        rows = _place_points(lay, specs)
        data: dict[str, list] = {"name": [r[2] for r in rows]}
        for n_e, col in enumerate(extra):
            data[col] = [r[3][n_e] for r in rows]
        geom = shapely.points([r[0] + x0 for r in rows], [r[1] + y0 for r in rows])
        return gpd.GeoDataFrame(data, geometry=geom, crs=crs)

    shelters = points(_SHELTERS, ("capacity",))
    stations = points(_STATIONS)
    hospitals = points(_HOSPITALS)

    def river_at(uu: float) -> tuple[float, float]:
        return (uu + x0, float(_river_v(uu - offset)) + y0)

    west0 = next(i for k, i, side in bridges if k == 0 and side == "west")
    u_bridge = float(net["t_col"][west0]) + offset
    anchors: dict[str, tuple[float, float]] = {
        "river_inflow": river_at(_DX / 2),
        "river_outlet": river_at(width - _DX / 2),
        "gauge_bridge": river_at(u_bridge),
        "gauge_town": river_at(offset + 0.5 * span0),
        "underpass": (dips[0][0] + x0, dips[0][1] + y0),
        "underpass_south": (dips[1][0] + x0, dips[1][1] + y0),
    }
    zfp_bridge = float(_floodplain_z(lay, np.array(u_bridge)))
    levels["bed_gauge_bridge"] = zfp_bridge - _CHANNEL_DEPTH
    levels["bank_gauge_bridge"] = zfp_bridge
    for k, i, side in bridges:
        u_b = float(net["t_col"][i]) + offset
        levels[f"deck_{_module_id(f'bridge-{side}', k)}"] = (
            float(_floodplain_z(lay, np.array(u_b))) + 1.5
        )
    reservoir = None
    if variant == "coast":
        anchors["sea_gauge"] = (width - 100.0 + x0, _AXIS + y0)
    if variant == "dam":
        u_dam = offset - 200.0
        anchors["reservoir_centre"] = river_at(u_dam - 650.0)
        anchors["dam_breach"] = river_at(u_dam)
        centre = (anchors["reservoir_centre"][0] - x0, anchors["reservoir_centre"][1] - y0)
        reservoir = _reservoir_polygon(lay, z, levels["reservoir_full"], transform, centre)

    tt = np.arange(0.0, width + _DX / 2, _DX)
    river = shapely.LineString(np.column_stack([tt + x0, _river_v(tt - offset) + y0]))
    nr, nc = z.shape
    description = _describe(lay, levels, roads, buildings, shelters, stations, hospitals)
    log.info(
        "synthetic town %s x%g: %d x %d cells, %d road segments, %d buildings, %d people",
        variant,
        scale,
        nr,
        nc,
        len(roads),
        len(buildings),
        total,
    )
    return SyntheticTown(
        variant=variant,
        scale=scale,
        crs=crs,
        terrain=terrain,
        roads=roads,
        buildings=buildings,
        shelters=shelters,
        stations=stations,
        hospitals=hospitals,
        anchors=anchors,
        levels=levels,
        river=river,
        reservoir=reservoir,
        description=description,
    )
