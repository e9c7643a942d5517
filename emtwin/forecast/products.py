"""Forecast products from an ensemble: the risk map, road closures, gauge fans, summary.

Inputs are per-member arrays over the forecast window (at_s, at_s + horizon_s]
and member weights (the particle filter's, or equal after resampling or
without assimilation). Probabilities are weighted shares of members:
``P(A) = sum_i w_i [A holds for member i]``. Quantiles are the weighted
quantiles of :mod:`emtwin.forecast.skill`.

Files written by :func:`write_products` (the contract of scenario-format.md):

- ``prob_depth_0.3m.tif``: P(max depth over the window >= 0.3 m) per cell;
- ``prob_hazard_h3.tif``: P(max AIDR hazard class >= 3) per cell;
- ``gauges_forecast.csv``: ``time_s, gauge, member, depth_m, level_m``;
- ``gauges_quantiles.csv``: ``time_s, gauge, quantity, mean, p5, p50, p95``
  (quantity ``depth_m`` or ``level_m``; m);
- ``roads_forecast.csv``: ``road_id, p_closed, median_closure_s,
  median_closure_if_closed_s`` (one row per road id; a road is closed when
  any of its directed edges is);
- ``shelters_forecast.csv``: ``shelter, mean, p5, p50, p95`` (people).

Rasters are float32 GeoTIFFs on the World grid with the nodata value of
:mod:`emtwin.sim.outputs` outside the domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emtwin.forecast.skill import normalise_weights, weighted_mean, weighted_quantile
from emtwin.sim.outputs import RASTER_NODATA

__all__ = [
    "DEPTH_THRESHOLD_M",
    "HAZARD_CLASS_MIN",
    "QUANTILES",
    "exceedance_probability",
    "risk_map",
    "quantile_rasters",
    "gauges_forecast_table",
    "gauge_quantiles",
    "road_closures",
    "shelter_loads",
    "forecast_summary",
    "ForecastProducts",
    "write_products",
]

#: Depth of the risk map's first layer, m (also the default road-closure depth).
DEPTH_THRESHOLD_M = 0.3
#: Lowest AIDR hazard class of the risk map's second layer (H3: unsafe for vehicles,
#: children and the elderly; Smith et al. 2014, AIDR 2017).
HAZARD_CLASS_MIN = 3
#: The quantiles of every table: 5 %, 50 %, 95 %.
QUANTILES = (0.05, 0.5, 0.95)


def exceedance_probability(
    stack: np.ndarray,
    threshold: float,
    weights: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """Per cell, the weighted share of members whose value is >= *threshold*.

    Parameters
    ----------
    stack
        Member rasters, shape (n_members, nrows, ncols); NaN outside the domain.
    threshold
        In the units of *stack*.
    weights
        Member weights; equal when None.

    Returns
    -------
    numpy.ndarray
        Probabilities in [0, 1], shape (nrows, ncols); NaN where every member is NaN.
    """
    x = np.asarray(stack, dtype=float)
    w = normalise_weights(weights, x.shape[0])
    hit = np.where(np.isnan(x), 0.0, (x >= threshold).astype(float))
    p = np.tensordot(w, hit, axes=(0, 0))
    return np.where(np.isnan(x).all(axis=0), np.nan, p)


def risk_map(
    max_depth: np.ndarray,
    hazard_class: np.ndarray,
    weights: np.ndarray | Sequence[float] | None = None,
    *,
    depth_m: float = DEPTH_THRESHOLD_M,
    class_min: int = HAZARD_CLASS_MIN,
) -> dict[str, np.ndarray]:
    """The "one map": ``prob_depth_0.3m`` and ``prob_hazard_h3`` rasters.

    Parameters
    ----------
    max_depth
        Each member's maximum depth over the window, m, shape (n_members, nrows, ncols).
    hazard_class
        Each member's maximum AIDR class (0-6) over the window, same shape.
    weights
        Member weights.
    depth_m, class_min
        The thresholds (the file names carry the defaults).
    """
    return {
        "prob_depth_0.3m": exceedance_probability(max_depth, depth_m, weights),
        "prob_hazard_h3": exceedance_probability(hazard_class, class_min, weights),
    }


def quantile_rasters(
    stack: np.ndarray,
    weights: np.ndarray | Sequence[float] | None = None,
    q: Sequence[float] = QUANTILES,
) -> np.ndarray:
    """Weighted quantiles per cell over the members, shape (len(q), nrows, ncols).

    Cells where every member is NaN (outside the domain) stay NaN; a NaN in
    some members only counts as 0 there (a cell that stayed dry). Use it for the
    5-95 % band of the max depth that the truth is checked against.
    """
    x = np.asarray(stack, dtype=float)
    out = weighted_quantile(np.nan_to_num(x, nan=0.0), q, weights)
    return np.where(np.isnan(x).all(axis=0), np.nan, out)


def gauges_forecast_table(
    member_gauges: Sequence[pd.DataFrame], *, at_s: float, horizon_s: float
) -> pd.DataFrame:
    """The ``gauges_forecast.csv`` table from each member's gauge records.

    Parameters
    ----------
    member_gauges
        Member i's gauge table (``time_s, gauge, depth_m, level_m``, as a run
        records it), in member order.
    at_s, horizon_s
        The window (at_s, at_s + horizon_s], s.

    Returns
    -------
    pandas.DataFrame
        ``time_s, gauge, member, depth_m, level_m``, sorted by member, gauge,
        time; and ``flow_m3_s`` (m3/s, NaN at gauges without a section) when
        the members record it.
    """
    flow = bool(member_gauges) and all("flow_m3_s" in g.columns for g in member_gauges)
    values = ["depth_m", "level_m"] + ["flow_m3_s"] * flow
    parts = []
    for i, g in enumerate(member_gauges):
        inside = (g["time_s"] > at_s) & (g["time_s"] <= at_s + horizon_s)
        parts.append(g.loc[inside, ["time_s", "gauge", *values]].assign(member=i))
    cols = ["time_s", "gauge", "member", *values]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)[cols]
    return out.sort_values(["member", "gauge", "time_s"], kind="stable").reset_index(drop=True)


def gauge_quantiles(
    gauges: pd.DataFrame,
    weights: np.ndarray | Sequence[float] | None = None,
    *,
    quantities: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Weighted mean and 5/50/95 % of each gauge at each time over the members.

    Parameters
    ----------
    gauges
        ``time_s, gauge, member`` and the *quantities* columns (as ``gauges_forecast.csv``);
        members are numbered 0 .. n-1 and index *weights*. Every member must
        have a value at every (time, gauge) present.
    weights
        Member weights, shape (n_members,).
    quantities
        The value columns; by default ``depth_m, level_m`` and ``flow_m3_s``
        where present (then only at the gauges that record a flow).

    Returns
    -------
    pandas.DataFrame
        ``time_s, gauge, quantity, mean, p5, p50, p95``, sorted by gauge, quantity, time.
    """
    columns = ["time_s", "gauge", "quantity", "mean", "p5", "p50", "p95"]
    if gauges.empty:
        return pd.DataFrame(columns=columns)
    n = int(gauges["member"].max()) + 1
    w = normalise_weights(weights, n)
    if quantities is None:
        quantities = ["depth_m", "level_m"] + ["flow_m3_s"] * ("flow_m3_s" in gauges.columns)
    rows = []
    for q in quantities:
        have = gauges
        if q == "flow_m3_s":  # gauges without a section record no flow
            have = gauges[gauges.groupby("gauge")[q].transform(lambda v: v.notna().any())]
            if have.empty:
                continue
        wide = have.pivot_table(index=["gauge", "time_s"], columns="member", values=q,
                                aggfunc="first")  # fmt: skip
        wide = wide.reindex(columns=range(n))
        if wide.isna().to_numpy().any():
            g, t = wide.index[np.flatnonzero(wide.isna().any(axis=1).to_numpy())[0]]
            raise ValueError(f"gauges: some member has no {q} for gauge '{g}' at {t:g} s")
        x = wide.to_numpy(dtype=float).T  # (n_members, n_rows)
        qs = weighted_quantile(x, QUANTILES, w)
        rows.append(pd.DataFrame({
            "time_s": wide.index.get_level_values("time_s"),
            "gauge": wide.index.get_level_values("gauge"),
            "quantity": q,
            "mean": weighted_mean(x, w),
            "p5": qs[0], "p50": qs[1], "p95": qs[2],
        }))  # fmt: skip
    out = pd.concat(rows, ignore_index=True)[columns]
    return out.sort_values(["gauge", "quantity", "time_s"], kind="stable").reset_index(drop=True)


