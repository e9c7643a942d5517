"""The typhoon hazard built for one World: what its component calls each coupling step.

:class:`TyphoonModel` holds the track, the wind model, the running wind
statistics, the road-blockage draws and the surge settings. It knows no engine:
the typhoon component builds one at start and, each coupling step at time t,
calls :meth:`TyphoonModel.step`, then writes what it returns into the shared
fields (``wind__speed``, ``wind__direction``; the flood's rain and sea level;
road closures with reason ``wind``). docs/typhoon.md, "API", lists the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling

from emtwin.errors import InputDataError
from emtwin.geo.crs import to_crs_xy
from emtwin.geo.track import StormTrack, read_track
from emtwin.geo.world import World
from emtwin.kernels.road_state import edge_max_depth
from emtwin.scenarios.typhoon import TyphoonHazard
from emtwin.typhoon.accumulate import WindAccumulator
from emtwin.typhoon.fragility import BlockageDraws
from emtwin.typhoon.rain import rain_on_grid
from emtwin.typhoon.surge import surge_level_series
from emtwin.typhoon.wind import GridSpec, TyphoonWind, cell_factor_from_classes

__all__ = ["TyphoonModel", "TyphoonStep", "load_track", "land_cover_factor"]


@dataclass(frozen=True)
class TyphoonStep:
    """What one coupling step produces (arrays on the World grid unless said).

    ``wind_speed`` m/s and ``wind_direction`` degrees (from, clockwise from
    north), shape (nrows, ncols); ``rain_mm_h`` the storm's rain, mm/h, or None
    when rain is off; ``sea_level_m`` the sea boundary level, m, or None
    without a surge; ``newly_blocked`` edge indices blocked at this step
    (closure reason ``wind``), shape (k,).
    """

    time_s: float
    wind_speed: np.ndarray
    wind_direction: np.ndarray
    rain_mm_h: np.ndarray | None
    sea_level_m: float | None
    newly_blocked: np.ndarray


def load_track(hazard: TyphoonHazard, *, start: datetime | str | None = None) -> StormTrack:
    """The hazard's track: read, then moved and scaled by its uncertainty keys."""
    track = read_track(hazard.track, start=start, storm=hazard.storm,
                       env_pressure_hpa=hazard.environment_pressure_hpa)
    if hazard.cross_track_shift_km != 0.0 or hazard.intensity_scale != 1.0:
        track = track.shifted(cross_track_km=hazard.cross_track_shift_km,
                              intensity_scale=hazard.intensity_scale,
                              env_pressure_hpa=hazard.environment_pressure_hpa)
    return track


