"""Map layers of a storm: the sustained wind as a colour ramp, wind arrows, the storm track.

Each builder reads only what a run's Results hold as data: ``frames``
(``wind_speed``, ``wind_direction``), ``frame_transforms``, ``tables``
(``storm_track``) and ``summary`` (``world.crs``, the CRS of the frame
grids); never the World. Each returns a
:class:`~emtwin.viz._common.MapLayer`, or None when the run has no typhoon.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pydeck as pdk

from emtwin.viz._common import PIXELS, MapLayer, grid_corners_lonlat, png_data_uri, to_lonlat

__all__ = [
    "WIND_CLASSES_M_S",
    "WIND_COLORS",
    "wind_layer",
    "wind_arrows_layer",
    "storm_track_layer",
    "wind_palette_image",
]

#: Lower limits of the sustained-wind classes, m/s: strong breeze (Beaufort 6), then the
#: tropical-cyclone grades of the China Meteorological Administration (GB/T 19201-2006)
#: from tropical-storm force (17.5 m/s here, 34 kt, the threshold of ``wind_arrival``).
WIND_CLASSES_M_S: tuple[float, ...] = (10.8, 17.5, 24.5, 32.7, 41.5, 51.0)
WIND_CLASS_NAMES: tuple[str, ...] = (
    "strong breeze", "tropical storm", "severe tropical storm", "typhoon", "severe typhoon",
    "super typhoon",
)  # fmt: skip
#: One colour per class, yellow to dark red (ColorBrewer "YlOrRd"), RGB.
WIND_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 237, 160),
    (254, 217, 118),
    (253, 141, 60),
    (240, 59, 32),
    (189, 0, 38),
    (128, 0, 38),
)
#: Opacity of the wind colours, 0-255 (the water and the roads stay readable under them).
WIND_ALPHA = 120
#: Arrows across the longer side of the wind grid.
ARROWS_ACROSS = 12
_NEAREST = {"minFilter": "nearest", "magFilter": "nearest"}


def _crs(results: Any) -> Any:
    """The CRS of the frame grids and x/y columns: ``results.crs`` (WKT), else the summary's."""
    crs = getattr(results, "crs", "")
    if crs:
        return crs
    return ((getattr(results, "summary", None) or {}).get("world") or {}).get("crs")


def _wind(results: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, Any] | None:
    frames = getattr(results, "frames", None) or {}
    speed, direction = frames.get("wind_speed"), frames.get("wind_direction")
    transform = (getattr(results, "frame_transforms", None) or {}).get("wind_speed")
    crs = _crs(results)
    if speed is None or transform is None or crs is None or len(speed[0]) == 0:
        return None
    d = direction[1] if direction is not None else None
    return np.asarray(speed[0], dtype=float), speed[1], d, transform, crs


def wind_palette_image(speed: np.ndarray) -> Any:
    """A palette PNG of sustained wind (m/s) in :data:`WIND_CLASSES_M_S`; calmer, NaN:
    transparent."""
    from PIL import Image

    s = np.nan_to_num(np.asarray(speed, dtype=float), nan=0.0)
    idx = np.digitize(s, WIND_CLASSES_M_S).astype(np.uint8)
    img = Image.fromarray(idx, mode="P")
    pal = [0, 0, 0] + [c for rgb in WIND_COLORS for c in rgb]
    img.putpalette(pal + [0] * (768 - len(pal)))
    img.info["transparency"] = bytes([0] + [WIND_ALPHA] * len(WIND_COLORS))
    return img


def _swatch(rgb: Any, label: str) -> str:
    r, g, b = rgb[:3]
    return f'<div class="sw"><i style="background:rgb({r},{g},{b})"></i>{label}</div>'


def wind_legend() -> str:
    """HTML legend of the wind classes."""
    lims = list(WIND_CLASSES_M_S)
    rows = []
    for i, rgb in enumerate(WIND_COLORS):
        hi = f"–{lims[i + 1]:g}" if i + 1 < len(lims) else "+"
        rows.append(_swatch(rgb, f"{lims[i]:g}{hi} m/s {WIND_CLASS_NAMES[i]}"))
    return "<b>Sustained wind now</b>" + "".join(rows)


def wind_layer(results: Any) -> MapLayer | None:
    """The 1-min sustained wind at every output time as images switched by the map's clock.

    Reads ``frames["wind_speed"]`` and ``frame_transforms["wind_speed"]``.
    """
    got = _wind(results)
    if got is None:
        return None
    times, stack, _, transform, crs = got
    images: list[str] = []
    index: list[int] = []
    for i in range(len(times)):  # identical frames (calm ones) share one image
        u = png_data_uri(wind_palette_image(stack[i]))
        if not images or images[-1] != u:
            images.append(u)
        index.append(len(images) - 1)
    bounds = grid_corners_lonlat(crs, transform, stack.shape[1:])
    layer = pdk.Layer("BitmapLayer", id="wind-speed", image=pdk.types.String(images[0]),
                      bounds=bounds, texture_parameters=_NEAREST)  # fmt: skip
    anim = {"type": "frames", "times": times.tolist(), "frame": index, "images": images}
    grid = getattr(results, "grid", None)
    cell = grid.dx_m if grid is not None else (
        ((getattr(results, "summary", None) or {}).get("world") or {}).get("cell_size_m"))
    notes = []
    if cell is None or abs(transform.a) > float(cell) * 1.01:
        notes.append(f"wind drawn at {abs(transform.a):g} m blocks (mean sustained wind of each)")
    return MapLayer("Wind", [layer], anim={"wind-speed": anim}, legend=wind_legend(),
                    notes=notes, time_range=(float(times[0]), float(times[-1])))  # fmt: skip


