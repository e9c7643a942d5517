"""Substations and pumps: the facilities a scenario gives by position, and what they feed.

Hospitals, shelters and stations are layers of the World; substations and pumps
are given in ``consequences.sites`` (a list) and/or ``consequences.sites_from``
(a GeoPackage/GeoJSON of points). :func:`read_sites_file` reads the file and
:func:`sites_table` gathers both into one table in the World CRS;
:func:`resolve_feeds` turns each site's ``feeds`` (names) into facility indices
for :class:`~emtwin.consequences.facilities.FacilityWatch`. Every error names
the scenario key or the file and row, and what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from emtwin.consequences.defaults import SITE_KINDS
from emtwin.errors import InputDataError
from emtwin.geo import crs as crsmod

__all__ = ["read_sites_file", "sites_table", "resolve_feeds", "SITE_COLUMNS"]

#: Columns of a sites table: x, y in the World CRS (m); fail_depth_m NaN for the
#: type's depth; feeds a list of names; where the key or file row, for errors.
SITE_COLUMNS = ("name", "kind", "x", "y", "fail_depth_m", "feeds", "where")


def _split_layer(path: str) -> tuple[Path, str | None]:
    p = Path(path)
    if p.exists() or ":" not in path:
        return p, None
    head, _, tail = path.rpartition(":")
    if head and tail and not any(c in tail for c in "/\\"):
        return Path(head), tail
    return p, None


def _feeds_of(value: Any) -> list[str]:
    """Names in a ``feeds`` cell: a list, or a string separated by ';' or ','."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in re.split(r"[;,]", str(value)) if p.strip()]


def read_sites_file(path: str, world_crs: Any, *,
                    file_label: str = "consequences.sites_from") -> pd.DataFrame:  # fmt: skip
    """Point sites of a GeoPackage (``file.gpkg:layer``) or GeoJSON, in the World CRS.

    Columns ``name`` and ``kind`` (substation or pump) are required;
    ``fail_depth_m`` (m, > 0) and ``feeds`` (names separated by ';' or ',') are
    optional. The file needs a CRS (GeoJSON has WGS 84 by definition).

    Raises
    ------
    InputDataError
        Naming *file_label*, the file and the row, for a missing file or column,
        a geometry that is not a point, an unknown kind or a bad depth.
    """
    p, layer = _split_layer(str(path))
    where = f"{file_label}: {p}" + (f" (layer {layer!r})" if layer else "")
    if not p.exists():
        raise InputDataError(f"{file_label}: file not found: {p}")
    try:
        gdf = gpd.read_file(p, layer=layer)
    except Exception as exc:  # pyogrio raises several unrelated classes
        raise InputDataError(f"{where}: cannot read vector data: {exc}") from exc
    missing = [c for c in ("name", "kind") if c not in gdf.columns]
    if missing:
        raise InputDataError(f"{where}: no column {', '.join(missing)}; expected the columns "
                             "name, kind (substation or pump) and optionally fail_depth_m, "
                             f"feeds (it has: {', '.join(map(str, gdf.columns))})")  # fmt: skip
    if gdf.crs is None:
        raise InputDataError(f"{where}: the file has no CRS; give it one (e.g. EPSG:4326)")
    rows = []
    for i, rec in enumerate(gdf.itertuples(index=False)):
        at = f"{where}, row {i + 1}"
        g = rec.geometry
        if g is None or g.is_empty or g.geom_type != "Point":
            got = "no geometry" if g is None or g.is_empty else f"a {g.geom_type}"
            raise InputDataError(f"{at}: geometry: expected a point, got {got}")
        kind = str(rec.kind).strip().lower()
        if kind not in SITE_KINDS:
            raise InputDataError(f"{at}: kind: unknown {rec.kind!r}; expected one of "
                                 f"{', '.join(SITE_KINDS)}")  # fmt: skip
        name = "" if rec.name is None else str(rec.name).strip()
        if not name or name == "nan":
            raise InputDataError(f"{at}: name: empty; every site needs a name")
        depth = getattr(rec, "fail_depth_m", None)
        try:
            depth = math.nan if depth is None or pd.isna(depth) else float(depth)
        except (TypeError, ValueError):
            raise InputDataError(f"{at}: fail_depth_m: expected a depth in m, "
                                 f"got {depth!r}") from None  # fmt: skip
        if not (math.isnan(depth) or depth > 0):
            raise InputDataError(f"{at}: fail_depth_m: expected a depth > 0 m, got {depth}")
        feeds = _feeds_of(getattr(rec, "feeds", None))
        if feeds and kind != "substation":
            raise InputDataError(f"{at}: feeds: only a substation feeds other facilities "
                                 f"(this is a {kind})")  # fmt: skip
        rows.append((name, kind, g.x, g.y, depth, feeds, at))
    out = pd.DataFrame(rows, columns=list(SITE_COLUMNS))
    if len(out):
        xs, ys = crsmod.to_crs_xy(out["x"].to_numpy(float), out["y"].to_numpy(float),
                                  gdf.crs, world_crs)  # fmt: skip
        out["x"], out["y"] = xs, ys
    return out


