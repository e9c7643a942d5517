"""Coordinate reference system helpers.

Every CRS handled by emtwin goes through :func:`parse_crs`, which returns a
2-D ``pyproj.CRS`` that PROJ can transform, or raises
:class:`~emtwin.errors.CRSError` naming where the value came from. The World
always lives in one projected CRS whose unit is the metre; :func:`utm_crs_for`
picks the local UTM zone for geographic inputs.
"""

from __future__ import annotations

import contextlib
import logging
import math
from functools import lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as _ProjCRSError
from pyproj.exceptions import ProjError

from emtwin.errors import CRSError

__all__ = [
    "WGS84",
    "parse_crs",
    "utm_crs_for",
    "is_usable",
    "is_metric_projected",
    "crs_label",
    "transformer",
    "to_crs_xy",
]

log = logging.getLogger(__name__)

#: Geographic WGS 84 (EPSG:4326), the default CRS of coordinates in scenario files.
WGS84 = CRS.from_epsg(4326)

#: Latitude limit of the UTM system, degrees.
UTM_MAX_LAT = 84.0


def crs_label(crs: Any) -> str:
    """A short human label for a CRS: ``EPSG:xxxx`` when known, else its name.

    Parameters
    ----------
    crs
        A ``pyproj.CRS``, a ``rasterio.crs.CRS`` or anything ``pyproj.CRS`` accepts.
    """
    try:
        c = crs if isinstance(crs, CRS) else CRS.from_user_input(_as_user_input(crs))
    except (_ProjCRSError, ProjError, TypeError, ValueError):
        return str(crs)[:80]
    code = c.to_epsg(min_confidence=90)
    if code is not None:
        return f"EPSG:{code}"
    kind = c.type_name.split(" ")[0].upper()
    return f'{kind} "{c.name}"'


def _as_user_input(value: Any) -> Any:
    """Turn rasterio CRS objects (and friends) into input pyproj accepts."""
    if isinstance(value, CRS):
        return value
    to_wkt = getattr(value, "to_wkt", None)
    if callable(to_wkt) and not isinstance(value, str):
        return to_wkt()
    return value


def is_usable(crs: CRS) -> bool:
    """True if PROJ can transform coordinates out of *crs* (to EPSG:4326).

    An engineering (``LOCAL_CS``) CRS, for example, parses but is not usable:
    it has no link to the Earth.

    Parameters
    ----------
    crs
        The CRS to test.
    """
    if crs.is_engineering:
        return False
    if not (crs.is_geographic or crs.is_projected):
        return False
    try:
        t = transformer(crs, WGS84)
    except (_ProjCRSError, ProjError):
        return False
    if crs.is_geographic:
        return True
    # A projected CRS: its own area of use (or the false origin) must map to
    # finite lon/lat.
    aou = crs.area_of_use
    if aou is not None:
        lon = 0.5 * (aou.west + aou.east)
        lat = 0.5 * (aou.south + aou.north)
        try:
            fwd = transformer(WGS84, crs)
            x, y = fwd.transform(lon, lat)
            lon2, lat2 = t.transform(x, y)
        except (_ProjCRSError, ProjError):
            return False
        return bool(np.isfinite([x, y, lon2, lat2]).all())
    try:
        lon2, lat2 = t.transform(0.0, 0.0)
    except (_ProjCRSError, ProjError):
        return False
    return bool(np.isfinite([lon2, lat2]).all())


def is_metric_projected(crs: CRS) -> bool:
    """True if *crs* is a projected CRS whose horizontal unit is the metre.

    Parameters
    ----------
    crs
        The CRS to test.
    """
    if not crs.is_projected:
        return False
    axes = crs.axis_info[:2]
    return bool(axes) and all(
        abs(a.unit_conversion_factor - 1.0) < 1e-12 and a.unit_name in ("metre", "meter")
        for a in axes
    )


