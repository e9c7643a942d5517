"""Road state shared by the components: closures and travel-speed factors per edge."""

from __future__ import annotations

import numpy as np

from emtwin.geo.world import RoadNetwork

__all__ = ["RoadState"]


class RoadState:
    """Per-edge state of the road network during a run.

    The Hazard component writes ``flood_depth_m``, ``flood_factor`` and
    ``closed_by_flood``; plan actions write ``closed_by_plan``; the evacuation
    writes ``closed_contraflow`` and capacity changes. Readers use
    :attr:`open` and :meth:`travel_time_s`.

    Attributes
    ----------
    flood_depth_m
        Max water depth along each edge, m, shape (n_edges,).
    flood_factor
        Travel-speed factor from the water on each edge, in [0, 1].
    closed_by_flood, closed_by_plan, closed_contraflow
        Boolean closure flags per edge.
    capacity_veh_h
        Current flow capacity per edge, veh/h (contraflow may raise it).
    first_closed_s
        Simulated time of each edge's first closure, s (NaN if never).
    max_depth_m
        Highest water depth seen on each edge during the run, m.
    version
        Bumped on every change, so readers can cache travel times.
    """

    def __init__(self, roads: RoadNetwork) -> None:
        n = roads.n_edges
        self.roads = roads
        self.flood_depth_m = np.zeros(n)
        self.flood_factor = np.ones(n)
        self.closed_by_flood = np.zeros(n, dtype=bool)
        self.closed_by_plan = np.zeros(n, dtype=bool)
        self.closed_contraflow = np.zeros(n, dtype=bool)
        self.capacity_veh_h = roads.capacity_veh_h.astype(float).copy()
        self.first_closed_s = np.full(n, np.nan)
        self.max_depth_m = np.zeros(n)
        self.version = 0

    @property
    def open(self) -> np.ndarray:
        """True for edges that can be entered now, shape (n_edges,)."""
        return ~(self.closed_by_flood | self.closed_by_plan | self.closed_contraflow)

    def travel_time_s(self) -> np.ndarray:
        """Free-flow travel time per edge at current speed factors, s (inf where closed)."""
        base = self.roads.length_m / self.roads.speed_m_s
        with np.errstate(divide="ignore"):
            t = base / np.maximum(self.flood_factor, 1e-9)
        t[~self.open] = np.inf
        return t

    def set_plan_closed(self, edges: np.ndarray, closed: bool, time_s: float) -> None:
        """Close or reopen *edges* by a plan action at *time_s* (s)."""
        self.closed_by_plan[edges] = closed
        if closed:
            first = edges[np.isnan(self.first_closed_s[edges])]
            self.first_closed_s[first] = time_s
        self.version += 1

    def mark_changed(self) -> None:
        """Tell readers that closures or factors changed."""
        self.version += 1
