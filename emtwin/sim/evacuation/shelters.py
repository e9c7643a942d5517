"""Destinations of the evacuation: shelters (capacity in people) and exits.

Shelters are the World's ``shelters`` (``name``, ``capacity`` in persons,
snapped to a road node); several may share a node, and then they fill in the
order they are listed. Exits are ``evacuation.exits`` points snapped to their
nearest road node; they have no capacity limit.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emtwin.errors import ScenarioError

__all__ = ["Shelters", "exit_nodes"]

#: An exit farther than this from any road node is an error, m.
EXIT_MAX_SNAP_M = 1000.0
#: An exit moved farther than this to its road node is reported (a warning), m.
EXIT_WARN_SNAP_M = 50.0

log = logging.getLogger(__name__)


def exit_nodes(points: list[Any], world: Any, scenario_crs: str) -> np.ndarray:
    """Road nodes of ``evacuation.exits`` (points in the scenario's ``crs``), shape (k,).

    An exit snaps to its nearest road node, the one-way dead ends included
    (an exit road leads out and not back). Moving an exit more than
    :data:`EXIT_WARN_SNAP_M`, or past a road the reader dropped (one it stood
    nearer to), is reported with a warning naming the exit and the distance;
    more than :data:`EXIT_MAX_SNAP_M` is an error.
    """
    from emtwin.geo.build import to_world_xy

    if not points:
        return np.zeros(0, np.int64)
    xy = to_world_xy(points, scenario_crs, world)
    roads = world.roads
    nodes, dist = roads.nearest_node(xy[:, 0], xy[:, 1], sinks=True)
    far = np.flatnonzero(dist > EXIT_MAX_SNAP_M)
    if far.size:
        i = int(far[0])
        raise ScenarioError(
            f"evacuation.exits.{i}: {list(points[i])} is {dist[i]:,.0f} m from the nearest road "
            f"node (at most {EXIT_MAX_SNAP_M:g} m); check the point and the file's crs"
        )
    d_drop = np.full(len(points), np.inf)
    if len(roads.dropped_xy):
        from scipy.spatial import cKDTree

        d_drop = cKDTree(roads.dropped_xy).query(xy)[0]
    for i in range(len(points)):
        past = d_drop[i] < dist[i]
        if dist[i] > EXIT_WARN_SNAP_M or past:
            why = (f"; the road nearest to it ({d_drop[i]:,.0f} m) was dropped when the network "
                   "was read (cut off: no route from the main network into it)") if past else ""
            log.warning("evacuation.exits.%d: exit %s moved %.0f m to road node %d at (%.1f, "
                        "%.1f)%s", i, list(points[i]), float(dist[i]), int(nodes[i]),
                        float(roads.node_x[nodes[i]]), float(roads.node_y[nodes[i]]), why)
    return nodes.astype(np.int64)


class Shelters:
    """Occupancy and opening of the shelters, in persons.

    Parameters
    ----------
    names
        Shelter names, shape (k,).
    nodes
        Road node of each shelter, shape (k,).
    capacity
        Places per shelter, persons, shape (k,).
    is_open
        Whether each shelter takes people at the start, shape (k,).
    """

    def __init__(self, names: np.ndarray, nodes: np.ndarray, capacity: np.ndarray,
                 is_open: np.ndarray) -> None:  # fmt: skip
        self.names = np.asarray(names, dtype=object)
        self.nodes = np.asarray(nodes, np.int64)
        self.capacity = np.asarray(capacity, float)
        self.is_open = np.asarray(is_open, bool).copy()
        self.occupancy = np.zeros(self.names.shape[0])
        self.full_reported = np.zeros(self.names.shape[0], bool)
        self.node_list = np.unique(self.nodes)
        self._at: dict[int, list[int]] = {}
        for i, n in enumerate(self.nodes):
            self._at.setdefault(int(n), []).append(i)
        self.index = {str(n): i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return int(self.names.shape[0])

    def at(self, node: int) -> list[int]:
        """Shelters at road node *node*, in list order."""
        return self._at.get(int(node), [])

    def space(self, node: int) -> float:
        """Free places (persons) in the open shelters at *node*."""
        return float(sum(self.capacity[i] - self.occupancy[i] for i in self.at(node)
                         if self.is_open[i]))  # fmt: skip

    def admit(self, node: int, people: float) -> list[tuple[int, float]]:
        """Seat *people* at *node*, filling its open shelters in order.

        Returns ``[(shelter, persons), ...]``. The caller has checked the space.
        """
        left = float(people)
        out = []
        for i in self.at(node):
            if left <= 0:
                break
            if not self.is_open[i]:
                continue
            take = min(left, self.capacity[i] - self.occupancy[i])
            if take > 0:
                self.occupancy[i] += take
                out.append((i, take))
                left -= take
        if left > 1e-9:  # only reachable on a bookkeeping error
            i = next(i for i in self.at(node) if self.is_open[i])
            self.occupancy[i] += left
            out.append((i, left))
        return out

    def newly_full(self, min_space: float = 1.0) -> list[int]:
        """Shelters whose free places fell below *min_space* and were not reported yet."""
        full = (self.capacity - self.occupancy < min_space) & ~self.full_reported
        self.full_reported |= full
        return [int(i) for i in np.flatnonzero(full)]

    @classmethod
    def from_world(cls, world: Any, opened_later: set[str]) -> Shelters:
        """The World's shelters; those named in *opened_later* start closed.

        Raises
        ------
        ScenarioError
            If the shelters' total capacity is not positive, or one is negative.
        """
        gdf = world.places.shelters
        names = gdf["name"].astype(str).to_numpy()
        cap = gdf["capacity"].to_numpy(dtype=float) if len(gdf) else np.zeros(0)
        if len(gdf):
            bad = np.flatnonzero(~np.isfinite(cap) | (cap < 0))
            if bad.size:
                i = int(bad[0])
                raise ScenarioError(
                    f"world.shelters: shelter {names[i]!r} has capacity {cap[i]!r}; expected a "
                    "number of places >= 0 (persons)"
                )
            if cap.sum() <= 0:
                raise ScenarioError(
                    f"world.shelters: the total capacity of the shelters ({len(gdf)}) is 0 people; "
                    "give each a `capacity` (places, persons) or leave world.shelters out and "
                    "use evacuation.exits"
                )
        is_open = np.array([n not in opened_later for n in names], bool)
        return cls(names, gdf["node"].to_numpy(np.int64), cap, is_open)
