"""Reading a DEM into a :class:`~emtwin.geo.world.Terrain` in the World CRS.

Sources: GeoTIFF, ESRI ASCII grid (``.asc``), a GeoPackage raster written as
``GPKG:/path/file.gpkg:layer``, or anything else rasterio (GDAL) reads. Band 1
is the elevation, m.

CRS rules
---------
* The DEM's CRS is the raster's own, or ``crs_override`` (scenario key
  ``world.terrain.crs``) when given. The override is needed for rasters with
  no CRS or with one PROJ cannot use, e.g. a ``LOCAL_CS`` engineering CRS.
* The World CRS is ``target_crs`` when given (it must be projected, in
  metres); else the DEM's CRS when it is projected in metres; else the local
  UTM zone (EPSG:326xx/327xx) of the DEM's centre.
* The grid is reprojected (bilinear) when the CRS changes, when a
  ``resolution`` is asked for, or when the source cells are not square and
  north-up. Output cells are square, north-up, and aligned to multiples of the
  cell size.

Cells equal to the nodata value, NaN, or the float32 fill (|z| > 1e30) are
outside the domain (``mask`` False); their ``z`` holds the highest valid
elevation so that it stays finite.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.crs
import rasterio.warp
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from emtwin.defaults import MANNING_N
from emtwin.errors import CRSError, InputDataError
from emtwin.geo.crs import (
    UTM_MAX_LAT,
    WGS84,
    crs_label,
    is_metric_projected,
    parse_crs,
    to_crs_xy,
    utm_crs_for,
)
from emtwin.geo.world import Terrain

__all__ = [
    "DEFAULT_MANNING",
    "MAX_CELLS",
    "MAX_READ_CELLS",
    "read_terrain",
    "world_crs_for_raster",
    "choose_world_crs",
    "nice_cell_size",
]

log = logging.getLogger(__name__)

#: Manning's n used where no value is given, s/m^(1/3) (:data:`emtwin.defaults.MANNING_N`).
DEFAULT_MANNING = MANNING_N

#: Largest grid (cells) read_terrain will build; a finer ``resolution`` is an error.
MAX_CELLS = 200_000_000

#: Most source cells of a raster (DEM, Manning) read into memory at once. A larger
#: raster (by the size its header declares) is read decimated when the scenario's
#: ``resolution`` is coarse enough, else refused with the resolution that fits.
MAX_READ_CELLS = 50_000_000

#: Elevations beyond this magnitude (m) are fill values, not ground.
_ABSURD_Z = 1.0e30

#: Largest extent (degrees of lon or lat) a geographic DEM may span to be put
#: in one UTM zone.
_MAX_GEOGRAPHIC_SPAN_DEG = 20.0

_CRS_HINT = "set world.terrain.crs to the CRS the DEM really is in (e.g. 'EPSG:5514')"


# ----------------------------------------------------------------------------- opening


def _file_of(source: str) -> Path:
    """The file on disk behind a rasterio source string (``GPKG:path:layer`` aware)."""
    if source.upper().startswith("GPKG:"):
        rest = source[5:]
        return Path(rest.rsplit(":", 1)[0] if ":" in rest else rest)
    return Path(source)


def _open(source: str | os.PathLike[str], label: str) -> rasterio.io.DatasetReader:
    """Open a raster, mapping every failure to InputDataError naming *label* and the file."""
    src = os.fspath(source)
    path = _file_of(src)
    if not src.startswith("/vsi") and not path.exists():
        raise InputDataError(f"{label}: {src}: file not found")
    if path.is_dir() and not src.upper().startswith("GPKG:"):
        raise InputDataError(f"{label}: {src}: is a folder, expected a raster file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(src)
    except (RasterioError, OSError, ValueError) as exc:
        raise InputDataError(
            f"{label}: {src}: cannot read it as a raster (GeoTIFF, ESRI ASCII grid, "
            f"GPKG:file:layer ...): {exc}"
        ) from None
    if ds.count < 1:
        ds.close()
        raise InputDataError(f"{label}: {src}: the raster has no bands")
    return ds


def _read_band(
    ds: rasterio.io.DatasetReader, out_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Band 1 as float64 with NaN wherever the cell holds no data.

    With *out_shape*, the band is read decimated to that shape (cell average,
    GDAL uses overviews where the file has them), never whole.
    """
    if out_shape is None:
        raw = ds.read(1)
        invalid = ds.read_masks(1) == 0
    else:
        raw = ds.read(1, out_shape=out_shape, resampling=Resampling.average)
        invalid = ds.read_masks(1, out_shape=out_shape, resampling=Resampling.nearest) == 0
    nodata = ds.nodata
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        invalid |= raw == np.asarray(nodata).astype(raw.dtype)
    z = raw.astype(np.float64)
    invalid |= ~np.isfinite(z) | (np.abs(z) > _ABSURD_Z)
    z[invalid] = np.nan
    return z


