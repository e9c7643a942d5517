"""Charts of a run (matplotlib, Agg, PNG): one function per chart, None when its data is absent.

Every chart reads only the Results' time series and tables, with the time axis
in hours since the scenario start. :func:`render_charts` returns the PNG bytes
of every chart the run has data for; :func:`write_charts` writes them as files.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "CHARTS",
    "evacuation_chart",
    "shelters_chart",
    "dispatch_chart",
    "response_chart",
    "flood_chart",
    "gauges_chart",
    "roads_chart",
    "render_charts",
    "write_charts",
    "png_bytes",
]

#: Time-series columns of the evacuation curve and their labels, in drawing order.
EVACUATION_COLUMNS = {
    "warned": "warned",
    "departed": "departed",
    "on_road": "on the road",
    "sheltered": "in shelters",
    "out": "out of the area",
    "stranded": "stranded",
}


def _fig(title: str, *, height: float = 3.4) -> tuple[Figure, Any]:
    fig = Figure(figsize=(7.2, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    return fig, ax


def _hours(t: Any) -> np.ndarray:
    return np.asarray(t, dtype=float) / 3600.0


def _ts(results: Any) -> pd.DataFrame:
    ts = getattr(results, "timeseries", None)
    return ts if ts is not None and "time_s" in ts else pd.DataFrame({"time_s": []})


def _table(results: Any, name: str, cols: tuple[str, ...]) -> pd.DataFrame | None:
    t = getattr(results, "tables", {}).get(name)
    if t is None or len(t) == 0 or any(c not in t.columns for c in cols):
        return None
    return t


def evacuation_chart(results: Any) -> Figure | None:
    """Households (or people, as the evacuation counts them) warned, departed, sheltered..."""
    ts = _ts(results)
    cols = [c for c in EVACUATION_COLUMNS if c in ts]
    if not {"departed", "sheltered", "stranded"} & set(cols) or len(ts) == 0:
        return None
    fig, ax = _fig("Evacuation")
    for c in cols:
        ax.plot(_hours(ts["time_s"]), ts[c], label=EVACUATION_COLUMNS[c],
                lw=2.2 if c in ("departed", "sheltered") else 1.4,
                ls="--" if c == "warned" else "-")  # fmt: skip
    ax.set_xlabel("time since start, h")
    ax.set_ylabel("count")
    ax.legend(fontsize=8, ncol=3)
    return fig


def shelters_chart(results: Any) -> Figure | None:
    """People in each shelter over time, with its capacity dashed."""
    t = _table(results, "shelters", ("time_s", "shelter", "occupancy"))
    if t is None:
        return None
    fig, ax = _fig("Shelter occupancy")
    for i, (name, g) in enumerate(t.sort_values("time_s").groupby("shelter", sort=True)):
        color = f"C{i % 10}"
        ax.plot(_hours(g["time_s"]), g["occupancy"], color=color, lw=2, label=str(name))
        if "capacity" in g:
            ax.plot(_hours(g["time_s"]), g["capacity"], color=color, lw=1, ls="--")
    ax.set_xlabel("time since start, h")
    ax.set_ylabel("people (dashed: capacity)")
    ax.legend(fontsize=8, ncol=3)
    return fig


def dispatch_chart(results: Any) -> Figure | None:
    """Calls waiting for a unit and units busy, over time."""
    ts = _ts(results)
    cols = [c for c in ("calls_waiting", "units_busy") if c in ts]
    if not cols or len(ts) == 0:
        return None
    fig, ax = _fig("Calls waiting and units busy")
    labels = {"calls_waiting": "calls waiting", "units_busy": "units busy"}
    for c in cols:
        ax.step(_hours(ts["time_s"]), ts[c], where="post", lw=2, label=labels[c])
    ax.set_xlabel("time since start, h")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    return fig


def response_chart(results: Any) -> Figure | None:
    """Distribution of response times (call to arrival on scene), minutes, with p50 and p90."""
    t = _table(results, "calls", ("response_s",))
    if t is None:
        return None
    r = t["response_s"].to_numpy(dtype=float)
    r = r[np.isfinite(r)] / 60.0
    if r.size == 0:
        return None
    fig, ax = _fig(f"Response times ({r.size} calls reached)")
    ax.hist(r, bins=min(30, max(5, r.size // 3)), color="#4a78b5", edgecolor="white")
    for q, ls in ((50, "-"), (90, "--")):
        v = float(np.percentile(r, q))
        ax.axvline(v, color="#c0392b", ls=ls, lw=1.5, label=f"p{q} = {v:.1f} min")
    ax.set_xlabel("response time, min")
    ax.set_ylabel("calls")
    ax.legend(fontsize=8)
    return fig


def flood_chart(results: Any) -> Figure | None:
    """Flooded land (km2; water at rest left out) and water volume on the grid (m3) over time."""
    ts = _ts(results)
    if "flooded_area_m2" not in ts or len(ts) == 0:
        return None
    fig, ax = _fig("Flooded land and water volume")
    h = _hours(ts["time_s"])
    ax.plot(h, ts["flooded_area_m2"] / 1e6, color="#1f5fa8", lw=2, label="flooded land")
    ax.set_xlabel("time since start, h")
    ax.set_ylabel("flooded land, km²", color="#1f5fa8")
    if "flood_volume_m3" in ts:
        ax2 = ax.twinx()
        ax2.plot(h, ts["flood_volume_m3"], color="#6a3d9a", lw=1.6, ls="--", label="volume")
        ax2.set_ylabel("water volume, m³ (dashed)", color="#6a3d9a")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    return fig


def gauges_chart(results: Any) -> Figure | None:
    """Water depth at each gauge over time (hydrographs), m."""
    t = _table(results, "gauges", ("time_s", "gauge", "depth_m"))
    if t is None:
        return None
    fig, ax = _fig("Gauges: water depth")
    for name, g in t.sort_values("time_s").groupby("gauge", sort=False):
        ax.plot(_hours(g["time_s"]), g["depth_m"], lw=2, label=str(name))
    ax.set_xlabel("time since start, h")
    ax.set_ylabel("depth, m")
    ax.legend(fontsize=8, ncol=3)
    return fig


def roads_chart(results: Any) -> Figure | None:
    """Directed road edges closed over time (all causes, and by water)."""
    ts = _ts(results)
    labels = {"roads_closed": "closed (any cause)", "roads_closed_by_flood": "closed by water",
              "roads_closed_by_plan": "closed by the plan"}  # fmt: skip
    cols = [c for c in labels if c in ts]
    if not cols or len(ts) == 0:
        return None
    fig, ax = _fig("Roads closed")
    for c in cols:
        ax.step(_hours(ts["time_s"]), ts[c], where="post", lw=2 if c == "roads_closed" else 1.3,
                label=labels[c])  # fmt: skip
    ax.set_xlabel("time since start, h")
    ax.set_ylabel("directed edges")
    ax.legend(fontsize=8)
    return fig


#: Every chart: file stem -> (caption, builder); the report shows them in this order.
CHARTS: dict[str, tuple[str, Callable[[Any], Figure | None]]] = {
    "evacuation": ("Evacuation curve", evacuation_chart),
    "shelters": ("Shelter occupancy", shelters_chart),
    "dispatch": ("Calls waiting and units busy", dispatch_chart),
    "response_times": ("Response-time distribution", response_chart),
    "flood": ("Flooded area and volume", flood_chart),
    "gauges": ("Gauge hydrographs", gauges_chart),
    "roads": ("Roads closed", roads_chart),
}


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_charts(results: Any) -> dict[str, bytes]:
    """PNG bytes of every chart the run has data for, by file stem, in :data:`CHARTS` order."""
    out = {}
    for name, (_, build) in CHARTS.items():
        fig = build(results)
        if fig is not None:
            out[name] = png_bytes(fig)
    return out


def write_charts(
    results: Any, folder: str | Path, *, charts: dict[str, bytes] | None = None
) -> dict[str, Path]:
    """Write the charts as ``folder/NAME.png`` (folder created); return their paths.

    *charts* are PNG bytes already rendered by :func:`render_charts` (rendered here if None).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    charts = render_charts(results) if charts is None else charts
    paths = {}
    for name, data in charts.items():
        paths[name] = folder / f"{name}.png"
        paths[name].write_bytes(data)
    return paths