def road_closures(
    first_closed_s: np.ndarray,
    road_id: Sequence[Any] | np.ndarray,
    weights: np.ndarray | Sequence[float] | None = None,
    *,
    until_s: float,
) -> pd.DataFrame:
    """Per road, the probability of closure by *until_s* and the median closure time.

    Parameters
    ----------
    first_closed_s
        Each member's first closure time of each directed edge, s since t = 0,
        shape (n_members, n_edges); NaN where the edge never closed.
    road_id
        The road of each edge, shape (n_edges,); edges of one road are pooled
        (the road closes when its first edge does).
    weights
        Member weights.
    until_s
        The end of the forecast window (at_s + horizon_s), s.

    Returns
    -------
    pandas.DataFrame
        ``road_id, p_closed, median_closure_s, median_closure_if_closed_s``:
        p_closed the weighted share of members closing the road by *until_s*;
        median_closure_s the weighted median of the closure time counting
        "not closed" as later than any time (NaN when p_closed < 0.5);
        median_closure_if_closed_s the weighted median among members that
        close it (NaN when none does). Rows in order of first appearance.
    """
    t = np.asarray(first_closed_s, dtype=float)
    ids = np.asarray(road_id, dtype=object)
    if t.ndim != 2 or t.shape[1] != ids.size:
        raise ValueError(f"first_closed_s: expected shape (n_members, {ids.size}), got {t.shape}")
    w = normalise_weights(weights, t.shape[0])
    t = np.where(t <= until_s, t, np.nan)  # closures after the window do not count
    codes, uniques = pd.factorize(pd.Series(ids))
    per_road = np.full((t.shape[0], len(uniques)), np.inf)
    for k in range(len(uniques)):
        cols = t[:, codes == k]
        per_road[:, k] = np.where(np.isnan(cols), np.inf, cols).min(axis=1)
    closed = np.isfinite(per_road)
    p = w @ closed.astype(float)
    median = weighted_quantile(per_road, 0.5, w)
    median = np.where(np.isfinite(median), median, np.nan)
    cond = np.full(len(uniques), np.nan)
    for k in np.flatnonzero(p > 0):
        sel = closed[:, k]
        cond[k] = float(weighted_quantile(per_road[sel, k], 0.5, w[sel]))
    return pd.DataFrame({"road_id": list(uniques), "p_closed": p, "median_closure_s": median,
                         "median_closure_if_closed_s": cond})  # fmt: skip


