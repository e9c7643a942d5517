"""The Hazard component: the flood kernel on the SimPy clock, and the road state it sets.

Every coupling step (``hazards[0].coupling``, capped at ``outputs.every``) it
advances the flood kernel to ``env.now``, then publishes per-road state for the
other components on ``sim.roads``: the max depth along each edge (a Numba
kernel over the edge->cell CSR index), the travel-speed factor from the vehicle
speed curve of Pregnolato et al. (2017), and closure at ``road_closure_depth``.
Closures and reopenings are events. Nothing else recomputes this state.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from affine import Affine

from emtwin.errors import KernelError, ScenarioError
from emtwin.geo.build import to_world_xy
from emtwin.geo.world import World
from emtwin.kernels.apron import apron_sources
from emtwin.kernels.backend import select_backend
from emtwin.kernels.flood import FloodModel
from emtwin.kernels.hazard_rating import pregnolato_speed_factor
from emtwin.scenarios.models import FloodHazard, Scenario
from emtwin.sim.component import Component
from emtwin.sim.engine import Frames

__all__ = ["HazardComponent", "line_cells", "polygon_cells"]

log = logging.getLogger(__name__)

#: Depth above which a cell counts as flooded in the time series and summary, m.
FLOODED_DEPTH_M = 0.05
#: Map frames of depth are max-pooled to at most this many cells each.
FRAME_MAX_CELLS = 250_000


def line_cells(world: World, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the in-domain cells under a polyline (World CRS, m)."""
    t = world.terrain
    pts = [xy[0]]
    for a, b in zip(xy[:-1], xy[1:], strict=True):
        n = max(2, int(np.ceil(np.hypot(*(b - a)) / (t.dx / 4))) + 1)
        s = np.linspace(0.0, 1.0, n)[1:, None]
        pts.extend(a + s * (b - a))
    p = np.asarray(pts)
    rows, cols = t.cell_of(p[:, 0], p[:, 1])
    ok = rows >= 0
    rows, cols = rows[ok], cols[ok]
    ok = t.mask[rows, cols]
    flat = np.unique(rows[ok] * t.shape[1] + cols[ok])
    return flat // t.shape[1], flat % t.shape[1]


def polygon_cells(world: World, polygon: Any) -> np.ndarray:
    """Boolean grid of the in-domain cells whose centres fall inside *polygon* (World CRS)."""
    from rasterio.features import geometry_mask

    t = world.terrain
    inside = geometry_mask([polygon], out_shape=t.shape, transform=t.transform, invert=True)
    return inside & t.mask