def parse_crs(value: Any, *, what: str = "crs") -> CRS:
    """Parse a CRS given as an EPSG code, a string, WKT or a CRS object.

    Compound and 3-D CRSs are reduced to their horizontal (2-D) part.

    Parameters
    ----------
    value
        ``4326``, ``"EPSG:32633"``, ``"epsg:5514"``, a PROJ string, WKT, a
        ``pyproj.CRS`` or a ``rasterio.crs.CRS``.
    what
        Where the value came from (a scenario key, a file), used in messages.

    Returns
    -------
    pyproj.CRS
        A CRS PROJ can transform.

    Raises
    ------
    CRSError
        If *value* is empty, cannot be parsed, or PROJ cannot transform it (an
        engineering / ``LOCAL_CS`` CRS, for example).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise CRSError(f"{what}: no CRS given")
    if isinstance(value, bool):
        raise CRSError(f"{what}: {value!r} is not a CRS")
    try:
        if isinstance(value, int | np.integer):
            crs = CRS.from_epsg(int(value))
        else:
            raw = _as_user_input(value)
            if isinstance(raw, str) and raw.strip().isdigit():
                raw = f"EPSG:{raw.strip()}"
            crs = CRS.from_user_input(raw)
    except (_ProjCRSError, ProjError, TypeError, ValueError) as exc:
        shown = str(value) if len(str(value)) < 80 else str(value)[:77] + "..."
        raise CRSError(
            f"{what}: cannot parse CRS {shown!r} (expected e.g. 'EPSG:32633', an EPSG "
            f"code or WKT): {exc}"
        ) from None
    if crs.is_compound or ((crs.is_projected or crs.is_geographic) and len(crs.axis_info) > 2):
        with contextlib.suppress(_ProjCRSError, ProjError):
            crs = crs.to_2d()
    if not is_usable(crs):
        raise CRSError(
            f"{what}: PROJ cannot use the CRS {crs_label(crs)} ({crs.type_name}): it cannot "
            "be transformed to or from lon/lat; give the real CRS instead (e.g. 'EPSG:5514')"
        )
    return crs


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS (EPSG:326xx north, 327xx south) holding a point.

    Parameters
    ----------
    lon, lat
        The point, degrees (EPSG:4326). Longitudes outside [-180, 180) are wrapped.

    Returns
    -------
    pyproj.CRS
        The zone's projected CRS (metres).

    Raises
    ------
    CRSError
        If the point is not finite or lies outside the UTM latitudes (+-84 deg).
    """
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise CRSError(f"no UTM zone for a non-finite point ({lon}, {lat})")
    if abs(lat) > UTM_MAX_LAT:
        raise CRSError(
            f"no UTM zone at latitude {lat:.3f} (UTM covers -84 to 84 degrees); "
            "give a projected CRS"
        )
    lon = (lon + 180.0) % 360.0 - 180.0
    zone = int((lon + 180.0) // 6.0) + 1
    zone = min(max(zone, 1), 60)
    code = (32600 if lat >= 0 else 32700) + zone
    return CRS.from_epsg(code)


@lru_cache(maxsize=64)
def _transformer_cached(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)


def transformer(src: Any, dst: Any) -> Transformer:
    """A cached ``pyproj.Transformer`` from *src* to *dst* with x=east/lon, y=north/lat order.

    Parameters
    ----------
    src, dst
        CRSs (``pyproj.CRS`` or anything ``pyproj.CRS.from_user_input`` accepts).
    """
    s = src if isinstance(src, CRS) else CRS.from_user_input(_as_user_input(src))
    d = dst if isinstance(dst, CRS) else CRS.from_user_input(_as_user_input(dst))
    return _transformer_cached(s.to_wkt(), d.to_wkt())


def to_crs_xy(
    xs: np.ndarray | float, ys: np.ndarray | float, src: Any, dst: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinates between CRSs.

    Parameters
    ----------
    xs, ys
        Coordinates in *src*: easting/northing (m, or the CRS unit) or lon/lat
        (degrees, lon first).
    src, dst
        Source and destination CRSs.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y)`` in *dst*, float64, shaped like the input (at least 1-D).

    Raises
    ------
    CRSError
        If PROJ fails or gives non-finite results for finite input.
    """
    x = np.atleast_1d(np.asarray(xs, dtype=float))
    y = np.atleast_1d(np.asarray(ys, dtype=float))
    s = src if isinstance(src, CRS) else CRS.from_user_input(_as_user_input(src))
    d = dst if isinstance(dst, CRS) else CRS.from_user_input(_as_user_input(dst))
    if s == d:
        return x.copy(), y.copy()
    try:
        ox, oy = transformer(s, d).transform(x, y, errcheck=False)
    except (_ProjCRSError, ProjError) as exc:
        raise CRSError(f"cannot transform from {crs_label(s)} to {crs_label(d)}: {exc}") from None
    ox = np.asarray(ox, dtype=float).reshape(x.shape)
    oy = np.asarray(oy, dtype=float).reshape(y.shape)
    finite_in = np.isfinite(x) & np.isfinite(y)
    if not (np.isfinite(ox[finite_in]).all() and np.isfinite(oy[finite_in]).all()):
        raise CRSError(
            f"transforming from {crs_label(s)} to {crs_label(d)} gave non-finite coordinates: "
            "are the coordinates in the stated CRS (lon/lat order for degrees)?"
        )
    return ox, oy
