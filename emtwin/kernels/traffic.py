"""Evacuation traffic: a MATSim-style queue model on plain arrays.

Every vehicle is simulated individually on a directed road graph. Each link
is a FIFO queue with a free travel time ``L / (v * f)`` (s), a flow capacity
``C`` (veh/h) enforced as a headway ``3600 / C`` between exits, and a storage
``max(1, L * lanes / 7.5 m)`` vehicles; a vehicle enters its next link only
while that link has room (spillback), or when it has been stuck at the head
longer than ``stuck_time_s`` (MATSim QueueWithBuffer / QNodeImpl; Gawron 1998;
references.md section 4). Vehicles pick their next link at each node from
shortest-path trees towards their destination set (one reverse Dijkstra per
destination group, re-planned every ``reroute_every_s`` on current travel
times, and at once when links close or shelters fill up).

The stepping happens in Numba (:mod:`emtwin.kernels._traffic_numba`); this
module holds the state, checks input, and does the routing with
:func:`scipy.sparse.csgraph.dijkstra`. Nothing here knows about SimPy: a
caller drives it with :meth:`QueueNetwork.advance`.

Units: metres, seconds, m/s, veh/h. Simulated time is seconds since the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from emtwin.errors import KernelError
from emtwin.kernels import _traffic_numba as _nb

__all__ = [
    "ARRIVED",
    "DEPARTED",
    "ENTERED",
    "EVENT_NAMES",
    "REROUTED",
    "STRANDED",
    "TURNED_AWAY",
    "VEHICLE_STATES",
    "Events",
    "QueueNetwork",
]

DEPARTED = _nb.EV_DEPARTED
ARRIVED = _nb.EV_ARRIVED
REROUTED = _nb.EV_REROUTED
STRANDED = _nb.EV_STRANDED
TURNED_AWAY = _nb.EV_TURNED_AWAY
ENTERED = _nb.EV_ENTERED
EVENT_NAMES = ("departed", "arrived", "rerouted", "stranded", "turned_away", "entered")
VEHICLE_STATES = ("waiting", "on_road", "arrived", "stranded")

VEHICLE_LENGTH_M = 7.5  # storage per vehicle and lane, m (MATSim default)


class Events(NamedTuple):
    """Vehicle events, in the order they happened within each step.

    Attributes
    ----------
    vehicle
        Vehicle id, shape (n_events,), int32.
    time_s
        Event time, s, shape (n_events,), float64.
    kind
        Event kind, shape (n_events,), int8: ``DEPARTED`` (0), ``ARRIVED`` (1),
        ``REROUTED`` (2), ``STRANDED`` (3), ``TURNED_AWAY`` (4), ``ENTERED`` (5);
        names in :data:`EVENT_NAMES`.
    where
        Shape (n_events,), int32: the node for departed (origin), arrived,
        stranded and turned-away events; the link taken for rerouted and
        entered events.
    """

    vehicle: np.ndarray
    time_s: np.ndarray
    kind: np.ndarray
    where: np.ndarray


def _as_1d(name: str, a: object, n: int | None, dtype: type) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, arr, dtype=dtype)
    if arr.ndim != 1:
        raise KernelError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise KernelError(f"{name}: expected shape ({n},), got {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise KernelError(f"{name}: values must be finite")
    return arr


class QueueNetwork:
    """Queue-model traffic on a directed road graph (explicit state, no SimPy).

    Parameters
    ----------
    edge_u, edge_v
        Upstream and downstream node of each link, shape (n_edges,), ids in
        ``[0, n_nodes)``.
    length_m
        Link length, m, shape (n_edges,), > 0.
    speed_m_s
        Free speed, m/s, shape (n_edges,), > 0.
    lanes
        Number of lanes, shape (n_edges,), > 0 (may be fractional).
    capacity_veh_h
        Flow capacity, veh/h, shape (n_edges,), > 0.
    n_nodes
        Number of nodes.
    dt_s
        Time step, s. Exit times are continuous; only waits caused by full
        links are rounded to the step.
    stuck_time_s
        A head vehicle blocked by a full next link for this long is moved on
        anyway (MATSim ``stuckTime``), s; ``inf`` disables it.
    reroute_every_s
        Interval between re-plans of the routing trees on current travel
        times, s; ``inf`` plans only on closures, capacity and shelter changes.
    congestion_weight
        Weight of the queue term in routing costs: a link costs
        ``L / (v f) + congestion_weight * delay`` s, where ``delay`` is the
        time the link needs to discharge its queue (vehicles on it past their
        free-flow exit time, times ``3600 / C``), smoothed over re-plans.
    delay_smoothing
        Weight in (0, 1] of the newest queue observation in ``delay`` at each
        periodic re-plan (an exponential moving average; 1 = no smoothing).
        Smoothing damps the all-or-nothing route swings of tree routing.
    record_link_entries
        Also report an ``ENTERED`` event for every link entry (large).
    seed
        Seed of the order in which queues are served within a step.
    sleep_blocked
        Let a queue that cannot act sleep until it can, rather than visit it
        every step: a head before its free-flow exit time or held by the
        link's flow capacity sleeps until that time, a head held by a full
        next link until that link frees space or the head's stuck time comes.
        The results are bit-identical either way (same events, arrays and
        queue counts); ``False`` visits every active queue every step, the
        reference of ``benchmarks/evacuation.py --sleep-check``.
        :attr:`n_queue_visits` counts the work.
    """

    def __init__(
        self,
        edge_u: np.ndarray,
        edge_v: np.ndarray,
        length_m: np.ndarray,
        speed_m_s: np.ndarray,
        lanes: np.ndarray,
        capacity_veh_h: np.ndarray,
        n_nodes: int,
        *,
        dt_s: float = 1.0,
        stuck_time_s: float = 300.0,
        reroute_every_s: float = 300.0,
        congestion_weight: float = 1.0,
        delay_smoothing: float = 0.5,
        record_link_entries: bool = False,
        seed: int = 0,
        sleep_blocked: bool = True,
    ) -> None:
        n_nodes = int(n_nodes)
        if n_nodes <= 0:
            raise KernelError(f"n_nodes: expected a positive count, got {n_nodes}")
        self.edge_u = _as_1d("edge_u", edge_u, None, np.int64).astype(np.int32)
        ne = self.edge_u.shape[0]
        self.edge_v = _as_1d("edge_v", edge_v, ne, np.int64).astype(np.int32)
        for name, a in (("edge_u", self.edge_u), ("edge_v", self.edge_v)):
            if ne and (a.min() < 0 or a.max() >= n_nodes):
                raise KernelError(f"{name}: node ids must lie in [0, {n_nodes}), got "
                                  f"[{a.min()}, {a.max()}]")  # fmt: skip
        self.length_m = _as_1d("length_m", length_m, ne, np.float64).copy()
        self.speed_m_s = _as_1d("speed_m_s", speed_m_s, ne, np.float64).copy()
        self.lanes = _as_1d("lanes", lanes, ne, np.float64).copy()
        self.capacity_veh_h = _as_1d("capacity_veh_h", capacity_veh_h, ne, np.float64).copy()
        for name in ("length_m", "speed_m_s", "lanes", "capacity_veh_h"):
            a = getattr(self, name)
            if np.any(a <= 0):
                i = int(np.flatnonzero(a <= 0)[0])
                raise KernelError(f"{name}: must be > 0 on every link, link {i} has {a[i]}")
        if not dt_s > 0 or not np.isfinite(dt_s):
            raise KernelError(f"dt_s: expected a positive time step in s, got {dt_s}")
        if not stuck_time_s > 0:
            raise KernelError(f"stuck_time_s: expected > 0 s (inf disables), got {stuck_time_s}")
        if not reroute_every_s > 0:
            raise KernelError(f"reroute_every_s: expected > 0 s, got {reroute_every_s}")
        if not congestion_weight >= 0:
            raise KernelError(f"congestion_weight: expected >= 0, got {congestion_weight}")
        if not 0 < delay_smoothing <= 1:
            raise KernelError(f"delay_smoothing: expected a value in (0, 1], got {delay_smoothing}")
        self.n_nodes = n_nodes
        self.n_edges = ne
        self.dt_s = float(dt_s)
        self.stuck_time_s = float(stuck_time_s)
        self.reroute_every_s = float(reroute_every_s)
        self.congestion_weight = float(congestion_weight)
        self.delay_smoothing = float(delay_smoothing)
        self.record_link_entries = bool(record_link_entries)

        self.closed = np.zeros(ne, dtype=np.bool_)
        self.speed_factor = np.ones(ne)
        self._headway = 3600.0 / self.capacity_veh_h
        self._storage = np.maximum(1.0, self.length_m * self.lanes / VEHICLE_LENGTH_M)
        # link state
        self._lhead = np.full(ne, -1, np.int32)
        self._ltail = np.full(ne, -1, np.int32)
        self._occ = np.zeros(ne, np.int32)
        self._freed = np.zeros(ne, np.int32)
        self._next_exit = np.full(ne, -np.inf)
        self._q_last = np.full(ne, -1, np.int32)
        self._q_count = np.zeros(ne, np.int32)
        self._passed = np.zeros(ne, np.int64)
        self._entered = np.zeros(ne, np.int64)
        self._peak_queue = np.zeros(ne, np.int32)
        self._delay_s = np.zeros(ne)  # smoothed queue discharge time, s
        # node state
        self._node_cap = np.full(n_nodes, np.inf)
        self._node_load = np.zeros(n_nodes)
        self._node_full = np.zeros(n_nodes, np.bool_)
        self._shead = np.full(n_nodes, -1, np.int32)
        self._stail = np.full(n_nodes, -1, np.int32)
        self._scount = np.zeros(n_nodes, np.int32)
        # destination groups and their next-hop trees, shape (n_groups, n_nodes)
        self._groups: list[np.ndarray] = []
        self._group_index: dict[tuple[int, ...], int] = {}
        self._nexthop = np.full((0, n_nodes), _nb.NO_ROUTE, np.int32)
        self._stale = np.zeros(0, np.bool_)
        # vehicles
        self._nv = 0
        self._grp = np.zeros(0, np.int32)
        self._origin = np.zeros(0, np.int32)
        self._depart = np.zeros(0)
        self._weight = np.zeros(0)
        self._ready = np.zeros(0)
        self._nxt = np.zeros(0, np.int32)
        self._plan = np.zeros(0, np.int32)
        self._vlink = np.zeros(0, np.int32)
        self._state = np.zeros(0, np.int8)
        self._arrival = np.zeros(0)
        self._dest = np.zeros(0, np.int32)
        self._held = np.zeros(0, np.bool_)
        self._moved_k = np.zeros(0, np.int64)
        self._pend = np.zeros(0, np.int32)
        # scheduler
        self._active = np.zeros(ne + n_nodes, np.int32)
        self._in_active = np.zeros(ne + n_nodes, np.bool_)
        self._touched = np.zeros(max(ne, 1), np.int32)
        self._counters = np.zeros(4, np.int64)
        self.sleep_blocked = bool(sleep_blocked)
        nq = ne + n_nodes
        self._wake_k = np.zeros(nq, np.int64)  # step a sleeping queue wakes at
        self._skip_k = np.full(nq, -1, np.int64)  # last step its visit was skipped
        self._wait_on = np.full(nq, -1, np.int32)  # the full link it waits on
        self._wait_prev = np.full(nq, -1, np.int32)
        self._wait_next = np.full(nq, -1, np.int32)
        self._wait_head = np.full(max(ne, 1), -1, np.int32)  # first queue waiting on a link
        mixed = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64
        self._rng = np.array([mixed | 1], dtype=np.uint64)  # xorshift state, never 0
        self._k = 0  # next step to run
        self._time_s = 0.0
        self._next_replan_s = self.reroute_every_s
        self._dirty = True
        self.n_replans = 0

    # ------------------------------------------------------------------ inputs
    def _check_nodes(self, name: str, nodes: np.ndarray) -> None:
        if nodes.size and (nodes.min() < 0 or nodes.max() >= self.n_nodes):
            bad = nodes[(nodes < 0) | (nodes >= self.n_nodes)][0]
            raise KernelError(f"{name}: unknown node id {bad} (n_nodes={self.n_nodes})")

    def add_destination_group(self, nodes: Sequence[int] | np.ndarray) -> int:
        """Register a set of acceptable destination nodes; return its group id.

        A vehicle of the group goes to whichever open node of the set is
        nearest by current travel time. Equal sets share one id.
        """
        arr = np.unique(_as_1d("nodes", nodes, None, np.int64))
        if arr.size == 0:
            raise KernelError("nodes: a destination group needs at least one node")
        self._check_nodes("nodes", arr)
        key = tuple(int(x) for x in arr)
        if key in self._group_index:
            return self._group_index[key]
        g = len(self._groups)
        self._groups.append(arr.astype(np.int32))
        self._group_index[key] = g
        row = np.full((1, self.n_nodes), _nb.NO_ROUTE, np.int32)
        self._nexthop = np.concatenate([self._nexthop, row])
        self._stale = np.concatenate([self._stale, [True]])
        return g

    def add_vehicles(
        self,
        origin_node: int | np.ndarray,
        depart_time_s: float | np.ndarray,
        *,
        dest_node: int | np.ndarray | None = None,
        dest_set: Sequence[int] | np.ndarray | None = None,
        group: int | np.ndarray | None = None,
        weight: float | np.ndarray = 1.0,
    ) -> np.ndarray:
        """Add vehicles; return their ids, shape (n,).

        Parameters
        ----------
        origin_node
            Start node per vehicle, shape (n,) or a scalar.
        depart_time_s
            Departure time, s, shape (n,) or a scalar, >= 0. A time already
            past departs at the next step.
        dest_node
            One destination node per vehicle (shape (n,) or scalar).
        dest_set
            A set of acceptable destination nodes shared by all these vehicles
            (each goes to the nearest open one).
        group
            Destination group id(s) from :meth:`add_destination_group`.
        weight
            Load each vehicle puts on a capped destination (e.g. persons per
            vehicle), shape (n,) or a scalar, > 0.

        Exactly one of ``dest_node``, ``dest_set`` and ``group`` is given.
        """
        if sum(x is not None for x in (dest_node, dest_set, group)) != 1:
            raise KernelError("add_vehicles: give exactly one of dest_node, dest_set, group")
        per_vehicle = (origin_node, depart_time_s, dest_node, group, weight)
        n = max(np.atleast_1d(np.asarray(a)).shape[0] for a in per_vehicle if a is not None)
        o = _as_1d("origin_node", origin_node, n, np.int64)
        d = _as_1d("depart_time_s", depart_time_s, n, np.float64)
        w = _as_1d("weight", weight, n, np.float64)
        self._check_nodes("origin_node", o)
        if np.any(d < 0):
            raise KernelError("depart_time_s: must be >= 0 s")
        if np.any(w <= 0):
            raise KernelError("weight: must be > 0")
        if dest_set is not None:
            g = np.full(n, self.add_destination_group(dest_set), np.int32)
        elif dest_node is not None:
            dn = _as_1d("dest_node", dest_node, n, np.int64)
            self._check_nodes("dest_node", dn)
            uniq, inv = np.unique(dn, return_inverse=True)
            gid = np.array([self.add_destination_group([x]) for x in uniq], np.int32)
            g = gid[inv] if n else np.zeros(0, np.int32)
        else:
            g = _as_1d("group", group, n, np.int64).astype(np.int32)
            if n and (g.min() < 0 or g.max() >= len(self._groups)):
                raise KernelError(f"group: unknown group id (have {len(self._groups)} groups)")
        ids = np.arange(self._nv, self._nv + n, dtype=np.int32)
        self._nv += n
        cat = np.concatenate
        self._grp = cat([self._grp, g.astype(np.int32)])
        self._origin = cat([self._origin, o.astype(np.int32)])
        self._depart = cat([self._depart, np.maximum(d, self._time_s)])
        self._weight = cat([self._weight, w])
        self._ready = cat([self._ready, np.full(n, np.inf)])
        self._nxt = cat([self._nxt, np.full(n, -1, np.int32)])
        self._plan = cat([self._plan, np.full(n, _nb.NO_PLAN, np.int32)])
        self._vlink = cat([self._vlink, np.full(n, -1, np.int32)])
        self._state = cat([self._state, np.zeros(n, np.int8)])
        self._arrival = cat([self._arrival, np.full(n, np.nan)])
        self._dest = cat([self._dest, np.full(n, -1, np.int32)])
        self._held = cat([self._held, np.zeros(n, np.bool_)])
        self._moved_k = cat([self._moved_k, np.full(n, -1, np.int64)])
        # departures still to come, sorted by (time, id)
        rest = cat([self._pend[self._counters[_nb.C_PEND_PTR] :], ids])
        self._pend = rest[np.lexsort((rest, self._depart[rest]))].astype(np.int32)
        self._counters[_nb.C_PEND_PTR] = 0
        if n and np.any(self._stale[np.unique(g)]):
            self._dirty = True
        return ids

    def set_closed(self, closed: np.ndarray) -> None:
        """Close links (no entry) where ``closed`` is True, shape (n_edges,).

        Vehicles already on a closed link drain out; vehicles whose next link
        is closed re-route at once; with no route left they are stranded.
        """
        c = np.asarray(closed, dtype=np.bool_)
        if c.shape != (self.n_edges,):
            raise KernelError(f"closed: expected shape ({self.n_edges},), got {c.shape}")
        self.closed[:] = c
        self._dirty = True

    def set_speed_factor(self, factors: np.ndarray) -> None:
        """Set speed factors in [0, 1] per link, shape (n_edges,).

        The free travel time becomes ``L / (v * f)`` for vehicles entering from
        now on; ``f = 0`` makes the link impassable (treated as closed).
        """
        f = np.asarray(factors, dtype=np.float64)
        if f.shape != (self.n_edges,):
            raise KernelError(f"factors: expected shape ({self.n_edges},), got {f.shape}")
        if not np.all((f >= 0) & (f <= 1)):
            raise KernelError("factors: speed factors must lie in [0, 1]")
        self.speed_factor[:] = f
        self._dirty = True

    def set_capacity(
        self,
        edge_ids: int | np.ndarray,
        capacity_veh_h: float | np.ndarray,
        lanes: float | np.ndarray | None = None,
    ) -> None:
        """Change flow capacity (veh/h) and optionally lanes of some links now.

        Storage follows the new lane count. Used for contraflow (see
        :meth:`contraflow`).
        """
        ids = np.atleast_1d(np.asarray(edge_ids, dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_edges):
            raise KernelError(f"edge_ids: link ids must lie in [0, {self.n_edges})")
        cap = _as_1d("capacity_veh_h", capacity_veh_h, ids.shape[0], np.float64)
        if np.any(cap <= 0):
            raise KernelError("capacity_veh_h: must be > 0 veh/h")
        self.capacity_veh_h[ids] = cap
        self._headway[ids] = 3600.0 / cap
        if lanes is not None:
            ln = _as_1d("lanes", lanes, ids.shape[0], np.float64)
            if np.any(ln <= 0):
                raise KernelError("lanes: must be > 0")
            self.lanes[ids] = ln
            self._storage[ids] = np.maximum(1.0, self.length_m[ids] * ln / VEHICLE_LENGTH_M)
        self._dirty = True

    def contraflow(self, edge_id: int, opposite_id: int) -> None:
        """Reverse the lanes of ``opposite_id`` into ``edge_id`` and close ``opposite_id``.

        The outbound link gets the sum of both links' lanes and capacities.
        """
        for name, e in (("edge_id", edge_id), ("opposite_id", opposite_id)):
            if not 0 <= int(e) < self.n_edges:
                raise KernelError(f"{name}: unknown link id {e}")
        self.set_capacity(
            edge_id,
            self.capacity_veh_h[edge_id] + self.capacity_veh_h[opposite_id],
            self.lanes[edge_id] + self.lanes[opposite_id],
        )
        c = self.closed.copy()
        c[opposite_id] = True
        self.set_closed(c)

    def set_node_capacity(self, nodes: int | np.ndarray, capacity: float | np.ndarray) -> None:
        """Cap the total load (sum of vehicle weights) a destination node admits.

        Arrivals that would exceed it are turned away (a ``TURNED_AWAY`` event)
        and re-routed to the remaining nodes of their set; once a node refuses
        a vehicle or is full it closes as a destination. ``inf`` removes the cap.
        """
        nd = np.atleast_1d(np.asarray(nodes, dtype=np.int64))
        self._check_nodes("nodes", nd)
        try:
            cap = np.broadcast_to(np.asarray(capacity, np.float64), nd.shape).copy()
        except ValueError as err:
            raise KernelError(f"capacity: expected a scalar or shape {nd.shape}") from err
        if not np.all(cap >= 0):
            raise KernelError("capacity: must be >= 0 (inf for no cap)")
        self._node_cap[nd] = cap
        self._node_full[nd] = self._node_load[nd] >= cap - 1e-9
        self._dirty = True

    def strand_on_links(self, links: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stall every vehicle now on the given links (e.g. water over the road).

        The vehicles leave their queues and become ``stranded`` (a final
        state) at the current time; no event is emitted (the caller records
        them). Links keep their capacity state and are not closed here.

        Parameters
        ----------
        links
            Link ids, shape (k,), or a boolean mask of shape (n_edges,).

        Returns
        -------
        tuple of numpy.ndarray
            ``(vehicle ids, link ids, free-flow exit times (s))``, one entry
            per stalled vehicle, in queue order per link.
        """
        arr = np.asarray(links)
        if arr.dtype == np.bool_:
            if arr.shape != (self.n_edges,):
                raise KernelError(f"links: expected shape ({self.n_edges},), got {arr.shape}")
            arr = np.flatnonzero(arr)
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_edges):
            raise KernelError(f"links: link ids must lie in [0, {self.n_edges})")
        vs: list[int] = []
        ls: list[int] = []
        for e in np.unique(arr[self._occ[arr] > 0]):
            v = int(self._lhead[e])
            while v != -1:
                vs.append(v)
                ls.append(int(e))
                v, self._nxt[v] = int(self._nxt[v]), -1
            self._lhead[e] = self._ltail[e] = -1
            self._occ[e] = 0
            self._q_count[e] = 0
            self._q_last[e] = -1
        ids = np.array(vs, dtype=np.int32)
        self._state[ids] = _nb.ST_STRANDED
        self._vlink[ids] = -1
        self._held[ids] = False
        return ids, np.array(ls, dtype=np.int32), self._ready[ids].copy()

    # ----------------------------------------------------------------- routing
    def link_cost_s(self) -> np.ndarray:
        """Current routing cost per link, s, shape (n_edges,) (inf where closed).

        ``L / (v f) + congestion_weight * delay``: free travel time plus the
        (smoothed) time the link needs to discharge its queue.
        """
        with np.errstate(divide="ignore"):
            tt = self.length_m / (self.speed_m_s * self.speed_factor)
        cost = tt + self.congestion_weight * self._delay_s
        cost[self.closed | (self.speed_factor <= 0)] = np.inf
        return cost

    def _reverse_graph(self, cost: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Reversed graph of usable links, the cheapest of parallel links only.

        Returns the (n_nodes, n_nodes) CSR matrix (row = downstream node), the
        kept link ids and their sorted keys ``u * n_nodes + v``.
        """
        n = self.n_nodes
        idx = np.flatnonzero(np.isfinite(cost) & (self.edge_u != self.edge_v))
        u, v = self.edge_u[idx].astype(np.int64), self.edge_v[idx].astype(np.int64)
        order = np.lexsort((cost[idx], v, u))
        key = u[order] * n + v[order]
        first = np.ones(key.shape[0], np.bool_)
        first[1:] = key[1:] != key[:-1]
        best = idx[order][first]
        rev = sp.csr_matrix((cost[best], (self.edge_v[best], self.edge_u[best])), shape=(n, n))
        return rev, best, key[first]

    def _open_sinks(self, group: int) -> np.ndarray:
        nodes = self._groups[group]
        return nodes[~self._node_full[nodes]]

    def replan(self) -> None:
        """Recompute the next-hop tree of every group with vehicles still travelling.

        One multi-source Dijkstra per group on the reversed graph (sources: the
        group's open destinations) with :meth:`link_cost_s` as weights, so each
        vehicle looks up its next link at each node (``nexthop[group, node]``).
        """
        n = self.n_nodes
        rev, best, keys = self._reverse_graph(self.link_cost_s())
        busy = self._state[: self._nv] < _nb.ST_ARRIVED
        need = np.bincount(self._grp[busy], minlength=len(self._groups)) > 0
        for g in range(len(self._groups)):
            if not need[g]:
                self._stale[g] = True
                continue
            row = self._nexthop[g]
            row[:] = _nb.NO_ROUTE
            self._stale[g] = False
            sinks = self._open_sinks(g)
            if sinks.size == 0:
                continue
            _, pred, _ = dijkstra(rev, indices=sinks, min_only=True, return_predecessors=True)
            has = np.flatnonzero(pred >= 0)
            row[has] = best[np.searchsorted(keys, has * n + pred[has])]
            row[sinks] = _nb.SINK
        self._dirty = False
        self.n_replans += 1

    def travel_time_to(self, group: int) -> np.ndarray:
        """Routing cost from every node to the nearest open node of ``group``, s.

        Shape (n_nodes,); inf where unreachable.
        """
        if not 0 <= group < len(self._groups):
            raise KernelError(f"group: unknown group id {group}")
        sinks = self._open_sinks(group)
        if sinks.size == 0:
            return np.full(self.n_nodes, np.inf)
        rev, _, _ = self._reverse_graph(self.link_cost_s())
        return dijkstra(rev, indices=sinks, min_only=True)

    # ---------------------------------------------------------------- stepping
    def _run(self, k_stop: int, ev: tuple[np.ndarray, ...], reserve: int) -> int:
        k, status = _nb.run_steps(
            self._k, k_stop, self.dt_s, self.stuck_time_s, self.record_link_entries,
            self.edge_v, self._link_tt(), self._headway, self._storage, self.closed,
            self._lhead, self._ltail, self._occ, self._freed, self._next_exit,
            self._q_last, self._q_count, self._passed, self._entered, self._peak_queue,
            self._node_cap, self._node_load, self._node_full,
            self._shead, self._stail, self._scount, self._nexthop,
            self._grp, self._origin, self._depart, self._weight, self._ready, self._nxt,
            self._plan, self._vlink, self._state, self._arrival, self._dest,
            self._held, self._moved_k, self._pend,
            self._active, self._in_active, self._touched, self._counters, self._rng, reserve,
            *ev,
            self.sleep_blocked, self._wake_k, self._skip_k, self._wait_on, self._wait_prev,
            self._wait_next, self._wait_head,
        )  # fmt: skip
        self._k = int(k)
        return int(status)

    def _link_tt(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.length_m / (self.speed_m_s * self.speed_factor)

    def advance(self, t_end_s: float) -> Events:
        """Simulate up to time ``t_end_s`` (s) and return the events since the last call.

        Steps ``k`` with ``k * dt_s <= t_end_s`` are run. Routing trees are
        re-planned every ``reroute_every_s``, after any change made through the
        ``set_*`` methods, and whenever a capped destination fills up.
        """
        t_end_s = float(t_end_s)
        if not t_end_s >= self._time_s:
            raise KernelError(f"t_end_s: {t_end_s} s is before the current time {self._time_s} s")
        dt = self.dt_s
        k_end = int(np.floor(t_end_s / dt + 1e-9))
        reserve = 3 * self._nv + 16  # events one step can make, at most
        cap = reserve + max(self._nv, 1) + 1024
        ev = (np.empty(cap, np.int32), np.empty(cap), np.empty(cap, np.int8),
              np.empty(cap, np.int32))  # fmt: skip
        chunks: list[tuple[np.ndarray, ...]] = []
        self._counters[_nb.C_N_EV] = 0
        while self._k <= k_end:
            if self._k * dt >= self._next_replan_s - 1e-9:
                self._dirty = True  # periodic re-plan on current travel times
                a = self.delay_smoothing
                self._delay_s = a * self._q_count * self._headway + (1.0 - a) * self._delay_s
                n_due = np.floor((self._k * dt - self._next_replan_s) / self.reroute_every_s)
                self._next_replan_s += self.reroute_every_s * (1.0 + n_due)
            if self._dirty:
                self.replan()
            k_replan = int(np.ceil(self._next_replan_s / dt - 1e-9))
            status = self._run(min(k_end, k_replan - 1), ev, reserve)
            if status == _nb.STATUS_NODE_FULL:
                self._dirty = True
            elif status == _nb.STATUS_FLUSH:
                n_ev = int(self._counters[_nb.C_N_EV])
                chunks.append(tuple(a[:n_ev].copy() for a in ev))
                self._counters[_nb.C_N_EV] = 0
        n_ev = int(self._counters[_nb.C_N_EV])
        if n_ev:
            chunks.append(tuple(a[:n_ev].copy() for a in ev))
            self._counters[_nb.C_N_EV] = 0
        self._time_s = t_end_s
        if not chunks:
            return Events(*(a[:0].copy() for a in ev))
        return Events(*(np.concatenate(c) for c in zip(*chunks, strict=True)))

    # ----------------------------------------------------------------- results
    @property
    def time_s(self) -> float:
        """Time the network has been advanced to, s."""
        return self._time_s

    @property
    def n_queue_visits(self) -> int:
        """Queue visits so far (each active queue, each step it was not asleep)."""
        return int(self._counters[_nb.C_N_VISITS])

    @property
    def n_vehicles(self) -> int:
        """Number of vehicles added so far."""
        return self._nv

    @property
    def vehicle_state(self) -> np.ndarray:
        """State per vehicle, shape (n_vehicles,), int8: 0 waiting, 1 on road,
        2 arrived, 3 stranded (names in :data:`VEHICLE_STATES`)."""
        return self._state.copy()

    @property
    def arrival_time_s(self) -> np.ndarray:
        """Arrival time per vehicle, s, shape (n_vehicles,); NaN if not arrived."""
        return self._arrival.copy()

    @property
    def dest_node(self) -> np.ndarray:
        """Node each vehicle arrived at, shape (n_vehicles,); -1 if not arrived."""
        return self._dest.copy()

    @property
    def vehicle_link(self) -> np.ndarray:
        """Link each vehicle is on, shape (n_vehicles,); -1 if off the network."""
        return self._vlink.copy()

    @property
    def depart_time_s(self) -> np.ndarray:
        """Scheduled departure per vehicle, s, shape (n_vehicles,).

        The requested time, or the network time when the vehicle was added if
        that was later. The vehicle enters its first link then, or later if
        that link is full (it waits at its origin node meanwhile).
        """
        return self._depart.copy()

    @property
    def vehicle_group(self) -> np.ndarray:
        """Destination group per vehicle, shape (n_vehicles,)."""
        return self._grp.copy()

    def state_counts(self) -> dict[str, int]:
        """Vehicles per state: ``waiting``, ``on_road``, ``arrived``, ``stranded``."""
        c = np.bincount(self._state, minlength=4)
        return {name: int(c[i]) for i, name in enumerate(VEHICLE_STATES)}

    @property
    def link_passed(self) -> np.ndarray:
        """Vehicles that have left each link at its downstream end, shape (n_edges,)."""
        return self._passed.copy()

    @property
    def link_entered(self) -> np.ndarray:
        """Vehicles that have entered each link, shape (n_edges,)."""
        return self._entered.copy()

    @property
    def link_occupancy(self) -> np.ndarray:
        """Vehicles on each link now, shape (n_edges,)."""
        return self._occ.copy()

    @property
    def link_queue(self) -> np.ndarray:
        """Vehicles on each link past their free-flow exit time, shape (n_edges,)."""
        return self._q_count.copy()

    @property
    def link_peak_queue(self) -> np.ndarray:
        """Largest :attr:`link_queue` seen on each link (sampled every step), shape (n_edges,)."""
        return self._peak_queue.copy()

    @property
    def link_storage(self) -> np.ndarray:
        """Storage of each link, vehicles, shape (n_edges,): max(1, L lanes / 7.5 m)."""
        return self._storage.copy()

    @property
    def node_load(self) -> np.ndarray:
        """Load (sum of weights) admitted at each node, shape (n_nodes,)."""
        return self._node_load.copy()

    @property
    def origin_queue(self) -> np.ndarray:
        """Vehicles due to depart but still waiting at each node, shape (n_nodes,)."""
        return self._scount.copy()
