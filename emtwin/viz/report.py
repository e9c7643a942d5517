"""The run report: one self-contained HTML page with headline figures, charts and tables.

The headline figures are the ``summary.json`` values (each cell carries the
exact value in ``data-key`` / ``data-value``); charts are embedded as base64
PNGs so the page reads without a server, and it links to the map beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emtwin.viz._html import HEADLINES, data_value, esc, fmt_duration, fmt_value, img, page, table
from emtwin.viz.charts import CHARTS, render_charts

__all__ = [
    "render_report",
    "write_report",
    "shelters_rows",
    "stations_rows",
    "worst_roads_rows",
    "gauges_rows",
    "buildings_rows",
    "facilities_rows",
    "life_loss_line",
]

#: Output files linked from the report when they sit beside it.
_FILES = ("map.html", "summary.json", "timeseries.parquet", "events.parquet", "roads.geojson",
          "gauges.csv", "trips.csv", "unit_trips.csv", "calls.csv", "shelters.csv", "units.csv",
          "max_depth.tif", "arrival_time.tif", "hazard_class.tif", "max_wind.tif",
          "max_gust.tif", "wind_arrival.tif", "storm_track.csv", "wind_gauges.csv",
          "warning_zones.csv", "buildings.parquet", "households.parquet", "calls.geojson",
          "units.geojson", "scenario.yaml")  # fmt: skip


def _tables(results: Any) -> dict[str, pd.DataFrame]:
    return getattr(results, "tables", None) or {}


def _duration(results: Any) -> float:
    run = (getattr(results, "summary", None) or {}).get("run") or {}
    if run.get("duration_s") is not None:
        return float(run["duration_s"])
    sc = getattr(results, "scenario", None)
    return float(sc.duration) if sc is not None else float("nan")


def _when(t: float) -> str:
    return fmt_duration(t) if t is not None and np.isfinite(t) else "never"


def shelters_rows(results: Any) -> list[list[Any]]:
    """Rows: shelter, capacity, peak occupancy, time of the peak, at the end, peak % full."""
    sh = (getattr(results, "places", None) or {}).get("shelters")
    occ = _tables(results).get("shelters")
    names: dict[str, float] = {}
    if sh is not None:
        names = {str(n): float(c) for n, c in zip(sh["name"], sh["capacity"], strict=True)}
    if occ is not None and len(occ):
        for n in occ["shelter"].astype(str).unique():
            names.setdefault(n, float("nan"))
    rows = []
    for name, cap in names.items():
        if occ is not None and len(occ) and (occ["shelter"].astype(str) == name).any():
            g = occ[occ["shelter"].astype(str) == name].sort_values("time_s")
            if "capacity" in g and np.isfinite(g["capacity"].max()):
                cap = float(g["capacity"].max())
            i = int(np.argmax(g["occupancy"].to_numpy()))
            peak, t_peak = float(g["occupancy"].iloc[i]), float(g["time_s"].iloc[i])
            end = float(g["occupancy"].iloc[-1])
            full = f"{100 * peak / cap:.0f} %" if cap and np.isfinite(cap) else "–"
            rows.append([name, f"{cap:,.0f}", f"{peak:,.0f}", _when(t_peak), f"{end:,.0f}", full])
        else:
            rows.append([name, f"{cap:,.0f}", "–", "–", "–", "–"])
    return rows


def stations_rows(results: Any) -> list[list[Any]]:
    """Rows: station, units by type, calls handled, busy time, utilisation over the run."""
    st = (getattr(results, "places", None) or {}).get("stations")
    units = _tables(results).get("units")
    names = [str(n) for n in st["name"]] if st is not None else []
    if units is not None and len(units):
        names += [n for n in units["station"].astype(str).unique() if n not in names]
    dur = _duration(results)
    rows = []
    for name in names:
        if units is None or not len(units) or not (units["station"].astype(str) == name).any():
            rows.append([name, "none", "–", "–", "–"])
            continue
        u = units[units["station"].astype(str) == name]
        kinds = ", ".join(f"{t} × {n}" for t, n in u["type"].value_counts().sort_index().items())
        calls = f"{int(u['calls'].sum()):,}" if "calls" in u else "–"
        busy = float(u["busy_s"].sum()) if "busy_s" in u else float("nan")
        util = (f"{100 * busy / (len(u) * dur):.1f} %"
                if np.isfinite(busy) and np.isfinite(dur) and dur > 0 else "–")  # fmt: skip
        rows.append([name, kinds, calls, fmt_duration(busy) if np.isfinite(busy) else "–", util])
    return rows


def worst_roads_rows(results: Any, n: int = 15) -> tuple[list[str], list[list[Any]]]:
    """The roads closed first (then the deepest), both directions and all edges of a road together.

    Returns the headers and up to *n* rows: road, name, edges closed, first
    closed, deepest water, and the maximum of each per-edge column the
    components added (``tables["roads"]``, e.g. ``peak_queue``).
    """
    roads = getattr(results, "roads", None)
    if roads is None:
        return [], []
    df = pd.DataFrame({"road": roads["road_id"].astype(str).to_numpy(),
                       "name": roads["name"].astype(str).to_numpy(),
                       "first": roads["first_closed_s"].to_numpy(float),
                       "depth": roads["max_depth_m"].to_numpy(float)})  # fmt: skip
    extra = _tables(results).get("roads")
    cols = []
    if extra is not None and len(extra) == len(df):
        for c in extra.columns:
            if np.issubdtype(np.asarray(extra[c]).dtype, np.number):
                df[c] = np.asarray(extra[c])
                cols.append(c)
    g = df.groupby("road", sort=False)
    agg = pd.DataFrame({
        "name": g["name"].first(), "closed": g["first"].apply(lambda s: int(np.isfinite(s).sum())),
        "first": g["first"].min(), "depth": g["depth"].max(),
        **{c: g[c].max() for c in cols},
    })  # fmt: skip
    agg = agg[(agg["closed"] > 0) | (agg["depth"] > 0)]
    agg = agg.sort_values(["first", "depth"], ascending=[True, False], na_position="last").head(n)
    headers = ["road", "name", "edges closed", "first closed", "deepest water, m", *cols]
    rows = [[road, r["name"], r["closed"], _when(r["first"]), f"{r['depth']:.2f}",
             *[f"{r[c]:,.4g}" for c in cols]] for road, r in agg.iterrows()]  # fmt: skip
    return headers, rows


def gauges_rows(results: Any) -> list[list[Any]]:
    """Rows: gauge, deepest water (m), when, fastest flow (m/s), highest level (m); and,
    when some gauge has a cross-section, its peak discharge (m3/s) and when ("–" without)."""
    t = _tables(results).get("gauges")
    if t is None or not len(t):
        return []
    flows = "flow_m3_s" in t
    rows = []
    for name, g in t.groupby("gauge", sort=False):
        i = int(np.argmax(g["depth_m"].to_numpy()))
        row = [name, f"{g['depth_m'].iloc[i]:.3f}", _when(float(g["time_s"].iloc[i])),
               f"{g['speed_m_s'].max():.2f}" if "speed_m_s" in g else "–",
               f"{g['level_m'].max():.3f}" if "level_m" in g else "–"]  # fmt: skip
        if flows:
            q = g["flow_m3_s"].to_numpy(dtype=float)
            if np.isfinite(q).any():
                k = int(np.nanargmax(q))
                row += [f"{q[k]:,.2f}", _when(float(g["time_s"].iloc[k]))]
            else:
                row += ["–", "–"]
        rows.append(row)
    return rows


def facilities_rows(results: Any) -> list[list[Any]]:
    """Rows of the ``facility_lost`` events in time order: when, facility, type, cause,
    depth (m) and what fed it (for a loss by cascade)."""
    ev = getattr(results, "events", None)
    if ev is None or not len(ev):
        return []
    lost = ev[ev["kind"] == "facility_lost"].sort_values("time_s", kind="stable")
    rows = []
    for r in lost.itertuples():
        d = json.loads(r.details) if isinstance(r.details, str) and r.details else {}
        depth = d.get("depth_m")
        rows.append([_when(float(r.time_s)), str(r.entity), str(d.get("facility", "–")),
                     str(d.get("cause", "–")), "–" if depth is None else f"{float(depth):.2f}",
                     str(d.get("fed_by", "–"))])  # fmt: skip
    return rows


def life_loss_line(summary: dict[str, Any]) -> str:
    """One sentence on the expected life loss and its 5-95 % range ("" without it)."""
    c = summary.get("consequences") or {}
    if c.get("life_loss_mean") is None:
        return ""
    text = (f"Expected loss of life {c['life_loss_mean']:.2f} (5-95 %: {c.get('life_loss_p5', 0):g}"
            f" to {c.get('life_loss_p95', 0):g})")
    if c.get("people_exposed") is not None:
        text += f" among {c['people_exposed']:,.0f} people exposed to water"
    return text + "."


def buildings_rows(results: Any) -> list[list[Any]]:
    """Rows by kind of building: count, damaged, damage, deepest water (m), mean ratio."""
    t = _tables(results).get("buildings")
    if t is None or not len(t):
        return []
    col = "kind" if "kind" in t else "occupancy"
    rows = []
    for kind, g in t.groupby(col, sort=True):
        rows.append([kind, f"{len(g):,}", f"{int((g['damage_ratio'] > 0).sum()):,}",
                     f"{g['damage'].sum():,.0f}", f"{g['max_depth_m'].max():.2f}",
                     f"{100 * g['damage_ratio'].mean():.1f} %"])  # fmt: skip
    return rows


def _headlines(summary: dict[str, Any]) -> str:
    blocks = []
    for section, keys in HEADLINES.items():
        part = summary.get(section) or {}
        if section != "run" and all(part.get(k) is None for k, _, _ in keys):
            blocks.append(
                f'<table data-section="{section}"><tr><th>{section}</th></tr>'
                f'<tr><td class="none">no {section} in this run</td></tr></table>'
            )
            continue
        rows = []
        for key, label, unit in keys:
            v = part.get(key)
            shown = fmt_value(v, "s" if unit == "s" else unit)
            rows.append(f'<tr><th>{esc(label)}</th><td class="num" data-key="{section}.{key}" '
                        f'data-value="{data_value(v)}">{shown}</td></tr>')  # fmt: skip
        blocks.append(
            f'<table data-section="{section}"><tr><th colspan="2">{section}</th></tr>'
            f"{''.join(rows)}</table>"
        )
    return '<div class="headlines">' + "".join(blocks) + "</div>"


def render_report(
    results: Any,
    *,
    charts: dict[str, bytes] | None = None,
    map_href: str | None = "map.html",
    files: Sequence[str] = (),
) -> str:
    """The report of one run as a standalone HTML page (a string).

    Parameters
    ----------
    results
        A run's Results (only read).
    charts
        PNG bytes by chart name, as from :func:`emtwin.viz.charts.render_charts`
        (rendered here when None).
    map_href
        Link to the map (relative to the report), or None for no link.
    files
        Output files beside the report to link to.
    """
    summary = getattr(results, "summary", None) or {}
    run = summary.get("run") or {}
    sc = getattr(results, "scenario", None)
    charts = render_charts(results) if charts is None else charts
    title = str(run.get("scenario") or (sc.name if sc is not None else "run"))
    from emtwin import __version__

    dur = _duration(results)
    parts = [f"<h1>{esc(title)}</h1>"]
    if sc is not None and sc.description:
        parts.append(f'<p class="sub">{esc(sc.description)}</p>')
    parts.append(f'<p class="sub">seed {esc(run.get("seed"))}, '
                 f"{fmt_duration(dur) if np.isfinite(dur) else '?'} simulated "
                 f"(h:mm:ss), components: {esc(', '.join(run.get('components') or []))}; "
                 f"report by emtwin {__version__}</p>")  # fmt: skip
    if map_href:
        parts.append(f'<a class="button" id="map-link" href="{esc(map_href)}">'
                     "Open the animated map</a>")  # fmt: skip
    parts.append("<h2>Headline figures</h2>" + _headlines(summary))
    parts.append("<h2>Charts</h2>")
    if charts:
        parts += [img(png, CHARTS[name][0] if name in CHARTS else name, name=name)
                  for name, png in charts.items()]  # fmt: skip
    else:
        parts.append('<p class="none">no time series to chart</p>')
    sh = shelters_rows(results)
    if sh:
        parts.append("<h2>Shelters</h2>" + table(
            ["shelter", "capacity", "peak occupancy", "peak at", "at the end", "peak full"], sh,
            numeric=[False, True, True, False, True, True]))  # fmt: skip
    st = stations_rows(results)
    if st:
        parts.append("<h2>Stations</h2>" + table(
            ["station", "units", "calls handled", "busy (h:mm:ss)", "utilisation"], st,
            numeric=[False, False, True, True, True]))  # fmt: skip
    headers, roads = worst_roads_rows(results)
    if roads:
        parts.append("<h2>Worst roads</h2><p class=\"sub\">closed first, then the deepest "
                     "water; times are h:mm:ss since the start</p>"
                     + table(headers, roads, numeric=[False, False, True, False, True]
                             + [True] * (len(headers) - 5)))  # fmt: skip
    bl = buildings_rows(results)
    if bl:
        parts.append("<h2>Consequences: buildings</h2><p class=\"sub\">damage from the JRC "
                     "depth-damage curves at the deepest water over each footprint</p>" + table(
            ["kind", "buildings", "damaged", "damage", "deepest water, m", "mean damage ratio"],
            bl, numeric=[False, True, True, True, True, True]))  # fmt: skip
    life = life_loss_line(summary)
    if life:
        parts.append(f'<h2>Consequences: life</h2><p id="life-loss">{esc(life)}</p>')
    fac = facilities_rows(results)
    if fac:
        parts.append("<h2>Consequences: facilities lost</h2>" + table(
            ["at", "facility", "type", "cause", "depth, m", "fed by"], fac,
            numeric=[False, False, False, False, True, False]))  # fmt: skip
    gauges = gauges_rows(results)
    if gauges:
        head = ["gauge", "deepest water, m", "at", "fastest flow, m/s", "highest level, m"]
        extra = ["peak discharge, m³/s", "at"] if len(gauges[0]) > len(head) else []
        parts.append("<h2>Gauges</h2>" + table(head + extra, gauges,
                     numeric=[False, True, False, True, True] + [True, False][:len(extra)]))
    ev = getattr(results, "events", None)
    if ev is not None and len(ev):
        counts = ev["kind"].value_counts().sort_index()
        parts.append(
            "<h2>Events</h2>"
            + table(
                ["kind", "count"], [[k, f"{v:,}"] for k, v in counts.items()], numeric=[False, True]
            )
        )
    if files:
        links = "".join(f'<li><a href="{esc(f)}">{esc(f)}</a></li>' for f in files)
        parts.append(f"<h2>Files</h2><ul>{links}</ul>")
    return page(f"{title} · emtwin report", "\n".join(parts))


def write_report(
    results: Any,
    path: str | Path,
    *,
    charts: dict[str, bytes] | None = None,
    map_href: str | None = "map.html",
) -> Path:
    """Write :func:`render_report` to *path*, linking the output files beside it; return it."""
    path = Path(path)
    files = [f for f in _FILES if (path.parent / f).exists()]
    path.write_text(render_report(results, charts=charts, map_href=map_href, files=files),
                    encoding="utf-8")  # fmt: skip
    return path