def sites_table(
    sites: Sequence[Any],
    sites_from: str | None,
    *,
    scenario_crs: Any,
    world_crs: Any,
    where: Callable[[int], str],
) -> pd.DataFrame:
    """The sites of ``consequences.sites`` then of ``sites_from``, x and y in the World CRS.

    *where(i)* labels site *i* of the list in errors (file, line and key).

    Raises
    ------
    InputDataError
        From :func:`read_sites_file`, or when a name is given twice.
    """
    rows = []
    for i, s in enumerate(sites):
        if s.at is not None:
            src, (x, y) = scenario_crs, s.at
        else:
            src, (x, y) = "EPSG:4326", s.lonlat
        xs, ys = crsmod.to_crs_xy(np.array([x]), np.array([y]), crsmod.parse_crs(src),
                                  world_crs)  # fmt: skip
        depth = math.nan if s.fail_depth_m is None else float(s.fail_depth_m)
        rows.append((s.name, s.kind, float(xs[0]), float(ys[0]), depth, list(s.feeds), where(i)))
    out = pd.DataFrame(rows, columns=list(SITE_COLUMNS))
    if sites_from:
        out = pd.concat([out, read_sites_file(sites_from, world_crs)], ignore_index=True)
    seen: dict[str, str] = {}
    for name, at in zip(out["name"], out["where"], strict=True):
        if name in seen:
            raise InputDataError(f"{at}: name: {name!r} is already the name of the site at "
                                 f"{seen[name]}; each site needs its own name")  # fmt: skip
        seen[name] = at
    return out


def resolve_feeds(
    kinds: Sequence[str], names: Sequence[str], feeds: Sequence[Sequence[str]],
    where: Sequence[str],
) -> list[list[int]]:
    """Indices of the facilities each one feeds, from names (``NAME`` or ``TYPE/NAME``).

    Parameters
    ----------
    kinds, names
        Type and name of every facility, length n.
    feeds
        Per facility, the names it feeds (empty for most), length n.
    where
        Per facility, its label in errors (its key or file row).

    Raises
    ------
    InputDataError
        For a name no facility has, a name several facilities share (use
        ``TYPE/NAME``), or a facility feeding itself.
    """
    by_name: dict[str, list[int]] = {}
    for j, (k, n) in enumerate(zip(kinds, names, strict=True)):
        by_name.setdefault(str(n), []).append(j)
        by_name.setdefault(f"{k}/{n}", []).append(j)
    out: list[list[int]] = []
    for i, fed in enumerate(feeds):
        idx = []
        for ref in fed:
            hit = by_name.get(ref, [])
            if not hit:
                known = ", ".join(sorted({f"{k}/{n}" for k, n in zip(kinds, names,
                                                                       strict=True)}))  # fmt: skip
                raise InputDataError(f"{where[i]}: feeds: no facility named {ref!r}; expected "
                                     f"a hospital, shelter, station or site: {known}")
            if len(hit) > 1:
                opts = ", ".join(f"{kinds[j]}/{names[j]}" for j in hit)
                raise InputDataError(f"{where[i]}: feeds: {ref!r} names {len(hit)} facilities "
                                     f"({opts}); write TYPE/NAME")  # fmt: skip
            if hit[0] == i:
                raise InputDataError(f"{where[i]}: feeds: a site cannot feed itself ({ref!r})")
            idx.append(hit[0])
        out.append(idx)
    return out
