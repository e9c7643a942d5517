"""Travel models: how long a unit needs to reach a place, and the way it takes.

:class:`WorldTravel` is the one a run uses. Per unit type's mode:

- ``road``: current road travel times (``RoadState.travel_time_s()``: flood
  slow-downs, closures by water, plan and contraflow);
- ``high_clearance``: roads closed by plan or contraflow stay closed, but water
  is passable up to the type's ``max_depth`` (m), at the Pregnolato speed
  factor or the type's wading ``speed`` (default 30 % of the road's speed),
  whichever is faster;
- ``water`` (boats): by road on a trailer to a launch point (a road node
  within two cells of water at least ``min_depth`` deep), ``launch_time``,
  then over wet cells at the type's ``speed`` (:mod:`emtwin.kernels.water_route`)
  to a call whose cell is wet; a call on dry ground is reached by road.

A road or high-clearance unit cannot serve a call whose cell is deeper than it
can drive (the road closure depth, or ``max_depth``). Shortest times come from
Dijkstra (``scipy.sparse.csgraph``) run backwards from the destination, so
one search ranks every unit; results are cached until the road state (or, for
boats, the flood) changes.

:class:`MatrixTravel` takes times from a zone-to-zone table instead (for
analytic checks and abstract studies).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from emtwin.kernels.hazard_rating import ROAD_CLOSURE_DEPTH_M
from emtwin.kernels.water_route import (
    WetGraph,
    launch_pairs,
    water_path,
    water_times_from,
    wet_cell_graph,
)
from emtwin.sim.dispatch.legs import Call, Leg

if TYPE_CHECKING:
    from emtwin.geo.world import World
    from emtwin.scenarios.models import UnitType
    from emtwin.sim.state import RoadState

__all__ = ["Travel", "MatrixTravel", "WorldTravel", "RoadGraph", "WADE_FACTOR"]

#: Speed of a high-clearance unit in deep water, as a share of the road's speed.
WADE_FACTOR = 0.3
_EPS_S = 1e-9
_NONE = -9999


class Travel(Protocol):
    """What the dispatch core asks of a travel model (times in s, nodes as ints)."""

    def node_xy(self, node: int) -> tuple[float, float]:
        """Coordinates of *node*, m."""

    def etas(
        self, utype: str, nodes: np.ndarray, call: Call, *, moving: np.ndarray | None = None,
        exact: bool = True,
    ) -> np.ndarray:
        """Travel time from each of *nodes* to *call* for a unit of *utype*, s (inf: no way).

        With ``exact=False`` only the least time must be right: times of units
        that cannot be the fastest may come back as inf. *moving* flags nodes
        that are the next stop of a moving unit (True) rather than where a unit
        stands.
        """

    def leg_to_call(self, utype: str, node: int, call: Call, t0: float) -> Leg | None:
        """The way from *node* (at *t0*) to *call*, or None."""

    def leg_to_node(self, utype: str, node: int, target: int, t0: float) -> Leg | None:
        """The way from *node* to *target*, or None."""

    def leg_to_hospital(self, utype: str, node: int, t0: float) -> tuple[Leg, str] | None:
        """The way to the hospital reached soonest, and its name; None if none is reachable."""

    def leg_to_shore(self, utype: str, call: Call, t0: float, toward: int) -> Leg:
        """A boat's way from a call on the water back to land (heading for *toward*)."""

    def blocked(self, utype: str, leg: Leg, now: float, call: Call | None) -> bool:
        """Whether the way ahead on *leg* (or the call it heads for) can no longer be used."""


# ---------------------------------------------------------------------------- zone table


