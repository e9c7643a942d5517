"""Observations for the twin: gauge readings, rain-gauge readings and rain rasters.

Gauge tables (CSV or Parquet) have the columns ``time_s, gauge`` and one value
column of ``level_m``, ``depth_m`` or ``flow_m3_s`` (the last only at gauges
with a ``section``): exactly a run's ``gauges.csv`` (``time_s, gauge,
depth_m, speed_m_s, level_m``, and ``flow_m3_s`` when a gauge has a
section), so one run's output can serve as another's observations. Rain-gauge tables have
``time_s, gauge, rain_mm_h`` and the gauges' positions (columns ``x, y`` in
the scenario's ``crs``, or given by the caller). Rain rasters are GeoTIFFs in
mm/h, one per time.

Times are seconds since the scenario's t = 0, or ISO 8601 timestamps when the
scenario has a ``start:`` (a timestamp without a zone is taken as UTC, and so
is a ``start:`` without one). Gauges are matched by name to the scenario's
flood gauges; an unknown name is an error. Every bad row (unreadable time,
NaN, negative depth or rain, a time before the start, times out of order or
repeated within one gauge) is reported with the file and its row (data rows
count from 1; for CSV the file line is given too).

Rain readings are step-wise like the scenario's ``rain:`` series: a reading
holds from its time until the gauge's next one. A :class:`RainField` holds
the per-cell rate on the World grid over the observed area (NaN outside it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emtwin.errors import CRSError, InputDataError
from emtwin.geo.build import to_world_xy
from emtwin.scenarios.models import Scenario

__all__ = [
    "GAUGE_QUANTITIES",
    "GaugeObservations",
    "read_gauge_observations",
    "observation_table",
    "member_values_at",
    "RainGaugeObservations",
    "read_rain_gauges",
    "RainField",
    "rain_field_from_gauges",
    "read_rain_rasters",
]

#: Value columns a gauge table may hold, in the order one is chosen when several are present.
GAUGE_QUANTITIES = ("level_m", "depth_m", "flow_m3_s")
#: Most problems listed in one error message.
_MAX_LISTED = 10


# ---------------------------------------------------------------------------- table helpers


def _read_table(path: str | Path, what: str) -> tuple[pd.DataFrame, bool]:
    """The table at *path* (CSV or Parquet) and whether it is CSV."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"{p}: {what} file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(p, dtype={"gauge": str}, skipinitialspace=True), True
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p), False
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputDataError(f"{p}: cannot read the {what} table: {exc}") from exc
    raise InputDataError(f"{p}: expected a .csv or .parquet {what} table, got '{p.suffix}'")


class _Problems:
    """Collects row problems of one file and raises them as one InputDataError."""

    def __init__(self, path: str | Path, csv: bool) -> None:
        self.path, self.csv, self.items = str(path), csv, []

    def row(self, i: int) -> str:
        """``row N (line L)`` of the 0-based data row *i*."""
        return f"row {i + 1} (line {i + 2})" if self.csv else f"row {i + 1}"

    def add(self, i: int | None, msg: str) -> None:
        self.items.append((i if i is not None else -1, msg))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        items = sorted(self.items, key=lambda x: x[0])
        lines = [f"{self.row(i)}: {m}" if i >= 0 else m for i, m in items]
        if len(lines) == 1:
            raise InputDataError(f"{self.path}: {lines[0]}")
        more = len(lines) - _MAX_LISTED
        shown = "\n".join(f"  - {x}" for x in lines[:_MAX_LISTED])
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise InputDataError(f"{self.path}: {len(lines)} problems:\n{shown}{tail}")


