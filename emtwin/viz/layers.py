"""Map layers of the place and the water: terrain, flood depth frames, max depth, roads.

Each builder reads a :class:`~emtwin.sim.results.Results` (its plain tables and
arrays, never the running simulation) and returns a
:class:`~emtwin.viz._common.MapLayer`, or None when the run holds no such data.
Geometry is reprojected from the World CRS to EPSG:4326 here; rasters are draped
as images on their four corners.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pydeck as pdk
from affine import Affine

from emtwin.sim.outputs import json_safe
from emtwin.sim.results import edges_named
from emtwin.viz._common import (
    DEPTH_CLASSES_M,
    DEPTH_COLORS,
    PIXELS,
    ROAD_STATE_COLORS,
    ROAD_STATE_NAMES,
    MapLayer,
    depth_palette_image,
    grid_corners_lonlat,
    max_pool,
    png_data_uri,
    to_lonlat,
)

__all__ = [
    "terrain_layer",
    "flood_layer",
    "max_depth_layer",
    "roads_layer",
    "buildings_layer",
    "road_timeline",
    "road_groups",
    "depth_legend",
    "SLOWED_DEPTH_M",
]

#: Water depth from which a road is drawn as slowed, m (the flooded-cell threshold).
SLOWED_DEPTH_M = 0.05

#: Depth classes are drawn cell by cell, never blended between classes.
_NEAREST = {"minFilter": "nearest", "magFilter": "nearest"}
_WIDE = {"motorway", "trunk", "primary", "motorway_link", "trunk_link", "primary_link"}
_MEDIUM = {"secondary", "tertiary", "secondary_link", "tertiary_link"}


def _swatch(rgb: Any, label: str) -> str:
    r, g, b = rgb[:3]
    return f'<div class="sw"><i style="background:rgb({r},{g},{b})"></i>{label}</div>'


def depth_legend(title: str = "Water depth") -> str:
    """HTML legend of the depth classes (m)."""
    lims = list(DEPTH_CLASSES_M)
    rows = []
    for i, rgb in enumerate(DEPTH_COLORS):
        hi = f"{lims[i + 1]:g}" if i + 1 < len(lims) else ""
        label = f"{lims[i]:g}–{hi} m" if hi else f"&gt; {lims[i]:g} m"
        rows.append(_swatch(rgb, label))
    return f"<b>{title}</b>" + "".join(rows)


# ---------------------------------------------------------------------- terrain


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    if f <= 1:
        return a.astype(float)
    r, c = a.shape
    p = np.pad(a.astype(float), ((0, -r % f), (0, -c % f)), mode="edge")
    return p.reshape(p.shape[0] // f, f, p.shape[1] // f, f).mean(axis=(1, 3))


def terrain_layer(results: Any, *, max_pixels: int = 1_000_000) -> MapLayer | None:
    """The ground as a tinted hillshade image (light from the north-west, 45 degrees up).

    Parameters
    ----------
    results
        A run's Results (reads ``grid`` and ``crs``).
    max_pixels
        The image is averaged over square blocks of cells to hold at most this many pixels.
    """
    from PIL import Image

    t = getattr(results, "grid", None)
    if t is None:
        return None
    nrows, ncols = t.shape
    f = max(1, math.ceil(math.sqrt(nrows * ncols / max_pixels)))
    z = _block_mean(np.where(t.mask, t.z, np.nan) if not t.mask.all() else t.z, f)
    inside = np.isfinite(z)
    zf = np.where(inside, z, np.nanmean(z) if inside.any() else 0.0)
    d = t.dx_m * f
    gy, gx = np.gradient(zf, d)  # per row (southwards) and per column (eastwards)
    exag = 3.0  # towns are flat: exaggerate relief so streets and banks read
    n = np.stack([-gx * exag, gy * exag, np.ones_like(zf)])
    n /= np.linalg.norm(n, axis=0)
    az, alt = math.radians(315.0), math.radians(45.0)
    light = np.array([math.cos(alt) * math.sin(az), math.cos(alt) * math.cos(az), math.sin(alt)])
    shade = np.clip(np.tensordot(light, n, axes=1), 0.0, 1.0)
    lo, hi = np.percentile(zf[inside], [2, 98]) if inside.any() else (0.0, 1.0)
    e = np.clip((zf - lo) / max(hi - lo, 1e-9), 0.0, 1.0)[..., None]
    low, high = np.array([196.0, 212.0, 186.0]), np.array([238.0, 228.0, 206.0])
    rgb = (low * (1 - e) + high * e) * (0.55 + 0.45 * shade[..., None])
    arr = np.clip(rgb, 0, 255).astype(np.uint8)
    if inside.all():
        img = Image.fromarray(arr, mode="RGB").quantize(64)
    else:
        alpha = np.where(inside, 255, 0).astype(np.uint8)[..., None]
        img = Image.fromarray(np.concatenate([arr, alpha], axis=2), mode="RGBA").quantize(
            64, method=Image.Quantize.FASTOCTREE
        )
    bounds = grid_corners_lonlat(results.crs, t.transform @ Affine.scale(f, f), z.shape)
    uri = pdk.types.String(png_data_uri(img))
    layer = pdk.Layer("BitmapLayer", id="terrain", image=uri, bounds=bounds)
    note = [f"terrain drawn at {d:g} m cells"] if f > 1 else []
    return MapLayer("Terrain", [layer], notes=note)


# ---------------------------------------------------------------------- flood


def flood_layer(results: Any, *, max_bytes: float = 15e6, max_frames: int = 300) -> MapLayer | None:
    """Water depth at every output time as images switched by the map's clock.

    Parameters
    ----------
    results
        A run's Results (reads ``frames["depth"]`` and ``frame_transforms["depth"]``).
    max_bytes
        Budget for the encoded frames, bytes; over it, every k-th frame is kept
        (always the first and the last) and the map says so.
    max_frames
        At most this many frames are kept.
    """
    frames = getattr(results, "frames", {}).get("depth")
    if frames is None or results.grid is None:
        return None
    times, stack = np.asarray(frames[0], dtype=float), frames[1]
    if len(times) == 0:
        return None
    n = len(times)
    stride = max(1, math.ceil(n / max_frames))
    uris = [png_data_uri(depth_palette_image(stack[i])) for i in range(0, n, stride)]
    kept = list(range(0, n, stride))
    if kept[-1] != n - 1:
        kept.append(n - 1)
        uris.append(png_data_uri(depth_palette_image(stack[n - 1])))
    sizes = np.array([len(u) for u in uris], dtype=float)
    k = 1
    while k < len(kept) and sizes[_every(len(sizes), k)].sum() > max_bytes:
        k += 1
    pick = np.flatnonzero(_every(len(sizes), k))
    kept = [kept[i] for i in pick]
    uris = [uris[i] for i in pick]
    images: list[str] = []
    index: list[int] = []
    for u in uris:  # identical frames (dry ones first) share one image
        if not images or images[-1] != u:
            images.append(u)
        index.append(len(images) - 1)
    transform = results.frame_transforms["depth"]
    bounds = grid_corners_lonlat(results.crs, transform, stack.shape[1:])
    uri = pdk.types.String(images[0])
    layer = pdk.Layer(
        "BitmapLayer", id="flood-depth", image=uri, bounds=bounds, texture_parameters=_NEAREST
    )
    anim = {"type": "frames", "times": [float(times[i]) for i in kept], "frame": index,
            "images": images}  # fmt: skip
    notes = []
    if len(kept) < n:
        notes.append(f"flood: {len(kept)} of {n} depth frames kept (file size budget)")
    cell = abs(transform.a)
    if cell > results.grid.dx_m * 1.01:
        notes.append(f"flood frames at {cell:g} m cells (deepest water of each block)")
    return MapLayer("Flood depth", [layer], anim={"flood-depth": anim},
                    legend=depth_legend("Water depth now"), notes=notes,
                    time_range=(float(times[0]), float(times[-1])))  # fmt: skip


def _every(n: int, k: int) -> np.ndarray:
    """Every k-th of n items, and the last one (bool mask)."""
    keep = np.zeros(n, dtype=bool)
    keep[::k] = True
    keep[-1] = True
    return keep


def max_depth_layer(results: Any, *, max_pixels: int = 2_000_000) -> MapLayer | None:
    """The deepest water of the whole run (``rasters["max_depth"]``), hidden at first."""
    z = getattr(results, "rasters", {}).get("max_depth")
    if z is None or results.grid is None:
        return None
    nrows, ncols = z.shape
    f = max(1, math.ceil(math.sqrt(nrows * ncols / max_pixels)))
    img = depth_palette_image(max_pool(z, f))
    bounds = grid_corners_lonlat(
        results.crs, results.grid.transform @ Affine.scale(f, f),
        (math.ceil(nrows / f), math.ceil(ncols / f)),
    )  # fmt: skip
    uri = pdk.types.String(png_data_uri(img))
    layer = pdk.Layer(
        "BitmapLayer", id="flood-max", image=uri, bounds=bounds, texture_parameters=_NEAREST
    )
    return MapLayer("Max depth (whole run)", [layer], legend="", visible=False)


# ---------------------------------------------------------------------- roads


def road_groups(
    road_id: np.ndarray, edge_u: np.ndarray, edge_v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group the two directions of a two-way road: (group of each edge, first edge of each).

    Edges of the same road (*road_id*) between the same two nodes (*edge_u*,
    *edge_v*, node indices, either way round) form one group.
    """
    u, v = np.asarray(edge_u), np.asarray(edge_v)
    a, b = np.minimum(u, v), np.maximum(u, v)
    keys: dict[tuple[str, int, int], int] = {}
    group = np.empty(len(u), dtype=np.int64)
    first: list[int] = []
    rid = np.asarray(road_id).astype(str)
    for e, key in enumerate(zip(rid, a.tolist(), b.tolist(), strict=True)):
        g = keys.get(key)
        if g is None:
            g = keys[key] = len(first)
            first.append(e)
        group[e] = g
    return group, np.asarray(first, dtype=np.int64)


