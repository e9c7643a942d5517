"""Pedestrians: shortest walking paths on the road graph, without road capacity.

Walkers use every road in both directions at ``walk_speed`` (m/s); closed
roads (water, plan closures) are not walked, but contraflow is ignored. Each
destination group (a set of nodes) has a shortest-path tree over walking
times towards its open nodes (one undirected multi-source Dijkstra). A walker
on a leg from node ``n0`` at time ``t0`` reaches node ``x`` of its path at
``t0 + dist[n0] - dist[x]``. When closures or open destinations change, the
trees are recomputed and every walker in transit finishes the road it is on
and continues from its next node on the new tree ("rerouted" when the path
changes); a walker with no path left is stranded where it stands.

Times are seconds since the start, lengths metres.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

__all__ = ["Walkers", "WalkEvent", "W_WAITING", "W_WALKING", "W_ARRIVED", "W_STRANDED"]

W_WAITING, W_WALKING, W_ARRIVED, W_STRANDED = 0, 1, 2, 3


class WalkEvent(NamedTuple):
    """One pedestrian event: ``kind`` in departed, arrived, turned_away, rerouted, stranded."""

    kind: str
    walker: int
    time_s: float
    node: int


class Walkers:
    """Pedestrian legs on an undirected walking graph.

    Parameters
    ----------
    edge_u, edge_v
        Directed road edges (array node ids), shape (n_edges,).
    length_m
        Edge lengths, m, shape (n_edges,).
    n_nodes
        Number of nodes.
    walk_speed_m_s
        Walking speed, m/s.
    """

    def __init__(self, edge_u: np.ndarray, edge_v: np.ndarray, length_m: np.ndarray,
                 n_nodes: int, walk_speed_m_s: float) -> None:  # fmt: skip
        u = np.asarray(edge_u, np.int64)
        v = np.asarray(edge_v, np.int64)
        a, b = np.minimum(u, v), np.maximum(u, v)
        key = a * n_nodes + b
        self._pair_keys, self._pair_of_edge = np.unique(key, return_inverse=True)
        self._pa = self._pair_keys // n_nodes
        self._pb = self._pair_keys % n_nodes
        t = np.asarray(length_m, float) / walk_speed_m_s
        self._pair_time = np.full(self._pair_keys.size, np.inf)
        np.minimum.at(self._pair_time, self._pair_of_edge, t)
        self._loop = self._pa == self._pb
        self.n_nodes = int(n_nodes)
        self._pair_open = np.ones(self._pair_keys.size, bool)
        self._sink_open = np.zeros(n_nodes, bool)
        self._groups: list[np.ndarray] = []
        self._fallback: list[int] = []
        self._trees: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._graph: sp.csr_matrix | None = None
        # walkers
        self.hh = np.zeros(0, np.int64)
        self.group = np.zeros(0, np.int64)
        self.depart = np.zeros(0)
        self.state = np.zeros(0, np.int8)
        self.leg_node = np.zeros(0, np.int64)
        self.leg_t = np.zeros(0)
        self.dest = np.zeros(0, np.int64)
        self.arr_t = np.zeros(0)
        self.sampled = np.zeros(0, bool)
        self._legs = np.zeros(0, np.int64)
        self.waypoints: list[tuple[int, float, int]] = []  # (walker, time s, node) if sampled
        self.n_rerouted = 0

    # ------------------------------------------------------------------ set-up
    def add_group(self, nodes: np.ndarray, fallback: int = -1) -> int:
        """A destination set (array node ids); returns its group id.

        A walker of the group left with no open destination switches once to
        the *fallback* group (e.g. from an assigned shelter to all of them).
        """
        self._groups.append(np.unique(np.asarray(nodes, np.int64)))
        self._fallback.append(int(fallback))
        return len(self._groups) - 1

    def add(self, hh: np.ndarray, node: np.ndarray, depart_s: np.ndarray, group: np.ndarray,
            sampled: np.ndarray) -> None:  # fmt: skip
        """Add walkers: household ids, home nodes, departure times (s), groups, trip flags."""
        n = len(hh)
        cat = np.concatenate
        self.hh = cat([self.hh, hh])
        self.group = cat([self.group, np.broadcast_to(group, (n,))])
        self.depart = cat([self.depart, depart_s])
        self.state = cat([self.state, np.zeros(n, np.int8)])
        self.leg_node = cat([self.leg_node, node])
        self.leg_t = cat([self.leg_t, depart_s])
        self.dest = cat([self.dest, np.full(n, -1, np.int64)])
        self.arr_t = cat([self.arr_t, np.full(n, np.inf)])
        self.sampled = cat([self.sampled, sampled])
        self._legs = cat([self._legs, np.zeros(n, np.int64)])

    def __len__(self) -> int:
        return int(self.hh.shape[0])

    # ------------------------------------------------------------------ trees
    def _build(self) -> None:
        ok = self._pair_open & ~self._loop & np.isfinite(self._pair_time)
        n = self.n_nodes
        self._graph = sp.csr_matrix(
            (self._pair_time[ok], (self._pa[ok], self._pb[ok])), shape=(n, n)
        )
        self._trees = {}

    def _tree(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dist s, predecessor towards the sink, sink) from every node, for group *g*."""
        if g not in self._trees:
            if self._graph is None:
                self._build()
            sinks = self._groups[g][self._sink_open[self._groups[g]]]
            if sinks.size == 0:
                n = self.n_nodes
                tree = (np.full(n, np.inf), np.full(n, -9999), np.full(n, -1))
            else:
                dist, pred, src = dijkstra(self._graph, directed=False, indices=sinks,
                                           min_only=True, return_predecessors=True)  # fmt: skip
                tree = (dist, pred, src)
            self._trees[g] = tree
        return self._trees[g]

    def reachable(self, g: int, nodes: np.ndarray) -> np.ndarray:
        """Whether a walker of group *g* at each of *nodes* has a path to an open sink now."""
        return np.isfinite(self._tree(int(g))[0][np.asarray(nodes, np.int64)])

    def _start_leg(self, w: int, node: int, t: float) -> None:
        dist, _, src = self._tree(int(self.group[w]))
        self._legs[w] += 1
        self.leg_node[w] = node
        self.leg_t[w] = t
        if np.isfinite(dist[node]):
            self.dest[w] = src[node]
            self.arr_t[w] = t + dist[node]
        else:
            self.dest[w] = -1  # no path: stranded when it gets here
            self.arr_t[w] = t

    def _path(self, w: int) -> list[tuple[int, float]]:
        """Nodes of walker *w*'s current leg with the times it reaches them."""
        dist, pred, _ = self._tree(int(self.group[w]))
        n0, t0 = int(self.leg_node[w]), float(self.leg_t[w])
        out = [(n0, t0)]
        if self.dest[w] < 0:
            return out
        x = n0
        while x != self.dest[w]:
            x = int(pred[x])
            out.append((x, t0 + dist[n0] - dist[x]))
        return out

    def set_network(self, edge_open: np.ndarray, sink_open: np.ndarray, t: float,
                    out: list[WalkEvent]) -> None:  # fmt: skip
        """Take new closures and open destinations at time *t* (s).

        *edge_open* (n_edges,) says which directed edges are open (a road is
        walkable while either direction is); *sink_open* (n_nodes,) which
        destination nodes take walkers. If anything changed, walkers in transit
        continue from the next node of their path on the new trees.
        """
        pair_open = np.zeros(self._pair_keys.size, bool)
        np.logical_or.at(pair_open, self._pair_of_edge, np.asarray(edge_open, bool))
        sink_open = np.asarray(sink_open, bool)
        if np.array_equal(pair_open, self._pair_open) and np.array_equal(
            sink_open, self._sink_open
        ):
            return
        walking = np.flatnonzero(self.state == W_WALKING)
        x, tx, after = self._position(walking, t)
        for w in walking[self.sampled[walking]]:
            self.waypoints.extend((int(w), ty, y) for y, ty in self._path(int(w)) if ty < t)
        old_dest = self.dest[walking].copy()
        self._pair_open = pair_open
        self._sink_open = sink_open.copy()
        self._graph = None
        self._trees = {}
        for g in np.unique(self.group[walking]):
            m = self.group[walking] == g
            ws, xs, ts = walking[m], x[m], tx[m]
            dist, pred, src = self._tree(int(g))
            ok = np.isfinite(dist[xs])
            self._legs[ws] += 1
            self.leg_node[ws] = xs
            self.leg_t[ws] = ts
            self.dest[ws] = np.where(ok, src[xs], -1)
            self.arr_t[ws] = np.where(ok, ts + np.where(ok, dist[xs], 0.0), ts)
            nxt = np.where(ok & (xs != src[xs]), pred[xs], -1)
            changed = ok & ((self.dest[ws] != old_dest[m]) | (nxt != after[m]))
            for w, xi, ti in zip(ws[changed], xs[changed], ts[changed], strict=True):
                self.n_rerouted += 1
                out.append(WalkEvent("rerouted", int(w), max(float(ti), t), int(xi)))

    def _position(self, ws: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where walkers *ws* are at time *t* (s) on their current legs.

        Returns the node each reaches next (or is at), the time it gets there
        (>= t unless the leg started earlier and has no route), and the node
        after it on the current path (-1 at the leg's end).
        """
        x = self.leg_node[ws].copy()
        tx = self.leg_t[ws].copy()
        after = np.full(ws.size, -1, np.int64)
        for g in np.unique(self.group[ws]):
            m = np.flatnonzero(self.group[ws] == g)
            dist, pred, _ = self._tree(int(g))
            routed = m[(self.dest[ws[m]] >= 0) & (tx[m] < t)]
            d0 = dist[x[routed]]
            budget = d0 - (t - tx[routed]) + 1e-9  # distance to the sink still ahead at t
            cur = x[routed].copy()
            dest = self.dest[ws[routed]]
            while True:
                move = (dist[cur] > budget) & (cur != dest)
                if not move.any():
                    break
                cur[move] = pred[cur[move]]
            tx[routed] = tx[routed] + d0 - dist[cur]
            x[routed] = cur
            mm = m[self.dest[ws[m]] >= 0]
            at_end = x[mm] == self.dest[ws[mm]]
            after[mm] = np.where(at_end, -1, pred[x[mm]])
        return x, tx, after

    def _next_node(self, w: int) -> int:
        if self.dest[w] < 0 or self.leg_node[w] == self.dest[w]:
            return -1
        return int(self._tree(int(self.group[w]))[1][self.leg_node[w]])

    # ------------------------------------------------------------------ stepping
    def advance(self, t_end: float, admit: Callable[[int, int, float], bool]) -> list[WalkEvent]:
        """Play departures and arrivals up to *t_end* (s), in time order.

        ``admit(walker, node, time)`` decides an arrival at a destination node:
        True takes the walker in; False turns it away, closes that node to
        walkers and sends the walker on to the next open destination.
        """
        out: list[WalkEvent] = []
        heap: list[tuple[float, int, int]] = []  # (time, walker, leg count)
        legs = self._legs

        def push(ws: np.ndarray) -> None:
            for w in ws:
                t = self.depart[w] if self.state[w] == W_WAITING else self.arr_t[w]
                heapq.heappush(heap, (float(t), int(w), int(legs[w])))

        push(np.flatnonzero((self.state == W_WAITING) & (self.depart <= t_end)))
        push(np.flatnonzero((self.state == W_WALKING) & (self.arr_t <= t_end)))
        while heap:
            t, w, leg = heapq.heappop(heap)
            if leg != legs[w] or self.state[w] >= W_ARRIVED:
                continue  # stale: the walker was re-routed or is done
            if self.state[w] == W_WAITING:
                node = int(self.leg_node[w])
                self.state[w] = W_WALKING
                out.append(WalkEvent("departed", w, t, node))
                self._start_leg(w, node, t)
                if self.arr_t[w] <= t_end:
                    push(np.array([w]))
                continue
            self._finish_leg_waypoints(w)
            fallback = self._fallback[int(self.group[w])]
            if self.dest[w] < 0 and fallback >= 0:
                self.group[w] = fallback  # e.g. its assigned shelter is full: try the others
                node = int(self.leg_node[w])
                out.append(WalkEvent("rerouted", w, t, node))
                self._start_leg(w, node, t)
                if self.arr_t[w] <= t_end:
                    push(np.array([w]))
                continue
            if self.dest[w] < 0:
                self.state[w] = W_STRANDED
                out.append(WalkEvent("stranded", w, t, int(self.leg_node[w])))
                continue
            node = int(self.dest[w])
            if admit(w, node, t):
                self.state[w] = W_ARRIVED
                out.append(WalkEvent("arrived", w, t, node))
                continue
            out.append(WalkEvent("turned_away", w, t, node))
            sink = self._sink_open.copy()
            sink[node] = False
            self.leg_node[w] = node
            self.leg_t[w] = t
            self.dest[w] = node  # standing at its (now closed) destination
            self.set_network(self._pair_open[self._pair_of_edge], sink, t, out)
            if self.dest[w] == node:  # nothing else changed: start afresh without it
                self._start_leg(w, node, t)
            push(np.flatnonzero((self.state == W_WALKING) & (self.arr_t <= t_end)))
        return out

    def _finish_leg_waypoints(self, w: int) -> None:
        if self.sampled[w]:
            self.waypoints.extend((w, tx, x) for x, tx in self._path(w))