class MatrixTravel:
    """Travel times from a table: ``times_s[a, b]`` from zone *a* to zone *b*, s.

    Zones play the part of road nodes. Every unit type travels alike.

    Parameters
    ----------
    times_s
        Square array of travel times, s (inf: no way).
    xy
        Zone coordinates, m, shape (n, 2) (zeros when None).
    hospitals
        Hospital name -> zone.
    """

    def __init__(
        self,
        times_s: np.ndarray,
        *,
        xy: np.ndarray | None = None,
        hospitals: dict[str, int] | None = None,
    ) -> None:
        t = np.asarray(times_s, dtype=float)
        if t.ndim != 2 or t.shape[0] != t.shape[1] or (t < 0).any():
            raise ValueError(f"times_s must be a square array of times >= 0, got shape {t.shape}")
        self.times_s = t
        self.xy = np.zeros((t.shape[0], 2)) if xy is None else np.asarray(xy, dtype=float)
        self.hospitals = dict(hospitals or {})
        self._parts: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def node_xy(self, node: int) -> tuple[float, float]:
        """Coordinates of zone *node*, m."""
        return float(self.xy[node, 0]), float(self.xy[node, 1])

    def etas(
        self, utype: str, nodes: np.ndarray, call: Call, *, moving: np.ndarray | None = None,
        exact: bool = True,
    ) -> np.ndarray:
        """Table times from *nodes* to the call's zone, s."""
        return self.times_s[nodes, call.node]

    def _leg(self, a: int, b: int, t0: float) -> Leg | None:
        dt = float(self.times_s[a, b])
        if not dt < math.inf:
            return None
        parts = self._parts.get((a, b))
        if parts is None:  # waypoint arrays are never written to, so they can be shared
            parts = (self.xy[[a, b], 0], self.xy[[a, b], 1], np.array([a, b]), np.array([-1, -1]))
            self._parts[(a, b)] = parts
        return Leg(np.array([t0, t0 + dt]), *parts)

    def leg_to_call(self, utype: str, node: int, call: Call, t0: float) -> Leg | None:
        """Straight to the call's zone."""
        return self._leg(node, call.node, t0)

    def leg_to_node(self, utype: str, node: int, target: int, t0: float) -> Leg | None:
        """Straight to *target*."""
        return self._leg(node, target, t0)

    def leg_to_hospital(self, utype: str, node: int, t0: float) -> tuple[Leg, str] | None:
        """To the hospital zone reached soonest."""
        best = min(self.hospitals.items(), key=lambda kv: self.times_s[node, kv[1]], default=None)
        if best is None:
            return None
        leg = self._leg(node, best[1], t0)
        return None if leg is None else (leg, best[0])

    def leg_to_shore(self, utype: str, call: Call, t0: float, toward: int) -> Leg:
        """Zones are land: stay."""
        x, y = self.node_xy(call.node)
        return Leg.stay(call.node, x, y, t0)

    def blocked(self, utype: str, leg: Leg, now: float, call: Call | None) -> bool:
        """A table never closes."""
        return False


# ---------------------------------------------------------------------------- road graph