def land_cover_factor(raster: str, table: dict[int, float], *, world: World) -> np.ndarray:
    """Per-cell wind factor on the World grid from a land-cover raster and a class table.

    The raster is reprojected to the grid by nearest neighbour; classes missing
    from the table (and cells the raster does not cover) get 1.
    """
    t = world.terrain
    try:
        with rasterio.open(raster) as ds:
            data = ds.read(1).astype(np.float64)
            src_crs = ds.crs
            src_t = ds.transform
            nodata = ds.nodata
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"typhoon land_cover: cannot read {raster}: {exc}") from None
    if src_crs is None:
        raise InputDataError(f"typhoon land_cover: {raster} has no CRS")
    if nodata is not None:
        data[data == nodata] = np.nan
    out = np.full(t.shape, np.nan)
    rasterio.warp.reproject(
        source=data, destination=out, src_transform=src_t, src_crs=src_crs, src_nodata=np.nan,
        dst_transform=Affine(*t.transform[:6]),
        dst_crs=rasterio.crs.CRS.from_wkt(world.crs.to_wkt()), dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    classes = np.where(np.isfinite(out), out, -1).astype(np.int64)
    return cell_factor_from_classes(classes, table, default=1.0)


class TyphoonModel:
    """The typhoon hazard on one World.

    Parameters
    ----------
    hazard
        The scenario's typhoon section.
    world
        The World (its grid, CRS, roads).
    rng
        The generator for road blockage (a child of the run's, spawned by the engine).
    scenario_crs
        CRS of coordinates written in the scenario (surge ``at``, gauges).
    start
        Scenario start, for tracks with ISO times.
    """

    def __init__(self, hazard: TyphoonHazard, world: World, *, rng: np.random.Generator,
                 scenario_crs: str = "EPSG:4326", start: datetime | str | None = None) -> None:
        self.hazard = hazard
        self.world = world
        self.track = load_track(hazard, start=start)
        grid = GridSpec.of_terrain(world.terrain)
        cf = None
        if hazard.land_cover is not None:
            cf = land_cover_factor(hazard.land_cover.raster, hazard.land_cover.table, world=world)
        self.wind = TyphoonWind(self.track, grid, crs=world.crs,
                                params=hazard.wind_parameters(), cell_factor=cf)
        self.stats = WindAccumulator.empty(grid.shape, gust_factor=hazard.gust_factor_value)
        roads = world.roads
        self.blockage = (
            BlockageDraws(roads.highway, rng, hazard.fragility_table())
            if roads is not None and hazard.road_blockage and world.edge_cells is not None
            else None
        )
        self.blocked = (np.zeros(roads.n_edges, dtype=bool) if self.blockage is not None
                        else np.zeros(0, dtype=bool))
        self._coast: tuple[float, float] | None = None
        s = hazard.surge
        if s is not None and s.at is not None:
            x, y = to_crs_xy(s.at[0], s.at[1], scenario_crs, world.crs)
            self._coast = (float(x[0]), float(y[0]))
        self._gauges = {}
        for g in hazard.gauges:
            x, y = to_crs_xy(g.at[0], g.at[1], scenario_crs, world.crs)
            self._gauges[g.name] = (float(x[0]), float(y[0]))

    # ------------------------------------------------------------------ per step

    def sea_level(self, t_s: float) -> float | None:
        """The sea boundary level at *t_s*, m (None without a surge)."""
        s = self.hazard.surge
        if s is None:
            return None
        if s.level is not None:
            ts = np.array([p[0] for p in s.level])
            vs = np.array([p[1] for p in s.level])
            return float(np.interp(t_s, ts, vs))
        assert self._coast is not None and s.onshore_bearing is not None
        ((_, level),) = surge_level_series(
            self.wind, np.array([t_s]), at=self._coast, onshore_bearing_deg=s.onshore_bearing,
            shelf_width_m=s.shelf_width_m, shelf_depth_m=s.shelf_depth_m,
            base_level_m=s.base_level,
        )
        return level

    def sea_level_series(self, times_s: np.ndarray) -> list[tuple[float, float]] | None:
        """The sea boundary level at each of *times_s*, ``[(t, m), ...]`` (None without a
        surge). The track is known ahead, so the flood can take the whole series at start.
        """
        if self.hazard.surge is None:
            return None
        return [(float(t), float(self.sea_level(float(t)))) for t in times_s]  # type: ignore[arg-type]

    def step(self, t_s: float) -> TyphoonStep:
        """Advance the wind statistics to *t_s* (s) and return the fields of this step."""
        speed, direction = self.wind.field(t_s)
        self.stats.update(t_s, speed)
        rain_s = self.hazard.rain_settings
        rain = rain_on_grid(self.wind, t_s, scale=rain_s.scale) if rain_s is not None else None
        newly = np.zeros(0, dtype=np.int64)
        if self.blockage is not None:
            ec = self.world.edge_cells
            # the max over each edge's cells (the flood's depth reduction serves any field >= 0)
            gust = edge_max_depth(ec.indptr, ec.cells, self.stats.max_gust)  # type: ignore[union-attr]
            now = self.blockage.blocked(gust)
            newly = np.flatnonzero(now & ~self.blocked)
            self.blocked |= now
        return TyphoonStep(float(t_s), speed, direction, rain, self.sea_level(t_s), newly)

    def gauge_wind(self, t_s: float) -> dict[str, tuple[float, float]]:
        """Sustained wind (m/s) and direction (degrees) at each wind gauge at *t_s*."""
        out = {}
        for name, (x, y) in self._gauges.items():
            s, d = self.wind.at_points(t_s, np.array([x]), np.array([y]))
            out[name] = (float(s[0]), float(d[0]))
        return out

    def facility_unusable(self, kind: str, x: np.ndarray, y: np.ndarray,
                          speed: np.ndarray) -> np.ndarray:
        """True for facilities of *kind* (shelters, stations, hospitals) at points (x, y),
        m in the World CRS, where the sustained wind field *speed* exceeds the kind's limit.
        """
        limit = getattr(self.hazard.facility_wind_limits, kind)
        if limit is None or len(x) == 0:
            return np.zeros(len(x), dtype=bool)
        row, col = self.world.terrain.cell_of(np.asarray(x), np.asarray(y))
        nrows, ncols = speed.shape
        ok = (row >= 0) & (row < nrows) & (col >= 0) & (col < ncols)
        out = np.zeros(len(x), dtype=bool)
        out[ok] = speed[row[ok], col[ok]] > limit
        return out

    # ------------------------------------------------------------------ forecast

    def forecast_arrival(self, *, step_s: float = 300.0) -> np.ndarray:
        """Arrival of storm-force wind per cell over the whole track, s (NaN: never).

        A dry run of the wind model along the known track, every *step_s*
        seconds, that leaves this model's running statistics alone: the
        "forecast" arrival of hurricane evacuation planning (HURREVAC).
        """
        acc = WindAccumulator.empty(self.wind.grid.shape, gust_factor=1.0,
                                    threshold_m_s=self.stats.threshold_m_s)
        t = self.track.start_s
        while t <= self.track.end_s:
            acc.update(t, self.wind.field(t)[0])
            t += step_s
        return acc.arrival_s

    @staticmethod
    def warning_time(arrival_s: np.ndarray, clearance_s: float) -> tuple[float, float]:
        """Latest warning time so that clearance ends before storm-force wind arrives.

        *arrival_s* is the forecast arrival over the zone (cells or points), s;
        *clearance_s* the estimated clearance time, s. Returns ``(warn_at_s,
        first_arrival_s)``: the first arrival over the zone minus the clearance
        (may be negative: too late from the start) and the first arrival
        (``inf`` when storm-force wind never arrives).
        """
        a = np.asarray(arrival_s, dtype=float)
        a = a[np.isfinite(a)]
        first = float(a.min()) if a.size else float("inf")
        return first - float(clearance_s), first

    # ------------------------------------------------------------------ results

    def rasters(self) -> dict[str, np.ndarray]:
        """``max_wind`` (m/s), ``max_gust`` (m/s) and ``wind_arrival`` (s, NaN: never)."""
        return {"max_wind": self.stats.max_wind.copy(), "max_gust": self.stats.max_gust.copy(),
                "wind_arrival": self.stats.arrival_s.copy()}

    def summary(self) -> dict[str, float | int | None]:
        """The ``typhoon.*`` summary: peaks over the domain, first arrival, roads blocked."""
        mask = self.world.terrain.mask
        arr = self.stats.arrival_s[mask]
        arrived = arr[np.isfinite(arr)]
        return {
            "max_wind_m_s": float(self.stats.max_wind[mask].max(initial=0.0)),
            "max_gust_m_s": float(self.stats.max_gust[mask].max(initial=0.0)),
            "first_arrival_s": float(arrived.min()) if arrived.size else None,
            "cells_storm_force": int(arrived.size),
            "roads_blocked": int(self.blocked.sum()),
        }

    def track_table(self) -> pd.DataFrame:
        """The ``storm_track`` table: the track as run (after ``cross_track_shift_km`` and
        ``intensity_scale``), one row per track point.

        Columns ``time_s`` (s from the start), ``lon``, ``lat`` (degrees, EPSG:4326),
        ``x``, ``y`` (m, World CRS), ``pressure_hpa``, ``rmax_km``, ``vmax_m_s``
        (NaN where the track gives none).
        """
        tr = self.track
        x, y = to_crs_xy(tr.lon, tr.lat, "EPSG:4326", self.world.crs)
        return pd.DataFrame({
            "time_s": tr.time_s.astype(float), "lon": tr.lon.astype(float),
            "lat": tr.lat.astype(float), "x": np.asarray(x, float), "y": np.asarray(y, float),
            "pressure_hpa": tr.pressure_hpa.astype(float), "rmax_km": tr.rmax_km.astype(float),
            "vmax_m_s": tr.vmax_m_s.astype(float),
        })  # fmt: skip

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        """What a checkpoint must keep: the wind statistics and the blocked edges."""
        return {"stats": self.stats.state(), "blocked": self.blocked.copy()}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state` (same World, hazard and seed)."""
        self.stats = WindAccumulator.from_state(state["stats"])
        self.blocked = np.array(state["blocked"], dtype=bool)