def _closure_steps(results: Any) -> list[tuple[float, list[int], bool, str]]:
    """(time, edges, closed?, cause) from the ``road_closed`` / ``road_opened`` events."""
    ev = results.events
    if ev is None or len(ev) == 0:
        return []
    ev = ev[ev["kind"].isin(["road_closed", "road_opened"])]
    roads = results.roads
    steps = []
    for t, kind, entity, edge, details in ev[["time_s", "kind", "entity", "edge",
                                              "details"]].itertuples(index=False):  # fmt: skip
        d = json.loads(details) if isinstance(details, str) and details else {}
        edges = [int(edge)] if edge is not None and int(edge) >= 0 else []
        if d.get("cause") == "plan" or int(d.get("edges", 1)) > 1:
            named = edges_named(roads, str(entity))
            if len(named):
                edges = named.tolist()
        if edges:
            steps.append((float(t), edges, kind == "road_closed", str(d.get("cause", ""))))
    return steps


def _slowed_frames(
    results: Any, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Frame times (n,) and a bool matrix (n, n_groups): water >= SLOWED_DEPTH_M on the road.

    The depth along an edge is the deepest frame cell under its geometry
    (sampled every half frame cell). Bridges, and edges whose own recorded
    maximum depth never reached the threshold, are never slowed.
    """
    import shapely

    frames = getattr(results, "frames", {}).get("depth")
    if frames is None:
        return None
    times, stack = np.asarray(frames[0], dtype=float), frames[1]
    tr = results.frame_transforms["depth"]
    roads = results.roads
    cand = ~roads["bridge"].to_numpy(bool)
    cand &= roads["max_depth_m"].to_numpy(float) >= SLOWED_DEPTH_M
    edges = np.flatnonzero(cand)
    out = np.zeros((len(times), n_groups), dtype=bool)
    if edges.size == 0:
        return times, out
    geoms = shapely.segmentize(roads.geometry.to_numpy()[edges], abs(tr.a) / 2)
    xy, which = shapely.get_coordinates(geoms, return_index=True)
    col = np.floor((xy[:, 0] - tr.c) / tr.a).astype(np.int64)
    row = np.floor((xy[:, 1] - tr.f) / tr.e).astype(np.int64)
    ok = (row >= 0) & (row < stack.shape[1]) & (col >= 0) & (col < stack.shape[2])
    row, col, g = row[ok], col[ok], group[edges[which[ok]]]
    for i in range(len(times)):
        wet = stack[i][row, col] >= SLOWED_DEPTH_M
        out[i, g[wet]] = True
    return times, out


def road_timeline(results: Any) -> tuple[np.ndarray, np.ndarray, list[list[list[float]]]]:
    """The state of every road over time, both directions of a two-way road together.

    Returns
    -------
    group
        The road (group) index of every directed edge, shape (n_edges,).
    first_edge
        The first edge of every group, shape (n_groups,).
    changes
        For each group, its state changes ``[[time_s, state], ...]`` in time
        order (state 0 open, 1 slowed, 2 closed; open before the first).
        Closed: an edge of it is closed for some cause (flood, plan, ...) per
        the ``road_closed`` / ``road_opened`` events (an edge closed for two
        causes opens when both have lifted); slowed: water >=
        :data:`SLOWED_DEPTH_M` on it in the depth frames.
    """
    roads = results.roads
    group, first = road_groups(roads["road_id"], roads["u"], roads["v"])
    n = len(first)
    per: dict[int, list[tuple[float, int, bool, str]]] = {}
    for t, edges, closed, cause in _closure_steps(results):
        for e in edges:
            per.setdefault(int(group[e]), []).append((t, e, closed, cause))
    slowed = _slowed_frames(results, group, n)
    active = set(per)
    if slowed is not None:
        active |= set(np.flatnonzero(slowed[1].any(axis=0)).tolist())
    changes: list[list[list[float]]] = [[] for _ in range(n)]
    for g in sorted(active):
        steps = sorted(per.get(g, []), key=lambda s: s[0])
        ftimes = slowed[0] if slowed is not None else np.zeros(0)
        fwet = slowed[1][:, g] if slowed is not None else np.zeros(0, dtype=bool)
        moments = sorted({s[0] for s in steps} | set(ftimes[np.r_[fwet[:1], np.diff(fwet)]
                                                            .astype(bool)].tolist()))  # fmt: skip
        shut: set[tuple[int, str]] = set()  # (edge, cause) closed now
        j, prev = 0, 0
        for t in moments:
            while j < len(steps) and steps[j][0] <= t:
                _, e, closed, cause = steps[j]
                (shut.add if closed else shut.discard)((e, cause))
                j += 1
            k = np.searchsorted(ftimes, t, side="right") - 1
            state = 2 if shut else (1 if k >= 0 and fwet[k] else 0)
            if state != prev:
                changes[g].append([float(t), state])
                prev = state
    return group, first, changes


def _width(highway: str) -> float:
    return 4.0 if highway in _WIDE else 3.0 if highway in _MEDIUM else 2.0


def roads_layer(results: Any, *, simplify_m: float = 1.0) -> MapLayer | None:
    """Roads coloured by state at the map's time (open, slowed, closed), with tooltips.

    Parameters
    ----------
    results
        A run's Results (reads ``roads`` with each edge's first closure and
        deepest water, road events, depth frames and the per-edge
        ``tables["roads"]`` when present).
    simplify_m
        Geometry is simplified to this tolerance, m, before reprojection.
    """
    import shapely

    roads = getattr(results, "roads", None)
    if roads is None or len(roads) == 0:
        return None
    group, first, changes = road_timeline(results)
    geoms = shapely.simplify(roads.geometry.to_numpy()[first], simplify_m)
    xy, which = shapely.get_coordinates(geoms, return_index=True)
    lon, lat = to_lonlat(results.crs, xy[:, 0], xy[:, 1])
    pts = np.round(np.column_stack([lon, lat]), 6).tolist()
    starts = np.searchsorted(which, np.arange(len(first) + 1))
    n = len(first)
    closed_at = np.full(n, np.inf)
    depth = np.zeros(n)
    first_closed = roads["first_closed_s"].to_numpy(float)
    np.minimum.at(closed_at, group, np.nan_to_num(first_closed, nan=np.inf))
    np.maximum.at(depth, group, roads["max_depth_m"].to_numpy(float))
    name, rid, highway = (roads[c].astype(str).to_numpy() for c in ("name", "road_id", "highway"))
    extra = results.tables.get("roads") if hasattr(results, "tables") else None
    extra_cols = [c for c in (extra.columns if extra is not None else [])
                  if np.issubdtype(np.asarray(extra[c]).dtype, np.number)]  # fmt: skip
    agg = {}
    for c in extra_cols:
        a = np.full(n, -np.inf)
        np.maximum.at(a, group, np.asarray(extra[c], dtype=float))
        agg[c] = a
    data = []
    for g, e in enumerate(first.tolist()):
        d: dict[str, Any] = {
            "p": pts[starts[g] : starts[g + 1]],
            "n": str(name[e]),
            "i": str(rid[e]),
            "w": _width(str(highway[e])),
            "c": float(closed_at[g]) if np.isfinite(closed_at[g]) else None,
            "d": round(float(depth[g]), 2),
        }
        if changes[g]:
            d["s"] = changes[g]
        if agg:
            d["x"] = {c: round(float(agg[c][g]), 3) for c in extra_cols}
        data.append(d)
    all_t = sorted({c[0] for ch in changes for c in ch})
    layer = pdk.Layer(
        "PathLayer", id="roads", data=json_safe(data), get_path="p", get_width="w",
        width_units=PIXELS, width_min_pixels=1, get_color=list(ROAD_STATE_COLORS[0]),
        pickable=True, auto_highlight=True, cap_rounded=True, joint_rounded=True,
    )  # fmt: skip
    anim = {"type": "states", "field": "s", "colors": [list(c) for c in ROAD_STATE_COLORS],
            "changes": all_t}  # fmt: skip
    legend = "<b>Roads</b>" + "".join(
        _swatch(c, name) for c, name in zip(ROAD_STATE_COLORS, ROAD_STATE_NAMES, strict=True)
    )
    tr = (all_t[0], all_t[-1]) if all_t else None
    return MapLayer("Roads", [layer], anim={"roads": anim}, legend=legend,
                    tips={"roads": "road"}, time_range=tr)  # fmt: skip


#: Damage-ratio classes of the buildings layer: (upper bound, colour, label).
DAMAGE_CLASSES: tuple[tuple[float, tuple[int, int, int], str], ...] = (
    (0.0, (190, 190, 190), "dry or no damage"),
    (0.1, (255, 230, 120), "damage ratio up to 10 %"),
    (0.3, (250, 160, 60), "10-30 %"),
    (0.5, (225, 80, 40), "30-50 %"),
    (1.0, (150, 0, 30), "over 50 %"),
)


def _damage_colour(ratio: float) -> list[int]:
    for top, rgb, _ in DAMAGE_CLASSES:
        if ratio <= top:
            return [*rgb, 200]
    return [*DAMAGE_CLASSES[-1][1], 200]


def buildings_layer(results: Any, *, simplify_m: float = 0.5) -> MapLayer | None:
    """Buildings (footprints; points as 6 m squares) coloured by their damage ratio.

    Reads ``buildings`` (the World's) and the ``buildings`` table of the
    consequences component; None when the run has neither.
    """
    import shapely

    tables = getattr(results, "tables", {}) or {}
    b = getattr(results, "buildings", None)
    table = tables.get("buildings")
    if b is None or table is None or len(table) != len(b):
        return None
    geoms = np.asarray(b.geometry.values, dtype=object)
    pts = shapely.get_type_id(geoms) == 0
    geoms[pts] = shapely.buffer(geoms[pts], 3.0, cap_style="square")
    rings = shapely.get_exterior_ring(_outer(shapely.simplify(geoms, simplify_m)))
    xy, which = shapely.get_coordinates(rings, return_index=True)
    lon, lat = to_lonlat(results.crs, xy[:, 0], xy[:, 1])
    ll = np.round(np.column_stack([lon, lat]), 6).tolist()
    starts = np.searchsorted(which, np.arange(len(rings) + 1))
    ratio = table["damage_ratio"].to_numpy(float)
    depth = table["max_depth_m"].to_numpy(float)
    kind = (table["kind"] if "kind" in table else table["occupancy"]).astype(str).tolist()
    names = table["building"].astype(str).tolist()  # (plain lists: a pandas look-up per
    # building cost 1.5 s for the 26,000 buildings of the whole city)
    data = []
    for i in range(len(rings)):
        r = float(ratio[i])
        data.append({
            "p": ll[starts[i]: starts[i + 1]], "col": _damage_colour(r), "name": names[i],
            "kind": f"{kind[i]}, damage {100 * r:.0f} %, max depth {float(depth[i]):.2f} m",
        })  # fmt: skip
    layer = pdk.Layer(
        "PolygonLayer", id="buildings", data=data, get_polygon="p", get_fill_color="col",
        stroked=False, pickable=True, auto_highlight=True,
    )  # fmt: skip
    legend = "<b>Buildings</b>" + "".join(_swatch(c, label) for _, c, label in DAMAGE_CLASSES)
    return MapLayer("Buildings (damage)", [layer], legend=legend,
                    tips={"buildings": "facility"})  # fmt: skip


def _outer(geoms: np.ndarray) -> np.ndarray:
    """Each geometry as one polygon: a multipolygon's largest part."""
    import shapely

    out = geoms.copy()
    multi = np.flatnonzero(shapely.get_type_id(geoms) == 6)
    for i in multi.tolist():
        parts = shapely.get_parts(geoms[i])
        out[i] = parts[int(np.argmax(shapely.area(parts)))]
    return out
