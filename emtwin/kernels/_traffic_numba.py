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

Sleeping queues (``sleep=True``): a queue that cannot act sleeps until it
can, instead of being visited every step. A head before its free-flow exit
time, or held by the link's flow capacity, sleeps until that time (only the
queue's own exits move it); a head held back by a full next link sleeps until
that link frees space (its occupancy falls only at the end of a step) or the
head's stuck time comes. ``wake_k`` holds the step a queue wakes at; waits on
a full link are registered on it (a doubly linked list per link, ``wait_*``)
and woken when it frees space. The order in which queues are served is drawn
over all active queues as before, and a skipped visit would have changed
nothing, so the results are bit-identical to visiting every queue
(``sleep=False``, the reference). The queue count of a sleeping link is
brought up to date when it wakes (it only grows while no one leaves, so its
peak is the same), or at the end of the call as its skipped visit would have
counted it: vehicles that entered in that step after its turn are left out,
and a vehicle that enters already past its exit time wakes the link if its
turn is still to come. Every queue starts awake at each call, since the
caller may change routes, closures or storage between calls.
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
C_N_VISITS = 3  # queue visits so far (a measure of the work done)

_EPS = 1e-6  # s, tolerance on time comparisons
_NEVER = 2**62  # wake step of a queue that only space can wake


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
def _ready_step(t_due, dt, k):
    """First step after k whose time t passes the test ``t_due <= t + _EPS`` of the visit."""
    kc = max(np.int64(math.ceil((t_due - _EPS) / dt)), k + 1)
    while kc > k + 1 and t_due <= (kc - 1) * dt + _EPS:
        kc -= 1
    while t_due > kc * dt + _EPS:
        kc += 1
    return kc


@njit(cache=True)
def _stuck_step(tcap, stuck_time_s, dt, k):
    """First step after k whose time t passes the stuck test ``t - tcap >= stuck_time_s``."""
    kc = max(np.int64(math.ceil((tcap + stuck_time_s) / dt)), k + 1)
    while kc > k + 1 and (kc - 1) * dt - tcap >= stuck_time_s:
        kc -= 1
    while kc * dt - tcap < stuck_time_s:
        kc += 1
    return kc


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
    sleep, wake_k, skip_k, wait_on, wait_prev, wait_next, wait_head,
):  # fmt: skip
    """Advance the queue model over steps ``k .. k_stop`` (times ``k * dt``, s).

    Returns ``(k_next, status)``: the next step to run and one of the
    ``STATUS_*`` codes. The state arrays are updated in place; ``counters``
    holds the departure pointer, the active-queue count and the event count.
    Stops early, at the end of a step, when a capped node fills up
    (``STATUS_NODE_FULL``) or fewer than ``ev_reserve`` event slots remain
    (``STATUS_FLUSH``). With ``sleep`` queues held by a full link sleep (see
    the module docstring); every queue starts awake at each call, since the
    caller may have changed routes, closures or storage in between.
    """
    n_edges = edge_v.shape[0]
    n_pend = pend.shape[0]
    pend_ptr = counters[C_PEND_PTR]
    n_active = counters[C_N_ACTIVE]
    n_ev = counters[C_N_EV]
    n_visits = counters[C_N_VISITS]
    ev_limit = ev_veh.shape[0] - ev_reserve
    status = STATUS_DONE
    if sleep:
        wake_k[:] = 0
        skip_k[:] = -1
        wait_on[:] = -1
        wait_head[:] = -1
    k_last = k - 1
    emptied = True  # the caller may have emptied queues (stranded vehicles) since the last call
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
        k_last = k
        for i in range(m0):
            q = active[i]
            if sleep and wake_k[q] > k:
                skip_k[q] = k
                continue
            n_visits += 1
            is_link = q < n_edges
            e = q
            if is_link:
                n = edge_v[e]
                h = lhead[e]
                if h == -1:
                    continue
                if ready[h] > t + _EPS:
                    if sleep:  # nothing can change the head's free-flow exit time
                        wake_k[q] = _ready_step(ready[h], dt, k)
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
                        if sleep:  # only this queue's own exits move tcap
                            wake_k[q] = _ready_step(tcap, dt, k)
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
                    if sleep and nh >= 0:
                        # held by a full link: sleep until it frees space or h is stuck
                        ks = _NEVER
                        if is_link and stuck_time_s < 1e18:
                            ks = _stuck_step(tcap, stuck_time_s, dt, k)
                        wake_k[q] = ks
                        old = wait_on[q]
                        if old != nh:
                            if old != -1:
                                pv, nx = wait_prev[q], wait_next[q]
                                if pv == -1:
                                    wait_head[old] = nx
                                else:
                                    wait_next[pv] = nx
                                if nx != -1:
                                    wait_prev[nx] = pv
                            hd = wait_head[nh]
                            wait_prev[q] = -1
                            wait_next[q] = hd
                            if hd != -1:
                                wait_prev[hd] = q
                            wait_head[nh] = q
                            wait_on[q] = nh
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
                    if scount[n] == 0:
                        emptied = True
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
                    if sleep and r <= t + _EPS and wake_k[nh] > k and skip_k[nh] != k:
                        # h counts in nh's queue at nh's visit later in this step
                        wake_k[nh] = k
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
            if occ[e] == 0:
                emptied = True
            if sleep:
                # wake the queues held by e for the next step
                w = wait_head[e]
                while w != -1:
                    wake_k[w] = k + 1
                    wait_on[w] = -1
                    w = wait_next[w]
                wait_head[e] = -1
        # 4. drop empty queues from the active list (kept in order)
        if emptied:
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
            emptied = False
        k += 1
        if status != STATUS_DONE:
            break
        if n_ev > ev_limit:
            status = STATUS_FLUSH
            break
    if sleep:
        # bring the queue counts of links asleep in the last step up to date
        t = k_last * dt
        for i in range(n_active):
            e = active[i]
            if e < n_edges and skip_k[e] == k_last:
                # a visit counts those who entered before it in the step
                v = lhead[e] if q_last[e] == -1 else nxt[q_last[e]]
                while v != -1 and ready[v] <= t + _EPS and moved_k[v] != k_last:
                    q_count[e] += 1
                    q_last[e] = v
                    v = nxt[v]
                if q_count[e] > peak_queue[e]:
                    peak_queue[e] = q_count[e]
    counters[C_PEND_PTR] = pend_ptr
    counters[C_N_ACTIVE] = n_active
    counters[C_N_VISITS] = n_visits
    counters[C_N_EV] = n_ev
    return k, status
