"""Triggers: plan actions fired by a condition (`when:`) instead of a time (`at:`).

Real plans say "when the gauge at the bridge passes 4.2 m, evacuate the
valley". An action with ``when:`` fires once, at the first coupling step at
which its condition holds, after every component has been brought to that
step; the ``action`` event it records names the trigger that fired it.

Conditions (:class:`emtwin.scenarios.models.Trigger`):

- ``gauge`` with ``depth_above`` / ``level_above`` / ``flow_above``: the field
  ``gauge__depth`` or ``gauge__level`` (m), or ``gauge__flow`` (m3/s, through
  the gauge's cross-section) at the named gauge is above the value;
- ``road_closed``: any directed edge of the road is closed, for any reason;
- ``shelter_full``: a ``shelter_full`` event of that shelter has been recorded;
- ``time_after``: the coupling step is at least ``delay`` after the first event
  of kind ``event`` (and ``entity``, when given);
- ``rain``: the rain accumulated over the last ``over`` seconds, averaged over
  ``area`` (an evacuation zone or a polygon), reaches ``mm``. The rain is the
  per-cell field ``field`` (default ``rain__rate``, mm/h); the value read at a
  coupling step holds until the next one (as the flood uses it), so the
  accumulation at step t is the sum over earlier steps t_k of rate_k times the
  part of [t_k, t_k+1] inside [t - over, t]. This is how flash-flood warnings
  on small catchments work; ``warning_rules:`` are such triggers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from emtwin.scenarios.models import Action, Scenario, Trigger

if TYPE_CHECKING:
    from emtwin.geo.world import World
    from emtwin.sim.recorder import Recorder
    from emtwin.sim.state import State

__all__ = ["TriggerWatch", "check_triggers", "check_trigger_places", "describe"]


def describe(trigger: Trigger) -> dict[str, Any]:
    """The trigger as it was written (for the ``action`` event's details)."""
    return trigger.model_dump(exclude_none=True)


def check_triggers(scenario: Scenario) -> list[str]:
    """Problems with the `when:` conditions told from the file: a named gauge must exist."""
    problems = []
    flood = scenario.flood
    gauges = [g.name for g in flood.gauges] if flood is not None else []
    for i, a in enumerate(scenario.actions):
        w = a.when
        if w is not None and w.gauge is not None and w.gauge not in gauges:
            known = ", ".join(gauges) or "none: the scenario has no flood gauges"
            problems.append(f"{scenario.where('actions', i, 'when', 'gauge')}: no gauge named "
                            f"{w.gauge!r} (gauges: {known})")  # fmt: skip
        elif w is not None and w.flow_above is not None:
            k = gauges.index(w.gauge)
            if flood.gauges[k].section is None:
                problems.append(f"{scenario.where('actions', i, 'when', 'flow_above')}: gauge "
                                f"{w.gauge!r} has no cross-section, so it measures no flow; "
                                f"give hazards.0.gauges.{k}.section")  # fmt: skip
    return problems


def rain_total_mm(history: list[tuple[float, float]], time_s: float, over_s: float) -> float:
    """Rain (mm) over [time_s - over_s, time_s] from step-wise rates ``[(t_k, mm/h), ...]``
    (each holding from t_k to the next t, the last to *time_s*)."""
    total, lo = 0.0, time_s - over_s
    for k, (t, rate) in enumerate(history):
        end = history[k + 1][0] if k + 1 < len(history) else time_s
        a, b = max(t, lo), min(end, time_s)
        if b > a:
            total += rate * (b - a) / 3600.0
    return total


def rain_area_cells(area: str | list, scenario: Scenario | None, world: World) -> np.ndarray:
    """Boolean grid of the cells of a rain trigger's *area*: an evacuation zone's name,
    or a polygon (points in the scenario's crs).

    Raises
    ------
    ScenarioError
        If the zone is unknown or the area covers no cell of the domain.
    """
    from shapely.geometry import Polygon

    from emtwin.errors import ScenarioError
    from emtwin.geo.build import to_world_xy
    from emtwin.sim.components.hazard import polygon_cells

    crs = scenario.crs if scenario is not None else "EPSG:4326"
    src = scenario.source if scenario is not None else None
    if isinstance(area, str):
        from emtwin.sim.evacuation.households import zone_polygons

        zones = scenario.evacuation.zones if scenario and scenario.evacuation else []
        names = [z.name for z in zones]
        if area not in names:
            raise ScenarioError(f"rain trigger area: no evacuation zone named {area!r} (zones: "
                                f"{', '.join(map(str, names)) or 'none'})", file=src)  # fmt: skip
        (poly,) = zone_polygons([zones[names.index(area)]], world, crs)
    else:
        poly = Polygon(to_world_xy(area, crs, world))
    cells = polygon_cells(world, poly)
    if not cells.any():
        raise ScenarioError(f"rain trigger area {area!r}: covers no cell of the domain", file=src)
    return cells


def check_trigger_places(scenario: Scenario, world: World) -> list[str]:
    """Problems with the `when:` conditions told from the World: roads and shelters named."""
    problems = []
    for i, a in enumerate(scenario.actions):
        w = a.when
        if w is None:
            continue
        if w.road_closed is not None and (
            world.roads is None or len(world.roads.edges_named(w.road_closed)) == 0
        ):
            problems.append(f"{scenario.where('actions', i, 'when', 'road_closed')}: no road "
                            f"with id or name {w.road_closed!r} in the network")  # fmt: skip
        if w.shelter_full is not None:
            names = [str(n) for n in world.places.shelters.get("name", [])]
            if w.shelter_full not in names:
                problems.append(
                    f"{scenario.where('actions', i, 'when', 'shelter_full')}: no shelter named "
                    f"{w.shelter_full!r} (shelters: {', '.join(names) or 'none'})"
                )
    return problems


class TriggerWatch:
    """The pending triggered actions of a run, and the events they wait for.

    Parameters
    ----------
    actions
        The scenario's actions with a ``when``, as (index, action) pairs.
    state
        The run's shared fields (gauge fields, road state).
    world
        The World (road names).
    recorder
        The run's recorder; the watch subscribes to the event kinds it needs.
    """

    def __init__(self, actions: list[tuple[int, Action]], state: State, world: World,
                 recorder: Recorder, *, scenario: Scenario | None = None) -> None:  # fmt: skip
        self.pending = list(actions)
        #: for each rain trigger: its area's cells and the (time s, mean mm/h) history
        self._rain: dict[int, tuple[np.ndarray, list[tuple[float, float]]]] = {
            i: (rain_area_cells(a.when.rain.area, scenario, world), [])
            for i, a in self.pending if a.when.rain is not None
        }  # fmt: skip
        self.state = state
        self.world = world
        self._first: dict[tuple[str, str | None], float] = {}
        for kind, _ in sorted(self._kinds()):
            recorder.subscribe(kind, self._heard(kind))
        self._edges = {
            i: world.roads.edges_named(a.when.road_closed)
            for i, a in self.pending if a.when.road_closed is not None
        }  # fmt: skip

    def hear_past(self, recorder: Recorder) -> None:
        """Take in the events recorded before this watch existed (a fork of a checkpoint)."""
        kinds = {k for k, _ in self._kinds()}
        for time_s, kind, entity, *_ in recorder._events:
            if kind in kinds:
                self._first.setdefault((kind, None), float(time_s))
                self._first.setdefault((kind, str(entity)), float(time_s))

    def continue_rain(self, old: TriggerWatch, carried: dict[int, int]) -> None:
        """Continue the rain windows of *old* (the base run's watch, a fork of a checkpoint).

        *carried* maps an action's index in the base run to its index here (the
        warning rules, renumbered after the fork's ``actions``): such a rain
        trigger, pending in *old*, takes its history. Any other rain trigger
        here takes the history of a pending one of *old* with the same field
        and the same cells, when there is one.
        """
        back = {j: i for i, j in carried.items()}
        pending = {i: a for i, a in old.pending if a.when.rain is not None and i in old._rain}
        for j, a in self.pending:
            if a.when.rain is None:
                continue
            cells, hist = self._rain[j]
            i = back.get(j)
            if i not in pending:
                i = next((k for k, b in pending.items()
                          if b.when.rain.field == a.when.rain.field
                          and np.array_equal(old._rain[k][0], cells)), None)  # fmt: skip
            if i is not None:
                hist[:] = list(old._rain[i][1])

    def _kinds(self) -> set[tuple[str, None]]:
        out = set()
        for _, a in self.pending:
            if a.when.shelter_full is not None:
                out.add(("shelter_full", None))
            if a.when.time_after is not None:
                out.add((a.when.time_after.event, None))
        return out

    def _heard(self, kind: str) -> Any:
        def hear(time_s: float, entity: str, **_: Any) -> None:
            self._first.setdefault((kind, None), float(time_s))
            self._first.setdefault((kind, str(entity)), float(time_s))

        return hear

    def holds(self, i: int, trigger: Trigger, time_s: float) -> bool:
        """Whether the condition of action *i* holds at *time_s* (s)."""
        if trigger.gauge is not None:
            if trigger.depth_above is not None:
                values, limit = self.state.get("gauge__depth", {}), trigger.depth_above
            elif trigger.level_above is not None:
                values, limit = self.state.get("gauge__level", {}), trigger.level_above
            else:
                values, limit = self.state.get("gauge__flow", {}), trigger.flow_above
            value = values.get(trigger.gauge)
            return value is not None and value > limit
        if trigger.road_closed is not None:
            roads = self.state.roads
            return roads is not None and bool(np.any(~roads.open[self._edges[i]]))
        if trigger.shelter_full is not None:
            return ("shelter_full", trigger.shelter_full) in self._first
        if trigger.rain is not None:
            return self._rain_reached(i, trigger, time_s)
        ta = trigger.time_after
        first = self._first.get((ta.event, ta.entity))
        return first is not None and time_s >= first + float(ta.delay)

    def _rain_reached(self, i: int, trigger: Trigger, time_s: float) -> bool:
        """Take in the rain at *time_s*; whether the window's total reaches the threshold."""
        cells, hist = self._rain[i]
        rate = self.state.get(trigger.rain.field)
        if not hist or time_s > hist[-1][0]:
            mean = float(np.asarray(rate)[cells].mean()) if rate is not None else 0.0
            hist.append((float(time_s), mean))
        return rain_total_mm(hist, time_s, float(trigger.rain.over)) >= trigger.rain.mm

    def due(self, time_s: float) -> list[tuple[int, Action]]:
        """The pending actions whose condition holds now; they are removed (fire once)."""
        fired = [(i, a) for i, a in self.pending if self.holds(i, a.when, time_s)]
        if fired:
            done = {i for i, _ in fired}
            self.pending = [(i, a) for i, a in self.pending if i not in done]
        return fired
