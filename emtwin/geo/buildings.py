"""Buildings for the consequence models: footprints or points with occupancy and value.

:func:`read_buildings` reads a GeoPackage, GeoJSON (any vector file
:func:`emtwin.geo.places.read_points` reads) or the buildings of an OSM file
(XML, ``.osm.bz2``/``.osm.gz``, or PBF with the ``pbf`` extra) into the World
CRS and fills what the data lacks:

- ``occupancy`` (one of the damage-curve classes): from an ``occupancy``
  column, else from the OSM tags ``amenity`` and ``building``
  (:data:`~emtwin.consequences.defaults.OSM_BUILDING_OCCUPANCY`), else
  :data:`~emtwin.consequences.defaults.DEFAULT_OCCUPANCY`;
- ``levels``: ``levels`` / ``building:levels``, else ``height`` / 3 m, else a
  default by occupancy;
- ``value``: a ``value`` column, else ``value_per_m2[occupancy] x footprint
  area x levels``; ``content_value`` likewise from the content share;
- ``first_floor_height_m``: a ``first_floor_height`` column, else a default by
  occupancy.

:func:`footprint_cells` gives, for every building, the raster cells it covers
(CSR index arrays into the flat grid), so the maximum depth over a footprint
is one gather and one ``maximum.reduceat``. A cell is covered when its square
intersects the footprint (Delft-FIAT's ``fiat.gis.overlay.clip`` rule); a point
covers the cell it falls in. Every coordinate is in the World CRS, m.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from emtwin.consequences.defaults import (
    CONTENT_SHARE,
    DEFAULT_LEVELS,
    DEFAULT_OCCUPANCY,
    FIRST_FLOOR_HEIGHT_M,
    OCCUPANCIES,
    OSM_AMENITY_OCCUPANCY,
    OSM_BUILDING_OCCUPANCY,
    OSM_KIND,
    STOREY_HEIGHT_M,
    VALUE_PER_M2,
)
from emtwin.errors import InputDataError
from emtwin.geo.places import read_points
from emtwin.geo.world import Terrain

__all__ = [
    "Buildings",
    "BUILDING_COLUMNS",
    "read_buildings",
    "buildings_from_frame",
    "footprint_cells",
    "prepare_buildings",
]

log = logging.getLogger(__name__)

#: Columns of :attr:`Buildings.table` (besides ``geometry``).
BUILDING_COLUMNS = (
    "building",  # id, str
    "occupancy",  # damage-curve class
    "kind",  # house, apartments, shop, school, hospital, ... (free text)
    "levels",  # storeys, int >= 1
    "area_m2",  # footprint area, m2 (0 for points given a value)
    "value",  # structure value, currency
    "content_value",  # content value, currency
    "first_floor_height_m",  # ground floor above the ground, m
)

_OSM_XML = (".osm", ".osm.bz2", ".osm.gz", ".osm.xml")
_ID_NAMES = ("building_id", "id", "osm_id", "osmid", "uID", "fid")
_LEVEL_NAMES = ("levels", "building:levels", "building_levels")


@dataclass
class Buildings:
    """Buildings of a World and the raster cells under each.

    Attributes
    ----------
    table
        GeoDataFrame in the World CRS, one row per building, columns
        :data:`BUILDING_COLUMNS`; index 0..n-1.
    indptr, cells
        CSR layout: the cells of building ``i`` are
        ``cells[indptr[i]:indptr[i + 1]]``, flat indices ``row * ncols + col``
        into the terrain grid; shapes (n + 1,) and (m,), int64. Every building
        covers at least one cell inside the domain (others are dropped).
    dropped
        Number of buildings of the source left out because no part of them
        lies on a cell inside the domain.
    """

    table: gpd.GeoDataFrame
    indptr: np.ndarray
    cells: np.ndarray
    dropped: int = 0
    source: str = field(default="", repr=False)

    def __len__(self) -> int:
        return len(self.table)

    def cells_of(self, i: int) -> np.ndarray:
        """Flat cell indices covered by building *i*."""
        return self.cells[self.indptr[i] : self.indptr[i + 1]]


# ----------------------------------------------------------------------------- reading


def read_buildings(
    path: str | Path,
    *,
    crs: Any,
    value_per_m2: Mapping[str, float] | None = None,
    first_floor_height: Mapping[str, float] | None = None,
    occupancies: tuple[str, ...] = OCCUPANCIES,
    default_crs: Any = None,
    file_label: str = "consequences.buildings",
) -> gpd.GeoDataFrame:
    """Read buildings from a file and fill occupancy, levels, value and floor height.

    Parameters
    ----------
    path
        GeoPackage (``file.gpkg:layer`` picks a layer), GeoJSON, Shapefile,
        FlatGeobuf, CSV with coordinates, or OSM XML (``.osm``, ``.osm.bz2``,
        ``.osm.gz``) or PBF (``.pbf``, needs ``osmium``): its ways and
        multipolygons tagged ``building=*``.
    crs
        The World CRS (projected, metres); the result is in it.
    value_per_m2, first_floor_height
        Per occupancy, overriding :data:`VALUE_PER_M2` (currency per m2 of floor)
        and :data:`FIRST_FLOOR_HEIGHT_M` (m).
    occupancies
        Occupancy classes that have a damage curve; any other value in an
        ``occupancy`` column is an error.
    default_crs
        CRS assumed for vector data that declares none.
    file_label
        The scenario key the path came from, for messages.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`BUILDING_COLUMNS`, in *crs*.

    Raises
    ------
    InputDataError
        Missing or unreadable file, no buildings, a bad ``occupancy``, or points
        without ``value`` or ``area_m2``.
    """
    src = Path(str(path).rsplit(":", 1)[0]) if not Path(path).exists() else Path(path)
    name = src.name.lower()
    where = f"{file_label}: {path}"
    if name.endswith(_OSM_XML) or name.endswith(".pbf"):
        if not src.exists():
            raise InputDataError(f"{file_label}: building file not found: {src}")
        raw = (
            _osm_pbf_buildings(src, where)
            if name.endswith(".pbf")
            else _osm_xml_buildings(src, where)
        )
        if raw.empty:
            raise InputDataError(f"{where}: no buildings found (no way tagged building=*)")
        raw = raw.to_crs(CRS.from_user_input(crs))
    else:
        raw = read_points(
            path,
            crs=crs,
            kind="buildings",
            file_label=file_label,
            default_crs=default_crs,
            keep_polygons=True,
        )
    return buildings_from_frame(
        raw,
        value_per_m2=value_per_m2,
        first_floor_height=first_floor_height,
        occupancies=occupancies,
        source=where,
    )


def buildings_from_frame(
    gdf: gpd.GeoDataFrame,
    *,
    value_per_m2: Mapping[str, float] | None = None,
    first_floor_height: Mapping[str, float] | None = None,
    occupancies: tuple[str, ...] = OCCUPANCIES,
    source: str = "<buildings>",
) -> gpd.GeoDataFrame:
    """Fill occupancy, kind, levels, area, values and floor height of buildings.

    *gdf* must be in a metric CRS (areas are taken from its geometry, m2).
    See the module docstring for the rules. Rows without geometry are dropped;
    lines are errors.
    """
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)].reset_index(drop=True)
    if gdf.empty:
        raise InputDataError(f"{source}: no buildings with a geometry")
    gtype = shapely.get_type_id(gdf.geometry.values)
    lines = np.isin(gtype, (1, 2, 5))
    if lines.any():
        raise InputDataError(
            f"{source}: {int(lines.sum())} buildings are lines; expected polygons or points"
        )
    vpm = {**VALUE_PER_M2, **(value_per_m2 or {})}
    ffh = {**FIRST_FLOOR_HEIGHT_M, **(first_floor_height or {})}
    n = len(gdf)
    occ = _occupancy(gdf, occupancies, source)
    kind = _kind(gdf, occ)
    levels = _levels(gdf, occ)
    area = np.asarray(gdf.geometry.area, dtype=np.float64)
    if "area_m2" in gdf.columns:
        given = pd.to_numeric(gdf["area_m2"], errors="coerce").to_numpy(dtype=float)
        area = np.where(np.isfinite(given) & (given > 0), given, area)
    for name, table in (("value_per_m2", vpm), ("first_floor_height", ffh)):
        lacking = sorted(set(occ) - set(table))
        if lacking:
            raise InputDataError(
                f"{source}: consequences.{name} has no value for occupancy {', '.join(lacking)}"
            )
    rate = np.array([vpm[o] for o in occ], dtype=np.float64)
    value = rate * area * levels
    if "value" in gdf.columns:
        given = pd.to_numeric(gdf["value"], errors="coerce").to_numpy(dtype=float)
        value = np.where(np.isfinite(given) & (given >= 0), given, value)
    no_size = (area <= 0) & ~(value > 0)
    if no_size.any():
        raise InputDataError(
            f"{source}: {int(no_size.sum())} buildings are points without a `value` or "
            "`area_m2` column; give one of them (currency, or m2 of footprint)"
        )
    content = value * np.array([CONTENT_SHARE.get(o, 0.5) for o in occ])
    if "content_value" in gdf.columns:
        given = pd.to_numeric(gdf["content_value"], errors="coerce").to_numpy(dtype=float)
        content = np.where(np.isfinite(given) & (given >= 0), given, content)
    floor = np.array([ffh[o] for o in occ], dtype=np.float64)
    if "first_floor_height" in gdf.columns:
        given = pd.to_numeric(gdf["first_floor_height"], errors="coerce").to_numpy(dtype=float)
        floor = np.where(np.isfinite(given), given, floor)
    ids = _ids(gdf)
    data = {
        "building": ids,
        "occupancy": occ,
        "kind": kind,
        "levels": levels.astype(np.int64),
        "area_m2": area,
        "value": value,
        "content_value": content,
        "first_floor_height_m": floor,
    }
    out = gpd.GeoDataFrame(data, geometry=gdf.geometry.values, crs=gdf.crs)
    log.info("buildings %s: %d read, value %.3g", source, n, float(value.sum()))
    return out


# ----------------------------------------------------------------------------- cells


def footprint_cells(geoms: Any, terrain: Terrain) -> tuple[np.ndarray, np.ndarray]:
    """The terrain cells each geometry covers, as CSR arrays.

    A polygon covers every cell whose square intersects it; a point covers the
    cell it lies in. Cells outside the grid or outside ``terrain.mask`` are
    left out.

    Parameters
    ----------
    geoms
        Shapely polygons or points in the World CRS (array-like, shape (n,)).
    terrain
        The grid.

    Returns
    -------
    indptr, cells
        int64 arrays of shapes (n + 1,) and (m,); cells are flat indices
        ``row * ncols + col``, ascending within each geometry.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = geoms.size
    nrows, ncols = terrain.shape
    dx, x0, y0 = terrain.dx, terrain.transform.c, terrain.transform.f
    if n == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64)
    b = shapely.bounds(geoms)
    c0 = np.clip(np.floor((b[:, 0] - x0) / dx), 0, ncols - 1).astype(np.int64)
    c1 = np.clip(np.floor((b[:, 2] - x0) / dx), 0, ncols - 1).astype(np.int64)
    r0 = np.clip(np.floor((y0 - b[:, 3]) / dx), 0, nrows - 1).astype(np.int64)
    r1 = np.clip(np.floor((y0 - b[:, 1]) / dx), 0, nrows - 1).astype(np.int64)
    # a geometry wholly off the grid gets an empty window
    off = (
        (b[:, 2] < x0) | (b[:, 0] > x0 + ncols * dx) | (b[:, 1] > y0) | (b[:, 3] < y0 - nrows * dx)
    )
    w = np.where(off, 0, c1 - c0 + 1)
    h = np.where(off, 0, r1 - r0 + 1)
    size = w * h
    owner = np.repeat(np.arange(n), size)
    start = np.repeat(np.cumsum(size) - size, size)
    k = np.arange(owner.size) - start  # position within the window, row-major
    wo = w[owner]
    row = r0[owner] + k // np.maximum(wo, 1)
    col = c0[owner] + k % np.maximum(wo, 1)
    is_point = shapely.get_type_id(geoms) == 0
    xmin = x0 + col * dx
    ymax = y0 - row * dx
    boxes = shapely.box(xmin, ymax - dx, xmin + dx, ymax)
    hit = shapely.intersects(geoms[owner], boxes)
    hit &= terrain.mask[row, col]
    if is_point.any():
        # a point on a cell edge intersects two boxes: keep the cell_of one only
        pt = is_point[owner]
        pr, pc = terrain.cell_of(shapely.get_x(geoms[owner[pt]]), shapely.get_y(geoms[owner[pt]]))
        hit[pt] &= (row[pt] == pr) & (col[pt] == pc)
    counts = np.bincount(owner[hit], minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cells = (row[hit] * ncols + col[hit]).astype(np.int64)
    return indptr, cells


def prepare_buildings(gdf: gpd.GeoDataFrame, terrain: Terrain, *, source: str = "") -> Buildings:
    """Attach the covered cells to a building table; drop buildings off the domain.

    *gdf* is a table from :func:`read_buildings` or :func:`buildings_from_frame`
    in the World CRS.
    """
    indptr, cells = footprint_cells(gdf.geometry.values, terrain)
    counts = np.diff(indptr)
    keep = counts > 0
    dropped = int((~keep).sum())
    if dropped:
        log.warning("%s: %d of %d buildings lie off the domain and are left out",
                    source or "buildings", dropped, len(gdf))  # fmt: skip
        gdf = gdf[keep].reset_index(drop=True)
        indptr, cells = footprint_cells(gdf.geometry.values, terrain)
    if gdf.empty:
        raise InputDataError(f"{source or 'buildings'}: no building lies inside the domain")
    return Buildings(gdf.reset_index(drop=True), indptr, cells, dropped, source)


# ----------------------------------------------------------------------------- attributes


def _column(gdf: pd.DataFrame, names: tuple[str, ...]) -> pd.Series | None:
    for name in names:
        if name in gdf.columns:
            return gdf[name]
    return None


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return str(v).strip().lower()


def _occupancy(gdf: pd.DataFrame, occupancies: tuple[str, ...], source: str) -> np.ndarray:
    n = len(gdf)
    given = [_text(v) for v in gdf["occupancy"]] if "occupancy" in gdf.columns else [""] * n
    bad = sorted({g for g in given if g and g not in occupancies})
    if bad:
        raise InputDataError(
            f"{source}: column occupancy: unknown value(s) {', '.join(map(repr, bad))}; "
            f"expected one of {', '.join(occupancies)} (or a curve given in consequences.curves)"
        )
    tag_b = [_text(v) for v in gdf["building"]] if "building" in gdf.columns else [""] * n
    tag_a = [_text(v) for v in gdf["amenity"]] if "amenity" in gdf.columns else [""] * n
    out = []
    for g, b, a in zip(given, tag_b, tag_a, strict=True):
        if g:
            out.append(g)
        elif a in OSM_AMENITY_OCCUPANCY:
            out.append(OSM_AMENITY_OCCUPANCY[a])
        elif b in OSM_BUILDING_OCCUPANCY:
            out.append(OSM_BUILDING_OCCUPANCY[b])
        else:
            out.append(DEFAULT_OCCUPANCY)
    return np.array(out, dtype=object)


def _kind(gdf: pd.DataFrame, occ: np.ndarray) -> np.ndarray:
    n = len(gdf)
    kinds = [_text(v) for v in gdf["kind"]] if "kind" in gdf.columns else [""] * n
    tag_b = [_text(v) for v in gdf["building"]] if "building" in gdf.columns else [""] * n
    tag_a = [_text(v) for v in gdf["amenity"]] if "amenity" in gdf.columns else [""] * n
    out = []
    for k, b, a, o in zip(kinds, tag_b, tag_a, occ, strict=True):
        if k:
            out.append(k)
        elif a in OSM_KIND or b in OSM_KIND:
            out.append(OSM_KIND.get(a) or OSM_KIND[b])
        elif b and b != "yes":
            out.append(b)
        else:
            out.append(str(o))
    return np.array(out, dtype=object)


def _levels(gdf: pd.DataFrame, occ: np.ndarray) -> np.ndarray:
    levels = np.full(len(gdf), np.nan)
    col = _column(gdf, _LEVEL_NAMES)
    if col is not None:
        levels = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    if "height" in gdf.columns:
        h = pd.to_numeric(gdf["height"], errors="coerce").to_numpy(dtype=float)
        levels = np.where(np.isfinite(levels), levels, np.round(h / STOREY_HEIGHT_M))
    default = np.array([DEFAULT_LEVELS.get(o, 1) for o in occ], dtype=float)
    levels = np.where(np.isfinite(levels) & (levels >= 1), np.round(levels), default)
    return levels.astype(np.int64)


def _ids(gdf: pd.DataFrame) -> np.ndarray:
    col = _column(gdf, _ID_NAMES)
    if col is None:
        return np.array([f"b{i}" for i in range(len(gdf))], dtype=object)
    ids = [str(v) if _text(v) else f"b{i}" for i, v in enumerate(col)]
    if len(set(ids)) != len(ids):  # not unique: make them so
        ids = [f"{v}#{i}" for i, v in enumerate(ids)]
    return np.array(ids, dtype=object)


# ----------------------------------------------------------------------------- OSM


def _open_xml(path: Path) -> Any:
    name = path.name.lower()
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


_TAGS_KEPT = ("building", "amenity", "building:levels", "height", "name")


def _osm_xml_buildings(path: Path, where: str) -> gpd.GeoDataFrame:
    """Ways and multipolygon relations tagged ``building=*`` of an OSM XML file, EPSG:4326."""
    nodes: dict[str, tuple[float, float]] = {}
    ways: dict[str, list[str]] = {}
    tagged_ways: list[tuple[str, dict[str, str]]] = []
    relations: list[tuple[str, list[tuple[str, str]], dict[str, str]]] = []
    try:
        with _open_xml(path) as f:
            for _, el in ET.iterparse(f, events=("end",)):
                if el.tag == "node":
                    nodes[el.get("id", "")] = (
                        float(el.get("lon", "nan")),
                        float(el.get("lat", "nan")),
                    )
                elif el.tag == "way":
                    wid = el.get("id", "")
                    ways[wid] = [nd.get("ref", "") for nd in el.iter("nd")]
                    tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
                    if "building" in tags:
                        tagged_ways.append((wid, tags))
                elif el.tag == "relation":
                    tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
                    if "building" in tags and tags.get("type") == "multipolygon":
                        members = [
                            (m.get("ref", ""), m.get("role", "outer"))
                            for m in el.iter("member")
                            if m.get("type") == "way"
                        ]
                        relations.append((el.get("id", ""), members, tags))
                else:
                    continue
                el.clear()
    except (ET.ParseError, OSError, EOFError, ValueError) as exc:
        raise InputDataError(f"{where}: cannot read OSM XML: {exc}") from exc

    def ring(refs: list[str]) -> np.ndarray | None:
        pts = [nodes[r] for r in refs if r in nodes]
        return np.array(pts) if len(pts) >= 4 and pts[0] == pts[-1] else None

    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    for wid, tags in tagged_ways:
        xy = ring(ways.get(wid, []))
        if xy is None:
            continue
        rows.append({"id": f"way/{wid}", **{k: tags.get(k) for k in _TAGS_KEPT}})
        geoms.append(shapely.Polygon(xy))
    for rid, members, tags in relations:
        outer = [shapely.LineString([nodes[r] for r in ways[m] if r in nodes])
                 for m, role in members if role != "inner" and m in ways]  # fmt: skip
        inner = [shapely.LineString([nodes[r] for r in ways[m] if r in nodes])
                 for m, role in members if role == "inner" and m in ways]  # fmt: skip
        polys = list(shapely.ops.polygonize([g for g in outer if len(g.coords) >= 2]))
        if not polys:
            continue
        geom = shapely.union_all(polys)
        holes = list(shapely.ops.polygonize([g for g in inner if len(g.coords) >= 2]))
        if holes:
            geom = geom.difference(shapely.union_all(holes))
        rows.append({"id": f"relation/{rid}", **{k: tags.get(k) for k in _TAGS_KEPT}})
        geoms.append(geom)
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")
    valid = shapely.is_valid(gdf.geometry.values)
    if not valid.all():
        gdf.loc[~valid, "geometry"] = shapely.make_valid(gdf.geometry.values[~valid])
    return gdf


def _osm_pbf_buildings(path: Path, where: str) -> gpd.GeoDataFrame:
    """Areas tagged ``building=*`` of an OSM PBF file (needs ``osmium``), EPSG:4326."""
    try:
        import osmium
    except ImportError as exc:
        raise InputDataError(
            f"{where}: reading OSM PBF needs the optional `pbf` extra "
            "(pip install 'emtwin[pbf]', which installs osmium); or convert the "
            "file to .osm/.osm.bz2 (osmium cat, osmconvert) and use that"
        ) from exc
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    try:
        only = osmium.filter.KeyFilter("building")
        fp = osmium.FileProcessor(str(path)).with_areas().with_filter(only)
        for obj in fp:
            if not obj.is_area():
                continue
            try:
                geom = shapely.from_wkb(wkb.create_multipolygon(obj))
            except RuntimeError:  # broken ring
                continue
            kind = "way" if obj.from_way() else "relation"
            tags = {t.k: t.v for t in obj.tags}
            rows.append({"id": f"{kind}/{obj.orig_id()}", **{k: tags.get(k) for k in _TAGS_KEPT}})
            geoms.append(geom)
    except RuntimeError as exc:
        raise InputDataError(f"{where}: cannot read OSM PBF: {exc}") from exc
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")
