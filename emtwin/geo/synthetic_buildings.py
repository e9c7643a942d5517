"""Buildings of the built-in town for the consequence models (deterministic).

:func:`town_buildings` turns the town's footprints (:attr:`SyntheticTown.buildings`)
into a building table with occupancy, kind and levels, and adds the hospital's
footprint, so the built-in drills have houses, blocks of flats, shops, a
school, warehouses and a hospital to damage:

- **flats** (residential, 4 levels): footprints within 500 m of the valley
  axis, the dense town centre on both banks, where the river floods first;
- **houses** (residential, 2 levels): the other footprints;
- **shops** (commercial, 2 levels): the 24 footprints nearest the town gauge
  (the town centre by the river);
- **school** (commercial, 2 levels): the largest footprint of the block
  nearest the point 250 m north of the river at 55 % of the town: on the
  floodplain;
- **warehouses** (industrial, 1 level): footprints of the floodplain (within
  450 m of the axis) in the last 400 m of the town downstream;
- **hospital** (commercial, 4 levels): a 60 m x 40 m footprint centred on each
  hospital point (on the southern hillside, normally dry).

No randomness: the same town gives the same table. Values and floor heights
are then filled by :func:`emtwin.geo.buildings.buildings_from_frame`.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from emtwin.geo.buildings import buildings_from_frame
from emtwin.geo.synthetic import TOWN_ORIGIN, SyntheticTown

__all__ = ["town_buildings"]

_AXIS_Y = 1500.0  # valley axis, m north of the town's south edge (synthetic._AXIS)
_CENTRE_BAND_M = 500.0
_FLOODPLAIN_BAND_M = 450.0
_N_SHOPS = 24
_WAREHOUSE_REACH_M = 400.0
_HOSPITAL_SIZE_M = (60.0, 40.0)


def town_buildings(
    town: SyntheticTown,
    *,
    value_per_m2: Mapping[str, float] | None = None,
    first_floor_height: Mapping[str, float] | None = None,
) -> gpd.GeoDataFrame:
    """The built-in town's buildings with occupancy, kind, levels and value.

    Parameters
    ----------
    town
        A built-in town (:func:`emtwin.geo.synthetic.synthetic_town`).
    value_per_m2, first_floor_height
        Per occupancy, overriding the defaults (see
        :func:`emtwin.geo.buildings.buildings_from_frame`).

    Returns
    -------
    geopandas.GeoDataFrame
        In the town CRS (EPSG:32633), columns of
        :data:`emtwin.geo.buildings.BUILDING_COLUMNS` plus ``occupants``.
    """
    fp = town.buildings.reset_index(drop=True)
    x0, y0 = TOWN_ORIGIN
    cx = fp.geometry.centroid.x.to_numpy() - x0
    cy = fp.geometry.centroid.y.to_numpy() - y0
    kind = np.where(np.abs(cy - _AXIS_Y) < _CENTRE_BAND_M, "flats", "house").astype(object)
    gx, gy = town.anchors["gauge_town"]
    shops = np.argsort(np.hypot(cx + x0 - gx, cy + y0 - gy), kind="stable")[:_N_SHOPS]
    kind[shops] = "shop"
    # school: largest footprint near 55 % of the town, 250 m north of the river
    u_school = x0 + 0.55 * (cx.max() - cx.min()) + cx.min()
    river = town.river
    v_river = _river_y_at(river, u_school)
    d = np.hypot(cx + x0 - u_school, cy + y0 - (v_river + 250.0))
    near = np.argsort(d, kind="stable")[:6]
    area = fp.geometry.area.to_numpy()
    school = int(near[np.argmax(area[near])])
    kind[school] = "school"
    east = (cx > cx.max() - _WAREHOUSE_REACH_M) & (np.abs(cy - _AXIS_Y) < _FLOODPLAIN_BAND_M)
    kind[east & (kind != "shop") & (kind != "school")] = "warehouse"
    occupancy = pd.Series(kind).map(
        {
            "flats": "residential",
            "house": "residential",
            "shop": "commercial",
            "school": "commercial",
            "warehouse": "industrial",
        }  # fmt: skip
    )
    levels = pd.Series(kind).map({"flats": 4, "house": 2, "shop": 2, "school": 2, "warehouse": 1})
    table = gpd.GeoDataFrame(
        {
            "id": fp["id"].to_numpy(),
            "occupancy": occupancy.to_numpy(),
            "kind": kind,
            "levels": levels.to_numpy(),
            "occupants": fp["occupants"].to_numpy(),
        },
        geometry=fp.geometry.values,
        crs=town.crs,
    )
    w, h = _HOSPITAL_SIZE_M
    hx = town.hospitals.geometry.x.to_numpy()
    hy = town.hospitals.geometry.y.to_numpy()
    hospitals = gpd.GeoDataFrame(
        {
            "id": [f"hospital-{i}" for i in range(len(hx))],
            "occupancy": "commercial",
            "kind": "hospital",
            "levels": 4,
            "occupants": 0,
        },
        geometry=shapely.box(hx - w / 2, hy - h / 2, hx + w / 2, hy + h / 2),
        crs=town.crs,
    )
    both = pd.concat([table, hospitals], ignore_index=True)
    out = buildings_from_frame(
        gpd.GeoDataFrame(both, geometry="geometry", crs=town.crs),
        value_per_m2=value_per_m2,
        first_floor_height=first_floor_height,
        source=f"builtin:{town.variant}",
    )
    out["occupants"] = both["occupants"].to_numpy(dtype=np.int64)
    return out


def _river_y_at(river: shapely.LineString | None, x: float) -> float:
    """Northing of the river centre line at easting *x*, m (the axis without a river)."""
    if river is None:
        return TOWN_ORIGIN[1] + _AXIS_Y
    xy = np.asarray(river.coords)
    return float(np.interp(x, xy[:, 0], xy[:, 1]))