def _arrow_cells(shape: tuple[int, int], across: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of an even, sparse set of frame cells (about *across* along the
    longer side), away from the edges."""
    rows, cols = shape
    step = max(1, math.ceil(max(rows, cols) / across))
    r = np.arange(step // 2, rows, step)
    c = np.arange(step // 2, cols, step)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    return rr.ravel(), cc.ravel()


def arrow_path(lon: float, lat: float, bearing_deg: float, length_m: float) -> list[list[float]]:
    """An arrow centred on (lon, lat) pointing to *bearing_deg* (clockwise from north),
    *length_m* long, with a head: five points [tail, tip, barb, tip, barb].

    The same construction as the map script's (which redraws the arrows over time).
    """
    if not length_m > 0:
        return [[lon, lat], [lon, lat]]
    kx = 1.0 / (111_320.0 * math.cos(math.radians(lat)))
    ky = 1.0 / 111_320.0
    dx, dy = math.sin(math.radians(bearing_deg)), math.cos(math.radians(bearing_deg))

    def p(s: float, n: float) -> list[float]:
        return [lon + (s * dx + n * dy) * kx, lat + (s * dy - n * dx) * ky]

    h = 0.3 * length_m
    return [p(-length_m / 2, 0), p(length_m / 2, 0), p(length_m / 2 - h, h / 2),
            p(length_m / 2, 0), p(length_m / 2 - h, -h / 2)]  # fmt: skip


def wind_arrows_layer(results: Any, *, across: int = ARROWS_ACROSS) -> MapLayer | None:
    """Sparse arrows of the wind: where it blows to, length in proportion to the speed.

    Reads ``frames["wind_speed"]``, ``frames["wind_direction"]`` (degrees the wind
    blows from) and ``frame_transforms["wind_speed"]``. The longest arrow (the
    strongest block wind of the run) is 0.8 of the spacing between arrows.
    """
    got = _wind(results)
    if got is None or got[2] is None:
        return None
    times, speed, direction, tr, crs = got
    rr, cc = _arrow_cells(speed.shape[1:], across)
    s = speed[:, rr, cc].astype(float)
    keep = np.isfinite(s).any(axis=0)
    rr, cc, s = rr[keep], cc[keep], s[:, keep]
    if rr.size == 0:
        return None
    to = (direction[:, rr, cc].astype(float) + 180.0) % 360.0
    s = np.nan_to_num(s, nan=0.0)
    to = np.nan_to_num(to, nan=0.0)
    x = tr.c + (cc + 0.5) * tr.a
    y = tr.f + (rr + 0.5) * tr.e
    lon, lat = to_lonlat(crs, x, y)
    step = max(1, math.ceil(max(speed.shape[1:]) / across)) * abs(tr.a)
    vmax = float(s.max())
    k = 0.8 * step / vmax if vmax > 0 else 0.0  # m of arrow per m/s
    data = []
    for j in range(rr.size):
        lo, la = round(float(lon[j]), 6), round(float(lat[j]), 6)
        data.append({
            "c": [lo, la], "v": np.round(s[:, j], 2).tolist(), "b": np.round(to[:, j], 1).tolist(),
            "p": arrow_path(lo, la, float(to[0, j]), k * float(s[0, j])),
        })  # fmt: skip
    layer = pdk.Layer("PathLayer", id="wind-arrows", data=data, get_path="p", get_width=2,
                      width_units=PIXELS, width_min_pixels=1, get_color=[40, 40, 40, 210],
                      cap_rounded=True, joint_rounded=True)  # fmt: skip
    anim = {"type": "arrows", "times": times.tolist(), "k": k}
    legend = (f"<b>Wind arrows</b><div>blowing to; the longest is {vmax:.0f} m/s</div>")
    return MapLayer("Wind arrows", [layer], anim={"wind-arrows": anim}, legend=legend,
                    time_range=(float(times[0]), float(times[-1])))  # fmt: skip


def storm_track_layer(results: Any) -> MapLayer | None:
    """The storm's track as run: a line, and its points with their time and pressure.

    Reads ``tables["storm_track"]`` (``time_s, lon, lat, pressure_hpa``, ...).
    """
    track = (getattr(results, "tables", None) or {}).get("storm_track")
    if track is None or len(track) == 0:
        return None
    lon = track["lon"].to_numpy(float)
    lat = track["lat"].to_numpy(float)
    path = [[round(float(a), 5), round(float(b), 5)] for a, b in zip(lon, lat, strict=True)]
    points = [{"c": path[i], "t": float(track["time_s"].iloc[i]),
               "p": round(float(track["pressure_hpa"].iloc[i]), 1)}
              for i in range(len(track))]  # fmt: skip
    line = pdk.Layer("PathLayer", id="storm-track", data=[{"p": path}], get_path="p",
                     get_width=3, width_units=PIXELS, get_color=[110, 40, 150, 220],
                     cap_rounded=True, joint_rounded=True)  # fmt: skip
    dots = pdk.Layer("ScatterplotLayer", id="storm-track-points", data=points,
                     get_position="c", get_radius=6, radius_units=PIXELS,
                     get_fill_color=[110, 40, 150, 240], get_line_color=[255, 255, 255, 255],
                     stroked=True, line_width_min_pixels=1, pickable=True,
                     auto_highlight=True)  # fmt: skip
    legend = ('<b>Storm track</b><div class="sw"><i style="background:rgb(110,40,150)"></i>'
              f"{len(points)} track points ({html.escape('time, pressure')} on hover)</div>")
    return MapLayer("Storm track", [line, dots], legend=legend,
                    tips={"storm-track-points": "storm"})  # fmt: skip
