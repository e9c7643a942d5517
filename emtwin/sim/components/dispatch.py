"""The Dispatch component: units at stations answer the calls of the Incidents component.

It hears ``call`` events, hands them to the queueing core
(:class:`emtwin.sim.dispatch.DispatchCore`) with the scenario's policy, and
moves units over the World (:class:`emtwin.sim.dispatch.WorldTravel`): road
units by current road travel times and closures, high-clearance trucks
through water up to their ``max_depth``, boats by trailer to the water and
then over wet cells. Moving units are re-routed when a road ahead closes
(checked at every flood coupling step and after every ``road_closed`` event),
and units driving a patient to a hospital that the consequences component
reports lost (``facility_lost``, ``facility__lost``) go to the next working one.
Plan action ``move_units`` re-bases units (busy ones finish their call first).

Outputs: events ``dispatch``, ``arrival``, ``on_scene_end``, ``hospital_arrival``,
``return``, ``reroute``, ``call_lost``, ``units_moved``; time series
``calls_waiting``, ``units_busy`` and ``units_busy_<type>``; the ``dispatch``
section of summary.json; tables ``calls``, ``units`` and ``trips`` (kind "unit").
See docs/dispatch.md.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from emtwin.errors import ScenarioError
from emtwin.kernels.hazard_rating import ROAD_CLOSURE_DEPTH_M
from emtwin.scenarios.models import Action, Scenario
from emtwin.sim.component import Component
from emtwin.sim.dispatch.core import DispatchCore
from emtwin.sim.dispatch.legs import Call, Unit
from emtwin.sim.dispatch.metrics import calls_table, dispatch_summary, trips_table, units_table
from emtwin.sim.dispatch.policies import load_policy
from emtwin.sim.dispatch.travel import WorldTravel
from emtwin.sim.metric import Metric
from emtwin.sim.timers import tagged

__all__ = ["DispatchComponent"]

log = logging.getLogger(__name__)


def _no_water() -> None:
    """No water to travel on (a run without a flood)."""
    return None


class DispatchComponent(Component):
    """Units, policy and travel: answers calls and measures the response."""

    name: ClassVar[str] = "dispatch"
    requires: ClassVar[tuple[str, ...]] = ("roads", "stations")
    actions: ClassVar[frozenset[str]] = frozenset({"move_units"})
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("calls", "Calls", shown=True),
        Metric("served", "Served", better="higher"),
        Metric("unserved", "Unserved", better="lower", shown=True),
        Metric("response_p50_s", "Response time, median", "s", "lower"),
        Metric("response_p90_s", "Response time, 90th percentile", "s", "lower", shown=True),
        Metric("wait_mean_s", "Mean wait for a unit", "s", "lower"),
        Metric("utilisation_mean", "Mean unit utilisation", "share"),
        Metric("response_mean_s", "Response time, mean", "s", "lower", headline=False),
        Metric("to_hospital_mean_s", "Call to hospital, mean", "s", "lower", headline=False),
    )  # fmt: skip
    reads: ClassVar[dict[str, bool]] = {
        "water__depth": False, "water__time": False, "road__closed": False,
        "road__speed_factor": False, "road__water_depth": False, "facility__lost": False,
    }  # fmt: skip
    writes: ClassVar[tuple[str, ...]] = ("call__table", "call__waiting", "unit__table")
    samples: ClassVar[dict[str, str]] = {
        "calls_waiting": "calls waiting for a unit now",
        "units_busy": "units assigned to a call now",
        "units_busy_<type>": "units of each type assigned to a call now",
    }

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Enabled when the scenario has a response section."""
        return scenario.response is not None

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        resp = self.scenario.response
        src = self.scenario.source
        st = self.world.places.stations
        self.stations = {str(n): int(k) for n, k in zip(st["name"], st["node"], strict=True)}
        problems = []
        for i, g in enumerate(resp.resources):
            if g.station not in self.stations:
                problems.append(
                    f"{self.scenario.where('response', 'resources', i, 'station')}: no station "
                    f"named '{g.station}' in "
                    f"world.stations (it has: {', '.join(sorted(self.stations)) or 'none'})"
                )
        if problems:
            raise ScenarioError(problems, file=src)
        self._warn_types(resp)
        choose, order = load_policy(resp.dispatch, allow_code=self.sim.allow_code, file=src)
        units: list[Unit] = []
        count: dict[str, int] = {}
        for g in resp.resources:
            for _ in range(g.count):
                count[g.type] = count.get(g.type, 0) + 1
                units.append(Unit(f"{g.type}-{count[g.type]}", g.type, g.station,
                                  self.stations[g.station]))  # fmt: skip
        self.types = sorted(count)
        depth = self._water if self.fields.has("water__depth") else _no_water
        flood = self.scenario.flood
        closure = float(flood.road_closure_depth) if flood is not None else ROAD_CLOSURE_DEPTH_M
        self.travel = WorldTravel(
            self.world, self.sim.roads, {t: resp.unit_type(t) for t in self.types},
            depth=depth, closure_depth_m=closure, lost_hospitals=self._lost_hospitals,
        )  # fmt: skip
        self.core = DispatchCore(self.env, units, self.travel, choose, order=order,
                                 recorder=self.sim.recorder, max_wait_s=resp.max_wait)  # fmt: skip
        self._check_pending = False
        self.sim.recorder.subscribe("call", self._on_call)
        self.sim.recorder.subscribe("road_closed", self._on_road_change)
        self.sim.recorder.subscribe("road_opened", self._on_road_change)
        self.sim.recorder.subscribe("facility_lost", self._on_facility_lost)
        self.fields.provide("call__table", self._call_table, writer=self.name)
        self.fields.provide("call__waiting", self._calls_waiting, writer=self.name)
        self.fields.provide("unit__table", self._unit_table, writer=self.name)

    def _call_table(self) -> pd.DataFrame:
        """``call__table``: the calls received so far (see the field's declaration)."""
        now = float(self.env.now)
        rows = [(c.id, float(c.time_s), int(c.priority), c.type, c.state, float(c.response_s),
                 float(c.end_s), float(c.x), float(c.y))
                for c in self.core.calls if c.time_s <= now]  # fmt: skip
        return pd.DataFrame(rows, columns=["id", "time_s", "priority", "type", "state",
                                           "response_s", "end_s", "x", "y"])  # fmt: skip

    def _calls_waiting(self) -> int:
        """``call__waiting``: calls waiting for a unit now."""
        return int(self.core.waiting)

    def _unit_table(self) -> pd.DataFrame:
        """``unit__table``: every unit, its state and where it is now (m, World CRS)."""
        now = float(self.env.now)
        rows = []
        for u in self.core.units:
            leg = u.leg
            if leg is not None and len(leg):
                x, y = float(np.interp(now, leg.t, leg.x)), float(np.interp(now, leg.t, leg.y))
            else:
                try:
                    x, y = self.travel.node_xy(int(u.node))
                except (IndexError, KeyError, ValueError):
                    x = y = float("nan")
            rows.append((u.id, u.type, u.state, u.station, x, y))
        return pd.DataFrame(rows, columns=["id", "type", "state", "station", "x", "y"])

    def _water(self) -> tuple[np.ndarray, float]:
        """The water depth grid (m) and the time it belongs to (s), for water travel."""
        return self.fields.get("water__depth"), float(self.fields.get("water__time"))

    def _lost_hospitals(self) -> dict[str, float]:
        """Hospitals out of function now (``facility__lost``): name -> time lost, s."""
        lost = self.fields.get("facility__lost") or {}
        return lost.get("hospital", {})

    def _warn_types(self, resp: Any) -> None:
        """Warn about units no call can use, and call types no unit can serve.

        Calls that a hazard raises itself count too: the unit types its section lists
        in ``call_needs`` (a storm's road clearance crews).
        """
        inc = resp.incidents
        kinds = list(inc.types) + (list(inc.hazard_types) if inc.from_hazard else [])
        usable = {n for k in kinds for n in k.needs_types}
        usable |= {n for h in self.scenario.hazards for n in getattr(h, "call_needs", ())}
        have = {g.type for g in resp.resources if g.count > 0}
        for i, g in enumerate(resp.resources):
            if g.type not in usable:
                log.warning(
                    "response.resources.%d: no call can use unit type '%s' (calls need: %s); "
                    "its units will stay at %s", i, g.type, ", ".join(sorted(usable)) or "none",
                    g.station,
                )  # fmt: skip
        for k in inc.types:
            if not set(k.needs_types) & have:
                log.warning("response.incidents.types: calls of type '%s' need %s, and no such "
                            "unit is in response.resources", k.name, " or ".join(k.needs_types))

    # ------------------------------------------------------------------ hearing

    def _on_call(self, time_s: float, entity: str, *, node: int = -1, edge: int = -1,
                 **d: Any) -> None:  # fmt: skip
        call = Call(
            id=str(entity), time_s=float(time_s), node=int(node), x=float(d.get("x", 0.0)),
            y=float(d.get("y", 0.0)), cell=int(d.get("cell", -1)),
            priority=int(d.get("priority", 1)), type=str(d.get("type", "call")),
            needs=tuple(d.get("needs", ("ambulance",))), on_scene_s=float(d.get("on_scene_s", 0)),
            to_hospital=bool(d.get("to_hospital", False)),
            handover_s=float(d.get("handover_s", 0.0)), people=int(d.get("people", 1)),
            source=str(d.get("source", "background")),
        )  # fmt: skip
        self.core.submit(call)

    def _on_facility_lost(self, time_s: float, entity: str, *, facility: str = "",
                          **_: Any) -> None:  # fmt: skip
        """A hospital in ``facility__lost``: units driving patients there go to the next one."""
        if facility == "hospital" and str(entity) in self._lost_hospitals():
            self.core.hospital_lost(str(entity))

    def _on_road_change(self, time_s: float, entity: str, **_: Any) -> None:
        """Re-check routes once the road state of this instant is complete."""
        if self._check_pending:
            return
        self._check_pending = True
        ev = tagged(self.env.timeout(0), self.name, "check")
        ev.callbacks.append(self._deferred_check)

    def _deferred_check(self, _ev: Any) -> None:
        self._check_pending = False
        self.core.check_routes()

    def start(self) -> None:
        """Units wait at their stations; with a hazard, routes are re-checked every step."""
        self._watching = bool(self.scenario.hazards)
        self._checked_s = 0.0

    def resume(self, tag: tuple, event: Any) -> None:
        """Rebuild a unit's process, a call's waiting limit or a route check (a checkpoint)."""
        if tag[1] == "check":
            event.callbacks.append(self._deferred_check)
        else:
            self.core.resume(tag[1:], event)

    def advance_to(self, time_s: float) -> None:
        """With a hazard: re-check routes and waiting calls every coupling step after the start."""
        if not self._watching or time_s <= self._checked_s:
            return
        self._checked_s = float(time_s)
        self.core.check_routes()

    # ------------------------------------------------------------------ plan actions

    def check_action(self, action: Action) -> str | None:
        """``move_units`` must name known stations and a type based at ``from``."""
        mv = action.value
        for key, name in (("from", mv.from_), ("to", mv.to)):
            if name not in self.stations:
                return (f"{key}: no station named '{name}' in world.stations (it has: "
                        f"{', '.join(sorted(self.stations))})")  # fmt: skip
        based = {g.type for g in self.scenario.response.resources if g.station == mv.from_}
        if mv.type not in based and not any(
            a.kind == "move_units" and a.value.to == mv.from_ and a.value.type == mv.type
            and (a.at is None or action.at is None or a.at <= action.at)
            for a in self.scenario.actions
        ):  # fmt: skip
            return f"type: no units of type '{mv.type}' are based at '{mv.from_}'"
        return None

    def on_action(self, action: Action) -> None:
        """Re-base units: free ones leave now, busy ones after their call."""
        mv = action.value
        moved = self.core.move_units(mv.type, mv.count, mv.from_, mv.to, self.stations[mv.to])
        if len(moved) < mv.count:
            log.warning("move_units at %g s: only %d of %d units of type '%s' were based at '%s'",
                        self.env.now, len(moved), mv.count, mv.type, mv.from_)  # fmt: skip
        self.sim.recorder.event(self.env.now, "units_moved", mv.type, node=self.stations[mv.to],
                                units=moved, to=mv.to)  # fmt: skip

    # ------------------------------------------------------------------ records

    def sample(self) -> dict[str, float]:
        """Calls waiting and units busy (in all and by type) now."""
        row: dict[str, float] = {
            "calls_waiting": self.core.waiting,
            "units_busy": self.core.busy_units(),
        }
        for t in self.types:
            row[f"units_busy_{t}"] = self.core.busy_units(t)
        return row

    def _busy(self) -> list[float]:
        now = float(self.env.now)
        return [self.core.busy_time_s(u, now) for u in self.core.units]

    def summary(self) -> dict[str, Any]:
        """The ``dispatch`` section: the contract's keys, by priority, type and source."""
        self.core.finish()
        out = dispatch_summary(self.core.calls, self.core.units, self._busy(),
                               float(self.scenario.duration))  # fmt: skip
        out["policy"] = self.scenario.response.dispatch
        return out

    def outputs(self) -> dict[str, Any]:
        """Tables ``calls``, ``units`` and ``trips`` (unit movements, kind "unit").

        When an evacuation runs too, the unit movements are returned as
        ``unit_trips``, so that they do not replace the evacuation's ``trips``
        (the engine keeps one table per name).
        """
        self.core.finish()
        dur = float(self.scenario.duration)
        trips = "trips" if self.scenario.evacuation is None else "unit_trips"
        return {
            "calls": calls_table(self.core.calls),
            "units": units_table(self.core.units, self._busy(), dur),
            trips: trips_table(self.core.units, float(self.env.now)),
        }
