"""A tropical-cyclone track: reading it from CSV and interpolating it in time.

Two CSV dialects are read:

- **emtwin**: ``time_s`` (seconds from the scenario start) or ``time`` (ISO
  8601, needs *start*), ``lon``, ``lat`` (degrees, EPSG:4326),
  ``pressure_hpa`` (central pressure), ``rmax_km`` (radius of maximum wind),
  optional ``vmax_m_s`` (1-min sustained surface wind) and ``holland_b``.
- **IBTrACS** v04 (Knapp et al. 2010, BAMS 91(3)): ``ISO_TIME``, ``LAT``,
  ``LON``, central pressure from ``USA_PRES`` or else ``WMO_PRES`` (hPa),
  ``USA_RMW`` (nautical miles), ``USA_WIND`` (knots, 1-min sustained), and
  ``USA_POCI`` (pressure of the outermost closed isobar, hPa) when present. The
  units row under the header (``degrees_north``...) is skipped; a file with
  several storms (``SID``) needs *storm*.

A missing radius of maximum wind is estimated from the pressure deficit and
latitude by Vickery & Wadhera (2008, J. Appl. Meteor. Climatol. 47,
eq. 11, all storms): ``ln Rmax = 3.015 - 6.291e-5 dp^2 + 0.0337 lat``
(Rmax in km, dp in hPa, lat in degrees).

Interpolation is linear in time for every quantity, with longitudes unwrapped
across the antimeridian. The translation velocity is that of the track segment
holding the time (constant per segment), and the pressure tendency likewise.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from emtwin.errors import InputDataError

__all__ = [
    "EARTH_RADIUS_M",
    "KNOT_M_S",
    "NAUTICAL_MILE_KM",
    "StormTrack",
    "TrackPoint",
    "read_track",
    "rmax_vickery_wadhera_km",
]

#: Mean Earth radius, m (IUGG).
EARTH_RADIUS_M = 6_371_008.8
#: One knot, m/s.
KNOT_M_S = 1852.0 / 3600.0
#: One nautical mile, km.
NAUTICAL_MILE_KM = 1.852

_IBTRACS_MISSING = {"", " "}

log = logging.getLogger(__name__)


def rmax_vickery_wadhera_km(dp_hpa: np.ndarray | float, lat_deg: np.ndarray | float) -> np.ndarray:
    """Radius of maximum wind from the pressure deficit, km.

    Vickery & Wadhera (2008), all-storm fit: ``ln Rmax = 3.015 - 6.291e-5 dp^2
    + 0.0337 |lat|`` with *dp_hpa* the central pressure deficit (hPa) and
    *lat_deg* the latitude (degrees).
    """
    dp = np.asarray(dp_hpa, dtype=float)
    lat = np.abs(np.asarray(lat_deg, dtype=float))
    return np.exp(3.015 - 6.291e-5 * dp**2 + 0.0337 * lat)


@dataclass(frozen=True)
class TrackPoint:
    """The storm at one time (interpolated).

    Attributes
    ----------
    time_s
        Time from the scenario start, s.
    lon, lat
        Centre, degrees (EPSG:4326).
    pressure_hpa
        Central pressure, hPa.
    rmax_km
        Radius of maximum wind, km.
    vmax_m_s
        Maximum 1-min sustained surface wind, m/s (NaN where the track has none).
    holland_b
        Holland B given by the track (NaN where none).
    env_pressure_hpa
        Environmental pressure from the track (NaN where none).
    u_m_s, v_m_s
        Translation velocity, eastward and northward, m/s.
    dpdt_hpa_h
        Central pressure tendency, hPa/h.
    """

    time_s: float
    lon: float
    lat: float
    pressure_hpa: float
    rmax_km: float
    vmax_m_s: float
    holland_b: float
    env_pressure_hpa: float
    u_m_s: float
    v_m_s: float
    dpdt_hpa_h: float

    @property
    def translation_speed_m_s(self) -> float:
        """Forward speed, m/s."""
        return math.hypot(self.u_m_s, self.v_m_s)


@dataclass(frozen=True)
class StormTrack:
    """A storm track: arrays of shape (n,), times strictly increasing.

    ``time_s`` is seconds from the scenario start; ``lon``/``lat`` degrees;
    ``pressure_hpa`` hPa; ``rmax_km`` km; ``vmax_m_s`` m/s, ``holland_b`` and
    ``env_pressure_hpa`` NaN where not given. ``source`` names the file.
    """

    time_s: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    pressure_hpa: np.ndarray
    rmax_km: np.ndarray
    vmax_m_s: np.ndarray
    holland_b: np.ndarray
    env_pressure_hpa: np.ndarray
    source: str = "<track>"

    def __post_init__(self) -> None:
        n = self.time_s.shape[0]
        if n < 2:
            raise InputDataError(f"{self.source}: a track needs at least two points, got {n}")
        if np.any(np.diff(self.time_s) <= 0):
            i = int(np.argmax(np.diff(self.time_s) <= 0)) + 1
            raise InputDataError(
                f"{self.source}: point {i + 1}: times must increase, got "
                f"{self.time_s[i]:g} s after {self.time_s[i - 1]:g} s"
            )

    @property
    def start_s(self) -> float:
        """Time of the first point, s."""
        return float(self.time_s[0])

    @property
    def end_s(self) -> float:
        """Time of the last point, s."""
        return float(self.time_s[-1])

    def _segment(self, t: float) -> int:
        """Index i of the segment [t_i, t_i+1] holding *t* (clamped to the track)."""
        i = int(np.searchsorted(self.time_s, t, side="right")) - 1
        return min(max(i, 0), self.time_s.shape[0] - 2)

    def at(self, t_s: float) -> TrackPoint:
        """The storm at time *t_s* (s), linearly interpolated.

        Outside the track's time range the end points are held (the caller
        decides whether a storm exists then: see :meth:`covers`).
        """
        t = float(t_s)
        i = self._segment(t)
        t0, t1 = self.time_s[i], self.time_s[i + 1]
        w = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        lon0 = float(self.lon[i])
        dlon = (float(self.lon[i + 1]) - lon0 + 180.0) % 360.0 - 180.0

        def lerp(a: np.ndarray) -> float:
            return float(a[i] + w * (a[i + 1] - a[i]))

        lat0, lat1 = float(self.lat[i]), float(self.lat[i + 1])
        dt = float(t1 - t0)
        latm = math.radians(0.5 * (lat0 + lat1))
        u = math.radians(dlon) * EARTH_RADIUS_M * math.cos(latm) / dt
        v = math.radians(lat1 - lat0) * EARTH_RADIUS_M / dt
        lon = (lon0 + w * dlon + 180.0) % 360.0 - 180.0
        return TrackPoint(
            time_s=t,
            lon=lon,
            lat=lerp(self.lat),
            pressure_hpa=lerp(self.pressure_hpa),
            rmax_km=lerp(self.rmax_km),
            vmax_m_s=lerp(self.vmax_m_s),
            holland_b=lerp(self.holland_b),
            env_pressure_hpa=lerp(self.env_pressure_hpa),
            u_m_s=u,
            v_m_s=v,
            dpdt_hpa_h=float(self.pressure_hpa[i + 1] - self.pressure_hpa[i]) / dt * 3600.0,
        )

    def covers(self, t_s: float) -> bool:
        """True if *t_s* lies within the track's time range."""
        return self.start_s <= t_s <= self.end_s

    def shifted(self, *, cross_track_km: float = 0.0, intensity_scale: float = 1.0,
                env_pressure_hpa: float = 1010.0) -> StormTrack:
        """A perturbed copy: moved sideways and with the pressure deficit scaled.

        *cross_track_km* moves every point perpendicular to the mean heading
        (positive: to the right of motion); *intensity_scale* multiplies the
        deficit ``env - pressure`` (env from the track or *env_pressure_hpa*)
        and ``vmax`` by its square root (Holland: V ~ sqrt(dp)). Used for
        track uncertainty in batches.
        """
        lat_m = math.radians(float(np.mean(self.lat)))
        dx = float(((self.lon[-1] - self.lon[0] + 180.0) % 360.0 - 180.0) * math.cos(lat_m))
        dy = float(self.lat[-1] - self.lat[0])
        norm = math.hypot(dx, dy) or 1.0
        # right-hand normal of the heading (dx, dy) is (dy, -dx)
        ddeg = math.degrees(cross_track_km * 1000.0 / EARTH_RADIUS_M)
        nx, ny = dy / norm * ddeg, -dx / norm * ddeg
        lon = self.lon + nx / np.cos(np.radians(self.lat))
        lat = self.lat + ny
        env = np.where(np.isnan(self.env_pressure_hpa), env_pressure_hpa, self.env_pressure_hpa)
        pres = env - intensity_scale * (env - self.pressure_hpa)
        return StormTrack(self.time_s.copy(), lon, lat, pres, self.rmax_km.copy(),
                          self.vmax_m_s * math.sqrt(intensity_scale), self.holland_b.copy(),
                          self.env_pressure_hpa.copy(), source=self.source)