def _utc(ts: datetime) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _times_s(raw: pd.Series, start: datetime | None, bad: _Problems, column: str) -> np.ndarray:
    """Times in s since t = 0 from seconds or ISO timestamps; NaN where a row is bad."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        t = raw.to_numpy(dtype=float)
        for i in np.flatnonzero(~np.isfinite(t)):
            bad.add(int(i), f"{column} is missing or not a number")
        return t
    if pd.api.types.is_datetime64_any_dtype(raw):
        stamps = pd.to_datetime(raw, utc=True)
    else:
        as_num = pd.to_numeric(raw, errors="coerce")
        if as_num.notna().all():
            return _times_s(as_num, start, bad, column)
        stamps = pd.to_datetime(raw.astype(str), utc=True, errors="coerce", format="ISO8601")
    if start is None:
        first = raw.iloc[int(np.argmax(stamps.notna().to_numpy()))]
        bad.add(None, f"{column} holds timestamps ({first!r}); give the scenario a `start:` "
                      "(ISO 8601) so they can be read as seconds since t = 0, or give "
                      "seconds")  # fmt: skip
        return np.full(len(raw), np.nan)
    t = ((stamps - _utc(start)).dt.total_seconds()).to_numpy(dtype=float)
    for i in np.flatnonzero(stamps.isna().to_numpy()):
        bad.add(int(i), f"{column} {raw.iloc[i]!r} is neither seconds nor an ISO 8601 timestamp")
    return t


def _time_column(df: pd.DataFrame, path: str | Path) -> str:
    for name in ("time_s", "time"):
        if name in df.columns:
            return name
    cols = ", ".join(map(str, df.columns))
    raise InputDataError(f"{path}: expected a column time_s (s since t = 0, or ISO 8601 "
                         f"timestamps); the columns are: {cols}")  # fmt: skip


def _check_series(t: np.ndarray, gauges: np.ndarray, bad: _Problems, column: str) -> None:
    """Times >= 0, strictly increasing and not repeated within each gauge (in file order)."""
    for i in np.flatnonzero(t < 0):
        bad.add(int(i), f"{column} {t[i]:g} s is before the scenario's t = 0")
    last: dict[str, tuple[float, int]] = {}
    for i, (ti, g) in enumerate(zip(t, gauges, strict=True)):
        if not np.isfinite(ti):
            continue
        if g in last:
            tp, ip = last[g]
            if ti == tp:
                bad.add(i, f"gauge '{g}': time {ti:g} s repeats {bad.row(ip)} (a duplicate)")
                continue
            if ti < tp:
                bad.add(i, f"gauge '{g}': time {ti:g} s comes after {tp:g} s at {bad.row(ip)}; "
                           "expected times in increasing order within each gauge")  # fmt: skip
                continue
        last[g] = (ti, i)


def _gauge_names(df: pd.DataFrame, path: str | Path) -> np.ndarray:
    if "gauge" not in df.columns:
        raise InputDataError(f"{path}: expected a column gauge (the gauge's name); the columns "
                             f"are: {', '.join(map(str, df.columns))}")  # fmt: skip
    return df["gauge"].astype(str).str.strip().to_numpy(dtype=object)


# ---------------------------------------------------------------------------- gauges


@dataclass(frozen=True)
class GaugeObservations:
    """Readings of the scenario's flood gauges from one file.

    Attributes
    ----------
    source
        The file they came from.
    quantity
        The observed quantity: ``level_m`` (m above the DEM datum),
        ``depth_m`` (m) or ``flow_m3_s`` (m3/s).
    table
        Columns ``time_s`` (s since t = 0), ``gauge``, ``value`` (units of
        *quantity*) and ``row`` (the 1-based data row in the file), in file order.
    """

    source: str
    quantity: str
    table: pd.DataFrame

    @property
    def gauges(self) -> list[str]:
        """The gauges read, in order of first appearance."""
        return list(dict.fromkeys(self.table["gauge"]))

    def until(self, at_s: float) -> GaugeObservations:
        """The readings at or before *at_s* (s)."""
        keep = self.table[self.table["time_s"] <= at_s].reset_index(drop=True)
        return GaugeObservations(self.source, self.quantity, keep)


def read_gauge_observations(
    path: str | Path, scenario: Scenario, *, quantity: str | None = None
) -> GaugeObservations:
    """Read gauge readings from a CSV or Parquet table (e.g. a run's ``gauges.csv``).

    Parameters
    ----------
    path
        The table: ``time_s, gauge`` and a value column.
    scenario
        Its flood gauges are the names allowed, its ``start:`` reads timestamps.
    quantity
        ``level_m``, ``depth_m`` or ``flow_m3_s``; by default the first of these
        the table has.

    Raises
    ------
    InputDataError
        Naming the file, and the row for every bad row.
    """
    df, csv = _read_table(path, "observations")
    bad = _Problems(path, csv)
    present = [q for q in GAUGE_QUANTITIES if q in df.columns]
    if quantity is None:
        if not present:
            raise InputDataError(f"{path}: expected a value column, one of "
                                 f"{', '.join(GAUGE_QUANTITIES)}; the columns are: "
                                 f"{', '.join(map(str, df.columns))}")  # fmt: skip
        quantity = present[0]
    elif quantity not in GAUGE_QUANTITIES:
        raise InputDataError(f"{path}: quantity must be one of {', '.join(GAUGE_QUANTITIES)}, "
                             f"got {quantity!r}")  # fmt: skip
    elif quantity not in df.columns:
        raise InputDataError(f"{path}: has no column {quantity}; the columns are: "
                             f"{', '.join(map(str, df.columns))}")  # fmt: skip
    tcol = _time_column(df, path)
    names = _gauge_names(df, path)
    flood = scenario.flood
    known = [g.name for g in flood.gauges] if flood is not None else []
    if not known:
        raise InputDataError(f"{path}: the scenario has no flood gauges "
                             "(hazards.0.gauges), so no gauge readings can be matched")  # fmt: skip
    for i in np.flatnonzero(~np.isin(names, known)):
        bad.add(int(i), f"unknown gauge '{names[i]}'; the scenario's gauges are: "
                        f"{', '.join(known)}")  # fmt: skip
    t = _times_s(df[tcol], scenario.start, bad, tcol)
    value = pd.to_numeric(df[quantity], errors="coerce").to_numpy(dtype=float)
    blank = np.zeros(len(df), bool)
    if quantity == "flow_m3_s":  # a flow is measured through a cross-section
        sectionless = {g.name: k for k, g in enumerate(flood.gauges) if g.section is None}
        # a run's gauges.csv leaves the flow blank at gauges without one: skip those rows
        blank = np.isin(names, list(sectionless)) & np.isnan(value)
        for name, k in sectionless.items():
            rows = np.flatnonzero((names == name) & ~blank)
            if rows.size:
                bad.add(int(rows[0]), f"gauge '{name}' has no cross-section, so the model has "
                                      f"no flow to compare: give hazards.0.gauges.{k}.section, "
                                      "a line across the channel")  # fmt: skip
    for i in np.flatnonzero(~np.isfinite(value) & ~blank):
        bad.add(int(i), f"{quantity} {df[quantity].iloc[i]!r} is missing or not a number")
    if quantity == "depth_m":
        for i in np.flatnonzero(value < 0):
            bad.add(int(i), f"depth_m {value[i]:g} is negative; expected a depth >= 0 m")
    _check_series(t, names, bad, tcol)
    bad.raise_if_any()
    table = pd.DataFrame({"time_s": t, "gauge": names.astype(str), "value": value,
                          "row": np.arange(1, len(df) + 1)})  # fmt: skip
    if blank.all():
        raise InputDataError(f"{path}: no flow_m3_s readings at a gauge with a cross-section "
                             "(hazards.0.gauges.N.section)")  # fmt: skip
    return GaugeObservations(str(path), quantity, table[~blank].reset_index(drop=True))


def observation_table(
    observations: Sequence[GaugeObservations], *, at_s: float | None = None
) -> pd.DataFrame:
    """All readings of several files as one table, up to *at_s* (s) when given.

    Columns ``source, quantity, gauge, time_s, value``, sorted by gauge, quantity
    and time. Two files reading the same gauge and quantity at the same time
    are an error naming both.
    """
    parts = []
    for o in observations:
        obs = o if at_s is None else o.until(at_s)
        parts.append(obs.table.assign(source=o.source, quantity=o.quantity))
    if not parts:
        return pd.DataFrame(columns=["source", "quantity", "gauge", "time_s", "value"])
    table = pd.concat(parts, ignore_index=True)
    dup = table.duplicated(["quantity", "gauge", "time_s"], keep=False)
    if dup.any():
        d = table[dup].sort_values(["gauge", "time_s"])
        first = d.iloc[0]
        others = d[(d.gauge == first.gauge) & (d.time_s == first.time_s)]
        where = "; ".join(f"{r.source} row {r.row}" for r in others.itertuples())
        raise InputDataError(f"gauge '{first.gauge}' {first.quantity} at {first.time_s:g} s is "
                             f"read more than once: {where}")  # fmt: skip
    table = table.sort_values(["gauge", "quantity", "time_s"], kind="stable")
    return table[["source", "quantity", "gauge", "time_s", "value"]].reset_index(drop=True)


def member_values_at(obs: pd.DataFrame, gauges: pd.DataFrame) -> np.ndarray:
    """One member's values at every observation, by linear interpolation in time.

    Parameters
    ----------
    obs
        From :func:`observation_table`: ``quantity, gauge, time_s`` per row.
    gauges
        The member's gauge series: ``time_s, gauge`` and the quantity columns
        (a run's ``gauges`` table: ``depth_m, level_m``).

    Returns
    -------
    numpy.ndarray
        Shape (len(obs),); NaN where the member's series does not cover the
        time (before its first or after its last record) or lacks the quantity.
    """
    out = np.full(len(obs), np.nan)
    for (g, q), rows in obs.groupby(["gauge", "quantity"], sort=False):
        series = gauges[gauges["gauge"] == g]
        if q not in series.columns or series.empty:
            continue
        t = series["time_s"].to_numpy(dtype=float)
        v = series[q].to_numpy(dtype=float)
        ti = rows["time_s"].to_numpy(dtype=float)
        out[rows.index.to_numpy()] = np.interp(ti, t, v, left=np.nan, right=np.nan)
    return out


# ---------------------------------------------------------------------------- rain gauges


@dataclass(frozen=True)
class RainGaugeObservations:
    """Rain-gauge readings, mm/h, step-wise in time.

    Attributes
    ----------
    source
        The file.
    table
        ``time_s, gauge, rain_mm_h, row``, in file order.
    positions
        Each gauge's (x, y), m in the World CRS.
    """

    source: str
    table: pd.DataFrame
    positions: dict[str, tuple[float, float]]


def read_rain_gauges(
    path: str | Path,
    scenario: Scenario,
    world: Any,
    *,
    positions: Mapping[str, tuple[float, float]] | None = None,
) -> RainGaugeObservations:
    """Read a rain-gauge table: ``time_s, gauge, rain_mm_h`` (mm/h), with positions.

    Parameters
    ----------
    path
        CSV or Parquet. Gauge positions come from its columns ``x, y`` (the
        scenario's ``crs``; constant per gauge) unless *positions* gives them.
    scenario
        Its ``crs`` places the gauges, its ``start:`` reads timestamps.
    world
        The World (its CRS and grid).
    positions
        ``{gauge: (x, y)}`` in the scenario's ``crs``.
    """
    df, csv = _read_table(path, "rain-gauge")
    bad = _Problems(path, csv)
    if "rain_mm_h" not in df.columns:
        raise InputDataError(f"{path}: expected a column rain_mm_h (mm/h); the columns are: "
                             f"{', '.join(map(str, df.columns))}")  # fmt: skip
    tcol = _time_column(df, path)
    names = _gauge_names(df, path)
    t = _times_s(df[tcol], scenario.start, bad, tcol)
    rate = pd.to_numeric(df["rain_mm_h"], errors="coerce").to_numpy(dtype=float)
    for i in np.flatnonzero(~np.isfinite(rate)):
        bad.add(int(i), f"rain_mm_h {df['rain_mm_h'].iloc[i]!r} is missing or not a number")
    for i in np.flatnonzero(rate < 0):
        bad.add(int(i), f"rain_mm_h {rate[i]:g} is negative; expected a rate >= 0 mm/h")
    xy: dict[str, tuple[float, float]] = {}
    if positions is not None:
        xy = {str(k): (float(v[0]), float(v[1])) for k, v in positions.items()}
        for i in np.flatnonzero(~np.isin(names, list(xy))):
            bad.add(int(i), f"gauge '{names[i]}' has no position; positions are given for: "
                            f"{', '.join(xy)}")  # fmt: skip
    elif {"x", "y"} <= set(df.columns):
        x = pd.to_numeric(df["x"], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(df["y"], errors="coerce").to_numpy(dtype=float)
        for i, g in enumerate(names):
            if not (np.isfinite(x[i]) and np.isfinite(y[i])):
                bad.add(i, f"gauge '{g}': x, y must be numbers (scenario crs)")
            elif g not in xy:
                xy[g] = (x[i], y[i])
            elif xy[g] != (x[i], y[i]):
                bad.add(i, f"gauge '{g}' moves: x, y differ from its first row "
                           f"{xy[g]}")  # fmt: skip
    else:
        raise InputDataError(f"{path}: expected columns x, y (the gauges' positions in the "
                             "scenario crs), or positions given with the table")  # fmt: skip
    _check_series(t, names, bad, tcol)
    bad.raise_if_any()
    gauges = list(dict.fromkeys(names))
    pts = to_world_xy([xy[g] for g in gauges], scenario.crs, world)
    table = pd.DataFrame({"time_s": t, "gauge": names.astype(str), "rain_mm_h": rate,
                          "row": np.arange(1, len(df) + 1)})  # fmt: skip
    return RainGaugeObservations(
        str(path), table, {g: (float(p[0]), float(p[1])) for g, p in zip(gauges, pts, strict=True)}
    )


# ---------------------------------------------------------------------------- rain fields


@dataclass(frozen=True)
class RainField:
    """A step-wise rain-rate field on the World grid.

    Attributes
    ----------
    times_s
        Start of each step, s since t = 0, strictly increasing, shape (n_t,).
    rate_mm_h
        Rate over each step, mm/h, shape (n_t, nrows, ncols), float32; NaN
        where the observations do not cover a cell.
    source
        Where the field came from (files), for messages and the summary.
    """

    times_s: np.ndarray
    rate_mm_h: np.ndarray
    source: str = ""

    @property
    def area(self) -> np.ndarray:
        """Cells covered at any time, shape (nrows, ncols), bool."""
        return np.isfinite(self.rate_mm_h).any(axis=0)

    def at(self, t: float) -> np.ndarray:
        """The rate field (mm/h) holding at time *t* (s); all NaN before the first step."""
        k = int(np.searchsorted(self.times_s, t, side="right")) - 1
        if k < 0:
            return np.full(self.rate_mm_h.shape[1:], np.nan, dtype=np.float32)
        return self.rate_mm_h[k]

    def merged(self, rain: Sequence[tuple[float, float]] | None) -> RainField:
        """This field with the scenario's uniform ``rain:`` series filling uncovered cells.

        The steps are the union of both series' times; a covered cell takes the
        observed rate, the others the scenario's rate at that time (0 without rain).
        """
        series = sorted(rain or [])
        times = np.union1d(self.times_s, [t for t, _ in series] or [0.0])
        out = np.empty((len(times), *self.rate_mm_h.shape[1:]), dtype=np.float32)
        for k, t in enumerate(times):
            fill = 0.0
            for ti, r in series:
                if ti <= t:
                    fill = r
            here = self.at(t)
            out[k] = np.where(np.isfinite(here), here, fill)
        return RainField(times, out, self.source)

    def separable(
        self, mask: np.ndarray, *, t0: float, t1: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The field over [t0, t1] as a uniform series times a fixed per-cell multiplier.

        ``rate(t, cell) ~ r(t) m(cell)``: r(t) is the field's mean over *mask*
        at each step, m the field's depth over [t0, t1] divided by r's. This is
        exact for a field of fixed shape, and keeps each cell's rain depth
        over the window in any case. It is the form the flood kernel's
        ``set_rain(times, rate, multiplier=m)`` takes. NaN cells count as 0.

        Returns
        -------
        tuple
            (times_s, r in mm/h, m) with m of shape (nrows, ncols), mean 1 over *mask*.
        """
        if not t1 > t0:
            raise ValueError(f"t1 must be after t0, got t0={t0}, t1={t1}")
        edges = np.concatenate([[t0], self.times_s[(self.times_s > t0) & (self.times_s < t1)],
                                [t1]])  # fmt: skip
        fields = [np.nan_to_num(self.at(t), nan=0.0).astype(float) for t in edges[:-1]]
        r = np.array([f[mask].mean() if mask.any() else 0.0 for f in fields])
        dt = np.diff(edges)
        depth = sum(f * d for f, d in zip(fields, dt, strict=True))
        total = float(np.sum(r * dt))
        m = np.where(mask, depth / total, 0.0) if total > 0 else mask.astype(float)
        return edges[:-1], r, m


def rain_field_from_gauges(
    obs: RainGaugeObservations,
    world: Any,
    *,
    method: str = "idw",
    power: float = 2.0,
    radius_m: float | None = None,
) -> RainField:
    """Spread rain-gauge readings over the World grid.

    Parameters
    ----------
    obs
        From :func:`read_rain_gauges`.
    world
        The World; its grid's cell centres receive the rate.
    method
        ``idw``: inverse-distance weighting, ``sum w_g r_g / sum w_g`` with
        ``w_g = d_g^-power`` (Shepard 1968); ``nearest``: the nearest gauge's
        rate (Thiessen polygons).
    power
        The IDW exponent (2 is usual).
    radius_m
        Cells farther than this from every reporting gauge stay uncovered
        (NaN); None covers the whole grid.

    Returns
    -------
    RainField
        One step per distinct reading time; a gauge counts from its first
        reading on.
    """
    if method not in ("idw", "nearest"):
        raise ValueError(f"method must be 'idw' or 'nearest', got {method!r}")
    t = world.terrain
    nrows, ncols = t.shape
    rr, cc = np.mgrid[0:nrows, 0:ncols]
    cx, cy = t.cell_centre(rr.ravel(), cc.ravel())
    gauges = list(obs.positions)
    gxy = np.array([obs.positions[g] for g in gauges])
    d = np.hypot(cx[:, None] - gxy[None, :, 0], cy[:, None] - gxy[None, :, 1])  # (cells, G)
    d = np.maximum(d, 1e-6 * t.dx)
    times = np.unique(obs.table["time_s"].to_numpy(dtype=float))
    out = np.full((len(times), nrows * ncols), np.nan, dtype=np.float32)
    series = {g: obs.table[obs.table["gauge"] == g] for g in gauges}
    for k, tk in enumerate(times):
        v = np.full(len(gauges), np.nan)
        for j, g in enumerate(gauges):
            s = series[g]
            before = s[s["time_s"] <= tk]
            if len(before):
                v[j] = float(before["rain_mm_h"].iloc[-1])
        ok = np.isfinite(v)
        if not ok.any():
            continue
        dk = d[:, ok]
        if method == "nearest":
            val = v[ok][np.argmin(dk, axis=1)]
        else:
            w = dk**-power
            val = (w * v[ok]).sum(axis=1) / w.sum(axis=1)
        if radius_m is not None:
            val = np.where(dk.min(axis=1) <= radius_m, val, np.nan)
        out[k] = val
    return RainField(times, out.reshape(len(times), nrows, ncols), obs.source)


_STEM_TIME = re.compile(r"[_-]([^_]+)$")


def _raster_list(
    source: str | Path | Sequence[str | Path] | Mapping[Any, str | Path],
    times: Sequence[Any] | None,
) -> list[tuple[Any, Path, str]]:
    """(time as written, file, where the time came from) for each raster."""
    if isinstance(source, Mapping):
        return [(k, Path(v), "the mapping") for k, v in source.items()]
    if isinstance(source, str | Path) and Path(source).is_dir():
        folder = Path(source)
        index = folder / "times.csv"
        if index.is_file():
            df = pd.read_csv(index)
            tcol = "time_s" if "time_s" in df.columns else "time"
            if "file" not in df.columns or tcol not in df.columns:
                raise InputDataError(f"{index}: expected columns file, time_s")
            pairs = zip(df["file"], df[tcol], strict=True)
            return [(tm, folder / f, f"{index} row {i + 1}") for i, (f, tm) in enumerate(pairs)]
        files = sorted(folder.glob("*.tif")) + sorted(folder.glob("*.tiff"))
        if not files:
            raise InputDataError(f"{folder}: no GeoTIFF rain rasters (*.tif) in the folder")
        out = []
        for f in files:
            m = _STEM_TIME.search(f.stem)
            if not m:
                raise InputDataError(f"{f}: cannot read a time from the file name; expected "
                                     "NAME_SECONDS.tif (e.g. rain_3600.tif), NAME_TIMESTAMP.tif "
                                     "(e.g. rain_20240901T0600Z.tif) or a times.csv "
                                     "(file, time_s) in the folder")  # fmt: skip
            out.append((m.group(1), f, "the file name"))
        return out
    files = [Path(source)] if isinstance(source, str | Path) else [Path(f) for f in source]
    if times is None or len(times) != len(files):
        raise InputDataError(f"rain rasters {', '.join(map(str, files))}: give one time per "
                             "file (times=...)")  # fmt: skip
    return [(tm, f, "times") for tm, f in zip(times, files, strict=True)]


def _time_value(raw: Any, start: datetime | None, where: str) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        pass
    try:
        stamp = pd.Timestamp(str(raw))
    except ValueError as exc:
        raise InputDataError(f"{where}: time {raw!r} is neither seconds nor an ISO 8601 "
                             "timestamp") from exc  # fmt: skip
    if start is None:
        raise InputDataError(f"{where}: time {raw!r} is a timestamp; give the scenario a "
                             "`start:` (ISO 8601)")  # fmt: skip
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return float((stamp - _utc(start)).total_seconds())


def read_rain_rasters(
    source: str | Path | Sequence[str | Path] | Mapping[Any, str | Path],
    scenario: Scenario,
    world: Any,
    *,
    times: Sequence[Any] | None = None,
    resampling: str = "bilinear",
) -> RainField:
    """Read rain rasters (GeoTIFF, mm/h, one per time) onto the World grid.

    Parameters
    ----------
    source
        A folder of GeoTIFFs (times from a ``times.csv`` with columns
        ``file, time_s`` or from names ``NAME_SECONDS.tif`` /
        ``NAME_TIMESTAMP.tif``), a list of files (with *times*), or a mapping
        ``{time: file}``. Times are seconds since t = 0 or ISO timestamps
        (these need the scenario's ``start:``).
    scenario
        For ``start:``.
    world
        The World: each raster is reprojected onto its grid and CRS.
    times
        With a list of files: one time per file.
    resampling
        A ``rasterio.enums.Resampling`` name (``bilinear``, ``nearest``, ``average``).

    Returns
    -------
    RainField
        NaN where a raster does not cover a cell or holds nodata.
    """
    import rasterio
    from rasterio.crs import CRS as RIO_CRS
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    try:
        method = Resampling[resampling]
    except KeyError as exc:
        raise ValueError(f"resampling must be a rasterio Resampling name, got {resampling!r}"
                         ) from exc  # fmt: skip
    items = _raster_list(source, times)
    timed = sorted(
        ((_time_value(raw, scenario.start, f"{f} (time from {how})"), f) for raw, f, how in items),
        key=lambda x: x[0],
    )
    for (ta, fa), (tb, fb) in zip(timed[:-1], timed[1:], strict=True):
        if ta == tb:
            raise InputDataError(f"rain rasters {fa} and {fb} are both for {ta:g} s; expected "
                                 "one raster per time")  # fmt: skip
    t = world.terrain
    dst_crs = RIO_CRS.from_user_input(world.crs.to_wkt())
    out = np.full((len(timed), *t.shape), np.nan, dtype=np.float32)
    for k, (tk, f) in enumerate(timed):
        if tk < 0:
            raise InputDataError(f"{f}: time {tk:g} s is before the scenario's t = 0")
        if not f.is_file():
            raise InputDataError(f"{f}: rain raster not found")
        try:
            with rasterio.open(f) as ds:
                if ds.crs is None:
                    raise CRSError(f"{f}: the rain raster has no CRS; expected a GeoTIFF with "
                                   "its coordinate reference system")  # fmt: skip
                band = ds.read(1, masked=True).astype("float64").filled(np.nan)
                src_transform, src_crs = ds.transform, ds.crs
        except rasterio.errors.RasterioIOError as exc:
            raise InputDataError(f"{f}: cannot read the rain raster: {exc}") from exc
        if np.any(band[np.isfinite(band)] < 0):
            raise InputDataError(f"{f}: negative rain rates; expected mm/h >= 0")
        dst = np.full(t.shape, np.nan, dtype=np.float64)
        reproject(band, dst, src_transform=src_transform, src_crs=src_crs, src_nodata=np.nan,
                  dst_transform=t.transform, dst_crs=dst_crs, dst_nodata=np.nan,
                  resampling=method)  # fmt: skip
        out[k] = dst
    label = str(source) if isinstance(source, str | Path) else f"{len(timed)} rain rasters"
    return RainField(np.array([x[0] for x in timed]), out, label)
