"""The typhoon component: the storm's wind on the engine's clock, and what it writes.

It builds a :class:`emtwin.typhoon.model.TyphoonModel` and, at every update
(the section's ``coupling``, default 5 min, on the engine's coupling clock),
writes the shared fields

- ``wind__speed`` (1-min sustained, m/s) and ``wind__direction`` (degrees the
  wind blows from, clockwise from north) on the World grid;
- with a flood in the scenario only: ``rain__rate`` (the storm's R-CLIPER rain,
  mm/h per cell, which the flood adds to its own) and ``sea__level`` (m, every
  engine step, which the flood uses on its ``level`` boundaries).

Wind effects, all through the road state, events and the engine's plan actions
(it never calls another component):

- roads blocked by gusts (fragility per road class, drawn from this
  component's generator) close with reason ``wind`` (``road_closed`` events,
  cause ``wind``); with a response section, each blocked road becomes a
  ``call`` of type ``road_clearance`` that needs a ``crew`` unit for the
  clearing time; when that call's ``on_scene_end`` is recorded the road opens
  again (``road_opened``, cause ``wind``);
- facilities where the sustained wind passes ``facility_wind_limits`` (or the
  water passes ``facility_water_depth``) are lost (``facility_lost`` events); a
  lost shelter is closed through the plan action ``close_shelter``;
- ``evacuation_warning`` (one rule or a list, one per zone): the
  hurricane-planning rule (HURREVAC): each zone is warned at the forecast
  arrival of storm-force wind over it minus its estimated clearance time (plan
  action ``warn``); the ``warning_zones`` table and summary give each zone's
  margin between that arrival and the actual clearance end of its households
  (homes in the zone at the start, read from ``household__cell``), and the
  summary the smallest margin (``min_margin_s``).

Outputs: rasters ``max_wind``, ``max_gust``, ``wind_arrival``; the tables
``storm_track``, ``wind_gauges`` and ``warning_zones``; the map frames
``wind_speed`` and ``wind_direction``; the ``typhoon`` section of
summary.json. See docs/typhoon.md.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from affine import Affine

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Action
from emtwin.scenarios.typhoon import TyphoonHazard
from emtwin.sim.component import Component
from emtwin.sim.results import Frames
from emtwin.sim.state import register_field
from emtwin.sim.timers import tagged
from emtwin.typhoon.frames import WindFrames
from emtwin.typhoon.model import TyphoonModel
from emtwin.typhoon.warning import ZoneWarning, plan_zone, zone_table

__all__ = ["TyphoonComponent"]

log = logging.getLogger(__name__)

register_field("wind__speed", "cell", "m/s", "1-min sustained 10 m wind on each cell now")
register_field("wind__direction", "cell", "deg",
               "direction the wind blows from, clockwise from north, on each cell now")

#: Facility kinds checked for loss, as named in ``world.places``.
FACILITY_KINDS = ("shelters", "stations", "hospitals")
#: the facility type of ``facility__lost`` and of the ``facility_lost`` events, by kind
_ONE = {"shelters": "shelter", "stations": "station", "hospitals": "hospital"}


class TyphoonComponent(Component):
    """The typhoon hazard: wind fields, the flood's rain and sea level, wind damage."""

    name: ClassVar[str] = "typhoon"
    hazard_type: ClassVar[str | None] = "typhoon"
    writes: ClassVar[tuple[str, ...]] = ("wind__speed", "wind__direction", "rain__rate",
                                         "sea__level", "facility__lost")  # fmt: skip
    reads: ClassVar[dict[str, bool]] = {"water__depth": False, "household__cell": False}
    samples: ClassVar[dict[str, str]] = {
        "max_wind_m_s": "strongest sustained wind over the domain now, m/s",
        "roads_closed_by_wind": "directed edges closed by wind damage now",
    }

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        found = self.scenario.hazards_of("typhoon")
        if len(found) > 1:
            raise ScenarioError("hazards: at most one typhoon per scenario",
                                file=self.scenario.source)  # fmt: skip
        self.spec: TyphoonHazard = found[0]
        self.key = f"hazards.{self.scenario.hazards.index(self.spec)}"
        self.model = TyphoonModel(self.spec, self.world, rng=rng, scenario_crs=self.scenario.crs)
        flood = self.scenario.flood
        self.feeds_flood = flood is not None
        s = self.spec.surge
        side = flood.boundary.get(s.side) if s is not None and flood is not None else "open"
        if s is not None and flood is not None and isinstance(side, str | None):
            raise ScenarioError(
                f"{self.key}.surge.side: the flood has no `level` boundary on the {s.side} side "
                f"for the surge to drive; add `boundary: {{{s.side}: {{level: [[0, 0]]}}}}` to "
                "the flood", file=self.scenario.source,
            )  # fmt: skip
        self.mask = self.world.terrain.mask
        self._t: float | None = None  # time of the last wind update, s
        self._sea_t: float | None = None
        self.speed = np.zeros(self.mask.shape)
        self.direction = np.zeros(self.mask.shape)
        self.wind_frames = WindFrames(self.mask)
        self.gauge_rows: list[tuple[float, str, float, float]] = []
        # road clearance: call id -> edges it reopens
        self.clearing: dict[str, list[int]] = {}
        self.n_calls = 0
        self.cleared = 0
        self._crews = self.spec.road_clearance is not None and self.scenario.response is not None
        if self._crews:
            self.sim.recorder.subscribe("on_scene_end", self._on_scene_end)
        self._facilities = self._facility_points()
        self.lost: dict[str, str] = {}  # "kind/name" -> cause
        self.lost_s: dict[str, float] = {}  # "kind/name" -> time lost, s
        self.fields.provide("facility__lost", self._facility_lost, writer=self.name)
        self._warnings: list[ZoneWarning] = []  # one per evacuation_warning rule

    # ------------------------------------------------------------------ set-up

    def _facility_points(self) -> list[tuple[str, str, float, float, int]]:
        """(kind, name, x, y, flat cell) of every facility the limits can reach."""
        out = []
        t = self.world.terrain
        limits = self.spec.facility_wind_limits
        for kind in FACILITY_KINDS:
            table = getattr(self.world.places, kind)
            if getattr(limits, kind) is None and self.spec.facility_water_depth is None:
                continue
            if not len(table):
                continue
            xs, ys = table.geometry.x.to_numpy(), table.geometry.y.to_numpy()
            rows, cols = t.cell_of(xs, ys)
            for name, x, y, r, c in zip(table["name"], xs, ys, rows, cols, strict=True):
                cell = int(r) * t.shape[1] + int(c) if int(r) >= 0 else -1
                out.append((kind, str(name), float(x), float(y), cell))
        return out

    def start(self) -> None:
        """With ``evacuation_warning``: set each zone's warning time from the forecast arrival."""
        rules = self.spec.warnings
        if not rules:
            return
        if self.scenario.evacuation is None:
            raise ScenarioError(f"{self.key}.evacuation_warning: the scenario has no evacuation "
                                "to warn", file=self.scenario.source)  # fmt: skip
        arrival = self.model.forecast_arrival(step_s=float(self.spec.coupling))
        homes = (np.asarray(self.fields.get("household__cell"), dtype=np.int64)
                 if self.fields.has("household__cell") else None)  # fmt: skip
        listed = isinstance(self.spec.evacuation_warning, list)
        self._warnings = []
        for k, w in enumerate(rules):
            where = f"evacuation_warning.{k}" if listed else "evacuation_warning"
            cells = self._zone_cells(w.zone, where)
            plan = plan_zone(w.zone, arrival[cells], float(w.clearance))
            if homes is not None:
                flat = cells.reshape(-1)
                inside = homes >= 0
                inside[inside] = flat[homes[inside]]
                plan.households = np.flatnonzero(inside)
            self._warnings.append(plan)
            if plan.warning_s is None:
                log.info("typhoon: storm-force wind never reaches zone %s; no warning issued",
                         w.zone)  # fmt: skip
                continue
            tagged(self.env.process(self._warn(k)), self.name, "warn", k)

    def _zone_cells(self, zone: str, where: str = "evacuation_warning") -> np.ndarray:
        """Boolean grid of the cells of evacuation zone *zone* ('all': the whole domain)."""
        if zone == "all":
            return self.mask
        from emtwin.sim.components.hazard import polygon_cells
        from emtwin.sim.evacuation.households import zone_polygons

        zones = self.scenario.evacuation.zones
        names = [z.name for z in zones]
        if zone not in names:
            raise ScenarioError(f"{self.key}.{where}.zone: no evacuation zone named "
                                f"{zone!r} (zones: {', '.join(map(str, names)) or 'none'}; "
                                "or 'all')", file=self.scenario.source)  # fmt: skip
        (poly,) = zone_polygons([zones[names.index(zone)]], self.world, self.scenario.crs)
        return polygon_cells(self.world, poly)

    def _warn(self, k: int, first: Any = None) -> Generator[Any, Any, None]:
        w = self._warnings[k]
        if first is not None:
            yield first
        else:
            yield self.env.timeout(max(w.warning_s - float(self.env.now), 0.0))
        action = Action.model_validate({"at": float(self.env.now), "warn": w.zone})
        self.sim.apply(action, rule="hurrevac", forecast_arrival_s=w.wind_arrival_s,
                       clearance_estimate_s=w.clearance_s)  # fmt: skip

    def resume(self, tag: tuple, event: Any) -> None:
        """Rebuild the warning timer *tag* waiting on *event* (a checkpoint); a timer of an
        older checkpoint, tagged without its zone's number, is the first zone's."""
        k = int(tag[2]) if len(tag) > 2 else 0
        tagged(self.env.process(self._warn(k, first=event)), *tag)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle (a checkpoint), filling in what a checkpoint of an older emtwin lacks:
        the map frames (kept from the resume on) and the per-zone warnings."""
        self.__dict__.update(state)
        self.__dict__.setdefault("lost_s", {})
        if "wind_frames" not in state:
            self.direction = np.zeros(self.mask.shape)
            self.wind_frames = WindFrames(self.mask)
        if "_warnings" not in state:
            old = state.get("_warning")
            self._warnings = [] if old is None else [ZoneWarning(
                old["zone"], old["forecast_arrival_s"], old["clearance_estimate_s"],
                old["warn_at_s"], old["too_late_s"])]  # fmt: skip

    # ------------------------------------------------------------------ stepping

    def advance_to(self, time_s: float) -> None:
        """Update the sea level every call, the wind every ``coupling`` (idempotent)."""
        now = float(time_s)
        if self.feeds_flood and self.spec.surge is not None and (
            self._sea_t is None or now > self._sea_t
        ):  # fmt: skip
            self._sea_t = now
            self.fields.set("sea__level", self.model.sea_level(now), writer=self.name)
        if self._t is not None and (now <= self._t or now < self._t + float(self.spec.coupling)):
            return
        self._t = now
        step = self.model.step(now)
        self.speed = step.wind_speed
        self.direction = step.wind_direction
        st, me = self.fields, self.name
        st.set("wind__speed", step.wind_speed, writer=me)
        st.set("wind__direction", step.wind_direction, writer=me)
        if self.feeds_flood and step.rain_mm_h is not None:
            st.set("rain__rate", np.where(self.mask, step.rain_mm_h, 0.0), writer=me)
        if step.newly_blocked.size:
            self._block(now, step.newly_blocked)
        if self._facilities:
            self._check_facilities(now)

    def _block(self, now: float, edges: np.ndarray) -> None:
        """Close *edges* for wind; with crews, one clearance call per road."""
        rs, roads = self.sim.roads, self.world.roads
        rs.closed["wind"][edges] = True
        rs.note_first_closed(edges, now, "wind")
        rs.mark_changed()
        for e in edges.tolist():
            self.sim.recorder.event(now, "road_closed", str(roads.road_id[e]), edge=int(e),
                                    cause="wind")  # fmt: skip
        if not self._crews:
            return
        rc = self.spec.road_clearance
        by_road: dict[str, list[int]] = {}
        for e in edges.tolist():
            by_road.setdefault(str(roads.road_id[e]), []).append(int(e))
        t = self.world.terrain
        for road, group in by_road.items():
            self.n_calls += 1
            cid = f"clearance-{self.n_calls}"
            self.clearing[cid] = group
            node = int(roads.edge_u[group[0]])
            x, y = float(roads.node_x[node]), float(roads.node_y[node])
            r, c = t.cell_of(x, y)
            self.sim.recorder.event(
                now, "call", cid, node=node, edge=group[0], type="road_clearance",
                priority=int(rc.priority), needs=[rc.needs], source="wind", x=round(x, 2),
                y=round(y, 2), cell=int(r) * t.shape[1] + int(c) if int(r) >= 0 else -1,
                people=0, on_scene_s=float(rc.time), to_hospital=False, handover_s=0.0,
                road=road,
            )  # fmt: skip

    def _on_scene_end(self, time_s: float, entity: str, **_: Any) -> None:
        """A crew finished clearing: the road opens again."""
        edges = self.clearing.pop(str(entity), None)
        if edges is None:
            return
        rs, roads = self.sim.roads, self.world.roads
        rs.closed["wind"][edges] = False
        rs.mark_changed()
        self.cleared += 1
        for e in edges:
            self.sim.recorder.event(time_s, "road_opened", str(roads.road_id[e]), edge=int(e),
                                    cause="wind", call=str(entity))  # fmt: skip

    def _check_facilities(self, now: float) -> None:
        """Facilities reached by wind above their limit (or water above its depth) are lost."""
        limits, depth_limit = self.spec.facility_wind_limits, self.spec.facility_water_depth
        depth = self.fields.get("water__depth") if depth_limit is not None else None
        flat_speed = self.speed.reshape(-1)
        for kind, name, _x, _y, cell in self._facilities:
            key = f"{kind}/{name}"
            if key in self.lost or cell < 0:
                continue
            limit, why, value = getattr(limits, kind), None, 0.0
            if limit is not None and flat_speed[cell] > limit:
                why, value = "wind", float(flat_speed[cell])
            elif depth is not None and float(depth.reshape(-1)[cell]) > depth_limit:
                why, value = "water", float(depth.reshape(-1)[cell])
            if why is None:
                continue
            self.lost[key] = why
            self.lost_s[key] = now
            self.sim.recorder.event(now, "facility_lost", name, facility=_ONE[kind], cause=why,
                                    value=round(value, 3))  # fmt: skip
            if kind == "shelters" and self.scenario.evacuation is not None:
                action = Action.model_validate({"at": now, "close_shelter": name})
                self.sim.apply(action, cause=why)

    def _facility_lost(self) -> dict[str, dict[str, float]]:
        """This storm's part of ``facility__lost``: ``{type: {name: time lost, s}}`` (merged
        with the consequences' water losses by the field's declaration)."""
        out: dict[str, dict[str, float]] = {}
        for key, t in self.lost_s.items():
            kind, name = key.split("/", 1)
            out.setdefault(_ONE[kind], {})[name] = t
        return out

    # ------------------------------------------------------------------ records

    def sample(self) -> dict[str, float]:
        """Peak wind now and roads closed by wind; records the wind gauges and map frames."""
        now = float(self.env.now)
        self.wind_frames.add(now, self.speed, self.direction)
        for name, (speed, direction) in self.model.gauge_wind(now).items():
            self.gauge_rows.append((now, name, speed, direction))
        rs = self.sim.roads
        return {
            "max_wind_m_s": float(self.speed[self.mask].max(initial=0.0)),
            "roads_closed_by_wind": int(rs.closed["wind"].sum()) if rs is not None else 0,
        }

    def summary(self) -> dict[str, Any]:
        """The ``typhoon`` section: peaks, arrival, roads, clearance, facilities, warning."""
        out: dict[str, Any] = dict(self.model.summary())
        out["clearance_calls"] = self.n_calls
        out["roads_cleared"] = self.cleared
        out["facilities_lost"] = dict(sorted(self.lost.items()))
        if self._warnings:
            table = self.warning_table()
            # by zone name (names are unique): a batch's metrics take the numeric leaves,
            # e.g. typhoon.warning_zones.shore.margin_s
            out["warning_zones"] = {
                row["zone"]: {k: _plain(v) for k, v in row.items() if k != "zone"}
                for row in table.to_dict(orient="records")
            }
            margins = table.margin_s.dropna()
            out["min_margin_s"] = float(margins.min()) if len(margins) else None
        return out

    def warning_table(self) -> pd.DataFrame:
        """The ``warning_zones`` table (:func:`emtwin.typhoon.warning.zone_table`): the safe
        time of each household is its last ``sheltered`` / ``out`` event."""
        ev = self.sim.recorder.events()
        safe = ev.loc[ev.kind.isin(["sheltered", "out"]), ["entity", "time_s"]]
        safe = safe[safe.entity.astype(str).str.fullmatch(r"h\d+")]
        last = safe.groupby("entity").time_s.max()
        safe_s = {int(str(h)[1:]): float(t) for h, t in last.items()}
        return zone_table(self._warnings, safe_s)

    def outputs(self) -> dict[str, Any]:
        """Rasters ``max_wind``, ``max_gust`` (m/s), ``wind_arrival`` (s); tables
        ``storm_track`` and ``wind_gauges``; map frames ``wind_speed`` and
        ``wind_direction`` (block means at each output time, see
        :mod:`emtwin.typhoon.frames`)."""
        out: dict[str, Any] = {
            k: np.where(self.mask, v, np.nan) for k, v in self.model.rasters().items()
        }
        out["storm_track"] = self.model.track_table()
        stacks = self.wind_frames.stacks()
        if stacks is not None:
            f = self.wind_frames.factor
            tr = self.world.terrain.transform @ Affine.scale(f, f)
            out["wind_speed"] = Frames(stacks[0], stacks[1], tr)
            out["wind_direction"] = Frames(stacks[0], stacks[2], tr)
        if self._warnings:
            out["warning_zones"] = self.warning_table()
        if self.spec.gauges:
            out["wind_gauges"] = pd.DataFrame(
                self.gauge_rows, columns=["time_s", "gauge", "speed_m_s", "direction_deg"]
            )
        return out


def _plain(v: Any) -> Any:
    """A table cell as plain JSON-able Python: NaN as None, numpy scalars as int/float."""
    if isinstance(v, str):
        return v
    if isinstance(v, np.integer | int):
        return int(v)
    v = float(v)
    return None if np.isnan(v) else v
