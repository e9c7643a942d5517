"""Map layers of people and the response: trips, shelters, calls, stranded people, stations.

Each builder reads the tables of the cross-component convention
(``Results.tables``: ``trips``, ``shelters``, ``calls``, ``units``) and the
World's places, and returns a :class:`~emtwin.viz._common.MapLayer`, or None
when the run has no such data (a flood-only run has no trips, for example).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pydeck as pdk

from emtwin.sim.outputs import json_safe
from emtwin.viz._common import PIXELS, PRIORITY_COLORS, MapLayer, to_lonlat

__all__ = [
    "trips_layer",
    "units_layer",
    "shelters_layer",
    "calls_layer",
    "stranded_layer",
    "facilities_layer",
    "sample_trips",
]

#: Trip colours by kind, RGB.
TRIP_COLORS = {"vehicle": (255, 204, 0), "pedestrian": (0, 200, 120), "unit": (230, 20, 140)}
CALL_STATE_COLORS = {"waiting": (255, 255, 255), "responding": (20, 90, 220),
                     "done": (60, 60, 60)}  # fmt: skip


def _table(results: Any, name: str, cols: tuple[str, ...]) -> pd.DataFrame | None:
    t = getattr(results, "tables", {}).get(name)
    if t is None or len(t) == 0 or not getattr(results, "crs", ""):
        return None
    missing = [c for c in cols if c not in t.columns]
    if missing:
        import logging

        logging.getLogger(__name__).warning(
            "table %r lacks columns %s; its map layer is left out", name, missing
        )
        return None
    return t


def sample_trips(
    trips: pd.DataFrame, *, max_points: int, seed: int = 0
) -> tuple[pd.DataFrame, int, int]:
    """Whole trips drawn at random until *max_points* waypoints are used.

    Returns the kept rows (sorted by id, then time), the number of trips kept
    and the number there were. The draw is seeded, so a map is reproducible.
    """
    t = trips.sort_values(["id", "time_s"], kind="stable")
    ids, counts = np.unique(t["id"].astype(str).to_numpy(), return_counts=True)
    if counts.sum() <= max_points:
        return t, len(ids), len(ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    keep = order[np.cumsum(counts[order]) <= max_points]
    chosen = set(ids[np.sort(keep)].tolist())
    kept = t[t["id"].astype(str).isin(chosen)]
    return kept, len(chosen), len(ids)


def _trip_data(results: Any, t: pd.DataFrame) -> list[dict[str, Any]]:
    t = t[np.isfinite(t[["time_s", "x", "y"]].to_numpy(dtype=float)).all(axis=1)]
    lon, lat = to_lonlat(results.crs, t["x"].to_numpy(), t["y"].to_numpy())
    pts = np.round(np.column_stack([lon, lat]), 6).tolist()
    ts = np.round(t["time_s"].to_numpy(dtype=float), 1).tolist()
    ids = t["id"].astype(str).to_numpy()
    kinds = t["kind"].astype(str).to_numpy()
    cut = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.r_[0, cut]
    ends = np.r_[cut, len(ids)]
    return [{"id": ids[a], "k": kinds[a], "p": pts[a:b], "t": ts[a:b]}
            for a, b in zip(starts, ends, strict=True) if b - a >= 2]  # fmt: skip


def _evacuation_sample_note(results: Any) -> str | None:
    """What the evacuation's own trip sample left out (summary ``evacuation.trips_sampled``).

    The evacuation records the trips of a random sample of households only (see
    :mod:`emtwin.sim.evacuation.records`); None when it recorded them all.
    """
    evac = (getattr(results, "summary", None) or {}).get("evacuation") or {}
    if evac.get("trips_sampled") is not True:
        return None
    n, of = evac.get("trips_households"), evac.get("trips_of_households")
    if isinstance(n, int | float) and isinstance(of, int | float):
        return (f"evacuation trips: trips of {int(n):,} of {int(of):,} households recorded "
                "(evacuation sample)")  # fmt: skip
    return "evacuation trips: only a sample of households' trips recorded (evacuation sample)"


def trips_layer(
    results: Any,
    *,
    kinds: tuple[str, ...] = ("vehicle", "pedestrian"),
    max_points: int = 600_000,
    trail_s: float = 180.0,
    layer_id: str = "trips",
    group: str = "Evacuation trips",
    table: str = "trips",
) -> MapLayer | None:
    """Households moving (``trips`` rows of the given kinds) as a TripsLayer on the clock.

    Parameters
    ----------
    results
        A run's Results with ``tables["trips"]`` (``id, kind, time_s, x, y``; World CRS, m).
    kinds
        Which trip kinds to draw.
    max_points
        Waypoint budget; beyond it whole trips are sampled at random (seed 0)
        and the map says how many are shown. When the evacuation itself recorded
        only a sample of households (summary ``evacuation.trips_sampled``) the map
        says that too.
    trail_s
        Length of the fading trail behind each mover, s.
    table
        The table to read (``trips``; dispatch writes ``unit_trips`` beside an evacuation).
    """
    t = _table(results, table, ("id", "kind", "time_s", "x", "y"))
    if t is None:
        return None
    t = t[t["kind"].astype(str).isin(kinds)]
    if len(t) == 0:
        return None
    kept, n_kept, n_all = sample_trips(t, max_points=max_points)
    data = _trip_data(results, kept)
    colors = {k: list(TRIP_COLORS.get(k, (255, 255, 255))) for k in kinds}
    layer = pdk.Layer(
        "TripsLayer", id=layer_id, data=data, get_path="p", get_timestamps="t",
        get_color=list(colors[kinds[0]]), width_min_pixels=3 if "unit" in kinds else 2,
        trail_length=trail_s, current_time=0, fade_trail=True, cap_rounded=True,
        joint_rounded=True, pickable=False, opacity=0.9,
    )  # fmt: skip
    anim = {"type": "trips", "colors": colors}
    notes = []
    if table == "trips" and "unit" not in kinds:
        sampled = _evacuation_sample_note(results)
        if sampled:
            notes.append(sampled)
    if n_kept < n_all:
        notes.append(f"{group.lower()}: {n_kept:,} of {n_all:,} trips shown (random sample, "
                     "file size budget)")  # fmt: skip
    legend = "".join(
        f'<div class="sw"><i style="background:rgb({c[0]},{c[1]},{c[2]})"></i>{k}</div>'
        for k, c in colors.items()
        if (t["kind"] == k).any()
    )
    tr = (float(t["time_s"].min()), float(t["time_s"].max()))
    return MapLayer(group, [layer], anim={layer_id: anim}, legend=f"<b>{group}</b>{legend}",
                    notes=notes, time_range=tr)  # fmt: skip


def units_layer(results: Any, *, max_points: int = 150_000) -> MapLayer | None:
    """Response units moving along their routes: rows of kind ``unit`` of ``unit_trips``.

    Dispatch returns its movements as ``unit_trips`` when an evacuation runs too
    (else as ``trips``); both are read.
    """
    tables = getattr(results, "tables", {})
    name = "unit_trips" if tables.get("unit_trips") is not None else "trips"
    return trips_layer(results, kinds=("unit",), max_points=max_points, trail_s=240.0,
                       layer_id="units", group="Response units", table=name)  # fmt: skip


def shelters_layer(results: Any) -> MapLayer | None:
    """Shelters as circles sized by occupancy at the map's time, rings at capacity.

    Occupancy comes from ``tables["shelters"]`` (``time_s, shelter, occupancy,
    capacity``); without it the shelters are drawn at their capacity only.
    """
    sh = (getattr(results, "places", None) or {}).get("shelters")
    if sh is None or len(sh) == 0 or not results.crs:
        return None
    lon, lat = to_lonlat(results.crs, sh.geometry.x.to_numpy(), sh.geometry.y.to_numpy())
    occ = _table(results, "shelters", ("time_s", "shelter", "occupancy"))
    times: list[float] = []
    series: dict[str, list[float]] = {}
    caps = {str(n): float(c) for n, c in zip(sh["name"], sh["capacity"], strict=True)}
    if occ is not None:
        pv = occ.pivot_table(index="time_s", columns="shelter", values="occupancy", aggfunc="max")
        pv = pv.sort_index().ffill().fillna(0.0)
        times = pv.index.to_numpy(dtype=float).tolist()
        series = {str(c): np.round(pv[c].to_numpy(dtype=float), 1).tolist() for c in pv.columns}
        if "capacity" in occ.columns:
            for name, cap in occ.groupby("shelter")["capacity"].max().items():
                caps[str(name)] = float(cap)
    cmax = max(max(caps.values(), default=1.0), 1.0)
    data = []
    for i, name in enumerate(sh["name"].astype(str)):
        d = {"name": name, "pos": [round(float(lon[i]), 6), round(float(lat[i]), 6)],
             "cap": caps.get(name, 0.0), "o": series.get(name, [])}  # fmt: skip
        d["rc"] = round(4.0 + 26.0 * float(np.sqrt(d["cap"] / cmax)), 2)
        data.append(json_safe(d))
    ring = pdk.Layer(
        "ScatterplotLayer", id="shelter-capacity", data=data, get_position="pos",
        get_radius="rc", radius_units=PIXELS, stroked=True, filled=False,
        get_line_color=[0, 110, 60], line_width_min_pixels=2, pickable=True,
    )  # fmt: skip
    fill = pdk.Layer(
        "ScatterplotLayer", id="shelters", data=data, get_position="pos", get_radius=4,
        radius_units=PIXELS, get_fill_color=[0, 150, 80, 200], stroked=False, pickable=True,
    )  # fmt: skip
    anim = {}
    if times:
        anim["shelters"] = {"type": "series", "times": times, "field": "o", "r0": 2.0,
                            "k": 26.0 / float(np.sqrt(cmax))}  # fmt: skip
    inside = "people in it now" if times else "shelter (no occupancy in this run)"
    legend = ('<b>Shelters</b><div class="sw"><i style="border:2px solid rgb(0,110,60);'
              'border-radius:50%"></i>capacity</div><div class="sw"><i style="background:'
              f'rgb(0,150,80);border-radius:50%"></i>{inside}</div>')  # fmt: skip
    tr = (times[0], times[-1]) if times else None
    return MapLayer("Shelters", [ring, fill], anim=anim, legend=legend,
                    tips={"shelters": "shelter", "shelter-capacity": "shelter"},
                    time_range=tr)  # fmt: skip


def calls_layer(results: Any) -> MapLayer | None:
    """Calls for help appearing at their time, filled by priority, ringed by state.

    State at the map's time: waiting (until a unit is assigned, ``time_s +
    wait_s``), responding (until the unit arrives, ``time_s + response_s``),
    then done; a call never reached stays waiting and ends in its final state.
    """
    c = _table(results, "calls", ("id", "time_s", "x", "y", "priority"))
    if c is None:
        return None
    lon, lat = to_lonlat(results.crs, c["x"].to_numpy(), c["y"].to_numpy())
    t = c["time_s"].to_numpy(dtype=float)
    wait = c["wait_s"].to_numpy(dtype=float) if "wait_s" in c else np.full(len(c), np.nan)
    resp = c["response_s"].to_numpy(dtype=float) if "response_s" in c else np.full(len(c), np.nan)
    get = {k: (c[k].fillna("").astype(str).tolist() if k in c else [""] * len(c))
           for k in ("type", "needs", "state", "unit")}  # fmt: skip
    data = [
        {"id": str(i), "pos": [round(float(x), 6), round(float(y), 6)], "t": float(t0),
         "w": t0 + w, "r": t0 + r, "p": int(p), "ty": ty, "nd": nd, "st": st, "u": u}
        for i, x, y, t0, w, r, p, ty, nd, st, u in zip(
            c["id"], lon, lat, t, wait, resp, c["priority"].fillna(9), get["type"],
            get["needs"], get["state"], get["unit"], strict=True)
    ]  # fmt: skip
    layer = pdk.Layer(
        "ScatterplotLayer", id="calls", data=json_safe(data), get_position="pos", get_radius=6,
        radius_units=PIXELS, stroked=True, line_width_units=PIXELS, get_line_width=2,
        get_fill_color=[0, 0, 0, 0], get_line_color=[0, 0, 0, 0], pickable=True,
    )  # fmt: skip
    anim = {"type": "calls", "priority": [list(x) for x in PRIORITY_COLORS],
            "state": {k: list(v) for k, v in CALL_STATE_COLORS.items()}}  # fmt: skip
    legend = (
        "<b>Calls</b>"
        + "".join(
            f'<div class="sw"><i style="background:rgb{rgb};border-radius:50%"></i>priority {i + 1}'
            f"{'+' if i == len(PRIORITY_COLORS) - 1 else ''}</div>"
            for i, rgb in enumerate(PRIORITY_COLORS)
        )
        + "".join(
            f'<div class="sw"><i style="border:2px solid rgb{rgb};border-radius:50%"></i>{k}</div>'
            for k, rgb in CALL_STATE_COLORS.items()
        )
    )
    return MapLayer(
        "Calls",
        [layer],
        anim={"calls": anim},
        legend=legend,
        tips={"calls": "call"},
        time_range=(float(t.min()), float(t.max())),
    )


def stranded_layer(results: Any) -> MapLayer | None:
    """Where vehicles and households got stranded (``stranded`` events), from their time on."""
    ev = getattr(results, "events", None)
    if ev is None or len(ev) == 0 or not getattr(results, "crs", ""):
        return None
    ev = ev[ev["kind"] == "stranded"]
    rows = []
    for t, entity, details in ev[["time_s", "entity", "details"]].itertuples(index=False):
        d = json.loads(details) if details else {}
        if "x" in d and "y" in d:
            rows.append((float(t), str(entity), float(d["x"]), float(d["y"]),
                         int(d.get("people", 0)), bool(d.get("vehicle", False))))  # fmt: skip
    if not rows:
        return None
    t, ent, x, y, people, veh = map(np.asarray, zip(*rows, strict=True))
    lon, lat = to_lonlat(results.crs, x.astype(float), y.astype(float))
    data = [{"pos": [round(float(a), 6), round(float(b), 6)], "t": float(ti), "id": e,
             "n": int(n), "v": bool(v)}
            for a, b, ti, e, n, v in zip(lon, lat, t, ent, people, veh, strict=True)]  # fmt: skip
    color = [120, 40, 160, 230]
    layer = pdk.Layer(
        "ScatterplotLayer", id="stranded", data=data, get_position="pos", get_radius=5,
        radius_units=PIXELS, get_fill_color=[0, 0, 0, 0], pickable=True,
    )  # fmt: skip
    legend = ('<b>Stranded</b><div class="sw"><i style="background:rgb(120,40,160);'
              'border-radius:50%"></i>vehicle or household stuck</div>')  # fmt: skip
    return MapLayer("Stranded", [layer], anim={"stranded": {"type": "appear", "color": color}},
                    legend=legend, tips={"stranded": "stranded"},
                    time_range=(float(t.min()), float(t.max())))  # fmt: skip


def facilities_layer(results: Any) -> MapLayer | None:
    """Stations (with their units from ``tables["units"]``) and hospitals as fixed points."""
    places = getattr(results, "places", None) or {}
    if not places or not getattr(results, "crs", ""):
        return None
    units = _table(results, "units", ("id", "type", "station"))
    data = []
    for kind, gdf in (("station", places.get("stations")), ("hospital", places.get("hospitals"))):
        if gdf is None or len(gdf) == 0:
            continue
        lon, lat = to_lonlat(results.crs, gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
        for name, a, b in zip(gdf["name"].astype(str), lon, lat, strict=True):
            d = {"name": name, "kind": kind, "pos": [round(float(a), 6), round(float(b), 6)]}
            if kind == "station" and units is not None:
                mine = units[units["station"].astype(str) == name]
                d["units"] = {str(k): int(v) for k, v in mine["type"].value_counts().items()}
            d["col"] = [30, 60, 200, 255] if kind == "station" else [200, 0, 0, 255]
            data.append(d)
    if not data:
        return None
    layer = pdk.Layer(
        "ScatterplotLayer", id="facilities", data=data, get_position="pos", get_radius=6,
        radius_units=PIXELS, get_fill_color="col", stroked=True, get_line_color=[255] * 3,
        line_width_min_pixels=2, pickable=True,
    )  # fmt: skip
    legend = ('<b>Facilities</b><div class="sw"><i style="background:rgb(30,60,200)"></i>'
              'station</div><div class="sw"><i style="background:rgb(200,0,0)"></i>hospital'
              "</div>")  # fmt: skip
    return MapLayer("Stations & hospitals", [layer], legend=legend,
                    tips={"facilities": "facility"})  # fmt: skip
