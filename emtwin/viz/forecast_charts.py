"""Fan charts of a gauge forecast (matplotlib, Agg): the 5-95 % band, the median, the readings.

Reads the tables of :mod:`emtwin.forecast.products` (``gauges_quantiles.csv``)
and of :mod:`emtwin.forecast.observations`; the time axis is in hours since the
scenario's t = 0, with "now" (the forecast time) marked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["fan_chart", "fan_charts"]

_BAND = "#9ecae1"
_MEDIAN = "#08519c"
_OBS = "#d95f02"


def fan_chart(
    quantiles: pd.DataFrame,
    gauge: str,
    *,
    quantity: str = "level_m",
    observations: pd.DataFrame | None = None,
    at_s: float | None = None,
    truth: pd.DataFrame | None = None,
) -> Figure | None:
    """One gauge's forecast fan: p5-p95 band, median, readings up to now, optional truth.

    Parameters
    ----------
    quantiles
        ``time_s, gauge, quantity, p5, p50, p95`` (``gauges_quantiles.csv``).
    gauge
        The gauge's name.
    quantity
        ``level_m`` or ``depth_m``.
    observations
        Readings ``time_s, gauge, value`` (and ``quantity``): drawn as points.
    at_s
        The forecast time ("now"), s: a vertical line.
    truth
        A truth series ``time_s, gauge`` and the *quantity* column (twin experiments).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the table has no rows for this gauge and quantity.
    """
    q = quantiles[(quantiles["gauge"] == gauge) & (quantiles["quantity"] == quantity)]
    if q.empty:
        return None
    q = q.sort_values("time_s")
    h = q["time_s"].to_numpy(dtype=float) / 3600.0
    what = "level" if quantity == "level_m" else "depth"
    fig = Figure(figsize=(7.2, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(f"Forecast at {gauge}: water {what}", fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    ax.fill_between(h, q["p5"], q["p95"], color=_BAND, alpha=0.8, lw=0, label="5-95 %")
    ax.plot(h, q["p50"], color=_MEDIAN, lw=2, label="median")
    if observations is not None and len(observations):
        o = observations[observations["gauge"] == gauge]
        if "quantity" in o.columns:
            o = o[o["quantity"] == quantity]
        if len(o):
            ax.plot(o["time_s"] / 3600.0, o["value"], "o", ms=3, color=_OBS, label="observed")
    if truth is not None and quantity in truth.columns:
        tr = truth[truth["gauge"] == gauge].sort_values("time_s")
        if len(tr):
            ax.plot(tr["time_s"] / 3600.0, tr[quantity], color="k", lw=1, ls="--", label="truth")
    if at_s is not None:
        ax.axvline(at_s / 3600.0, color="#636363", lw=1, ls=":", label="now")
    ax.set_xlabel("time since start, h")
    ax.set_ylabel(f"{what}, m")
    ax.legend(fontsize=8, ncol=5)
    return fig


def fan_charts(
    quantiles: pd.DataFrame,
    *,
    quantity: str = "level_m",
    observations: pd.DataFrame | None = None,
    at_s: float | None = None,
) -> dict[str, Figure]:
    """A fan chart per gauge in *quantiles* (in order of first appearance)."""
    out = {}
    for g in pd.unique(np.asarray(quantiles["gauge"])):
        fig = fan_chart(quantiles, str(g), quantity=quantity, observations=observations, at_s=at_s)
        if fig is not None:
            out[str(g)] = fig
    return out
