"""Tests of the queue-model traffic kernel against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from emtwin.errors import KernelError
from emtwin.kernels.traffic import (
    ARRIVED,
    DEPARTED,
    ENTERED,
    REROUTED,
    STRANDED,
    TURNED_AWAY,
    QueueNetwork,
)


def net_from(links: list[tuple], n_nodes: int, **kw: object) -> QueueNetwork:
    """Links as (u, v, length_m, speed_m_s, lanes, capacity_veh_h)."""
    u, v, length, speed, lanes, cap = (np.array(c) for c in zip(*links, strict=True))
    return QueueNetwork(u, v, length, speed, lanes, cap, n_nodes, **kw)


@pytest.mark.parametrize("dt_s", [1.0, 5.0])
def test_bottleneck_clears_in_n_over_c_plus_free_time(dt_s: float) -> None:
    # N vehicles all ready at once at the head of a wide feeder (0->1), then a
    # bottleneck link 1->2 of capacity C. Hand: N/C + free times.
    n, c = 2000, 1800.0
    la, va, lb, vb = 750.0, 15.0, 500.0, 10.0  # 50 s + 50 s free time
    net = net_from([(0, 1, la, va, n * 7.5 / la, 36_000.0), (1, 2, lb, vb, 1.0, c)], 3, dt_s=dt_s)
    net.add_vehicles(np.zeros(n, int), 0.0, dest_node=2)
    net.advance(10_000.0)
    expected = n * 3600.0 / c + la / va + lb / vb  # 4000 + 100 = 4100 s
    got = np.max(net.arrival_time_s)
    assert abs(got - expected) / expected < 0.01
    # exact to the headway: the last of N leaves (N - 1) headways after the first
    assert got == pytest.approx(la / va + lb / vb + (n - 1) * 3600.0 / c, abs=1e-6)
    assert net.link_passed[1] == n
    assert net.link_storage[1] == pytest.approx(500 / 7.5)


def test_spillback_blocks_upstream_and_queue_matches_hand_count() -> None:
    # a: 0->1, 1000 m at 10 m/s (100 s), 3600 veh/h, storage 133.
    # b: 1->2, 75 m at 7.5 m/s (10 s), 1 lane -> storage exactly 10, 360 veh/h (10 s).
    n = 60
    net = net_from([(0, 1, 1000.0, 10.0, 1.0, 3600.0), (1, 2, 75.0, 7.5, 1.0, 360.0)], 3)
    net.add_vehicles(np.zeros(n, int), 0.0, dest_node=2)
    net.advance(300.0)
    # Hand count: vehicles reach the head of a at 100 s and leave it at 1 s
    # headway: 10 fill b at 100..109 s. b discharges at 110, 120, ..., 300 s
    # (20 exits); each freed place is taken at the next step, 111, 121, ...,
    # 291 s (19 entries). So after the step at 300 s: 29 have entered b,
    # 31 queue on a, and b holds 9 (its place freed at 300 s is taken at 301 s).
    assert net.link_occupancy.tolist() == [31, 9]
    assert net.link_queue.tolist()[0] == 31  # all of them past their free-flow time
    assert net.link_passed.tolist() == [29, 20]
    assert net.link_peak_queue[0] >= 31
    # b never holds more than its storage
    net.advance(5000.0)
    assert net.state_counts()["arrived"] == n
    assert net.link_peak_queue[1] <= 10
    assert np.max(net.arrival_time_s) == pytest.approx(110 + 10 * (n - 1))


def test_stuck_vehicle_is_forced_on_after_stuck_time() -> None:
    # c (2->3) lets one vehicle out per hour and holds one: the third vehicle
    # waits at the head of b (1->2) and is forced into c after stuck_time_s.
    net = net_from(
        [(0, 1, 100.0, 10.0, 5.0, 3600.0), (1, 2, 7.5, 7.5, 1.0, 3600.0),
         (2, 3, 7.5, 7.5, 1.0, 1.0)],
        4, stuck_time_s=120.0, record_link_entries=True,
    )  # fmt: skip
    net.add_vehicles([0, 0, 0], [0.0, 0.0, 0.0], dest_node=3)
    ev = net.advance(400.0)
    into_c = ev.time_s[(ev.kind == ENTERED) & (ev.where == 2)]
    # v0: a 0-10 s, b 10-11 s, c 11-12 s. v1 is held at the head of a at 11 s
    # (b full until the end of that step), b 12-13 s, enters c at 13 s and then
    # stays an hour (c's next exit is 12 + 3600 s). v2 is held at a at 13 s,
    # enters b at 14 s, is at its head at 15 s, and is forced on at 15 + 120 s.
    assert into_c.tolist() == pytest.approx([11.0, 13.0, 135.0])
    assert net.link_occupancy[2] == 2  # overfilled, as MATSim does with stuck vehicles


def test_free_flow_travel_time_is_sum_of_free_times() -> None:
    links = [(0, 1, 123.0, 13.9, 1, 1800), (1, 2, 431.7, 8.3, 1, 1800), (2, 3, 77.7, 16.6, 2, 3600)]
    net = net_from(links, 4)
    net.add_vehicles(0, 3.3, dest_node=3)
    ev = net.advance(1000.0)
    expected = 3.3 + sum(length / v for _, _, length, v, _, _ in links)
    assert net.arrival_time_s[0] == pytest.approx(expected, abs=1e-9)
    assert ev.kind.tolist() == [DEPARTED, ARRIVED]
    assert ev.time_s[0] == pytest.approx(3.3)


def _detour_net() -> QueueNetwork:
    # direct 0->1->2 = 100 + 50 = 150 s; detour 0->1->3->2 = 100 + 30 + 60 = 190 s
    return net_from(
        [(0, 1, 1000.0, 10.0, 1, 1800), (1, 2, 500.0, 10.0, 1, 1800),
         (1, 3, 300.0, 10.0, 1, 1800), (3, 2, 600.0, 10.0, 1, 1800)], 4,
    )  # fmt: skip


def test_closure_ahead_reroutes_to_alternative() -> None:
    net = _detour_net()
    net.add_vehicles(0, 0.0, dest_node=2)
    net.advance(50.0)
    net.set_closed(np.array([False, True, False, False]))
    ev = net.advance(1000.0)
    assert net.arrival_time_s[0] == pytest.approx(190.0)
    rr = ev.kind == REROUTED
    assert ev.time_s[rr].tolist() == [100.0] and ev.where[rr].tolist() == [2]
    # without the closure it takes the direct road
    ref = _detour_net()
    ref.add_vehicles(0, 0.0, dest_node=2)
    ref.advance(1000.0)
    assert ref.arrival_time_s[0] == pytest.approx(150.0)


def test_no_route_left_strands_vehicle() -> None:
    net = _detour_net()
    net.add_vehicles([0, 0], [0.0, 500.0], dest_node=2)
    net.advance(50.0)
    net.set_closed(np.array([False, True, False, True]))
    ev = net.advance(1000.0)
    assert net.vehicle_state.tolist() == [3, 3]
    st = ev.kind == STRANDED
    # first at node 1 on reaching it; second at its origin, at departure
    assert ev.vehicle[st].tolist() == [0, 1]
    assert ev.where[st].tolist() == [1, 0]
    assert ev.time_s[st].tolist() == [100.0, 500.0]
    assert net.state_counts() == {"waiting": 0, "on_road": 0, "arrived": 0, "stranded": 2}


def _shelter_net() -> QueueNetwork:
    # 0 -> shelter 1 (100 s) -> shelter 2 (50 s); 0 -> 2 directly is 400 s
    return net_from(
        [(0, 1, 1000.0, 10.0, 2, 3600), (1, 2, 500.0, 10.0, 2, 3600),
         (0, 2, 4000.0, 10.0, 2, 3600)], 3,
    )  # fmt: skip


def test_capped_shelter_turns_away_to_next_destination() -> None:
    net = _shelter_net()
    net.set_node_capacity(1, 5)
    ids = net.add_vehicles(np.zeros(12, int), np.arange(12.0), dest_set=[1, 2])
    late = net.add_vehicles(0, 200.0, dest_set=[1, 2])
    ev = net.advance(2000.0)
    dest = net.dest_node
    assert (dest[ids] == 1).sum() == 5 and net.node_load[1] == 5
    assert net.arrival_time_s[ids[:5]].tolist() == [100, 101, 102, 103, 104]
    ta = ev.kind == TURNED_AWAY
    assert ev.vehicle[ta].tolist() == list(range(5, 12))
    assert set(ev.where[ta].tolist()) == {1}
    assert ev.time_s[ta].tolist() == [105, 106, 107, 108, 109, 110, 111]
    # turned away at 1, on to 2 in 50 s
    assert dest[ids[5:]].tolist() == [2] * 7
    assert net.arrival_time_s[ids[5:]].tolist() == pytest.approx(np.arange(155.0, 162.0))
    # a later vehicle drives through the full shelter to the next one, no turn-away
    assert dest[late[0]] == 2 and net.arrival_time_s[late[0]] == pytest.approx(350.0)


def test_weighted_capacity_never_exceeded_and_all_full_strands() -> None:
    net = _shelter_net()
    net.set_node_capacity(1, 10.0)  # persons
    net.add_vehicles(np.zeros(6, int), np.arange(6.0), dest_set=[1, 2], weight=3.0)
    net.advance(2000.0)
    assert net.node_load[1] == 9.0  # a 4th car of 3 would exceed 10
    assert (net.dest_node == 1).sum() == 3 and (net.dest_node == 2).sum() == 3
    # a single-shelter group whose shelter fills: the rest are stranded there
    net2 = _shelter_net()
    net2.set_node_capacity(1, 2)
    net2.add_vehicles(np.zeros(4, int), np.arange(4.0), dest_node=1)
    ev = net2.advance(2000.0)
    assert net2.state_counts()["arrived"] == 2 and net2.state_counts()["stranded"] == 2
    assert (ev.kind == TURNED_AWAY).sum() == 2
    assert net2.node_load[1] <= 2


def _grid(k: int) -> dict[str, object]:
    idx = np.arange(k * k).reshape(k, k)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1].ravel(), idx[1:].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:].ravel(), idx[:-1].ravel()])
    ne = u.shape[0]
    return {"edge_u": u, "edge_v": v, "length_m": np.full(ne, 200.0),
            "speed_m_s": np.full(ne, 13.9), "lanes": np.ones(ne),
            "capacity_veh_h": np.full(ne, 1800.0), "n_nodes": k * k}  # fmt: skip


def _grid_run(chunk_s: float, entries: bool = False) -> tuple[QueueNetwork, list]:
    k = 8
    g = _grid(k)
    net = QueueNetwork(
        **g, reroute_every_s=120.0, stuck_time_s=60.0, seed=3, record_link_entries=entries
    )
    rng = np.random.default_rng(7)
    n = 4000
    exits = [0, k - 1, k * k - 1]
    net.set_node_capacity(0, 800)
    net.add_vehicles(rng.integers(0, k * k, n), rng.uniform(0, 900, n), dest_set=exits)
    net.add_vehicles(rng.integers(0, k * k, 200), rng.uniform(0, 900, 200), dest_node=k - 1)
    events = []
    t = 0.0
    while t < 8000.0:
        if net.time_s >= 600.0 and not net.closed.any():
            closed = np.zeros(net.n_edges, bool)
            closed[np.flatnonzero(g["edge_v"] == k - 1)] = True  # corner exit cut off
            net.set_closed(closed)
            net.set_speed_factor(np.where(g["edge_u"] < k, 0.5, 1.0))
        t = min(t + chunk_s, 8000.0)
        events.append(net.advance(t))
    return net, events


def test_conservation_and_determinism() -> None:
    net, events = _grid_run(600.0)
    n = net.n_vehicles
    state = net.vehicle_state
    counts = net.state_counts()
    assert sum(counts.values()) == n and counts["waiting"] == counts["on_road"] == 0
    # those bound for the corner alone that had not reached it when it was cut off
    assert 0 < counts["stranded"] < 200
    assert net.node_load[0] <= 800
    kind = np.concatenate([e.kind for e in events])
    veh = np.concatenate([e.vehicle for e in events])
    end = np.bincount(veh[(kind == ARRIVED) | (kind == STRANDED)], minlength=n)
    assert np.all(end == 1)  # exactly one final event per vehicle
    assert np.all(np.isfinite(net.arrival_time_s) == (state == 2))
    assert np.all(np.bincount(veh[kind == DEPARTED], minlength=n) <= 1)
    # identical runs give identical arrays, however advance() is chunked
    net2, events2 = _grid_run(600.0)
    net3, _ = _grid_run(40.0)
    for other in (net2, net3):
        np.testing.assert_array_equal(net.arrival_time_s, other.arrival_time_s)
        np.testing.assert_array_equal(net.dest_node, other.dest_node)
        np.testing.assert_array_equal(net.vehicle_state, other.vehicle_state)
        np.testing.assert_array_equal(net.link_passed, other.link_passed)
        np.testing.assert_array_equal(net.link_peak_queue, other.link_peak_queue)
    for a, b in zip(events, events2, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    # recording every link entry (many buffer flushes) changes nothing else
    net4, events4 = _grid_run(600.0, entries=True)
    np.testing.assert_array_equal(net.arrival_time_s, net4.arrival_time_s)
    kind4 = np.concatenate([e.kind for e in events4])
    assert (kind4 == ENTERED).sum() == net4.link_entered.sum() > 5 * n
    np.testing.assert_array_equal(kind4[kind4 != ENTERED], kind)


def _sleep_run(sleep: bool, chunk_s: float) -> tuple[QueueNetwork, list]:
    """A jammed 10 x 10 grid with every between-call change the engine makes."""
    k = 10
    g = _grid(k)
    g["length_m"][::3] = 40.0  # short links: vehicles that waited at their origin enter ready
    net = QueueNetwork(**g, reroute_every_s=120.0, stuck_time_s=60.0, seed=5, sleep_blocked=sleep)
    rng = np.random.default_rng(11)
    exits = [0, k - 1, k * k - 1]
    net.set_node_capacity(0, 1500)
    net.add_vehicles(rng.integers(0, k * k, 6000), rng.uniform(0, 600, 6000), dest_set=exits)
    for dest in exits:  # groups of one destination each: merges of differing routes
        net.add_vehicles(rng.integers(0, k * k, 300), rng.uniform(0, 600, 300), dest_node=dest)
    out, t, done = [], 0.0, set()
    while t < 12_000.0:
        if net.time_s >= 500.0 and "closed" not in done:
            done.add("closed")
            closed = np.zeros(net.n_edges, bool)
            closed[np.flatnonzero(g["edge_v"] == k - 1)] = True
            net.set_closed(closed)
            net.set_speed_factor(np.where(g["edge_u"] < k, 0.5, 1.0))
        if net.time_s >= 800.0 and "stranded" not in done:
            done.add("stranded")
            out.append(net.strand_on_links(np.flatnonzero(g["edge_u"] % k == 4)[:15]))
        if net.time_s >= 1100.0 and "capacity" not in done:
            done.add("capacity")
            net.set_capacity(np.arange(6), 600.0, lanes=0.5)
        t = min(t + chunk_s, 12_000.0)
        ev = net.advance(t)
        out.append((*ev, net.link_queue, net.link_peak_queue, net.link_occupancy,
                    net.origin_queue))  # fmt: skip
    return net, out


@pytest.mark.parametrize("chunk_s", [3.0, 7.0, 600.0])
def test_sleeping_queues_change_nothing_but_the_work(chunk_s: float) -> None:
    """Sleeping queues skip only visits that would do nothing: every event, queue
    count and final array equals the run that visits every queue every step."""
    ref, ref_out = _sleep_run(False, chunk_s)
    net, out = _sleep_run(True, chunk_s)
    assert net.state_counts() == ref.state_counts()
    assert net.state_counts()["arrived"] > 5000 and net.state_counts()["stranded"] > 0
    assert len(out) == len(ref_out)
    for got, want in zip(out, ref_out, strict=True):
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)
    for name in ("arrival_time_s", "dest_node", "vehicle_state", "link_passed", "node_load"):
        np.testing.assert_array_equal(getattr(net, name), getattr(ref, name))
    # and the work is smaller: the jam's queues wait asleep
    assert net.n_queue_visits < 0.5 * ref.n_queue_visits


def test_contraflow_doubles_outbound_capacity() -> None:
    # 0->1 bottleneck 1800 veh/h with opposite 1->0; contraflow makes it 3600 veh/h
    def run(contra: bool) -> float:
        net = net_from([(0, 1, 500.0, 10.0, 1, 1800), (1, 0, 500.0, 10.0, 1, 1800)], 2)
        if contra:
            net.contraflow(0, 1)
        net.add_vehicles(np.zeros(60, int), 0.0, dest_node=1)
        net.advance(1000.0)
        assert net.closed[1] == contra
        return float(np.max(net.arrival_time_s))

    assert run(False) == pytest.approx(50 + 59 * 2.0)
    assert run(True) == pytest.approx(50 + 59 * 1.0)


def test_bad_input_raises_kernel_error() -> None:
    ok = ([0], [1], [100.0], [10.0], [1.0], [1800.0], 2)
    with pytest.raises(KernelError, match="length_m"):
        QueueNetwork([0], [1], [-1.0], [10.0], [1.0], [1800.0], 2)
    with pytest.raises(KernelError, match="capacity_veh_h"):
        QueueNetwork([0], [1], [100.0], [10.0], [1.0], [0.0], 2)
    with pytest.raises(KernelError, match="speed_m_s"):
        QueueNetwork([0, 1], [1, 0], [100.0, 100.0], [10.0], [1.0, 1.0], [1800.0] * 2, 2)
    with pytest.raises(KernelError, match="edge_v"):
        QueueNetwork([0], [5], [100.0], [10.0], [1.0], [1800.0], 2)
    net = QueueNetwork(*ok)
    with pytest.raises(KernelError, match="origin_node"):
        net.add_vehicles(7, 0.0, dest_node=1)
    with pytest.raises(KernelError, match="dest_node"):
        net.add_vehicles(0, 0.0, dest_node=-1)
    with pytest.raises(KernelError, match="exactly one"):
        net.add_vehicles(0, 0.0)
    with pytest.raises(KernelError, match="factors"):
        net.set_speed_factor(np.array([1.5]))
    with pytest.raises(KernelError, match="closed"):
        net.set_closed(np.zeros(3, bool))
    net.advance(10.0)
    with pytest.raises(KernelError, match="before the current time"):
        net.advance(5.0)


def test_nearest_destination_by_time_and_speed_factor() -> None:
    # exit 1: 600 m at 10 m/s = 60 s; exit 2: 400 m at 5 m/s = 80 s -> exit 1 wins by time
    net = net_from([(0, 1, 600.0, 10.0, 1, 1800), (0, 2, 400.0, 5.0, 1, 1800)], 3)
    np.testing.assert_allclose(net.travel_time_to(net.add_destination_group([1, 2]))[0], 60.0)
    net.add_vehicles(0, 0.0, dest_set=[1, 2])
    net.advance(100.0)
    assert net.dest_node[0] == 1 and net.arrival_time_s[0] == pytest.approx(60.0)
    # flooding halves the speed on the first road: 120 s > 80 s, so the next goes to exit 2
    net.set_speed_factor(np.array([0.5, 1.0]))
    net.add_vehicles(0, 200.0, dest_set=[1, 2])
    net.add_vehicles(0, 200.0, dest_node=1)  # bound for exit 1 alone: 120 s at half speed
    net.advance(1000.0)
    assert net.dest_node.tolist() == [1, 2, 1]
    assert net.arrival_time_s[1:].tolist() == pytest.approx([280.0, 320.0])
