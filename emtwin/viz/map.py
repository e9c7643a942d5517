"""The animated map of a run: one standalone HTML file (pydeck/deck.gl) with a time slider.

``build_map(results)`` stacks the layer builders of :mod:`emtwin.viz.layers`
and :mod:`emtwin.viz.agents` (each skipped when its data is absent) into a
``pydeck.Deck``, and writes a page that holds pydeck's deck.gl JSON, deck.gl
itself (pydeck's offline bundle, so no network is needed), the animation data,
and a small script: a time slider, play/pause, a clock, layer toggles, legends
and tooltips. Without ``basemap`` nothing is fetched from the network.

When the file would exceed ``max_bytes`` the frame, trip and terrain budgets
are halved and the map is built again; the page says what was sampled.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydeck as pdk

from emtwin.errors import EmtwinError
from emtwin.sim.outputs import json_safe
from emtwin.viz import agents, layers, storm
from emtwin.viz._common import ROAD_STATE_NAMES, MapLayer, clock, to_lonlat
from emtwin.viz._template import BODY, CSS, SCRIPT

__all__ = ["build_map", "write_map", "map_layers", "BASEMAPS", "MAX_MAP_BYTES"]

log = logging.getLogger(__name__)

#: The map's size limit, bytes (a city-scale run stays under it by sampling).
MAX_MAP_BYTES = 50_000_000
#: ``basemap`` names and their CARTO styles (tiles from the network).
BASEMAPS = {
    "light": pdk.map_styles.CARTO_LIGHT,
    "dark": pdk.map_styles.CARTO_DARK,
    "road": pdk.map_styles.CARTO_ROAD,
}
_MAPBOX_CSS = "https://api.tiles.mapbox.com/mapbox-gl-js/v1.13.2/mapbox-gl.css"
#: Playback speeds offered: simulated seconds per real second, and labels.
_SPEEDS = [(30, "30 s/s"), (60, "1 min/s"), (120, "2 min/s"), (300, "5 min/s"),
           (600, "10 min/s"), (900, "15 min/s"), (1800, "30 min/s"), (3600, "1 h/s")]  # fmt: skip


def map_layers(results: Any, *, scale: float = 1.0) -> list[MapLayer]:
    """Every layer group the run has data for, bottom to top.

    Parameters
    ----------
    results
        A run's Results.
    scale
        Multiplies the sampling budgets (flood frames, trips, terrain pixels); < 1
        makes a smaller file.
    """
    builders: list[Callable[[], MapLayer | None]] = [
        lambda: layers.terrain_layer(results, max_pixels=int(1_000_000 * scale)),
        lambda: layers.max_depth_layer(results, max_pixels=int(2_000_000 * scale)),
        lambda: layers.flood_layer(results, max_bytes=15e6 * scale),
        lambda: storm.wind_layer(results),
        lambda: layers.buildings_layer(results),
        lambda: layers.roads_layer(results),
        lambda: storm.wind_arrows_layer(results),
        lambda: storm.storm_track_layer(results),
        lambda: agents.trips_layer(results, max_points=int(600_000 * scale)),
        lambda: agents.units_layer(results, max_points=int(150_000 * scale)),
        lambda: agents.shelters_layer(results),
        lambda: agents.facilities_layer(results),
        lambda: agents.stranded_layer(results),
        lambda: agents.calls_layer(results),
    ]
    return [m for m in (b() for b in builders) if m is not None]


def _bundle() -> str:
    path = Path(pdk.__file__).parent / "nbextension" / "static" / "index.js"
    if not path.is_file():
        raise EmtwinError(
            f"pydeck's offline deck.gl bundle is missing ({path}); reinstall pydeck>=0.8"
        )
    js = path.read_text(encoding="utf-8")
    cut = js.rfind("//# sourceMappingURL=")
    return js[:cut] if cut > 0 else js


def _view(results: Any) -> pdk.ViewState:
    x0, y0, x1, y1 = results.grid.bounds
    lon, lat = to_lonlat(results.crs, np.array([x0, x1, (x0 + x1) / 2]),
                         np.array([y0, y1, (y0 + y1) / 2]))  # fmt: skip
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    # deck.gl (512 px tiles): metres per pixel at zoom z = 78271.52 cos(lat) / 2^z;
    # fit the grid in about 1000 x 600 px
    z = math.log2(78271.52 * math.cos(math.radians(float(lat[2]))) * min(1000 / w, 600 / h))
    return pdk.ViewState(longitude=round(float(lon[2]), 6), latitude=round(float(lat[2]), 6),
                         zoom=round(min(max(z, 1.0), 19.0), 2), pitch=0, bearing=0)  # fmt: skip


def _time_range(results: Any, groups: list[MapLayer]) -> tuple[float, float]:
    ends = [g.time_range[1] for g in groups if g.time_range]
    run = (getattr(results, "summary", None) or {}).get("run") or {}
    if run.get("duration_s") is not None:
        ends.append(float(run["duration_s"]))
    elif getattr(results, "scenario", None) is not None:
        ends.append(float(results.scenario.duration))
    ts = getattr(results, "timeseries", None)
    if ts is not None and len(ts) and "time_s" in ts:
        ends.append(float(ts["time_s"].max()))
    return 0.0, max(ends, default=0.0)


def _script_json(obj: Any) -> str:
    """JSON for a ``<script type="application/json">`` element (``</`` escaped; NaN as null)."""
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN somewhere: clean the whole (slower)
        text = json.dumps(json_safe(obj), separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _render(results: Any, groups: list[MapLayer], *, basemap: str | None, title: str) -> str:
    t0, t1 = _time_range(results, groups)
    deck_layers = [lyr for g in groups for lyr in g.layers]
    kw: dict[str, Any] = {"map_provider": None, "map_style": None}
    if basemap is not None:
        kw = {"map_provider": "carto", "map_style": BASEMAPS[basemap]}
    deck = pdk.Deck(layers=deck_layers, initial_view_state=_view(results),
                    views=[pdk.View(type="MapView", controller=True)], **kw)  # fmt: skip
    # pydeck serialises with Python's slow indenting encoder: leave the (large) data out
    # of its JSON and put it back after
    data = {lyr.id: lyr.data for lyr in deck_layers}
    try:
        for lyr in deck_layers:
            lyr.data = []
        deck_json = json.loads(deck.to_json())
    finally:
        for lyr in deck_layers:
            lyr.data = data[lyr.id]
    for lyr in deck_json["layers"]:
        lyr["data"] = data[lyr["id"]]
    notes = [n for g in groups for n in g.notes]
    summary = getattr(results, "summary", None) or {}
    run = summary.get("run") or {}
    sub = f"seed {run.get('seed', '?')}, {clock(t1)[2:]} h simulated"
    default_speed = min(_SPEEDS, key=lambda s: abs(math.log(s[0] / max(t1 / 40.0, 1.0))))[0]
    cfg = {
        "title": title,
        "subtitle": sub,
        "t0": t0,
        "t1": t1,
        "step": 1,
        "speeds": [list(s) for s in _SPEEDS],
        "speed": default_speed,
        "groups": [
            {
                "label": g.group,
                "ids": [lyr.id for lyr in g.layers],
                "visible": g.visible,
                "legend": g.legend,
            }
            for g in groups
        ],  # fmt: skip
        "anim": {k: v for g in groups for k, v in g.anim.items()},
        "tips": {k: v for g in groups for k, v in g.tips.items()},
        "notes": notes,
        "sampled": bool(notes),
        "road_states": list(ROAD_STATE_NAMES),
    }
    from emtwin import __version__

    head_extra = f'<link rel="stylesheet" href="{_MAPBOX_CSS}">' if basemap else ""
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<title>{_esc(title)} · emtwin map</title>\n",
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f'<meta name="generator" content="emtwin {__version__}, pydeck {pdk.__version__}">\n',
        f'<meta name="emtwin-sampled" content="{_esc("; ".join(notes)) or "no"}">\n',
        head_extra, f"<style>{CSS}</style>\n</head>\n<body>\n", BODY,
        f'<script type="application/json" id="deck-json">{_script_json(deck_json)}'
        "</script>\n",
        f'<script type="application/json" id="emtwin-config">{_script_json(cfg)}'
        "</script>\n",
        f"<script>{_bundle()}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
    ])  # fmt: skip


def _esc(s: str) -> str:
    import html

    return html.escape(str(s), quote=True)


def build_map(
    results: Any,
    *,
    basemap: str | None = None,
    title: str | None = None,
    max_bytes: int = MAX_MAP_BYTES,
) -> str:
    """The map of a run as one standalone HTML page (a string).

    Parameters
    ----------
    results
        A run's Results (only read).
    basemap
        None (default: offline, the terrain hillshade underneath), or one of
        ``"light"``, ``"dark"``, ``"road"``: CARTO tiles fetched from the network.
    title
        The map's title (default: the scenario name).
    max_bytes
        Sampling budgets are halved until the page fits in this many bytes
        (at most four times; then it is written as it is, with a warning).

    Raises
    ------
    EmtwinError
        When *results* has no World, or *basemap* is not a known name.
    """
    if getattr(results, "grid", None) is None:
        raise EmtwinError("build_map: the Results hold no World grid; nothing to draw")
    if basemap is not None and basemap not in BASEMAPS:
        raise EmtwinError(f"build_map: basemap must be None or one of {sorted(BASEMAPS)}, "
                          f"got {basemap!r}")  # fmt: skip
    summary = getattr(results, "summary", None) or {}
    title = title or (summary.get("run") or {}).get("scenario") or results.grid.name
    scale = 1.0
    for attempt in range(5):
        groups = map_layers(results, scale=scale)
        page = _render(results, groups, basemap=basemap, title=title)
        size = len(page.encode("utf-8"))
        if size <= max_bytes or attempt == 4:
            break
        log.info("map is %.1f MB, over %.1f MB: halving the sampling budgets", size / 1e6,
                 max_bytes / 1e6)  # fmt: skip
        scale /= 2
    if size > max_bytes:
        log.warning("map.html is %.1f MB, over the %.1f MB budget even at the smallest sampling",
                    size / 1e6, max_bytes / 1e6)  # fmt: skip
    return page


def write_map(results: Any, path: str | Path, **options: Any) -> Path:
    """Write :func:`build_map` of *results* to *path* (options as for build_map); return it."""
    path = Path(path)
    path.write_text(build_map(results, **options), encoding="utf-8")
    return path
