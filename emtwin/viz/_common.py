"""Shared pieces of the map builders: the layer record, reprojection, PNG encoding, colours.

Everything here reads plain arrays; nothing imports the simulation. The World
CRS is projected (metres); the map is drawn in EPSG:4326 lon/lat, and this is
the only place that reprojects.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydeck as pdk

__all__ = [
    "MapLayer",
    "PIXELS",
    "DEPTH_CLASSES_M",
    "DEPTH_COLORS",
    "ROAD_STATE_COLORS",
    "ROAD_STATE_NAMES",
    "PRIORITY_COLORS",
    "to_lonlat",
    "grid_corners_lonlat",
    "png_data_uri",
    "depth_palette_image",
    "clock",
    "max_pool",
]

#: deck.gl's "pixels" unit as a literal string (pydeck turns bare strings into accessors).
PIXELS: Any = pdk.types.String("pixels")

#: Lower limits of the flood depth classes, m (below the first: not drawn).
DEPTH_CLASSES_M: tuple[float, ...] = (0.05, 0.15, 0.3, 0.5, 1.0, 2.0)
#: One colour per depth class, light to dark blue (ColorBrewer "Blues"), RGB.
DEPTH_COLORS: tuple[tuple[int, int, int], ...] = (
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 69, 148),
)
#: Opacity of the depth colours in the frame images, 0-255.
DEPTH_ALPHA = 215

#: Road states on the map: 0 open, 1 slowed (water on it), 2 closed; RGBA.
ROAD_STATE_NAMES: tuple[str, ...] = ("open", "slowed", "closed")
ROAD_STATE_COLORS: tuple[tuple[int, int, int, int], ...] = (
    (90, 90, 90, 200),
    (245, 150, 30, 235),
    (215, 25, 28, 255),
)
#: Call priority (1 = most urgent) to RGB; others use the last.
PRIORITY_COLORS: tuple[tuple[int, int, int], ...] = (
    (215, 25, 28),
    (253, 141, 60),
    (254, 217, 118),
    (200, 200, 200),
)


@dataclass
class MapLayer:
    """One toggleable group of deck.gl layers on the map.

    Attributes
    ----------
    group
        The label of the group's toggle.
    layers
        The ``pydeck.Layer`` objects of the group (ids unique on the map).
    anim
        JSON-able animation specs by deck layer id, read by the map's script
        (``{"type": "frames" | "states" | "trips" | "series" | "calls" | "appear", ...}``).
    legend
        HTML of the group's legend entry ("" for none).
    notes
        Sentences shown in the map about sampling (e.g. "2,000 of 9,118 trips shown").
    tips
        Tooltip kind by deck layer id (the script formats each kind).
    visible
        Whether the group is shown when the map opens.
    time_range
        (first, last) simulated time the group covers, s; None when static.
    """

    group: str
    layers: list[Any]
    anim: dict[str, dict[str, Any]] = field(default_factory=dict)
    legend: str = ""
    notes: list[str] = field(default_factory=list)
    tips: dict[str, str] = field(default_factory=dict)
    visible: bool = True
    time_range: tuple[float, float] | None = None


def to_lonlat(crs: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project World-CRS points (m) to EPSG:4326 longitude and latitude (degrees)."""
    from pyproj import CRS, Transformer

    tr = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(lon), np.asarray(lat)


def grid_corners_lonlat(crs: Any, transform: Any, shape: tuple[int, int]) -> list[list[float]]:
    """The four outer corners of a north-up grid as deck.gl quad bounds (lon, lat).

    Order: [left, bottom], [left, top], [right, top], [right, bottom], so a
    BitmapLayer drapes the image with the grid convergence of the projection
    (a raster in UTM is not aligned with lon/lat lines).
    """
    rows, cols = shape
    x0, y0 = transform.c, transform.f
    x1 = x0 + cols * transform.a
    y1 = y0 + rows * transform.e
    xs = np.array([x0, x0, x1, x1])
    ys = np.array([y1, y0, y0, y1])
    lon, lat = to_lonlat(crs, xs, ys)
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


def png_data_uri(img: Any) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URI (optimised PNG)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def depth_palette_image(depth: np.ndarray) -> Any:
    """A palette PNG image of water depth (m) in the classes of :data:`DEPTH_CLASSES_M`.

    Cells below the first class, NaN or outside the domain are transparent.
    """
    from PIL import Image

    d = np.nan_to_num(np.asarray(depth, dtype=float), nan=0.0)
    idx = np.digitize(d, DEPTH_CLASSES_M).astype(np.uint8)  # 0 = dry, 1..6 = classes
    img = Image.fromarray(idx, mode="P")
    pal = [0, 0, 0] + [c for rgb in DEPTH_COLORS for c in rgb]
    img.putpalette(pal + [0] * (768 - len(pal)))
    img.info["transparency"] = bytes([0] + [DEPTH_ALPHA] * len(DEPTH_COLORS))
    return img


def max_pool(a: np.ndarray, f: int) -> np.ndarray:
    """Max over f x f blocks (NaN ignored, edges padded with NaN); *a* itself when f == 1."""
    if f <= 1:
        return a
    r, c = a.shape
    p = np.pad(a.astype(float), ((0, -r % f), (0, -c % f)), constant_values=np.nan)
    blocks = p.reshape(p.shape[0] // f, f, p.shape[1] // f, f)
    with np.errstate(all="ignore"):
        out = np.fmax.reduce(np.fmax.reduce(blocks, axis=3), axis=1)
    return out


def clock(t_s: float | None) -> str:
    """Simulated time as ``T+h:mm`` (``T+h:mm:ss`` when not a whole minute); "" for None."""
    if t_s is None or not math.isfinite(t_s):
        return ""
    t = int(round(t_s))
    sign = "-" if t < 0 else "+"
    h, rem = divmod(abs(t), 3600)
    m, s = divmod(rem, 60)
    return f"T{sign}{h}:{m:02d}" + (f":{s:02d}" if s else "")