class RoadGraph:
    """Passable directed road edges stored reversed (CSR), for Dijkstra from a destination.

    Parallel edges keep the fastest. Node ``n_nodes`` is a spare "super
    target" used to route to several launch points at once.

    Parameters
    ----------
    n_nodes
        Number of road nodes.
    u, v
        Tail and head node of each edge, shape (n_edges,).
    w
        Travel time of each edge, s (inf: impassable), shape (n_edges,).
    """

    def __init__(self, n_nodes: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> None:
        eid = np.arange(w.shape[0])
        ok = np.isfinite(w)
        u, v, w, eid = u[ok], v[ok], np.maximum(w[ok], _EPS_S), eid[ok]
        order = np.lexsort((w, u, v))
        u, v, w, eid = u[order], v[order], w[order], eid[order]
        first = np.ones(u.shape[0], dtype=bool)
        first[1:] = (v[1:] != v[:-1]) | (u[1:] != u[:-1])
        u, v, w, eid = u[first], v[first], w[first], eid[first]
        self.n = int(n_nodes)
        self.indptr = np.zeros(self.n + 2, dtype=np.int64)
        self.indptr[1:] = np.cumsum(np.bincount(v, minlength=self.n + 1))
        self.indices = u.astype(np.int64)
        self.data = w
        self.eid = eid
        self.matrix = csr_matrix((w, self.indices, self.indptr), shape=(self.n + 1, self.n + 1))
        self._keys = v.astype(np.int64) * (self.n + 1) + self.indices  # sorted
        self._fwd: csr_matrix | None = None

    def to(self, target: int, limit: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """Times from every node to *target*, s, and the next node on each way.

        Nodes farther than *limit* (s) get inf.
        """
        d, p = dijkstra(self.matrix, directed=True, indices=int(target), return_predecessors=True,
                        limit=limit)  # fmt: skip
        return d, p

    def frm(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """Times from *source* to every node, s, and the previous node on each way."""
        if self._fwd is None:
            self._fwd = self.matrix.T.tocsr()
        d, p = dijkstra(self._fwd, directed=True, indices=int(source), return_predecessors=True)
        return d, p

    def to_any(self, nodes: np.ndarray, extra_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times from every node to the best of *nodes* plus its *extra_s*, and next nodes.

        The next node of a chosen end node is ``n`` (the super target).
        """
        indices = np.concatenate([self.indices, nodes.astype(np.int64)])
        data = np.concatenate([self.data, np.maximum(extra_s, _EPS_S)])
        indptr = self.indptr.copy()
        indptr[-1] = indices.shape[0]
        m = csr_matrix((data, indices, indptr), shape=(self.n + 1, self.n + 1))
        d, p = dijkstra(m, directed=True, indices=self.n, return_predecessors=True)
        return d, p

    def edges(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fastest edges from nodes *a* to nodes *b* (pairwise): indices and times, s."""
        k = np.searchsorted(self._keys, b.astype(np.int64) * (self.n + 1) + a)
        return self.eid[k], self.data[k]

    def path(self, pred: np.ndarray, start: int, stop: int) -> list[int]:
        """Nodes from *start* following *pred* up to *stop* (the target or the super target)."""
        out = [int(start)]
        while out[-1] != stop:
            nxt = int(pred[out[-1]])
            if nxt < 0 or nxt == self.n:
                break
            out.append(nxt)
        return out


@dataclass
class _Graph:
    """A road graph of one mode, the road-state version it was built for, and its searches."""

    graph: RoadGraph
    w: np.ndarray
    version: int
    to: OrderedDict = field(default_factory=OrderedDict)
    frm: OrderedDict = field(default_factory=OrderedDict)
    boat: OrderedDict = field(default_factory=OrderedDict)


@dataclass
class _BoatRoutes:
    """Routes of one boat type to one call on the water, for one road and flood state."""

    dist: np.ndarray  # from every road node, s
    pred: np.ndarray  # next road node (n = launch here)
    launch_cell: np.ndarray  # wet-cell number to launch into, per node
    launch_s: np.ndarray  # launch time + carry to the cell, s, per node
    wet: WetGraph
    wpred: np.ndarray


# ---------------------------------------------------------------------------- world travel


class WorldTravel:
    """Travel on the World's roads and, for boats, over the flood.

    Parameters
    ----------
    world
        The World (roads and terrain).
    roads
        The shared road state.
    unit_types
        Travel mode of each unit type.
    depth
        Returns the flood depth grid (m) and its time (s), or None without a flood.
        Read, never advanced: boats see the water of the last coupling step.
    closure_depth_m
        Depth at which roads close; road units cannot serve calls in deeper water, m.
    lost_hospitals
        Returns the names of the hospitals out of function now (flooded); a
        patient is taken to the soonest reached of the others.
    cache_size
        Searches kept per road graph.
    """

    def __init__(
        self,
        world: World,
        roads: RoadState,
        unit_types: dict[str, UnitType],
        *,
        depth: Callable[[], tuple[np.ndarray, float] | None] = lambda: None,
        closure_depth_m: float = ROAD_CLOSURE_DEPTH_M,
        lost_hospitals: Callable[[], Collection[str]] = tuple,
        cache_size: int = 256,
    ) -> None:
        self.world = world
        self.lost_hospitals = lost_hospitals
        self.net = world.roads
        self.rs = roads
        self.types = dict(unit_types)
        self.depth = depth
        self.closure_depth_m = float(closure_depth_m)
        self.cache_size = int(cache_size)
        self._graphs: dict[str, _Graph] = {}
        self._wet: dict[tuple, tuple[WetGraph, tuple]] = {}
        self._base_s = self.net.length_m / self.net.speed_m_s
        t = world.terrain
        self._node_rows, self._node_cols = t.cell_of(self.net.node_x, self.net.node_y)
        hosp = world.places.hospitals
        self.hospitals = [(str(n), int(k)) for n, k in zip(hosp["name"], hosp["node"], strict=True)
                          if int(k) >= 0] if len(hosp) else []  # fmt: skip

    # -------------------------------------------------------------- modes and graphs

    def _key(self, utype: str) -> str:
        ut = self.types[utype]
        if ut.mode == "high_clearance":
            return f"hc:{ut.max_depth}:{ut.speed}"
        return "road"

    def _weights(self, key: str) -> np.ndarray:
        rs = self.rs
        if key == "road":
            return rs.travel_time_s()
        _, max_depth, speed = key.split(":")
        v0 = self.net.speed_m_s
        wade = np.minimum(float(speed), v0) if speed != "None" else WADE_FACTOR * v0
        v = np.maximum(v0 * rs.flood_factor, wade)
        w = self.net.length_m / v
        shut = rs.closed_by_plan | rs.closed_contraflow | (rs.flood_depth_m > float(max_depth))
        w[shut] = np.inf
        return w

    def _graph(self, key: str) -> _Graph:
        ent = self._graphs.get(key)
        if ent is not None and ent.version == self.rs.version:
            return ent
        w = self._weights(key)
        if ent is not None and np.array_equal(w, ent.w):
            ent.version = self.rs.version
            return ent
        g = RoadGraph(self.net.n_nodes, self.net.edge_u, self.net.edge_v, w)
        ent = _Graph(g, w, self.rs.version)
        self._graphs[key] = ent
        return ent

    def _to(self, key: str, target: int, limit: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """Reverse search from *target*, exact up to *limit* s (cached; a wider one is reused)."""
        ent = self._graph(key)
        hit = ent.to.get(target)
        if hit is None or hit[2] < limit:
            d, p = ent.graph.to(target, limit)
            hit = (d, p, limit)
            ent.to[target] = hit
            if len(ent.to) > self.cache_size:
                ent.to.popitem(last=False)
        else:
            ent.to.move_to_end(target)
        return hit[0], hit[1]

    def _to_reaching(self, key: str, target: int, node: int) -> tuple[np.ndarray, np.ndarray]:
        """A reverse search from *target* that is exact at *node* (a cached one if it is)."""
        ent = self._graph(key)
        hit = ent.to.get(target)
        if hit is not None and (np.isfinite(hit[0][node]) or hit[2] == math.inf):
            return hit[0], hit[1]
        return self._to(key, target)

    def _from(self, key: str, source: int) -> tuple[np.ndarray, np.ndarray]:
        """Forward search from *source* (cached)."""
        ent = self._graph(key)
        hit = ent.frm.get(source)
        if hit is None:
            hit = ent.graph.frm(source)
            ent.frm[source] = hit
            if len(ent.frm) > self.cache_size // 4:
                ent.frm.popitem(last=False)
        else:
            ent.frm.move_to_end(source)
        return hit

    def _cell_depth(self, cell: int) -> float:
        got = self.depth()
        if got is None or cell < 0:
            return 0.0
        h = got[0]
        return float(h.reshape(-1)[cell]) if cell < h.size else 0.0

    def _reaches_call(self, utype: str, call: Call) -> str:
        """How a unit of *utype* can reach *call*: ``road``, ``water`` or ``none``."""
        ut = self.types[utype]
        d = self._cell_depth(call.cell)
        if ut.mode == "road":
            return "road" if d < self.closure_depth_m else "none"
        if ut.mode == "high_clearance":
            return "road" if d <= ut.max_depth else "none"
        return "water" if d >= ut.min_depth else "road"

    # -------------------------------------------------------------- boats

    def _wet_graph(self, utype: str) -> tuple[tuple, WetGraph, tuple] | None:
        """The wet-cell graph for *utype* now, its cache key and its launch pairs."""
        got = self.depth()
        if got is None:
            return None
        h, t_flood = got
        ut = self.types[utype]
        key = (float(t_flood), ut.min_depth, ut.speed)
        hit = self._wet.get(key)
        if hit is None:
            ter = self.world.terrain
            g = wet_cell_graph(h, ter.mask, ter.dx, min_depth_m=ut.min_depth, speed_m_s=ut.speed)
            pairs = launch_pairs(g, self._node_rows, self._node_cols, self.net.node_x,
                                 self.net.node_y, (ter.transform.c, ter.transform.f))  # fmt: skip
            self._wet = {key: (g, pairs)}  # one flood state at a time
            hit = self._wet[key]
        return (key, *hit)

    def _boat(self, utype: str, call: Call) -> _BoatRoutes | None:
        wet = self._wet_graph(utype)
        if wet is None:
            return None
        wkey, g, (pn, pk, pd) = wet
        ent = self._graph("road")
        key = (wkey, call.cell, utype)
        hit = ent.boat.get(key)
        if hit is not None:
            return hit
        ut = self.types[utype]
        if not 0 <= call.cell < g.index.size or g.index.reshape(-1)[call.cell] < 0:
            return None
        wt, wpred = water_times_from(g, call.cell)
        cost = wt[pk] + pd / ut.speed
        order = np.lexsort((cost, pn))
        pn_s, pk_s, cost_s = pn[order], pk[order], cost[order]
        first = np.ones(pn_s.shape[0], dtype=bool)
        first[1:] = pn_s[1:] != pn_s[:-1]
        pn_s, pk_s, cost_s = pn_s[first], pk_s[first], cost_s[first]
        fin = np.isfinite(cost_s)
        n = self.net.n_nodes
        launch_cell = np.full(n, -1, dtype=np.int64)
        launch_s = np.full(n, np.inf)
        launch_cell[pn_s[fin]] = pk_s[fin]
        launch_s[pn_s[fin]] = cost_s[fin] - wt[pk_s[fin]] + ut.launch_time
        total = cost_s[fin] + ut.launch_time
        dist, pred = ent.graph.to_any(pn_s[fin], total)
        hit = _BoatRoutes(dist[:n], pred[:n], launch_cell, launch_s, g, wpred)
        ent.boat[key] = hit
        if len(ent.boat) > self.cache_size:
            ent.boat.popitem(last=False)
        return hit

    # -------------------------------------------------------------- the Travel protocol

    def node_xy(self, node: int) -> tuple[float, float]:
        """Coordinates of road node *node*, m (World CRS)."""
        return float(self.net.node_x[node]), float(self.net.node_y[node])

    def etas(
        self, utype: str, nodes: np.ndarray, call: Call, *, moving: np.ndarray | None = None,
        exact: bool = True,
    ) -> np.ndarray:
        """Current travel time from road *nodes* to *call* for a unit of *utype*, s.

        With ``exact=False``, units standing at a few nodes (stations) are timed
        from cached searches out of those nodes, and one search back from the
        call, cut at the best of those times, times the moving ones.
        """
        how = self._reaches_call(utype, call)
        if how == "none":
            return np.full(len(nodes), np.inf)
        if how == "water":
            b = self._boat(utype, call)
            return np.full(len(nodes), np.inf) if b is None else b.dist[nodes]
        key = self._key(utype)
        if exact:
            return self._to(key, call.node)[0][nodes]
        out = np.full(len(nodes), np.inf)
        still = np.ones(len(nodes), dtype=bool) if moving is None else ~moving
        uniq = np.unique(nodes[still])
        bound = math.inf
        if 0 < uniq.size <= self.cache_size // 8:
            for src in uniq.tolist():
                out[still & (nodes == src)] = self._from(key, src)[0][call.node]
            bound = float(out[still].min())
            rest = ~still
        else:
            rest = np.ones(len(nodes), dtype=bool)
        if rest.any():
            limit = bound * (1 + 1e-9) + 1e-6 if bound < math.inf else math.inf
            out[rest] = self._to(key, call.node, limit)[0][nodes[rest]]
        return out

    def _road_leg(self, key: str, path: list[int], t0: float) -> Leg:
        g = self._graph(key).graph
        nodes = np.asarray(path, dtype=np.int64)
        edge = np.full(nodes.size, -1, dtype=np.int64)
        t = np.full(nodes.size, float(t0))
        if nodes.size > 1:
            e, w = g.edges(nodes[:-1], nodes[1:])
            edge[1:] = e
            t[1:] += np.cumsum(w)
        return Leg(t, self.net.node_x[nodes], self.net.node_y[nodes], nodes, edge)

    def _path(self, key: str, node: int, target: int) -> list[int] | None:
        """Nodes of the fastest way from *node* to *target*, from a cached search if any."""
        ent = self._graph(key)
        fwd = ent.frm.get(node)
        if fwd is not None:
            if not math.isfinite(fwd[0][target]):
                return None
            back = [int(target)]
            while back[-1] != node:
                back.append(int(fwd[1][back[-1]]))
            return back[::-1]
        dist, pred = self._to_reaching(key, target, node)
        if not math.isfinite(dist[node]):
            return None
        return ent.graph.path(pred, node, target)

    def leg_to_node(self, utype: str, node: int, target: int, t0: float) -> Leg | None:
        """The fastest way by road from *node* to *target* (boats on their trailer)."""
        key = self._key(utype)
        path = self._path(key, node, target)
        return None if path is None else self._road_leg(key, path, t0)

    def leg_to_call(self, utype: str, node: int, call: Call, t0: float) -> Leg | None:
        """The fastest way to *call*: by road to its node, or by road and water to its cell."""
        how = self._reaches_call(utype, call)
        if how == "none":
            return None
        if how == "road":
            return self.leg_to_node(utype, node, call.node, t0)
        b = self._boat(utype, call)
        if b is None or not math.isfinite(b.dist[node]):
            return None
        g = self._graph("road").graph
        road = self._road_leg("road", g.path(b.pred, node, g.n), t0)
        m = road.end_node
        cells = water_path(b.wet, b.wpred, int(b.launch_cell[m]))
        ter = self.world.terrain
        ncols = ter.shape[1]
        xs, ys = ter.cell_centre(cells // ncols, cells % ncols)
        steps = np.hypot(np.diff(xs), np.diff(ys)) / self.types[utype].speed
        t_launch = road.end_s + b.launch_s[m]
        tw = t_launch + np.concatenate([[0.0], np.cumsum(steps)])
        k = cells.shape[0]
        water = Leg(np.concatenate([[road.end_s], tw]), np.concatenate([[road.x[-1]], xs]),
                    np.concatenate([[road.y[-1]], ys]),
                    np.concatenate([[m], np.full(k, -1)]), np.full(k + 1, -1))  # fmt: skip
        return road.then(water)

    def leg_to_hospital(self, utype: str, node: int, t0: float) -> tuple[Leg, str] | None:
        """The way to the working hospital reached soonest by road from *node*, and its name."""
        key = self._key(utype)
        best, best_t = None, math.inf
        lost = self.lost_hospitals()
        for name, h in self.hospitals:
            if name in lost:
                continue
            t = self._to(key, h)[0][node]
            if t < best_t:
                best, best_t = (name, h), t
        if best is None:
            return None
        leg = self.leg_to_node(utype, node, best[1], t0)
        return None if leg is None else (leg, best[0])

    def leg_to_shore(self, utype: str, call: Call, t0: float, toward: int) -> Leg:
        """From a call on the water to the landing that gets soonest to *toward* by road.

        Landings are launch points; one cut off from *toward* is used only when
        every landing is. If the water has gone, the boat is carried to the
        call's road node at its water speed.
        """
        ut = self.types[utype]
        ter = self.world.terrain
        wet = self._wet_graph(utype)
        x0, y0 = call.x, call.y
        if wet is not None and call.cell >= 0 and wet[1].index.reshape(-1)[call.cell] >= 0:
            _, g, (pn, pk, pd) = wet
            wt, wpred = water_times_from(g, call.cell)
            by_road = self._to("road", toward)[0][pn]
            cost = wt[pk] + pd / ut.speed
            reach = np.where(np.isfinite(by_road), cost + by_road, np.inf)
            pick = reach if np.isfinite(reach).any() else cost
            if pick.size and np.isfinite(pick).any():
                j = int(np.argmin(pick))
                m, k = int(pn[j]), int(pk[j])
                cells = water_path(g, wpred, k)[::-1]  # call cell ... launch cell
                ncols = ter.shape[1]
                xs, ys = ter.cell_centre(cells // ncols, cells % ncols)
                xs = np.concatenate([xs, [self.net.node_x[m]]])
                ys = np.concatenate([ys, [self.net.node_y[m]]])
                dt = np.hypot(np.diff(xs), np.diff(ys)) / ut.speed
                t = t0 + np.concatenate([[0.0], np.cumsum(dt)])
                t[-1] += ut.launch_time
                nodes = np.full(t.shape[0], -1, dtype=np.int64)
                nodes[-1] = m
                return Leg(t, xs, ys, nodes, np.full(t.shape[0], -1))
        xn, yn = self.node_xy(call.node)
        dt = math.hypot(xn - x0, yn - y0) / ut.speed
        return Leg(np.array([t0, t0 + dt]), np.array([x0, xn]), np.array([y0, yn]),
                   np.array([-1, call.node]), np.array([-1, -1]))  # fmt: skip

    def blocked(self, utype: str, leg: Leg, now: float, call: Call | None) -> bool:
        """True when a road edge ahead is now impassable, or the call's cell too deep."""
        if call is not None and self._reaches_call(utype, call) == "none":
            return True
        edges = leg.remaining_edges(now)
        if edges.size == 0:
            return False
        key = "road" if self.types[utype].mode == "water" else self._key(utype)
        return bool(np.isinf(self._graph(key).w[edges]).any())
