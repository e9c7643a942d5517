"""Shared state: the named fields through which components exchange dynamic state.

In the manner of Landlab's grid fields, every piece of state that one component
produces and another consumes is a *field* with a name of the form
``object__quantity``, a location and a unit:

- per cell of the World grid (``water__depth``, ``water__speed``,
  ``hazard__max_class``, later ``wind__speed`` ...), arrays of shape
  (rows, cols);
- per road edge: the :class:`RoadState` (``road__water_depth``,
  ``road__speed_factor``, closures with their reason), arrays of shape
  (n_edges,);
- per point (``gauge__depth``, ``gauge__level``): a dict of floats by name.

A component declares the fields it ``reads`` and ``writes``
(:class:`emtwin.sim.component.Component`); the engine checks when the
Simulation is built that every required read has a writer among the running
components. A writer either stores a value (:meth:`State.set`) or registers a
*provider* (:meth:`State.provide`), a function that produces the current value
when a reader asks: a flood on a GPU then copies its depth grid back only when
some component reads it. Components never import or call each other; they
read fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from emtwin.errors import SimulationError
from emtwin.geo.world import RoadNetwork

__all__ = ["FieldSpec", "FIELDS", "State", "RoadState", "CLOSURE_REASONS", "field_spec"]

Location = Literal["cell", "edge", "point", "scalar"]


@dataclass(frozen=True)
class FieldSpec:
    """What a field holds: its name, location, unit and meaning."""

    name: str
    at: Location
    units: str
    doc: str
    #: for a field several components write: combines their parts into one value
    merge: Callable[[list[Any]], Any] | None = None


#: The fields components may exchange. A new hazard adds its own with
#: :func:`register_field` (e.g. ``wind__speed``).
FIELDS: dict[str, FieldSpec] = {}


def register_field(name: str, at: Location, units: str, doc: str, *,
                   merge: Callable[[list[Any]], Any] | None = None) -> FieldSpec:  # fmt: skip
    """Declare a field (idempotent for an identical declaration).

    *merge*, for a field that several components may write, combines their parts
    (in the order they were provided) into the value a reader gets.

    Raises
    ------
    ValueError
        If *name* is already declared differently.
    """
    spec = FieldSpec(name, at, units, doc, merge)
    old = FIELDS.get(name)
    if old is not None and old != spec:
        raise ValueError(f"field {name!r} is already declared as {old}")
    FIELDS[name] = spec
    return spec


def field_spec(name: str) -> FieldSpec:
    """The declaration of field *name*.

    Raises
    ------
    KeyError
        If no such field is declared.
    """
    try:
        return FIELDS[name]
    except KeyError:
        raise KeyError(f"no field named {name!r}; known: {', '.join(sorted(FIELDS))}") from None


register_field("water__depth", "cell", "m", "water depth on each cell now")
register_field("water__speed", "cell", "m/s", "depth-averaged water speed on each cell now")
register_field("water__time", "scalar", "s", "simulated time the water fields belong to")
register_field("hazard__max_class", "cell", "1", "running maximum AIDR hazard class (0-6)")
register_field("road__water_depth", "edge", "m", "deepest water along each road edge now")
register_field("road__speed_factor", "edge", "1", "travel-speed factor from the hazard, 0..1")
register_field("road__closed", "edge", "bool", "edge closed, for any reason (see RoadState)")
register_field("gauge__depth", "point", "m", "water depth at each named gauge now")
register_field("household__cell", "point", "1",
               "flat cell index (row * ncols + col) where each household is now; -1 out")
register_field("household__location", "point", "1",
               "where each household is: 0 home or a building, 1 vehicle, 2 on foot, -1 out")
register_field("household__people", "point", "1", "persons in each household")
register_field("household__state", "point", "1",
               "evacuation state of each household (the codes of "
               "emtwin.sim.evacuation.states: HOME, TRAVELLING, SHELTERED, OUT, STRANDED ...)")
register_field("household__warned_time", "point", "s",
               "when each household was warned; inf while it has not been")
register_field("household__exposed", "point", "bool",
               "whether each household has been exposed to the hazard at home")
register_field("household__exposed_class", "point", "1",
               "the AIDR hazard class (1-6) each household was exposed to; 0 if never")
register_field("shelter__occupancy", "point", "1", "people in each shelter now: {name: persons}")
register_field("call__table", "point", "1",
               "calls received so far, a table: id, time_s (s), priority, type, state, "
               "response_s (s, NaN until reached), end_s (s, inf while open), x, y (m)")
register_field("call__waiting", "scalar", "1", "calls waiting for a unit now")
register_field("unit__table", "point", "1",
               "response units now, a table: id, type, state, station, x, y (m, World CRS, "
               "where the unit is now; NaN when unknown)")
def earliest_losses(parts: list[Any]) -> dict[str, dict[str, float]]:
    """Merge ``facility__lost`` parts: ``{type: {name: time lost, s}}``, a facility lost in
    several parts at its earliest time."""
    out: dict[str, dict[str, float]] = {}
    for part in parts:
        for kind, names in (part or {}).items():
            into = out.setdefault(kind, {})
            for name, t in names.items():
                into[name] = min(float(t), into.get(name, float("inf")))
    return out


register_field("facility__lost", "point", "s",
               "facilities out of function: {type: {name: time lost, s}}, type one of "
               "hospital, shelter, station, substation, pump; written by the consequences "
               "(water) and a storm (wind)", merge=earliest_losses)
register_field("gauge__level", "point", "m", "water level (bed + depth) at each named gauge now")
register_field("gauge__flow", "point", "m3/s",
               "discharge through the cross-section of each gauge that has one, now")
register_field("rain__rate", "cell", "mm/h",
               "rain rate on each cell from a hazard (a storm), held until the next coupling "
               "step; the flood adds it to its own rain")
register_field("sea__level", "scalar", "m",
               "sea level now; the flood uses it as the level of its `level` boundaries")

#: Why a road edge is closed; each reason has its own flags in :class:`RoadState`.
CLOSURE_REASONS = ("flood", "plan", "contraflow", "wind")


class RoadState:
    """Per-edge state of the road network during a run (the edge fields).

    Hazards write ``water_depth_m``/``speed_factor`` and close edges for their
    reason (``flood``, ``wind``); plan actions close for ``plan``; the
    evacuation closes for ``contraflow`` and changes capacities. Readers use
    :attr:`open` and :meth:`travel_time_s`, and may cache on :attr:`version`.

    Attributes
    ----------
    flood_depth_m
        Deepest water along each edge now, m, shape (n_edges,)
        (field ``road__water_depth``).
    flood_factor
        Travel-speed factor from the hazards on each edge, in [0, 1]
        (field ``road__speed_factor``).
    closed
        Closure flags per reason, ``{reason: bool (n_edges,)}``; the attributes
        ``closed_by_flood``, ``closed_by_plan``, ``closed_contraflow`` and
        ``closed_by_wind`` are these arrays.
    capacity_veh_h
        Current flow capacity per edge, veh/h (contraflow may raise it).
    first_closed_s
        Simulated time of each edge's first closure, s (NaN if never).
    first_closed_reason
        Why each edge closed first (a :data:`CLOSURE_REASONS` entry; "" if
        never), shape (n_edges,), str. Set with :meth:`note_first_closed`.
    max_depth_m
        Highest water depth seen on each edge during the run, m.
    version
        Bumped on every change.
    """

    def __init__(self, roads: RoadNetwork) -> None:
        n = roads.n_edges
        self.roads = roads
        self.flood_depth_m = np.zeros(n)
        self.flood_factor = np.ones(n)
        self.closed = {r: np.zeros(n, dtype=bool) for r in CLOSURE_REASONS}
        self.capacity_veh_h = roads.capacity_veh_h.astype(float).copy()
        self.first_closed_s = np.full(n, np.nan)
        self.first_closed_reason = np.full(n, "", dtype=object)
        self.max_depth_m = np.zeros(n)
        self.version = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # checkpoints written before first_closed_reason existed
        self.__dict__.update(state)
        if "first_closed_reason" not in state:
            self.first_closed_reason = np.full(self.first_closed_s.shape, "", dtype=object)

    def note_first_closed(self, edges: np.ndarray, time_s: float, reason: str) -> None:
        """Record *time_s* (s) and *reason* as the first closure of those *edges* that
        never closed before (edges closed earlier keep their first time and reason)."""
        edges = np.asarray(edges, dtype=np.int64)
        first = edges[np.isnan(self.first_closed_s[edges])]
        self.first_closed_s[first] = time_s
        self.first_closed_reason[first] = reason

    @property
    def closed_by_flood(self) -> np.ndarray:
        """Edges closed by water, bool (n_edges,)."""
        return self.closed["flood"]

    @closed_by_flood.setter
    def closed_by_flood(self, value: np.ndarray) -> None:
        self.closed["flood"][:] = value

    @property
    def closed_by_plan(self) -> np.ndarray:
        """Edges closed by plan actions, bool (n_edges,)."""
        return self.closed["plan"]

    @property
    def closed_contraflow(self) -> np.ndarray:
        """Edges reversed away by contraflow, bool (n_edges,)."""
        return self.closed["contraflow"]

    @property
    def closed_by_wind(self) -> np.ndarray:
        """Edges blocked by wind damage, bool (n_edges,)."""
        return self.closed["wind"]

    @property
    def open(self) -> np.ndarray:
        """True for edges that can be entered now, shape (n_edges,)."""
        shut = np.zeros_like(self.flood_factor, dtype=bool)
        for flags in self.closed.values():
            shut |= flags
        return ~shut

    @property
    def walkable(self) -> np.ndarray:
        """Edges people on foot can use: all but those closed by a hazard or the plan."""
        return ~(self.closed["flood"] | self.closed["plan"] | self.closed["wind"])

    def travel_time_s(self) -> np.ndarray:
        """Free-flow travel time per edge at current speed factors, s (inf where closed)."""
        base = self.roads.length_m / self.roads.speed_m_s
        with np.errstate(divide="ignore"):
            t = base / np.maximum(self.flood_factor, 1e-9)
        t[~self.open] = np.inf
        return t

    def set_plan_closed(self, edges: np.ndarray, closed: bool, time_s: float) -> None:
        """Close or reopen *edges* by a plan action at *time_s* (s)."""
        self.closed["plan"][edges] = closed
        if closed:
            self.note_first_closed(edges, time_s, "plan")
        self.version += 1

    def mark_changed(self) -> None:
        """Tell readers that closures or factors changed."""
        self.version += 1


class _Merged:
    """The provider of a merged field: its writers' parts, merged (picklable, for
    checkpoints, as long as the parts are bound methods)."""

    def __init__(self, merge: Callable[[list[Any]], Any],
                 parts: dict[str, Callable[[], Any]]) -> None:  # fmt: skip
        self.merge, self.parts = merge, parts

    def __call__(self) -> Any:
        return self.merge([f() for f in self.parts.values()])


class State:
    """The named fields of one run (see the module docstring).

    Parameters
    ----------
    roads
        The World's road network, or None for a World without roads (then no
        edge fields exist).
    """

    def __init__(self, roads: RoadNetwork | None) -> None:
        self.roads = RoadState(roads) if roads is not None else None
        self._values: dict[str, Any] = {}
        self._providers: dict[str, Callable[[], Any]] = {}
        self._writer: dict[str, str] = {}
        self._parts: dict[str, dict[str, Callable[[], Any]]] = {}

    def _claim(self, name: str, writer: str) -> None:
        if field_spec(name).merge is not None:
            self._writer.setdefault(name, writer)
            return
        owner = self._writer.setdefault(name, writer)
        if owner != writer:
            raise SimulationError(f"field {name!r} is written by {owner}; {writer} may not")

    def set(self, name: str, value: Any, *, writer: str) -> None:
        """Store the current value of field *name*, written by component *writer*."""
        self._claim(name, writer)
        self._values[name] = value

    def provide(self, name: str, fn: Callable[[], Any], *, writer: str) -> None:
        """Register *fn* to produce field *name* whenever it is read (for a merged field,
        *fn* produces *writer*'s part)."""
        self._claim(name, writer)
        merge = FIELDS[name].merge
        if merge is None:
            self._providers[name] = fn
            return
        parts = self._parts.setdefault(name, {})
        parts[writer] = fn
        self._providers[name] = _Merged(merge, parts)

    def has(self, name: str) -> bool:
        """Whether any running component writes field *name* (or a value is set)."""
        return name in self._values or name in self._providers

    def get(self, name: str, default: Any = None) -> Any:
        """The current value of field *name*, or *default* when nothing writes it."""
        if name in self._providers:
            return self._providers[name]()
        return self._values.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if not self.has(name):
            raise KeyError(f"field {name!r} has no writer in this run")
        return self.get(name)

    def writer(self, name: str) -> str | None:
        """The component that writes field *name*, or None."""
        return self._writer.get(name)