def _read_plan(
    ds: rasterio.io.DatasetReader,
    pixel_m: float,
    resolution: float | None,
    *,
    label: str,
    src: str,
    key: str = "world.terrain.resolution",
) -> tuple[tuple[int, int] | None, Affine]:
    """How to read a raster within :data:`MAX_READ_CELLS`: (out_shape or None, transform).

    The size comes from the header only. A raster over the limit is read
    decimated by a whole factor that keeps its cells no coarser than
    *resolution* (m); without a resolution that coarse it is refused.

    Raises
    ------
    InputDataError
        The raster is over the limit and *resolution* is None or too fine to
        read it decimated within the limit; the message gives the resolution
        that fits.
    """
    h, w = int(ds.height), int(ds.width)
    if h * w <= MAX_READ_CELLS:
        return None, ds.transform
    need = math.ceil(math.sqrt(h * w / MAX_READ_CELLS))
    while math.ceil(h / need) * math.ceil(w / need) > MAX_READ_CELLS:
        need += 1
    fit = nice_cell_size(pixel_m * need)
    if fit < pixel_m * need:
        fit = nice_cell_size(fit * 1.6)
    factor = int(math.floor(resolution / pixel_m + 1e-9)) if resolution else 0
    if factor < need:
        given = f"world.terrain.resolution {resolution:g} m is too fine to read it decimated" \
            if resolution else "no resolution is set"  # fmt: skip
        raise InputDataError(
            f"{label}: {src}: the raster's header declares {w:,} x {h:,} cells "
            f"({h * w:,}; limit {MAX_READ_CELLS:,} read at once), and {given}; set {key} "
            f"to {fit:g} m or coarser (its cells are {pixel_m:.3g} m), or crop the raster"
        )
    shape = (math.ceil(h / factor), math.ceil(w / factor))
    log.info("%s: %s: %d x %d cells read decimated to %d x %d", label, src, w, h, *shape[::-1])
    return shape, ds.transform @ Affine.scale(w / shape[1], h / shape[0])


