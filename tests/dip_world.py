"""The dip: a small test world shared by the flood tests (DEM and road files only).

Flat ground at 10 m, 40 x 30 cells of 10 m (EPSG:32633), with a 1 m deep dip
running north-south over columns 13-16, and a road (``causeway``) across the
dip west-east along row 20.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString

X0, Y0, DX = 600000.0, 5600400.0, 10.0
ROWS, COLS = 40, 30
#: The road's northing, m: the centre of row 20.
ROAD_Y = Y0 - 20.5 * DX


def write_dip(folder: Path) -> None:
    """Write ``dem.tif`` and ``roads.geojson`` of the dip into *folder*."""
    z = np.full((ROWS, COLS), 10.0)
    z[:, 13:17] = 9.0
    with rasterio.open(folder / "dem.tif", "w", driver="GTiff", height=ROWS, width=COLS,
                       count=1, dtype="float64", crs="EPSG:32633",
                       transform=from_origin(X0, Y0, DX, DX)) as dst:  # fmt: skip
        dst.write(z, 1)
    road = LineString([(X0 + 15, ROAD_Y), (X0 + COLS * DX - 15, ROAD_Y)])
    gpd.GeoDataFrame({"id": ["causeway"], "highway": ["residential"]}, geometry=[road],
                     crs=32633).to_file(folder / "roads.geojson")  # fmt: skip