class HazardComponent(Component):
    """The flood: forcing from the scenario, the kernel, gauges and road state."""

    name: ClassVar[str] = "flood"
    samples: ClassVar[dict[str, str]] = {
        "flooded_area_m2": f"area with depth >= {FLOODED_DEPTH_M} m, m2",
        "flood_volume_m3": "water stored on the grid, m3",
        "max_depth_m": "deepest water anywhere now, m",
        "roads_closed_by_flood": "directed edges closed by water",
        "rain_mm_h": "rain rate now, mm/h",
    }

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Enabled when the scenario has a flood hazard."""
        return scenario.flood is not None

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.spec: FloodHazard = self.scenario.flood
        t = self.world.terrain
        model_cls, self.precision = self._backend()
        z, mask, manning = self._domain()
        kwargs = {
            "manning": manning,
            "h0": np.where(t.mask, self.spec.initial_depth, 0.0) if self.spec.initial_depth
            else None,
            "theta": self.spec.theta,
            "alpha": self.spec.alpha,
            "time_stepping": self.spec.time_stepping,
        }  # fmt: skip
        try:
            self.model = model_cls(z, mask, t.dx, dtype=self.precision, **kwargs)
        except KernelError as exc:
            if model_cls is FloodModel or self.spec.backend != "auto":
                raise
            log.warning("flood backend 'auto': the GPU could not be used (%s); "
                        "running the flood on the CPU", exc)  # fmt: skip
            self.precision = self.spec.precision
            self.model = FloodModel(z, mask, t.dx, dtype=self.precision, **kwargs)
        self._forcing()
        self._gauges()
        self.coupling_s = min(float(self.spec.coupling), float(self.scenario.outputs.every))
        self.cell_area = t.dx * t.dx
        self.peak_area = 0.0
        self.peak_volume = float(self._domain_h().sum(dtype=np.float64)) * self.cell_area
        self.gauge_rows: list[tuple[float, str, float, float, float]] = []
        nrows, ncols = t.shape
        self.frame_factor = max(1, int(np.ceil(np.sqrt(nrows * ncols / FRAME_MAX_CELLS))))
        self.frame_times: list[float] = []
        self.frames: list[np.ndarray] = []
        self.ever_closed = (
            np.zeros(self.world.roads.n_edges, dtype=bool) if self.world.roads else None
        )
        self._bridge_cells()

    def _backend(self) -> tuple[type[FloodModel], str]:
        """The model class for ``hazards[0].backend`` and the precision it runs in.

        On the CPU the precision is the scenario's (default float64). On CUDA
        it is the scenario's when the scenario sets ``precision``, else float32.
        """
        try:
            backend = select_backend(self.spec.backend)
        except KernelError as exc:
            raise KernelError(f"hazards.0.backend: {exc}") from None
        if backend == "cpu":
            return FloodModel, self.spec.precision
        from emtwin.kernels.flood_cuda import CudaFloodModel

        set_here = "precision" in self.spec.model_fields_set
        return CudaFloodModel, self.spec.precision if set_here else "float32"

    def _bridge_cells(self) -> None:
        """Cells under bridge edges, gathered once for the deck rule."""
        idx = self.world.edge_cells
        self._bridges = np.zeros(0, dtype=np.int64)
        if idx is None or idx.deck_z is None:
            return
        edges = np.flatnonzero(np.isfinite(idx.deck_z) & (np.diff(idx.indptr) > 0))
        if edges.size == 0:
            return
        self._bridges = edges
        self._bridge_deck = idx.deck_z[edges]
        self._bridge_cells_flat = np.concatenate([idx.of(e) for e in edges])
        counts = idx.indptr[edges + 1] - idx.indptr[edges]
        self._bridge_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    # ------------------------------------------------------------------ set-up

    def _xy(self, points: Any) -> np.ndarray:
        return to_world_xy(points, self.scenario.crs, self.world)

    def _cells_of(self, key: str, at: Any, along: Any) -> tuple[np.ndarray, np.ndarray]:
        t = self.world.terrain
        if at is not None:
            (x, y), = self._xy([at])
            r, c = t.cell_of(x, y)
            rows, cols = np.atleast_1d(r), np.atleast_1d(c)
            if rows[0] < 0 or not t.mask[rows[0], cols[0]]:
                raise ScenarioError(
                    f"{key}.at: {list(at)} (x={x:.1f}, y={y:.1f} m in {self.world.crs.to_string()})"
                    " is outside the DEM's domain",
                    file=self.scenario.source,
                )
            return rows, cols
        rows, cols = line_cells(self.world, self._xy(along))
        if len(rows) == 0:
            raise ScenarioError(
                f"{key}.along: the line crosses no cell inside the DEM's domain",
                file=self.scenario.source,
            )
        return rows, cols

    def _forcing(self) -> None:
        s, m = self.spec, self.model
        if s.rain:
            times, rates = zip(*s.rain, strict=True)
            m.set_rain(np.array(times), np.array(rates))
        if s.infiltration:
            m.set_infiltration(s.infiltration.rate_mm_h)
        for i, inflow in enumerate(s.inflows):
            rows, cols = self._cells_of(f"hazards.0.inflows.{i}", inflow.at, inflow.along)
            t, q = zip(*inflow.hydrograph, strict=True)
            m.add_inflow(rows, cols, np.array(t), np.array(q), name=inflow.name or f"inflow_{i}")
        for i, b in enumerate(s.breaches):
            key = f"hazards.0.breaches.{i}"
            if b.hydrograph is not None:
                rows, cols = self._cells_of(key, b.at, b.along)
                t, q = zip(*b.hydrograph, strict=True)
                m.add_inflow(rows, cols, np.array(t), np.array(q), name=b.name or f"breach_{i}")
            else:
                cells = polygon_cells(self.world, self._reservoir_polygon(b.reservoir, key))
                if not cells.any():
                    raise ScenarioError(
                        f"{key}.reservoir.area: the polygon covers no cell inside the DEM's domain",
                        file=self.scenario.source,
                    )
                m.add_reservoir(cells, b.reservoir.level, b.reservoir.release_at)
        for side, spec in s.boundary.items():
            if isinstance(spec, str):
                m.set_boundary(side, spec)
            else:
                t, lv = zip(*spec.level, strict=True)
                m.set_boundary(side, "level", times_s=np.array(t), level_m=np.array(lv))

    def _domain(self) -> tuple[np.ndarray, np.ndarray, Any]:
        """Bed (m), model mask and Manning n, with aprons on the non-closed sides.

        See :mod:`emtwin.kernels.apron`: where the DEM's data stop short of the
        grid edge on a side with a level or open boundary, a flat strip carries
        the domain to the edge. ``self.domain`` (the terrain's own mask) is
        what outputs read; ``self.apron_cells`` counts the added cells.
        """
        t = self.world.terrain
        self.domain = t.mask
        sides = [side for side, spec in self.spec.boundary.items() if spec != "closed"]
        src = apron_sources(t.mask, sides)
        apron = src >= 0
        self.apron_cells = int(apron.sum())
        if not self.apron_cells:
            return t.z, t.mask, t.manning
        z = np.array(t.z, np.float64, copy=True)
        z[apron] = z.reshape(-1)[src[apron]]
        manning = t.manning
        if np.ndim(manning):
            manning = np.array(manning, np.float64, copy=True)
            manning[apron] = manning.reshape(-1)[src[apron]]
        return z, t.mask | apron, manning

    def _reservoir_polygon(self, res: Any, key: str) -> Any:
        from shapely.geometry import Polygon

        if isinstance(res.area, str):
            from emtwin.geo.areas import read_polygon

            return read_polygon(
                res.area, crs=self.world.crs, default_crs=self.scenario.crs,
                file_label=f"{key}.reservoir.area",
            )  # fmt: skip
        return Polygon(self._xy(res.area))

    def _gauges(self) -> None:
        t = self.world.terrain
        self.gauge_names: list[str] = []
        self.gauge_cells: list[tuple[int, int]] = []
        for i, g in enumerate(self.spec.gauges):
            rows, cols = self._cells_of(f"hazards.0.gauges.{i}", g.at, None)
            self.gauge_names.append(g.name)
            self.gauge_cells.append((int(rows[0]), int(cols[0])))
        self._gauge_z = np.array([t.z[r, c] for r, c in self.gauge_cells])

    # ------------------------------------------------------------------ stepping

    def sync(self) -> None:
        """Bring the flood to ``env.now`` and publish road state (idempotent)."""
        now = float(self.env.now)
        if now > self.model.t:
            self.model.advance(now)
        self._publish_roads()
        # small reductions only: on a GPU the depth grid stays on the device
        wet, total, _ = self.model.depth_stats(
            FLOODED_DEPTH_M, self.domain if self.apron_cells else None
        )
        self.peak_area = max(self.peak_area, float(wet) * self.cell_area)
        self.peak_volume = max(self.peak_volume, total * self.cell_area)

    def _domain_h(self) -> np.ndarray:
        """Depths (m) on the terrain's own cells (apron cells left out; flat when any)."""
        h = self.model.h
        return h[self.domain] if self.apron_cells else h

    def _publish_roads(self) -> None:
        rs = self.sim.roads
        if rs is None or self.world.edge_cells is None:
            return
        idx = self.world.edge_cells
        depth = self.model.edge_depths(idx.indptr, idx.cells)
        if self._bridges.size:
            # a bridge carries the water above its deck, not the river under it
            cells = self._bridge_cells_flat
            eta = self.world.terrain.z.reshape(-1)[cells] + self.model.depths_at(cells)
            top = np.maximum.reduceat(eta, self._bridge_starts)
            depth[self._bridges] = np.maximum(top - self._bridge_deck, 0.0)
        closed = depth >= self.spec.road_closure_depth
        changed = np.flatnonzero(closed != rs.closed_by_flood)
        factor = pregnolato_speed_factor(depth, self.spec.road_closure_depth)
        rs.flood_depth_m[:] = depth
        rs.flood_factor[:] = factor
        np.maximum(rs.max_depth_m, depth, out=rs.max_depth_m)
        if changed.size:
            now = float(self.env.now)
            for e in changed:
                kind = "road_closed" if closed[e] else "road_opened"
                self.sim.recorder.event(
                    now, kind, str(self.world.roads.road_id[e]), edge=int(e),
                    cause="flood", depth_m=round(float(depth[e]), 3),
                )  # fmt: skip
            newly = changed[closed[changed] & np.isnan(rs.first_closed_s[changed])]
            rs.first_closed_s[newly] = now
            rs.closed_by_flood[:] = closed
            self.ever_closed |= closed
        rs.mark_changed()

    def run(self) -> Generator[Any, Any, None]:
        """Advance the flood every coupling step until the end of the run."""
        end = float(self.scenario.duration)
        while True:
            self.sync()
            if self.env.now >= end:
                return
            yield self.env.timeout(min(self.coupling_s, end - self.env.now))

    # ------------------------------------------------------------------ records

    def sample(self) -> dict[str, float]:
        """Flooded area, volume and depth now; also records the gauges."""
        self.sync()
        h = self.model.h
        hd = self._domain_h()
        now = float(self.env.now)
        if self.gauge_cells:
            speed = self.model.speed()
            gauges = zip(self.gauge_names, self.gauge_cells, self._gauge_z, strict=True)
            for name, (r, c), z in gauges:
                d = float(h[r, c])
                self.gauge_rows.append((now, name, d, float(speed[r, c]), float(z) + d))
        self.frame_times.append(now)
        self.frames.append(_max_pool(np.where(self.world.terrain.mask, h, 0.0), self.frame_factor))
        rs = self.sim.roads
        return {
            "flooded_area_m2": float(np.count_nonzero(hd >= FLOODED_DEPTH_M)) * self.cell_area,
            "flood_volume_m3": float(hd.sum(dtype=np.float64)) * self.cell_area,
            "max_depth_m": float(hd.max()) if hd.size else 0.0,
            "roads_closed_by_flood": int(rs.closed_by_flood.sum()) if rs is not None else 0,
            "rain_mm_h": self._rain_now(now),
        }

    def _rain_now(self, t: float) -> float:
        if not self.spec.rain:
            return 0.0
        rate = 0.0
        for ti, r in self.spec.rain:
            if ti <= t:
                rate = r
        return rate

    def summary(self) -> dict[str, Any]:
        """The ``flood`` section of summary.json."""
        ledger = self.model.ledger()
        gauges = self.gauge_table()
        by_gauge = (
            {n: float(gauges.loc[gauges.gauge == n, "depth_m"].max()) for n in self.gauge_names}
            if len(gauges)
            else {}
        )
        t = self.world.terrain
        return {
            "peak_flooded_area_m2": self.peak_area,
            "peak_volume_m3": self.peak_volume,
            "roads_closed": int(self.ever_closed.sum()) if self.ever_closed is not None else 0,
            "mass_error_rel": float(ledger["error_rel"]),
            "max_depth_by_gauge": by_gauge,
            "cells": int(t.mask.sum()),
            "steps": int(self.model.steps),
            "kernel_wall_s": round(float(self.model.wall_s), 3),
            "max_depth_m": float(np.nanmax(self.model.max_depth[t.mask])) if t.mask.any() else 0.0,
            "apron_cells": self.apron_cells,
            "ledger_m3": {k: float(v) for k, v in ledger.items() if k != "error_rel"},
            "flooded_depth_threshold_m": FLOODED_DEPTH_M,
            "precision": self.precision,
            "backend": self.model.backend,
            "time_stepping": self.model.time_stepping if self.model.backend == "cpu" else "global",
            "cell_updates": int(self.model.cell_updates),
        }

    def gauge_table(self) -> pd.DataFrame:
        """Gauge series: ``time_s, gauge, depth_m, speed_m_s, level_m``."""
        return pd.DataFrame(
            self.gauge_rows, columns=["time_s", "gauge", "depth_m", "speed_m_s", "level_m"]
        )

    def outputs(self) -> dict[str, Any]:
        """Rasters (max depth, arrival time, hazard class, max speed, max HR) and gauges."""
        m = self.model
        mask = self.world.terrain.mask
        arrival = np.where(np.isfinite(m.arrival_time), m.arrival_time, np.nan)
        out: dict[str, Any] = {
            "max_depth": np.where(mask, m.max_depth, np.nan),
            "arrival_time": np.where(mask, arrival, np.nan),
            "hazard_class": np.where(mask, m.max_aidr.astype(float), np.nan),
            "max_speed": np.where(mask, m.max_speed, np.nan),
            "max_hr": np.where(mask, m.max_hr, np.nan),
        }
        if self.gauge_names:
            out["gauges"] = self.gauge_table()
        if self.frames:
            f = self.frame_factor
            out["depth"] = Frames(
                np.array(self.frame_times), np.stack(self.frames),
                self.world.terrain.transform @ Affine.scale(f, f),
            )  # fmt: skip
        return out


def _max_pool(a: np.ndarray, f: int) -> np.ndarray:
    """Max over f x f blocks (edges padded), as float32; *a* itself when f == 1."""
    if f == 1:
        return a.astype(np.float32)
    r, c = a.shape
    pr, pc = -r % f, -c % f
    p = np.pad(a, ((0, pr), (0, pc)), constant_values=0.0)
    return p.reshape((r + pr) // f, f, (c + pc) // f, f).max(axis=(1, 3)).astype(np.float32)

