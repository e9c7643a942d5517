"""Calls, units and their movements (legs): the records the dispatch core works on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Call", "Unit", "Leg", "FREE_STATES"]

#: Unit states in which a unit may take a call: at its base, or driving back to it.
FREE_STATES = frozenset({"idle", "returning"})


@dataclass(eq=False)
class Call:
    """One call for help.

    Attributes
    ----------
    id
        Call id (``call-1``, ...).
    time_s
        When the call came in, s since the start.
    node
        Road node (or zone) of the call's location.
    x, y
        Location, m in the World CRS.
    cell
        Flat raster cell of the location (-1 when unknown): a boat serves it
        there when the cell is wet.
    priority
        1 is the most urgent.
    type
        Call type name (``medical``, ``flooded``, ...).
    needs
        Unit types any of which can serve the call.
    on_scene_s
        Time a unit spends on scene, s (drawn when the call was made).
    to_hospital
        Whether the unit then takes the patient to the nearest reachable hospital.
    handover_s
        Time at the hospital, s.
    people
        People involved.
    source
        ``background``, ``stranded``, ``exposed``, ``flooded`` or ``test``.
    reason
        For a call no unit reached: ``unreachable`` (no unit that could serve it
        had a route to it), ``no_unit`` (some could reach it, none was free; or
        no unit of a type it needs exists), ``ended`` (a unit was on its way when
        the run ended). Set when it is lost, or at the end; "" otherwise.
    """

    id: str
    time_s: float
    node: int
    x: float = 0.0
    y: float = 0.0
    cell: int = -1
    priority: int = 1
    type: str = "call"
    needs: tuple[str, ...] = ("ambulance",)
    on_scene_s: float = 0.0
    to_hospital: bool = False
    handover_s: float = 0.0
    people: int = 1
    source: str = "background"
    # what happened to it
    state: str = "new"
    seq: int = 0
    dispatch_s: float = math.nan
    arrival_s: float = math.nan
    end_s: float = math.nan
    hospital_s: float = math.nan
    hospital: str = ""
    unit: str = ""
    dispatches: int = 0
    reason: str = ""  # why it was never reached: unreachable, no_unit or ended

    @property
    def response_s(self) -> float:
        """Call to arrival on scene, s (NaN if never reached)."""
        return self.arrival_s - self.time_s

    @property
    def wait_s(self) -> float:
        """Call to first dispatch, s (NaN if never dispatched)."""
        return self.dispatch_s - self.time_s


@dataclass(eq=False)
class Unit:
    """One unit (an ambulance, a boat ...) and where it is.

    Attributes
    ----------
    id
        Unit id (``ambulance-1``).
    type
        Unit type name; its travel mode is the travel model's business.
    station
        Name of its home station (changed by ``move_units``).
    home
        Road node (or zone) of its home station.
    index
        Position in the dispatcher's unit list (ties go to the lowest).
    node
        Road node where it is or last stopped.
    state
        ``idle`` (at base), ``returning``, ``en_route``, ``on_scene``,
        ``to_shore``, ``to_hospital``, ``handover``.
    leg
        The movement under way, or None.
    call
        The call it serves, or None.
    busy_s
        Time spent assigned to calls so far, s.
    calls
        Calls it was dispatched to.
    """

    id: str
    type: str
    station: str
    home: int
    index: int = 0
    node: int = -1
    state: str = "idle"
    leg: Leg | None = None
    call: Call | None = None
    proc: Any = None
    #: where the current movement goes: ``["call", call]``, ``["home"]``,
    #: ``["hospital", name]``, or None (landing, or no way left)
    dest: list | None = None
    busy_s: float = 0.0
    busy_since: float = math.nan
    calls: int = 0
    trips: list[Leg] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.node < 0:
            self.node = self.home

    @property
    def free(self) -> bool:
        """Whether the unit may take a call now."""
        return self.state in FREE_STATES

    def anchor(self, now: float) -> tuple[int, float]:
        """The road node from which a new route can start and the time it is reached, s.

        A moving unit finishes the stretch it is on: its anchor is the next
        road node of its leg.
        """
        if self.leg is None:
            return self.node, now
        i = self.leg.anchor(now)
        return int(self.leg.node[i]), max(float(self.leg.t[i]), now)


@dataclass
class Leg:
    """A planned movement: waypoints with absolute times.

    Attributes
    ----------
    t
        Time at each waypoint, s since the start, non-decreasing, shape (n,).
    x, y
        Waypoint coordinates, m in the World CRS.
    node
        Road node of each waypoint, -1 on water.
    edge
        Road edge used to reach each waypoint (-1 for the first, on water and
        for launches).
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    node: np.ndarray
    edge: np.ndarray

    @classmethod
    def stay(cls, node: int, x: float, y: float, t0: float) -> Leg:
        """A leg of one point: standing at *node* at *t0*."""
        return cls(np.array([float(t0)]), np.array([float(x)]), np.array([float(y)]),
                   np.array([int(node)]), np.array([-1]))  # fmt: skip

    @property
    def end_s(self) -> float:
        """Arrival time, s."""
        return float(self.t[-1])

    @property
    def end_node(self) -> int:
        """Road node at the end (-1 when it ends on water)."""
        return int(self.node[-1])

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def anchor(self, now: float) -> int:
        """Index of the first road waypoint reached at or after *now* (the last one if none)."""
        i = int(np.searchsorted(self.t, now, side="left"))
        if i < len(self) and self.node[i] >= 0:
            return i
        ahead = np.flatnonzero((self.t >= now) & (self.node >= 0))
        if ahead.size:
            return int(ahead[0])
        land = np.flatnonzero(self.node >= 0)
        return int(land[-1]) if land.size else len(self) - 1

    def head(self, i: int) -> Leg:
        """The leg up to and including waypoint *i*."""
        s = slice(0, i + 1)
        return Leg(self.t[s], self.x[s], self.y[s], self.node[s], self.edge[s])

    def then(self, other: Leg) -> Leg:
        """This leg followed by *other*, which starts where this one ends."""
        s = slice(1, None)
        return Leg(
            np.concatenate([self.t, other.t[s]]),
            np.concatenate([self.x, other.x[s]]),
            np.concatenate([self.y, other.y[s]]),
            np.concatenate([self.node, other.node[s]]),
            np.concatenate([self.edge, other.edge[s]]),
        )

    def remaining_edges(self, now: float) -> np.ndarray:
        """Road edges not yet entered at *now* (the one under way is left out)."""
        if len(self) < 2:
            return np.zeros(0, dtype=np.int64)
        e = self.edge[1:][self.t[:-1] >= now]
        return e[e >= 0]

    def until(self, now: float) -> Leg:
        """The waypoints passed by *now* (for a trip cut by the end of the run)."""
        keep = self.t <= now
        keep[0] = True
        return Leg(self.t[keep], self.x[keep], self.y[keep], self.node[keep], self.edge[keep])
