"""The forecast page: ``report.html`` in a forecast's output folder.

One self-contained HTML file (images inline as PNG): the ``forecast.*`` summary
(members, time, horizon, effective sample size, the posterior of each uncertain
parameter), a fan chart per gauge (:mod:`emtwin.viz.forecast_charts`), the two
probability maps of the risk map drawn over the terrain (hillshade) and the
roads, the roads most likely to close and the expected shelter loads.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from emtwin.viz.charts import png_bytes
from emtwin.viz.forecast_charts import fan_charts

__all__ = ["probability_map", "write_report"]


def _hillshade(z: np.ndarray, dx: float) -> np.ndarray:
    """Shaded relief in [0, 1] (light from the north-west, 45 degrees up)."""
    zz = np.where(np.isfinite(z), z, np.nanmean(z) if np.isfinite(z).any() else 0.0)
    gy, gx = np.gradient(zz, dx)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, alt = np.radians(315.0), np.radians(45.0)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0)


def probability_map(prob: np.ndarray, world: Any, title: str) -> Figure:
    """A probability raster (0-1) over the terrain's hillshade and the roads."""
    t = world.terrain
    nrows, ncols = t.shape
    x0, y0 = t.transform.c, t.transform.f
    extent = (x0, x0 + ncols * t.transform.a, y0 + nrows * t.transform.e, y0)
    aspect = nrows / max(ncols, 1)
    fig = Figure(figsize=(7.2, max(2.5, min(7.0, 7.2 * aspect + 0.8))), dpi=100,
                 layout="constrained")  # fmt: skip
    ax = fig.add_subplot()
    ax.imshow(_hillshade(np.where(t.mask, t.z, np.nan), t.dx), cmap="gray", extent=extent,
              vmin=0, vmax=1, alpha=0.6)  # fmt: skip
    p = np.where(np.isfinite(prob) & (prob > 0), prob, np.nan)
    im = ax.imshow(p, cmap="YlOrRd", vmin=0, vmax=1, extent=extent, alpha=0.8)
    roads = world.roads
    if roads is not None:
        for g in roads.geometry:
            xs, ys = g.xy
            ax.plot(xs, ys, color="#404040", lw=0.5)
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8, label="probability")
    return fig


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame | None, limit: int = 15) -> str:
    if df is None or df.empty:
        return "<p>none</p>"
    return df.head(limit).to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="")


def write_report(
    folder: str | Path,
    result: Any,
    world: Any,
    *,
    observations: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    title: str = "",
) -> Path:
    """Write ``folder/report.html`` for a :class:`~emtwin.forecast.runner.ForecastResult`."""
    p = result.products
    s = p.summary
    at_s, horizon_s = float(s["at_s"]), float(s["horizon_s"])
    ess = s.get("effective_sample_size")
    facts = {
        "members": s["members"],
        "forecast from (now)": f"{at_s / 3600:.2f} h",
        "horizon": f"{horizon_s / 3600:.2f} h",
        "assimilation": s.get("assimilation"),
        "readings used": s.get("observations_used"),
        "effective sample size": "" if ess is None else f"{ess:.1f}",
        "observed rain": s.get("rain_observed") or "none",
        "plans": ", ".join(s.get("plans") or []) or "none",
    }
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in facts.items())  # fmt: skip
    post = pd.DataFrame([{"parameter": k, **v} for k, v in (s.get("posterior") or {}).items()])
    parts = [f"<h1>Forecast: {html.escape(title)}</h1>", f"<table>{rows}</table>",
             "<h2>Uncertain parameters (posterior: mean, 5-95 %)</h2>", _table(post)]  # fmt: skip
    parts.append("<h2>Gauges</h2>")
    q = p.gauge_quantiles
    if q is not None and len(q):
        for g, fig in fan_charts(q, observations=observations, at_s=at_s).items():
            if fig is not None:
                parts.append(_img(fig, f"fan chart {g}"))
    names = {"prob_depth_0.3m": "P(max depth >= 0.3 m over the horizon)",
             "prob_hazard_h3": "P(AIDR hazard class H3 or above over the horizon)"}  # fmt: skip
    parts.append("<h2>The risk map</h2>")
    for key, label in names.items():
        if key in p.rasters:
            parts.append(_img(probability_map(p.rasters[key], world, label), label))
    if p.roads is not None:
        roads = p.roads.sort_values("p_closed", ascending=False)
        parts += ["<h2>Roads most likely to close by the horizon</h2>",
                  _table(roads[roads["p_closed"] > 0])]  # fmt: skip
    if p.shelters is not None:
        parts += ["<h2>Expected shelter loads (people)</h2>", _table(p.shelters)]
    style = ("body{font-family:sans-serif;max-width:960px;margin:1em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:2px 8px;text-align:left}img{max-width:100%;display:block;margin:.5em 0}")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>Forecast "
           f"{html.escape(title)}</title><style>{style}</style></head><body>"
           + "\n".join(parts) + "</body></html>")  # fmt: skip
    out = Path(folder) / "report.html"
    out.write_text(doc, encoding="utf-8")
    return out