def _bounds(t: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a grid's outer corners, any orientation."""
    nrows, ncols = shape
    cols = np.array([0.0, ncols, 0.0, ncols])
    rows = np.array([0.0, 0.0, nrows, nrows])
    xs = t.c + t.a * cols + t.b * rows
    ys = t.f + t.d * cols + t.e * rows
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _resolve_source_crs(
    ds_crs: Any, crs_override: Any, *, label: str, src: str, what_override: str
) -> CRS:
    """The CRS the raster's coordinates are in: the override, or its own (if usable)."""
    if crs_override is not None:
        crs = parse_crs(crs_override, what=what_override)
        if ds_crs:
            log.info(
                "%s: using %s instead of the raster's CRS %s",
                label,
                crs_label(crs),
                crs_label(ds_crs),
            )
        return crs
    if not ds_crs:
        raise CRSError(
            f"{label}: {src}: the raster has no CRS; set world.terrain.crs to the CRS it is "
            "in (e.g. 'EPSG:32633')"
        )
    try:
        return parse_crs(ds_crs, what=f"{label}: {src}")
    except CRSError:
        raise CRSError(
            f"{label}: {src}: PROJ cannot use the raster's CRS {crs_label(ds_crs)}; {_CRS_HINT}"
        ) from None


# ----------------------------------------------------------------------------- CRS choice


def choose_world_crs(
    src_crs: CRS,
    bounds: tuple[float, float, float, float],
    *,
    target_crs: Any = None,
    what: str = "world.terrain",
) -> CRS:
    """Pick the World CRS for a DEM.

    Parameters
    ----------
    src_crs
        The DEM's (usable) CRS.
    bounds
        ``(left, bottom, right, top)`` of the DEM in *src_crs* units.
    target_crs
        A CRS asked for explicitly; it must be projected with metre units.
    what
        Label for messages.

    Returns
    -------
    pyproj.CRS
        *target_crs*; else *src_crs* when projected in metres; else the UTM zone
        of the DEM's centre.

    Raises
    ------
    CRSError
        If *target_crs* is not a metric projected CRS, or a geographic DEM's
        bounds make no sense for one UTM zone (latitudes beyond +-84 deg,
        impossible coordinates, or a span of more than 20 deg).
    """
    if target_crs is not None:
        crs = parse_crs(target_crs, what=f"{what}: target CRS")
        if not is_metric_projected(crs):
            raise CRSError(
                f"{what}: the World CRS must be projected with metre units, got {crs_label(crs)}"
            )
        return crs
    if is_metric_projected(src_crs):
        return src_crs
    left, bottom, right, top = (float(b) for b in bounds)
    if src_crs.is_geographic:
        lon0, lat0 = 0.5 * (left + right), 0.5 * (bottom + top)
        bad = (
            not np.isfinite([left, bottom, right, top]).all()
            or bottom < -90.0
            or top > 90.0
            or left < -180.0
            or right > 360.0
            or abs(lat0) > UTM_MAX_LAT
            or right - left > _MAX_GEOGRAPHIC_SPAN_DEG
            or top - bottom > _MAX_GEOGRAPHIC_SPAN_DEG
        )
        if bad:
            raise CRSError(
                f"{what}: the DEM is in geographic {crs_label(src_crs)} but its bounds "
                f"(lon {left:.6g}..{right:.6g}, lat {bottom:.6g}..{top:.6g}) make no sense "
                "for one UTM zone: no way to pick a zone; set world.terrain.crs to the DEM's "
                "real CRS or give a projected DEM"
            )
        if src_crs != WGS84:
            lon0, lat0 = (float(v[0]) for v in to_crs_xy(lon0, lat0, src_crs, WGS84))
    else:
        lon, lat = to_crs_xy(
            np.array([left, right, left, right, 0.5 * (left + right)]),
            np.array([bottom, bottom, top, top, 0.5 * (bottom + top)]),
            src_crs,
            WGS84,
        )
        lon0, lat0 = float(lon[-1]), float(lat[-1])
    try:
        return utm_crs_for(lon0, lat0)
    except CRSError as exc:
        raise CRSError(f"{what}: {exc}; no way to pick a zone; set world.terrain.crs") from None


def world_crs_for_raster(
    source: str | os.PathLike[str],
    *,
    crs_override: Any = None,
    target_crs: Any = None,
    file_label: str | None = None,
) -> CRS:
    """The World CRS :func:`read_terrain` would use for a DEM, reading metadata only.

    Parameters
    ----------
    source
        The DEM: a file path or ``GPKG:/path/file.gpkg:layer``.
    crs_override
        The DEM's real CRS when the file has none or one PROJ cannot use.
    target_crs
        An explicit World CRS (projected, metres).
    file_label
        The scenario key naming the file in messages (e.g. ``"world.terrain.dem"``).

    Returns
    -------
    pyproj.CRS
        The World CRS (projected, metres).

    Raises
    ------
    InputDataError
        If the file is missing or not a raster.
    CRSError
        If no usable CRS can be found or no World CRS can be picked.
    """
    label = file_label or "terrain"
    src = os.fspath(source)
    with _open(src, label) as ds:
        src_crs = _resolve_source_crs(
            ds.crs, crs_override, label=label, src=src, what_override="world.terrain.crs"
        )
        bounds = _bounds(ds.transform, (ds.height, ds.width))
    return choose_world_crs(src_crs, bounds, target_crs=target_crs, what=label)


# ----------------------------------------------------------------------------- gridding


def nice_cell_size(size_m: float) -> float:
    """Round a cell size to the nearest (in ratio) of 1, 2, 2.5, 3 or 5 times a power of ten.

    Parameters
    ----------
    size_m
        A cell size, m (> 0).

    Returns
    -------
    float
        The rounded size, m.
    """
    if not (size_m > 0 and math.isfinite(size_m)):
        raise ValueError(f"cell size must be positive and finite, got {size_m!r}")
    exp = math.floor(math.log10(size_m))
    cands = [m * 10.0**e for e in (exp - 1, exp, exp + 1) for m in (1.0, 2.0, 2.5, 3.0, 5.0)]
    best = min(cands, key=lambda c: abs(math.log(c / size_m)))
    return float(round(best, 10))


def _is_square_north_up(t: Affine) -> bool:
    return (
        t.b == 0.0
        and t.d == 0.0
        and t.a > 0.0
        and t.e < 0.0
        and math.isclose(t.a, -t.e, rel_tol=1e-9, abs_tol=0.0)
    )


def _pixel_size_m(t: Affine, shape: tuple[int, int], src_crs: CRS, dst_crs: CRS) -> float:
    """Geometric mean of a source pixel's two sides measured in *dst_crs* (m), at the centre."""
    r, c = shape[0] / 2.0, shape[1] / 2.0
    cols = np.array([c, c + 1.0, c])
    rows = np.array([r, r, r + 1.0])
    xs = t.c + t.a * cols + t.b * rows
    ys = t.f + t.d * cols + t.e * rows
    x, y = to_crs_xy(np.asarray(xs), np.asarray(ys), src_crs, dst_crs)
    sx = math.hypot(x[1] - x[0], y[1] - y[0])
    sy = math.hypot(x[2] - x[0], y[2] - y[0])
    return math.sqrt(sx * sy)


def _target_grid(
    src_crs: CRS,
    dst_crs: CRS,
    bounds: tuple[float, float, float, float],
    dx: float,
    *,
    label: str,
) -> tuple[Affine, tuple[int, int]]:
    """North-up grid of cell size *dx* (m), aligned to multiples of dx, covering *bounds*."""
    if src_crs == dst_crs:
        left, bottom, right, top = bounds
    else:
        left, bottom, right, top = rasterio.warp.transform_bounds(
            _rio(src_crs), _rio(dst_crs), *bounds, densify_pts=51
        )
    if not np.isfinite([left, bottom, right, top]).all():
        raise CRSError(
            f"{label}: the DEM's bounds do not transform to {crs_label(dst_crs)}; {_CRS_HINT}"
        )
    x0 = math.floor(left / dx + 1e-9) * dx
    y0 = math.ceil(top / dx - 1e-9) * dx
    ncols = max(1, math.ceil((right - x0) / dx - 1e-9))
    nrows = max(1, math.ceil((y0 - bottom) / dx - 1e-9))
    if nrows * ncols > MAX_CELLS:
        raise InputDataError(
            f"{label}: a {dx:g} m grid over {right - left:.0f} m x {top - bottom:.0f} m would "
            f"have {nrows * ncols:,} cells (limit {MAX_CELLS:,}); use a coarser resolution"
        )
    return Affine(dx, 0.0, x0, 0.0, -dx, y0), (nrows, ncols)


def _rio(crs: CRS) -> rasterio.crs.CRS:
    return rasterio.crs.CRS.from_wkt(crs.to_wkt())


def _warp(
    data: np.ndarray,
    src_transform: Affine,
    src_crs: CRS,
    dst_transform: Affine,
    dst_crs: CRS,
    shape: tuple[int, int],
    resampling: Resampling,
) -> np.ndarray:
    """Reproject a float64 array with NaN for no data onto a grid; NaN where nothing lands."""
    out = np.full(shape, np.nan, dtype=np.float64)
    rasterio.warp.reproject(
        source=np.ascontiguousarray(data, dtype=np.float64),
        destination=out,
        src_transform=src_transform,
        src_crs=_rio(src_crs),
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=_rio(dst_crs),
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


# ----------------------------------------------------------------------------- Manning


def _check_n(values: np.ndarray, label: str) -> None:
    bad = ~np.isfinite(values) | (values <= 0.0)
    if bad.any():
        shown = sorted({float(v) for v in values[bad][:1000]})[:10]
        raise InputDataError(f"{label}: Manning's n must be > 0 and finite, got {shown}")


def _manning_grid(
    manning: Any,
    manning_table: Mapping[Any, Any] | None,
    *,
    transform: Affine,
    shape: tuple[int, int],
    world_crs: CRS,
    fallback_crs: CRS,
    mask: np.ndarray,
) -> float | np.ndarray:
    """Manning's n on the terrain grid: a scalar, or an array of shape *shape*."""
    label = "world.terrain.manning"
    if isinstance(manning, bool):
        raise InputDataError(f"{label}: expected a number or a raster path, got {manning!r}")
    if isinstance(manning, int | float | np.floating | np.integer):
        if manning_table is not None:
            raise InputDataError(
                f"{label}: a Manning table needs a land-cover raster, got the number {manning}"
            )
        n = float(manning)
        _check_n(np.array([n]), label)
        return n
    if isinstance(manning, np.ndarray):
        if manning.shape != shape:
            raise InputDataError(
                f"{label}: array of shape {manning.shape}, expected the grid's {shape}"
            )
        arr = manning.astype(np.float64)
        _check_n(arr[mask], label)
        return np.where(mask, arr, DEFAULT_MANNING)
    if not isinstance(manning, str | os.PathLike):
        raise InputDataError(f"{label}: expected a number or a raster path, got {manning!r}")

    src = os.fspath(manning)
    with _open(src, label) as ds:
        m_crs: CRS
        if ds.crs:
            try:
                m_crs = parse_crs(ds.crs, what=f"{label}: {src}")
            except CRSError:
                m_crs = fallback_crs
        else:
            m_crs = fallback_crs
        pixel_m = _pixel_size_m(ds.transform, (ds.height, ds.width), m_crs, world_crs)
        out_shape, m_transform = _read_plan(
            ds, pixel_m, float(transform.a), label=label, src=src
        )
        if out_shape is not None and manning_table is not None:
            # classes must not be averaged: read the nearest cell
            raw = ds.read(1, out_shape=out_shape, resampling=Resampling.nearest).astype(float)
            nodata = ds.nodata
            data = np.where(raw == nodata, np.nan, raw) if nodata is not None else raw
        else:
            data = _read_band(ds, out_shape)
        grid = _warp(data, m_transform, m_crs, transform, world_crs, shape, Resampling.nearest)
    inside = mask & np.isfinite(grid)
    if not inside.any():
        raise InputDataError(f"{label}: {src}: the raster does not cover the DEM")
    if manning_table is not None:
        table: dict[float, float] = {}
        for key, val in manning_table.items():
            try:
                table[float(key)] = float(val)
            except (TypeError, ValueError):
                raise InputDataError(
                    f"{label}: table entry {key!r}: {val!r} is not a class: n pair of numbers"
                ) from None
        _check_n(np.array(list(table.values()) or [0.0]), f"{label} table")
        classes = np.unique(grid[inside])
        unknown = [c for c in classes.tolist() if c not in table]
        if unknown:
            shown = ", ".join(f"{c:g}" for c in unknown[:20])
            raise InputDataError(
                f"{label}: {src}: land-cover classes {shown} are not in the Manning table "
                f"(table has {', '.join(f'{k:g}' for k in sorted(table))})"
            )
        keys = np.array(sorted(table))
        vals = np.array([table[k] for k in keys])
        out = np.full(shape, np.nan)
        out[inside] = vals[np.searchsorted(keys, grid[inside])]
    else:
        out = np.where(inside, grid, np.nan)
        _check_n(out[inside], f"{label}: {src}")
    missing = mask & ~inside
    if missing.any():
        log.warning(
            "%s: %s: %d cells of the domain have no value; using n = %g there",
            label,
            src,
            int(missing.sum()),
            DEFAULT_MANNING,
        )
    return np.where(inside, out, DEFAULT_MANNING)


# ----------------------------------------------------------------------------- main entry


def read_terrain(
    source: str | os.PathLike[str],
    *,
    crs_override: Any = None,
    target_crs: Any = None,
    resolution: float | None = None,
    manning: float | str | os.PathLike[str] | np.ndarray = DEFAULT_MANNING,
    manning_table: Mapping[Any, float] | None = None,
    file_label: str | None = None,
) -> tuple[Terrain, CRS]:
    """Read a DEM into a north-up, square-celled Terrain in the World CRS.

    Parameters
    ----------
    source
        The DEM (absolute path): GeoTIFF, ESRI ASCII grid, ``GPKG:/path/f.gpkg:layer``
        or any rasterio-readable raster; band 1 is the elevation, m.
    crs_override
        The CRS the DEM really is in (scenario key ``world.terrain.crs``), used
        instead of the file's. Needed when the file has no CRS or one PROJ cannot
        use (e.g. ``LOCAL_CS``).
    target_crs
        The World CRS to produce (projected, metres). Default: the DEM's CRS if
        projected in metres, else the UTM zone of its centre.
    resolution
        Cell size of the output grid, m. Default: the source cell size when no
        reprojection is needed; else the source pixel size in metres rounded to
        1, 2, 2.5, 3 or 5 times a power of ten.
    manning
        Manning's n, s/m^(1/3): a number; a raster of n (path, resampled nearest
        onto the grid); a land-cover raster (path) when *manning_table* is given;
        or an array of the output grid's shape. A raster without a usable CRS is
        taken to be in the DEM's CRS.
    manning_table
        ``{land-cover class: n}`` for a land-cover *manning* raster.
    file_label
        Scenario key naming the DEM in messages (e.g. ``"world.terrain.dem"``).

    Returns
    -------
    tuple of (Terrain, pyproj.CRS)
        The terrain (z float64 m, mask, transform and ``dx`` in the World CRS,
        Manning's n, ``source``) and the World CRS it is in.

    Raises
    ------
    InputDataError
        If the file is missing, not a raster, holds no valid cell, or a Manning
        input is bad (n <= 0, classes missing from the table, no overlap).
    CRSError
        If the DEM has no usable CRS and no override, or no World CRS can be chosen.
    """
    label = file_label or "terrain"
    src = os.fspath(source)
    if resolution is not None and not (
        isinstance(resolution, int | float) and math.isfinite(resolution) and resolution > 0
    ):
        raise InputDataError(f"world.terrain.resolution: must be > 0 m, got {resolution!r}")

    with _open(src, label) as ds:
        bounds = _bounds(ds.transform, (ds.height, ds.width))
        src_crs = _resolve_source_crs(
            ds.crs, crs_override, label=label, src=src, what_override="world.terrain.crs"
        )
        world_crs = choose_world_crs(src_crs, bounds, target_crs=target_crs, what=label)
        # the size from the header, before any cell is read
        pixel_m = _pixel_size_m(ds.transform, (ds.height, ds.width), src_crs, world_crs)
        out_shape, src_transform = _read_plan(ds, pixel_m, resolution, label=label, src=src)
        z_src = _read_band(ds, out_shape)
        if not np.isfinite(z_src).any():
            raise InputDataError(f"{label}: {src}: every cell is nodata")

    same_grid = src_crs == world_crs and _is_square_north_up(src_transform)
    if same_grid and (resolution is None or math.isclose(resolution, src_transform.a)):
        z, transform, dx = z_src, src_transform, float(src_transform.a)
    else:
        if resolution is not None:
            dx = float(resolution)
        else:
            dx = nice_cell_size(_pixel_size_m(src_transform, z_src.shape, src_crs, world_crs))
        transform, shape = _target_grid(src_crs, world_crs, bounds, dx, label=label)
        try:
            z = _warp(
                z_src, src_transform, src_crs, transform, world_crs, shape, Resampling.bilinear
            )
        except RasterioError as exc:
            raise CRSError(
                f"{label}: {src}: reprojecting from {crs_label(src_crs)} to "
                f"{crs_label(world_crs)} failed: {exc}"
            ) from None

    mask = np.isfinite(z)
    if not mask.any():
        raise InputDataError(
            f"{label}: {src}: no valid cell left after reprojecting to {crs_label(world_crs)}"
        )
    z = np.where(mask, z, np.nanmax(z)).astype(np.float64)

    n = _manning_grid(
        manning,
        manning_table,
        transform=transform,
        shape=z.shape,
        world_crs=world_crs,
        fallback_crs=src_crs,
        mask=mask,
    )
    terrain = Terrain(z=z, mask=mask, transform=transform, dx=float(dx), manning=n, source=src)
    nrows, ncols = z.shape
    log.info(
        "terrain %s: %d x %d cells of %g m in %s (from %s), %d inside, z %.2f..%.2f m",
        src,
        nrows,
        ncols,
        dx,
        crs_label(world_crs),
        crs_label(src_crs),
        int(mask.sum()),
        float(z[mask].min()),
        float(z[mask].max()),
    )
    return terrain, world_crs
