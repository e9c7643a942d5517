"""Reading areas (zones, reservoirs) from polygon files into the World CRS."""

from __future__ import annotations

from typing import Any

from pyproj import CRS

from emtwin.errors import InputDataError

__all__ = ["read_polygon"]


def read_polygon(
    path: str, *, crs: CRS, default_crs: str | CRS = "EPSG:4326", file_label: str = "area"
) -> Any:
    """The union of the polygons in a vector file, as one shapely geometry in *crs*.

    A file without a CRS is taken to be in *default_crs* (the scenario's ``crs``).

    Raises
    ------
    InputDataError
        If the file cannot be read or holds no polygon.
    """
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one message
        raise InputDataError(
            f"{file_label}: cannot read {path!r} as a vector file ({exc})"
        ) from None
    if gdf.crs is None:
        gdf = gdf.set_crs(default_crs)
    polys = gdf[gdf.geometry.notna() & gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise InputDataError(f"{file_label}: {path!r} holds no polygon (expected an area)")
    return polys.to_crs(crs).geometry.union_all()
