"""The flood component: the flood kernel on the engine's clock, and the fields it writes.

Every coupling step the engine calls :meth:`FloodComponent.advance_to`: it
advances the flood kernel to that time, then publishes the edge fields
(``sim.state.roads``): the max depth along each edge (a Numba kernel over the
edge->cell CSR index), the travel-speed factor from the vehicle speed curve of
Pregnolato et al. (2017), and closure at ``road_closure_depth``. Closures and
reopenings are events. The cell fields (``water__depth``, ``water__speed``,
``hazard__max_class``) and the gauge fields are provided on demand, so a flood
on a GPU copies its grids back only when some component reads them. Nothing
else recomputes this state.

Flooded *land*: the headline figures (``flooded_area_m2``, ``max_depth_m``)
count only cells outside the water at rest (the terrain's ``water`` mask:
river channel, sea, reservoir bed; and the sea at its starting level behind a
``level`` boundary) whose depth exceeds their initial depth
(``initial_depth``, a filled reservoir) by :data:`FLOODED_DEPTH_M`. The same
figures over every wet cell are kept as ``wet_area_m2`` / ``max_water_depth_m``.

Optional reads, written by other hazards (a storm): ``rain__rate`` (mm/h per
cell, held until the next coupling step) is added to the flood's own rain, and
``sea__level`` (m) becomes the level of the flood's ``level`` boundaries,
linear between coupling steps. Without a writer of either the flood runs
exactly as without these reads. A reservoir breach with ``release_when`` is
set off by the reservoir's own state (level above the crest, or net inflow
above a threshold for a duration), checked at every coupling step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from affine import Affine

from emtwin.errors import KernelError, ScenarioError
from emtwin.geo.build import to_world_xy
from emtwin.geo.sections import SectionFaces, section_faces, section_flow
from emtwin.geo.world import World
from emtwin.kernels.apron import apron_sources
from emtwin.kernels.backend import select_backend
from emtwin.kernels.flood import FloodModel
from emtwin.kernels.hazard_rating import pregnolato_speed_factor
from emtwin.scenarios.models import FloodHazard
from emtwin.sim.component import Component
from emtwin.sim.metric import Metric
from emtwin.sim.results import Frames

__all__ = ["FloodComponent", "HazardComponent", "line_cells", "polygon_cells"]

log = logging.getLogger(__name__)
#: The largest Courant factor and theta measured stable in deep, smooth water (a dam
#: break in a closed basin of 10 m cells, docs/flood.md, *Stability*); above them the
#: component warns.
ALPHA_TESTED = 0.5
THETA_TESTED = 0.9

#: Depth above which a cell counts as flooded in the time series and summary, m.
FLOODED_DEPTH_M = 0.05
#: Map frames of depth are max-pooled to at most this many cells each.
FRAME_MAX_CELLS = 250_000
#: At most this many depth frames are held (float32, so at most ~300 MB): over
#: it, every other frame is dropped and only every 2nd, 4th, ... output time is
#: kept from then on, so the kept frames stay evenly spaced; the last output
#: time is always kept too.
MAX_FRAMES = 300

#: Release time given to a reservoir released by its state (never, until then), s.
HELD_S = 1e30
#: Depth above which a reservoir cell counts in its water level, m.
RESERVOIR_WET_M = 0.05


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


class FloodComponent(Component):
    """The flood: forcing from the scenario, the kernel, gauges and road state."""

    name: ClassVar[str] = "flood"
    hazard_type: ClassVar[str | None] = "flood"
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("peak_flooded_area_m2", "Peak flooded land (river, sea, reservoir left out)",
               "m²", "lower", shown=True),
        Metric("peak_volume_m3", "Peak water volume", "m³", "lower", shown=True),
        Metric("roads_closed", "Road edges closed at some time", "edges", "lower", shown=True),
        Metric("max_depth_by_gauge", "Deepest water at the gauges", "m"),
        Metric("peak_flow_by_gauge", "Peak discharge through the gauges' cross-sections", "m³/s"),
        Metric("mass_error_rel", "Mass balance error (relative)"),
        Metric("cells", "Grid cells in the domain"),
        Metric("steps", "Flood solver steps"),
        Metric("kernel_wall_s", "Flood kernel wall time", "wall s"),
        Metric("max_depth_m", "Deepest flood on land above its starting level", "m", "lower",
               headline=False),
        Metric("peak_wet_area_m2", "Peak wet area (river, sea and reservoir included)", "m²",
               headline=False),
    )  # fmt: skip
    #: Whether the flood draws from its random generator (then a batch's flood cache
    #: keys on its seed stream; see emtwin.batch.flood_cache). It draws nothing.
    draws_random: ClassVar[bool] = False
    #: The cross-sections of gauges that have one, gauge name -> faces (set per
    #: instance; this empty default keeps checkpoints from before sections loadable).
    gauge_sections: Mapping[str, SectionFaces] = MappingProxyType({})
    reads: ClassVar[dict[str, bool]] = {"rain__rate": False, "sea__level": False}
    writes: ClassVar[tuple[str, ...]] = (
        "water__depth", "water__speed", "water__time", "hazard__max_class",
        "road__water_depth", "road__speed_factor", "road__closed", "gauge__depth",
        "gauge__level", "gauge__flow",
    )  # fmt: skip
    samples: ClassVar[dict[str, str]] = {
        "flooded_area_m2": f"land whose water is >= {FLOODED_DEPTH_M} m above its initial "
                           "level (river, sea, reservoir and initial water left out), m2",
        "wet_area_m2": f"every cell with depth >= {FLOODED_DEPTH_M} m, water at rest included, m2",
        "flood_volume_m3": "water stored on the grid, m3",
        "max_depth_m": "greatest rise of the water above its initial level on land now, m",
        "roads_closed_by_flood": "directed edges closed by water",
        "rain_mm_h": "rain rate now, mm/h",
    }

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.spec: FloodHazard = self.scenario.flood
        t = self.world.terrain
        model_cls, self.precision = self._backend()
        z, mask, manning = self._domain()
        # the sea at rest (water, not flooded land) starts at its level: else the level
        # edge would fill a dry sea bed with a bore that runs up the shore
        sea, fill = self._sea_start(z, mask)
        h0 = np.where(t.mask, self.spec.initial_depth, 0.0) if self.spec.initial_depth else None
        filled = np.isfinite(fill)
        if filled.any():
            h0 = np.zeros(z.shape) if h0 is None else h0
            h0 = np.where(filled, np.maximum(h0, fill - z), h0)
        self._warn_settings()
        kwargs = {
            "manning": manning,
            "h0": h0,
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
        self._provide()
        self.cell_area = t.dx * t.dx
        self._land_regions(sea)
        self.peak_area = 0.0
        self.peak_wet_area = 0.0
        self.peak_volume = float(self._domain_h().sum(dtype=np.float64)) * self.cell_area
        self.gauge_rows: list[tuple[float, str, float, float, float]] = []
        nrows, ncols = t.shape
        self.frame_factor = max(1, int(np.ceil(np.sqrt(nrows * ncols / FRAME_MAX_CELLS))))
        self.frame_times: list[float] = []
        self.frames: list[np.ndarray] = []
        self._frame_stride, self._samples = 1, 0
        self._last_frame: tuple[float, np.ndarray] | None = None
        self.ever_closed = (
            np.zeros(self.world.roads.n_edges, dtype=bool) if self.world.roads else None
        )
        self._bridge_cells()
        #: the rain field (mm/h per cell) and sea level (m) read at the last step
        self._ext_rain: np.ndarray | None = None
        self._sea_prev: float | None = None
        self._level_sides = [side for side, spec in self.spec.boundary.items()
                             if not isinstance(spec, str)]  # fmt: skip

    def _warn_settings(self) -> None:
        """Warn about a Courant factor or a theta measured to let deep, smooth water ring
        (docs/flood.md, *Stability*): the run goes on, since shallow floodplains take
        them, but a sea, a reservoir or a deep channel may grow checkerboard
        oscillations that no ledger shows."""
        i = next((k for k, h in enumerate(self.scenario.hazards) if h is self.spec), 0)
        if self.spec.alpha > ALPHA_TESTED:
            log.warning("hazards.%d.alpha: %g is above %g; in deep, smooth water (a sea, a "
                        "reservoir, a deep channel) steps this long were measured to grow "
                        "checkerboard oscillations (docs/flood.md, Stability): check the max "
                        "depth for water standing far above its source", i, self.spec.alpha,
                        ALPHA_TESTED)  # fmt: skip
        if self.spec.theta > THETA_TESTED:
            log.warning("hazards.%d.theta: %g leaves the discharge almost undamped (1 is Bates "
                        "et al. 2010); deep, smooth water was measured to oscillate with it at "
                        "any alpha (docs/flood.md, Stability); 0.7-0.8 damps it", i,
                        self.spec.theta)  # fmt: skip

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

    def _land_regions(self, sea: np.ndarray) -> None:
        """Split the land (the domain less the water at rest: the river, the reservoir bed
        and the *sea* at rest of :meth:`_sea_start`) by its initial depth.

        Land that starts dry is one region for :meth:`FloodModel.depth_stats`
        (one small reduction, on the device on a GPU); land that starts wet
        (``initial_depth``, a reservoir's fill) is a list of cells read with
        ``depths_at`` and compared with their own initial depth.
        """
        t = self.world.terrain
        h0 = np.asarray(self.model.h, dtype=np.float64)
        self.h_init = np.where(self.domain, h0, 0.0)
        land = self.domain & ~sea
        if t.water is not None:
            land &= ~np.asarray(t.water, dtype=bool)
        self.land = land
        self.dry_land = land & (self.h_init <= 0.0)
        wet = np.flatnonzero(land & (self.h_init > 0.0))
        self._wet_land_cells = wet
        self._wet_land_ref = self.h_init.reshape(-1)[wet] + FLOODED_DEPTH_M

    def _sea_start(self, z: np.ndarray, domain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sea at its starting level on the model's grid (bed *z*, m, and *domain*,
        aprons included): water at rest, not flooded land.

        For each side with a ``level`` boundary, the cells whose bed lies below
        that side's level at time 0 and that connect (4-neighbours, through such
        cells) to that side's edge of the grid. Returns that mask, and the level
        (m) the water starts at there: the highest of the sides with
        ``start_at_rest`` that reach the cell, -inf where none does.
        """
        from scipy.ndimage import label

        sea = np.zeros(z.shape, dtype=bool)
        fill = np.full(z.shape, -np.inf)
        edges = {"north": (0, slice(None)), "south": (-1, slice(None)),
                 "west": (slice(None), 0), "east": (slice(None), -1)}  # fmt: skip
        for side, spec in self.spec.boundary.items():
            if isinstance(spec, str):
                continue
            t, lv = zip(*spec.level, strict=True)
            level0 = float(np.interp(0.0, np.array(t, float), np.array(lv, float)))
            parts, _ = label(domain & (z < level0))
            ids = np.unique(parts[edges[side]])
            here = np.isin(parts, ids[ids > 0])
            sea |= here
            if spec.start_at_rest:
                fill = np.where(here, np.maximum(fill, level0), fill)
        return sea, fill

    def _land_flooded_cells(self) -> int:
        """Cells of land now at least FLOODED_DEPTH_M above their initial depth."""
        n, _, _ = self.model.depth_stats(FLOODED_DEPTH_M, self.dry_land)
        if self._wet_land_cells.size:
            d = self.model.depths_at(self._wet_land_cells)
            n += int(np.count_nonzero(d >= self._wet_land_ref))
        return int(n)

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
        self._watched: list[dict[str, Any]] = []
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
                when = b.reservoir.release_when
                m.add_reservoir(cells, b.reservoir.level,
                                HELD_S if when is not None else b.reservoir.release_at)
                if when is not None:
                    flat = np.flatnonzero(cells.reshape(-1))
                    self._watched.append({
                        "index": len(m._reservoirs) - 1, "name": b.name or f"breach_{i}",
                        "when": when, "cells": flat, "z": self.world.terrain.z.reshape(-1)[flat],
                        "volume": None, "time": None, "above_since": None, "released": False,
                    })  # fmt: skip
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
        sections: dict[str, SectionFaces] = {}
        for i, g in enumerate(self.spec.gauges):
            rows, cols = self._cells_of(f"hazards.0.gauges.{i}", g.at, None)
            self.gauge_names.append(g.name)
            self.gauge_cells.append((int(rows[0]), int(cols[0])))
            if g.section is None:
                continue
            faces = section_faces(t, self._xy(g.section))
            if faces.n_faces == 0:
                raise ScenarioError(
                    f"hazards.0.gauges.{i}.section: the line cuts no cell face inside the DEM's "
                    "domain; expected a line across the channel, in the scenario's CRS",
                    file=self.scenario.source,
                )
            sections[g.name] = faces
        self._gauge_z = np.array([t.z[r, c] for r, c in self.gauge_cells])
        self.gauge_sections = sections

    def _provide(self) -> None:
        """Register the cell and gauge fields this component writes (read on demand)."""
        st, me = self.fields, self.name
        st.provide("water__depth", self._depth, writer=me)
        st.provide("water__speed", self._speed, writer=me)
        st.provide("water__time", self._time, writer=me)
        st.provide("hazard__max_class", self._max_class, writer=me)
        st.provide("gauge__depth", self._gauge_depths, writer=me)
        st.provide("gauge__level", self._gauge_levels, writer=me)
        st.provide("gauge__flow", self._gauge_flows, writer=me)

    def _depth(self) -> np.ndarray:
        return self.model.h

    def _speed(self) -> np.ndarray:
        return self.model.speed()

    def _time(self) -> float:
        return float(self.model.t)

    def _max_class(self) -> np.ndarray:
        return self.model.max_aidr

    def _gauge_depths(self) -> dict[str, float]:
        if not self.gauge_names:
            return {}
        ncols = self.world.terrain.shape[1]
        flat = np.array([r * ncols + c for r, c in self.gauge_cells], np.int64)
        d = self.model.depths_at(flat)
        return {n: float(v) for n, v in zip(self.gauge_names, d, strict=True)}

    def _gauge_flows(self) -> dict[str, float]:
        """Discharge (m3/s) through each gauge's cross-section now, for gauges with one."""
        if not self.gauge_sections:
            return {}
        qx, qy = self.model.qx, self.model.qy
        return {n: section_flow(qx, qy, f) for n, f in self.gauge_sections.items()}

    def _gauge_levels(self) -> dict[str, float]:
        d = self._gauge_depths()
        return {n: float(z) + d[n] for n, z in zip(self.gauge_names, self._gauge_z, strict=True)}

    # ------------------------------------------------------------------ stepping

    def advance_to(self, time_s: float) -> None:
        """Bring the flood to *time_s* (s) and publish the road fields (idempotent)."""
        now = float(time_s)
        rain, sea = self.fields.get("rain__rate"), self.fields.get("sea__level")
        if now > self.model.t:
            if self._ext_rain is None and sea is None:
                self.model.advance(now)
            else:
                self._advance_forced(now, sea)
        if rain is not None:
            self._ext_rain = np.array(rain, dtype=np.float64)
        if sea is not None:
            self._sea_prev = float(sea)
        if self._watched:
            self._watch_reservoirs(now)
        self._publish_roads(now)
        # small reductions only: on a GPU the depth grid stays on the device
        wet, total, _ = self.model.depth_stats(
            FLOODED_DEPTH_M, self.domain if self.apron_cells else None
        )
        self.peak_wet_area = max(self.peak_wet_area, float(wet) * self.cell_area)
        self.peak_area = max(self.peak_area, self._land_flooded_cells() * self.cell_area)
        self.peak_volume = max(self.peak_volume, total * self.cell_area)

    def _advance_forced(self, now: float, sea: float | None) -> None:
        """Advance with another hazard's rain field and/or sea level (see the module doc)."""
        m = self.model
        t0 = float(m.t)
        if sea is not None:
            prev = self._sea_prev if self._sea_prev is not None else float(sea)
            for side in self._level_sides:
                m.set_boundary(side, "level", times_s=np.array([t0, now]),
                               level_m=np.array([prev, float(sea)]))  # fmt: skip
        if self._ext_rain is None:
            m.advance(now)
            return
        # the own hyetograph's steps inside the interval cut it into pieces
        cuts = [float(t) for t, _ in (self.spec.rain or []) if t0 < t < now] + [now]
        for t_end in cuts:
            own = self._rain_now(float(m.t))
            m.set_rain([float(m.t)], [1.0], multiplier=self._ext_rain + own)
            m.advance(t_end)

    def _watch_reservoirs(self, now: float) -> None:
        """Release each reservoir whose ``release_when`` holds now (event ``breach``)."""
        for w in self._watched:
            if w["released"]:
                continue
            h = self.model.depths_at(w["cells"])
            volume = float(h.sum(dtype=np.float64)) * self.cell_area
            wet = h > RESERVOIR_WET_M
            level = float((w["z"][wet] + h[wet]).mean()) if wet.any() else float("nan")
            when, why = w["when"], None
            if when.level_above is not None:
                if level >= when.level_above:
                    why = "level"
            elif w["time"] is not None and now > w["time"]:
                inflow = (volume - w["volume"]) / (now - w["time"])
                if inflow > when.inflow_above:
                    if w["above_since"] is None:
                        w["above_since"] = w["time"]
                    if now - w["above_since"] >= when.for_:
                        why = "inflow"
                else:
                    w["above_since"] = None
            if w["time"] is None or now > w["time"]:
                w["volume"], w["time"] = volume, now
            if why is not None:
                self.model.release_reservoir(w["index"])
                w["released"] = True
                self.sim.recorder.event(now, "breach", w["name"], cause=why,
                                        level_m=round(level, 3), volume_m3=round(volume, 1))

    def _domain_h(self) -> np.ndarray:
        """Depths (m) on the terrain's own cells (apron cells left out; flat when any)."""
        h = self.model.h
        return h[self.domain] if self.apron_cells else h

    def _publish_roads(self, now: float) -> None:
        if self.sim.roads is None or self.world.edge_cells is None:
            return
        self._apply_edge_depths(now, self._edge_depths())

    def _edge_depths(self) -> np.ndarray:
        """Deepest water along each road edge now, m (bridges: above the deck)."""
        idx = self.world.edge_cells
        depth = self.model.edge_depths(idx.indptr, idx.cells)
        if self._bridges.size:
            # a bridge carries the water above its deck, not the river under it
            cells = self._bridge_cells_flat
            eta = self.world.terrain.z.reshape(-1)[cells] + self.model.depths_at(cells)
            top = np.maximum.reduceat(eta, self._bridge_starts)
            depth[self._bridges] = np.maximum(top - self._bridge_deck, 0.0)
        return depth

    def _apply_edge_depths(self, now: float, depth: np.ndarray) -> None:
        """Write the edge fields from the edge depths *depth* (m) at *now* (s): factors,
        closures and their events (also what a replayed flood publishes)."""
        rs = self.sim.roads
        closed = depth >= self.spec.road_closure_depth
        changed = np.flatnonzero(closed != rs.closed_by_flood)
        factor = pregnolato_speed_factor(depth, self.spec.road_closure_depth)
        rs.flood_depth_m[:] = depth
        rs.flood_factor[:] = factor
        np.maximum(rs.max_depth_m, depth, out=rs.max_depth_m)
        if changed.size:
            for e in changed:
                kind = "road_closed" if closed[e] else "road_opened"
                self.sim.recorder.event(
                    now, kind, str(self.world.roads.road_id[e]), edge=int(e),
                    cause="flood", depth_m=round(float(depth[e]), 3),
                )  # fmt: skip
            rs.note_first_closed(changed[closed[changed]], now, "flood")
            rs.closed_by_flood[:] = closed
            self.ever_closed |= closed
        rs.mark_changed()

    def start(self) -> None:
        """Nothing to start: the engine's clock advances the flood."""

    # ------------------------------------------------------------------ records

    def _keep_frame(self, now: float, h: np.ndarray) -> None:
        """Keep the depth frame of this output time under the :data:`MAX_FRAMES` rule."""
        i, self._samples = self._samples, self._samples + 1
        frame = _max_pool(np.where(self.world.terrain.mask, h, 0.0), self.frame_factor)
        self._last_frame = (now, frame)
        if i % self._frame_stride:
            return
        self.frame_times.append(now)
        self.frames.append(frame)
        if len(self.frames) > MAX_FRAMES:
            self.frame_times, self.frames = self.frame_times[::2], self.frames[::2]
            self._frame_stride *= 2

    def sample(self) -> dict[str, float]:
        """Flooded area, volume and depth now; also records the gauges."""
        h = self.model.h
        hd = self._domain_h()
        now = float(self.env.now)
        if self.gauge_cells:
            ncols = self.world.terrain.shape[1]
            speed = self.model.speeds_at(np.array([r * ncols + c for r, c in self.gauge_cells]))
            gauges = zip(self.gauge_names, self.gauge_cells, self._gauge_z, speed, strict=True)
            flows = self._gauge_flows()
            for name, (r, c), z, v in gauges:
                d = float(h[r, c])
                row = (now, name, d, float(v), float(z) + d)
                if self.gauge_sections:
                    row += (flows.get(name, np.nan),)
                self.gauge_rows.append(row)
        self._keep_frame(now, h)
        rs = self.sim.roads
        rise = h[self.land] - self.h_init[self.land]
        return {
            "flooded_area_m2": float(np.count_nonzero(rise >= FLOODED_DEPTH_M)) * self.cell_area,
            "wet_area_m2": float(np.count_nonzero(hd >= FLOODED_DEPTH_M)) * self.cell_area,
            "flood_volume_m3": float(hd.sum(dtype=np.float64)) * self.cell_area,
            "max_depth_m": max(float(rise.max()), 0.0) if rise.size else 0.0,
            "roads_closed_by_flood": int(rs.closed_by_flood.sum()) if rs is not None else 0,
            "rain_mm_h": self._rain_now(now) + (
                float(self._ext_rain[self.domain].mean()) if self._ext_rain is not None else 0.0
            ),
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
        land_rise = self.model.max_depth[self.land] - self.h_init[self.land]
        return {
            "peak_flooded_area_m2": self.peak_area,
            "peak_wet_area_m2": self.peak_wet_area,
            "peak_volume_m3": self.peak_volume,
            "roads_closed": int(self.ever_closed.sum()) if self.ever_closed is not None else 0,
            "mass_error_rel": float(ledger["error_rel"]),
            "max_depth_by_gauge": by_gauge,
            "peak_flow_by_gauge": (
                {n: float(gauges.loc[gauges.gauge == n, "flow_m3_s"].max())
                 for n in self.gauge_sections} if len(gauges) else {}
            ),  # fmt: skip
            "cells": int(t.mask.sum()),
            "steps": int(self.model.steps),
            "kernel_wall_s": round(float(self.model.wall_s), 3),
            "max_depth_m": max(float(np.nanmax(land_rise)), 0.0) if land_rise.size else 0.0,
            "max_water_depth_m": (float(np.nanmax(self.model.max_depth[t.mask])) if t.mask.any()
                                  else 0.0),  # fmt: skip
            "land_cells": int(self.land.sum()),
            "apron_cells": self.apron_cells,
            "ledger_m3": {k: float(v) for k, v in ledger.items() if k != "error_rel"},
            "flooded_depth_threshold_m": FLOODED_DEPTH_M,
            "precision": self.precision,
            "backend": self.model.backend,
            "time_stepping": self.model.time_stepping,
            "cell_updates": int(self.model.cell_updates),
            "lts_global_steps": self.model.lts_global_steps,
        }

    def gauge_table(self) -> pd.DataFrame:
        """Gauge series: ``time_s, gauge, depth_m, speed_m_s, level_m``.

        When some gauge has a ``section``, also ``flow_m3_s`` (the discharge
        through it, m3/s; NaN for gauges without one).
        """
        cols = ["time_s", "gauge", "depth_m", "speed_m_s", "level_m"]
        if self.gauge_sections:
            cols.append("flow_m3_s")
        return pd.DataFrame(self.gauge_rows, columns=cols)

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
        if self._last_frame is not None and self.frame_times[-1] != self._last_frame[0]:
            self.frame_times.append(self._last_frame[0])
            self.frames.append(self._last_frame[1])
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



#: The round-1 name of :class:`FloodComponent`.
HazardComponent = FloodComponent
