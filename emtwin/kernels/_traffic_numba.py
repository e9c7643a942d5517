"""Numba core of the queue-model traffic kernel (private; see :mod:`emtwin.kernels.traffic`).

Everything here is positional and works on plain arrays that
:class:`emtwin.kernels.traffic.QueueNetwork` owns. The model is the MATSim
queue model (QueueWithBuffer / QNodeImpl, references.md section 4): each link
is a FIFO; a vehicle may leave no earlier than its entry time plus the free
travel time; the head leaves at most at the flow capacity; a vehicle enters
the next link only while that link's storage is not full (spillback), unless
it has waited at the head longer than the stuck time.

Time is stepped in ``dt`` (s), but every exit time is kept in continuous time
(``max(ready, next allowed exit)``), so free-flow travel times and capacity
headways are exact; only waiting caused by spillback is rounded to the step.

Queues: ids ``0 .. n_edges-1`` are links, ``n_edges + n`` is the departure
queue ("source") of node ``n``. Vehicles in a queue are chained through
``nxt`` (a singly linked FIFO), so a link can hold any number of vehicles
(stuck vehicles may overfill it, as in MATSim) and memory is O(vehicles + links).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# next-hop codes in the routing trees (nexthop[g, n] >= 0 is an edge id)
SINK = -2  # n is an open destination of group g
NO_ROUTE = -1  # no open path from n to any destination of g
NO_PLAN = -3  # vehicle has no planned next link (fresh departure, or just turned away)

# vehicle states
ST_WAITING = 0  # not yet on the road (before departure time, or queued at its origin)
ST_ON_ROAD = 1
ST_ARRIVED = 2
ST_STRANDED = 3

# event kinds; ``where`` is a node id for all kinds but REROUTED and ENTERED (a link id)
EV_DEPARTED = 0
EV_ARRIVED = 1
EV_REROUTED = 2
EV_STRANDED = 3
EV_TURNED_AWAY = 4
EV_ENTERED = 5

# kernel return status
STATUS_DONE = 0  # reached k_stop (or nothing left to do before it)
STATUS_NODE_FULL = 1  # a capped node filled up: the routing trees must be recomputed
STATUS_FLUSH = 2  # the event buffer needs emptying

# counters array layout
C_PEND_PTR = 0
C_N_ACTIVE = 1
C_N_EV = 2

_EPS = 1e-6  # s, tolerance on time comparisons


@njit(cache=True)
def _rand_below(rng: np.ndarray, n: int) -> int:
    """Xorshift64 draw in [0, n), n < 2**32, from the state in ``rng[0]`` (uint64)."""
    s = rng[0]
    s ^= s << np.uint64(13)
    s ^= s >> np.uint64(7)
    s ^= s << np.uint64(17)
    rng[0] = s
    # Lemire's multiply-shift: (top 32 bits) * n / 2**32, no division
    return np.int64(((s >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@njit(cache=True)
def _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev, veh, time, kind, where):
    ev_veh[n_ev] = veh
    ev_time[n_ev] = time
    ev_kind[n_ev] = kind
    ev_where[n_ev] = where
    return n_ev + 1


@njit(cache=True)
def run_steps(
    k, k_stop, dt, stuck_time_s, record_entries,
    edge_v, link_tt, headway, storage, closed,
    lhead, ltail, occ, freed, next_exit, q_last, q_count, passed, entered, peak_queue,
    node_cap, node_load, node_full, shead, stail, scount, nexthop,
    grp, origin, depart, weight, ready, nxt, plan, vlink, state, arrival, dest,
    held, moved_k, pend, active, in_active, touched, counters, rng, ev_reserve,
    ev_veh, ev_time, ev_kind, ev_where,
):  # fmt: skip
    """Advance the queue model over steps ``k .. k_stop`` (times ``k * dt``, s).

    Returns ``(k_next, status)``: the next step to run and one of the
    ``STATUS_*`` codes. The state arrays are updated in place; ``counters``
    holds the departure pointer, the active-queue count and the event count.
    Stops early, at the end of a step, when a capped node fills up
    (``STATUS_NODE_FULL``) or fewer than ``ev_reserve`` event slots remain
    (``STATUS_FLUSH``).
    """
    n_edges = edge_v.shape[0]
    n_pend = pend.shape[0]
    pend_ptr = counters[C_PEND_PTR]
    n_active = counters[C_N_ACTIVE]
    n_ev = counters[C_N_EV]
    ev_limit = ev_veh.shape[0] - ev_reserve
    status = STATUS_DONE
    while k <= k_stop:
        if n_active == 0:
            # nothing on the network: jump to the next departure
            if pend_ptr >= n_pend:
                k = k_stop + 1
                break
            kd = np.int64(math.ceil(depart[pend[pend_ptr]] / dt - 1e-9))
            if kd > k:
                k = kd
            if k > k_stop:
                break
        t = k * dt
        # 1. departures due by t join the FIFO of their origin node
        while pend_ptr < n_pend and depart[pend[pend_ptr]] <= t + _EPS:
            h = pend[pend_ptr]
            pend_ptr += 1
            n = origin[h]
            nxt[h] = -1
            if stail[n] == -1:
                shead[n] = h
            else:
                nxt[stail[n]] = h
            stail[n] = h
            scount[n] += 1
            q = n_edges + n
            if not in_active[q]:
                in_active[q] = True
                active[n_active] = q
                n_active += 1
        # 2. visit the active queues in a fresh random order each step (MATSim
        #    QNode visits in-links in random order), so merges share space fairly
        m0 = n_active
        for i in range(m0 - 1, 0, -1):
            j = _rand_below(rng, i + 1)
            tmp = active[i]
            active[i] = active[j]
            active[j] = tmp
        n_touched = 0
        for i in range(m0):
            q = active[i]
            is_link = q < n_edges
            e = q
            if is_link:
                n = edge_v[e]
                h = lhead[e]
                if h == -1 or ready[h] > t + _EPS:
                    continue
                # queue = vehicles past their free-flow exit time (ready is monotone in the FIFO)
                v = lhead[e] if q_last[e] == -1 else nxt[q_last[e]]
                while v != -1 and ready[v] <= t + _EPS:
                    q_count[e] += 1
                    q_last[e] = v
                    v = nxt[v]
                if q_count[e] > peak_queue[e]:
                    peak_queue[e] = q_count[e]
            else:
                n = q - n_edges
                h = shead[n]
            while h != -1:
                if moved_k[h] == k:
                    break  # one link per vehicle per step (keeps the event count bounded)
                if is_link:
                    tcap = max(ready[h], next_exit[e])
                    if tcap > t + _EPS:
                        break  # not yet, or flow capacity used up
                    stuck = t - tcap >= stuck_time_s
                else:
                    tcap = depart[h]
                    stuck = False
                # exit time: continuous, unless the vehicle was held back by a full link
                te = t if held[h] else tcap
                g = grp[h]
                nh = nexthop[g, n]
                # action: 0 blocked, 1 arrive, 2 stranded, 3 move on to link nh
                action = 0
                if nh == SINK:
                    if node_load[n] + weight[h] <= node_cap[n] + 1e-9:
                        action = 1
                    else:
                        # MATSim-free extension: shelter full -> turn away, close node, re-plan
                        n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev,
                                     h, te, EV_TURNED_AWAY, n)  # fmt: skip
                        plan[h] = NO_PLAN
                        node_full[n] = True
                        status = STATUS_NODE_FULL
                elif nh < 0:
                    action = 2
                elif occ[nh] < storage[nh] or stuck:
                    action = 3
                if action == 0:
                    held[h] = True
                    break
                held[h] = False
                moved_k[h] = k
                # pop h from its queue
                nh_next = nxt[h]
                if is_link:
                    lhead[e] = nh_next
                    if nh_next == -1:
                        ltail[e] = -1
                    if freed[e] == 0:
                        touched[n_touched] = e
                        n_touched += 1
                    freed[e] += 1  # storage frees at the end of the step
                    passed[e] += 1
                    next_exit[e] = te + headway[e]  # fractional capacity carries over
                    q_count[e] -= 1
                    if q_last[e] == h:
                        q_last[e] = -1
                else:
                    shead[n] = nh_next
                    if nh_next == -1:
                        stail[n] = -1
                    scount[n] -= 1
                nxt[h] = -1
                if plan[h] == SINK and action != 1:
                    # was heading for node n as its destination, which has closed meanwhile
                    n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev,
                                 h, te, EV_TURNED_AWAY, n)  # fmt: skip
                if state[h] == ST_WAITING and action != 2:
                    n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev, h, te, EV_DEPARTED, n)
                    state[h] = ST_ON_ROAD
                if action == 1:
                    node_load[n] += weight[h]
                    if node_load[n] >= node_cap[n] - 1e-9:
                        node_full[n] = True
                        status = STATUS_NODE_FULL
                    state[h] = ST_ARRIVED
                    arrival[h] = te
                    dest[h] = n
                    vlink[h] = -1
                    n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev, h, te, EV_ARRIVED, n)
                elif action == 2:
                    state[h] = ST_STRANDED
                    vlink[h] = -1
                    n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev, h, te, EV_STRANDED, n)
                else:
                    p = plan[h]
                    if p >= 0 and p != nh and closed[p]:
                        n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev,
                                     h, te, EV_REROUTED, nh)  # fmt: skip
                    # enter nh at its tail; no overtaking: ready is kept monotone
                    r = te + link_tt[nh]
                    tl = ltail[nh]
                    if tl == -1:
                        lhead[nh] = h
                    else:
                        nxt[tl] = h
                        if ready[tl] > r:
                            r = ready[tl]
                    ltail[nh] = h
                    ready[h] = r
                    occ[nh] += 1
                    entered[nh] += 1
                    vlink[h] = nh
                    plan[h] = nexthop[g, edge_v[nh]]
                    if not in_active[nh]:
                        in_active[nh] = True
                        active[n_active] = nh
                        n_active += 1
                    if record_entries:
                        n_ev = _emit(ev_veh, ev_time, ev_kind, ev_where, n_ev,
                                     h, te, EV_ENTERED, nh)  # fmt: skip
                h = nh_next
        # 3. space freed by this step's exits becomes usable next step (order independent)
        for i in range(n_touched):
            e = touched[i]
            occ[e] -= freed[e]
            freed[e] = 0
        # 4. drop empty queues from the active list
        j = 0
        for i in range(n_active):
            q = active[i]
            keep = occ[q] > 0 if q < n_edges else scount[q - n_edges] > 0
            if keep:
                active[j] = q
                j += 1
            else:
                in_active[q] = False
        n_active = j
        k += 1
        if status != STATUS_DONE:
            break
        if n_ev > ev_limit:
            status = STATUS_FLUSH
            break
    counters[C_PEND_PTR] = pend_ptr
    counters[C_N_ACTIVE] = n_active
    counters[C_N_EV] = n_ev
    return k, status