# ------------------------------------------------------------------------ reading


def _number(text: str, *, file: str, row: int, column: str, unit: str) -> float:
    """A finite float from a CSV cell, or an error naming the file, row and column."""
    try:
        x = float(text)
    except ValueError:
        raise InputDataError(
            f"{file}: row {row}, column {column!r}: expected a number ({unit}), got {text!r}"
        ) from None
    if not math.isfinite(x):
        raise InputDataError(
            f"{file}: row {row}, column {column!r}: expected a finite number ({unit}), got {text!r}"
        )
    return x


def _iso_seconds(text: str, start: datetime, *, file: str, row: int, column: str) -> float:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputDataError(
            f"{file}: row {row}, column {column!r}: expected an ISO 8601 time such as "
            f"2013-11-07 18:00:00, got {text!r}"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    s = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    return (t - s).total_seconds()


def _as_start(start: datetime | str | None) -> datetime | None:
    if start is None or isinstance(start, datetime):
        return start
    return datetime.fromisoformat(str(start))


def read_track(
    path: str | Path,
    *,
    start: datetime | str | None = None,
    storm: str | None = None,
    env_pressure_hpa: float = 1010.0,
) -> StormTrack:
    """Read a storm track CSV (emtwin or IBTrACS columns; see the module docstring).

    Parameters
    ----------
    path
        The CSV file.
    start
        Scenario start (ISO 8601 string or datetime, UTC if naive); needed for
        ISO times (``time`` or IBTrACS ``ISO_TIME``). Without it, ISO times are
        counted from the first row.
    storm
        IBTrACS storm id (``SID``) or name (``NAME``) to take from a file with
        several storms.
    env_pressure_hpa
        Environmental pressure, hPa, used only to estimate a missing radius of
        maximum wind (Vickery & Wadhera 2008).

    Raises
    ------
    InputDataError
        If the file is missing or a value is missing or not a number; the message
        names the file, the row (1 = header) and the column.
    """
    p = Path(path)
    file = str(p)
    if not p.is_file():
        raise InputDataError(f"{file}: track file not found")
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [(i + 2, {k.strip(): (v or "") for k, v in r.items() if k}) for i, r in
                enumerate(reader)]
    if "ISO_TIME" in header:
        return _read_ibtracs(rows, header, file=file, start=_as_start(start), storm=storm,
                             env=env_pressure_hpa)
    return _read_plain(rows, header, file=file, start=_as_start(start), env=env_pressure_hpa)


def _require(header: list[str], names: tuple[str, ...], file: str, dialect: str) -> None:
    missing = [n for n in names if n not in header]
    if missing:
        raise InputDataError(
            f"{file}: missing column(s) {', '.join(missing)} ({dialect} track; columns found: "
            f"{', '.join(header) or 'none'})"
        )


def _read_plain(rows: list, header: list[str], *, file: str, start: datetime | None,
                env: float) -> StormTrack:
    if "time_s" in header:
        tcol = "time_s"
    elif "time" in header:
        tcol = "time"
    else:
        raise InputDataError(
            f"{file}: missing column time_s (seconds from the start) or time (ISO 8601); "
            f"columns found: {', '.join(header) or 'none'}"
        )
    _require(header, ("lon", "lat", "pressure_hpa", "rmax_km"), file, "emtwin")
    if not rows:
        raise InputDataError(f"{file}: the track has no rows")
    t0: datetime | None = None
    cols: dict[str, list[float]] = {k: [] for k in
                                    ("t", "lon", "lat", "p", "r", "v", "b", "e")}
    for row, r in rows:
        if tcol == "time_s":
            t = _number(r["time_s"], file=file, row=row, column="time_s", unit="s")
        else:
            t0 = t0 or _base_time(start, r["time"], file=file, row=row, column="time")
            t = _iso_seconds(r["time"], t0, file=file, row=row, column="time")
        cols["t"].append(t)
        cols["lon"].append(_number(r["lon"], file=file, row=row, column="lon", unit="degrees"))
        cols["lat"].append(_lat(r["lat"], file=file, row=row, column="lat"))
        cols["p"].append(_pressure(r["pressure_hpa"], file=file, row=row, column="pressure_hpa"))
        cols["r"].append(_positive(r["rmax_km"], file=file, row=row, column="rmax_km", unit="km"))
        cols["v"].append(_optional(r.get("vmax_m_s", ""), file=file, row=row, column="vmax_m_s",
                                   unit="m/s"))
        cols["b"].append(_optional(r.get("holland_b", ""), file=file, row=row, column="holland_b",
                                   unit="dimensionless"))
        cols["e"].append(math.nan)
    a = {k: np.asarray(v, dtype=float) for k, v in cols.items()}
    return StormTrack(a["t"], a["lon"], a["lat"], a["p"], a["r"], a["v"], a["b"], a["e"],
                      source=file)


def _base_time(start: datetime | None, first: str, *, file: str, row: int,
               column: str) -> datetime:
    """The time that is 0 s: *start*, or else the first row's time."""
    if start is not None:
        return start
    _iso_seconds(first, datetime.now(UTC), file=file, row=row, column=column)  # checks it
    t = datetime.fromisoformat(first.strip())
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _lat(text: str, *, file: str, row: int, column: str) -> float:
    x = _number(text, file=file, row=row, column=column, unit="degrees")
    if not -90.0 <= x <= 90.0:
        raise InputDataError(
            f"{file}: row {row}, column {column!r}: latitude must be within [-90, 90], got {x:g}"
        )
    return x


def _pressure(text: str, *, file: str, row: int, column: str) -> float:
    x = _number(text, file=file, row=row, column=column, unit="hPa")
    if not 800.0 <= x <= 1100.0:
        raise InputDataError(
            f"{file}: row {row}, column {column!r}: expected a central pressure in hPa "
            f"(800-1100), got {x:g}"
        )
    return x


def _positive(text: str, *, file: str, row: int, column: str, unit: str) -> float:
    x = _number(text, file=file, row=row, column=column, unit=unit)
    if x <= 0:
        raise InputDataError(
            f"{file}: row {row}, column {column!r}: expected a positive number ({unit}), got {x:g}"
        )
    return x


def _optional(text: str, *, file: str, row: int, column: str, unit: str) -> float:
    if text.strip() == "":
        return math.nan
    return _positive(text, file=file, row=row, column=column, unit=unit)


def _has_pressure(r: dict) -> bool:
    return any(r.get(c, "").strip() not in _IBTRACS_MISSING for c in ("USA_PRES", "WMO_PRES"))


def _trim_pressureless(rows: list, file: str) -> list:
    """Drop the leading and trailing IBTrACS rows without a central pressure.

    Best tracks often start (disturbance stage) or end without one. A missing
    pressure between rows that have one is left for the reader to report.
    """
    if not rows:
        raise InputDataError(f"{file}: the track has no rows")
    ok = [i for i, (_, r) in enumerate(rows) if _has_pressure(r)]
    if not ok:
        raise InputDataError(
            f"{file}: no row has a central pressure (columns USA_PRES, WMO_PRES)"
        )
    kept = rows[ok[0] : ok[-1] + 1]
    if len(kept) < len(rows):
        log.info("%s: %d rows without a central pressure at the start or end skipped",
                 file, len(rows) - len(kept))
    return kept


def _read_ibtracs(rows: list, header: list[str], *, file: str, start: datetime | None,
                  storm: str | None, env: float) -> StormTrack:
    _require(header, ("ISO_TIME", "LAT", "LON"), file, "IBTrACS")
    if not any(c in header for c in ("USA_PRES", "WMO_PRES")):
        raise InputDataError(f"{file}: missing column USA_PRES or WMO_PRES (IBTrACS track)")
    # the units row under the header: LAT reads 'degrees_north'
    rows = [(n, r) for n, r in rows if not r.get("LAT", "").strip().startswith("degrees")]
    if "SID" in header:
        sids = list(dict.fromkeys(r["SID"].strip() for _, r in rows))
        if storm is not None:
            rows = [(n, r) for n, r in rows
                    if storm in (r["SID"].strip(), r.get("NAME", "").strip())]
            if not rows:
                raise InputDataError(f"{file}: no storm {storm!r} (storms: {', '.join(sids)})")
        elif len(sids) > 1:
            raise InputDataError(
                f"{file}: {len(sids)} storms in the file ({', '.join(sids[:5])}...); "
                "name one with `storm:` (its SID or NAME)"
            )
    rows = _trim_pressureless(rows, file)
    base = _base_time(start, rows[0][1]["ISO_TIME"], file=file, row=rows[0][0],
                      column="ISO_TIME")
    cols: dict[str, list[float]] = {k: [] for k in ("t", "lon", "lat", "p", "r", "v", "b", "e")}
    for row, r in rows:
        cols["t"].append(_iso_seconds(r["ISO_TIME"], base, file=file, row=row,
                                      column="ISO_TIME"))
        cols["lat"].append(_lat(r["LAT"], file=file, row=row, column="LAT"))
        cols["lon"].append(_number(r["LON"], file=file, row=row, column="LON", unit="degrees"))
        pcol = next((c for c in ("USA_PRES", "WMO_PRES")
                     if r.get(c, "").strip() not in _IBTRACS_MISSING), None)
        if pcol is None:
            raise InputDataError(
                f"{file}: row {row}, column 'USA_PRES': missing central pressure (and no "
                "WMO_PRES) between rows that have one"
            )
        cols["p"].append(_pressure(r[pcol], file=file, row=row, column=pcol))
        rmw = r.get("USA_RMW", "").strip()
        cols["r"].append(math.nan if rmw in _IBTRACS_MISSING else NAUTICAL_MILE_KM * _positive(
            rmw, file=file, row=row, column="USA_RMW", unit="nautical miles"))
        wind = r.get("USA_WIND", "").strip()
        cols["v"].append(math.nan if wind in _IBTRACS_MISSING else KNOT_M_S * _positive(
            wind, file=file, row=row, column="USA_WIND", unit="knots"))
        cols["b"].append(math.nan)
        poci = r.get("USA_POCI", "").strip()
        cols["e"].append(math.nan if poci in _IBTRACS_MISSING else _pressure(
            poci, file=file, row=row, column="USA_POCI"))
    a = {k: np.asarray(v, dtype=float) for k, v in cols.items()}
    miss = np.isnan(a["r"])
    if miss.any():
        envp = np.where(np.isnan(a["e"]), env, a["e"])
        a["r"][miss] = rmax_vickery_wadhera_km(np.maximum(envp - a["p"], 0.0), a["lat"])[miss]
    return StormTrack(a["t"], a["lon"], a["lat"], a["p"], a["r"], a["v"], a["b"], a["e"],
                      source=file)