def shelter_loads(
    loads: np.ndarray,
    names: Sequence[str],
    weights: np.ndarray | Sequence[float] | None = None,
) -> pd.DataFrame:
    """Expected (weighted mean) and 5/50/95 % people at each shelter.

    Parameters
    ----------
    loads
        People at each shelter per member, shape (n_members, n_shelters).
    names
        Shelter names, shape (n_shelters,).
    """
    x = np.asarray(loads, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"loads: expected shape (n_members, {len(names)}), got {x.shape}")
    qs = weighted_quantile(x, QUANTILES, weights)
    return pd.DataFrame({"shelter": list(names), "mean": weighted_mean(x, weights),
                         "p5": qs[0], "p50": qs[1], "p95": qs[2]})  # fmt: skip


def forecast_summary(
    *,
    members: int,
    at_s: float,
    horizon_s: float,
    observations: Sequence[Mapping[str, Any]] = (),
    posterior: Mapping[str, Mapping[str, float]] | None = None,
    ess: float | None = None,
    method: str = "particle_filter",
    sigma_m: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``forecast`` section of summary.json.

    Parameters
    ----------
    members
        Ensemble size.
    at_s, horizon_s
        Forecast start ("now") and horizon, s.
    observations
        One entry per file used: e.g. ``{"file": .., "quantity": .., "gauges": [..],
        "readings": n}``; the total count is added as ``observations_used``.
    posterior
        Per uncertain parameter path ``{"mean", "p5", "p95", ...}`` (SI or multiplier).
    ess
        Effective sample size after assimilation (None without assimilation).
    method
        ``particle_filter``, ``enkf`` or ``none``.
    sigma_m
        The observation error sd used, m.
    extra
        Further keys, copied in (e.g. ``wall_s``, ``tempering``).
    """
    obs = [dict(o) for o in observations]
    out: dict[str, Any] = {
        "members": int(members),
        "at_s": float(at_s),
        "horizon_s": float(horizon_s),
        "assimilation": method,
        "observations": obs,
        "observations_used": int(sum(int(o.get("readings", 0)) for o in obs)),
        "observation_sigma_m": sigma_m,
        "posterior": {
            k: {kk: float(vv) for kk, vv in v.items()} for k, v in (posterior or {}).items()
        },  # fmt: skip
        "effective_sample_size": None if ess is None else float(ess),
    }
    out.update(extra)
    return out


@dataclass
class ForecastProducts:
    """Everything :func:`write_products` writes (each part optional).

    Attributes
    ----------
    rasters
        Probability rasters by name (``prob_depth_0.3m`` ...), shape (nrows, ncols).
    gauges
        ``time_s, gauge, member, depth_m, level_m`` over the window.
    gauge_quantiles
        From :func:`gauge_quantiles`.
    roads
        From :func:`road_closures`.
    shelters
        From :func:`shelter_loads`.
    summary
        From :func:`forecast_summary`, the ``forecast`` section.
    """

    rasters: dict[str, np.ndarray] = field(default_factory=dict)
    gauges: pd.DataFrame | None = None
    gauge_quantiles: pd.DataFrame | None = None
    roads: pd.DataFrame | None = None
    shelters: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _write_raster(path: Path, array: np.ndarray, world: Any) -> None:
    import rasterio

    t = world.terrain
    if array.shape != t.shape:
        raise ValueError(f"{path.name}: expected shape {t.shape} (the World grid), "
                         f"got {array.shape}")  # fmt: skip
    out = np.where(np.isfinite(array) & t.mask, array, RASTER_NODATA).astype("float32")
    profile = {"driver": "GTiff", "height": out.shape[0], "width": out.shape[1], "count": 1,
               "dtype": "float32", "crs": world.crs, "transform": t.transform,
               "nodata": RASTER_NODATA, "compress": "deflate"}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)


def write_products(folder: str | Path, products: ForecastProducts, world: Any) -> list[Path]:
    """Write the forecast files into *folder* (created if missing); return their paths.

    ``summary.json`` is not written here: the runner merges ``products.summary``
    into the run summary under ``forecast``.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, array in products.rasters.items():
        p = out / f"{name}.tif"
        _write_raster(p, np.asarray(array, dtype=float), world)
        written.append(p)
    tables = {
        "gauges_forecast.csv": (
            products.gauges,
            ["time_s", "gauge", "member", "depth_m", "level_m"]
            + ["flow_m3_s"] * (products.gauges is not None and "flow_m3_s" in products.gauges),
        ),  # fmt: skip
        "gauges_quantiles.csv": (products.gauge_quantiles, None),
        "roads_forecast.csv": (products.roads, None),
        "shelters_forecast.csv": (products.shelters, None),
    }
    for name, (table, cols) in tables.items():
        if table is None:
            continue
        p = out / name
        (table[cols] if cols else table).to_csv(p, index=False, float_format="%.10g")
        written.append(p)
    return written
