"""The dispatch core against queueing theory (references.md section 5).

The core is driven directly, through the same code a run uses (DispatchCore,
the closest-unit policy, the on-scene sampler of the Incidents component),
with travel times from a zone table: zero for M/M/c, and 1 s / 2 s (against
1 h of service) to give the hypercube's atoms their preferred units.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
import simpy

from emtwin.scenarios.models import Distribution
from emtwin.sim.components.incidents import draw_duration
from emtwin.sim.dispatch import Call, DispatchCore, MatrixTravel, Unit, closest
from emtwin.sim.recorder import Recorder


def erlang_c(lam: float, mu: float, c: int) -> tuple[float, float]:
    """P(wait) and mean wait in queue of M/M/c (references.md section 5)."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait, p_wait / (c * mu - lam)


def drive(core: DispatchCore, env: simpy.Environment, times: np.ndarray, zones: np.ndarray,
          service: np.ndarray, priority: np.ndarray | None = None) -> None:  # fmt: skip
    """Submit one call per entry at its time, zone and on-scene time; run to the end."""

    def feed():
        for i, t in enumerate(times):
            yield env.timeout(t - env.now)
            core.submit(Call(f"c{i}", float(env.now), int(zones[i]), on_scene_s=float(service[i]),
                             priority=1 if priority is None else int(priority[i])))  # fmt: skip

    env.process(feed())
    env.run()


def test_erlang_c_reference_numbers() -> None:
    p_wait, wq = erlang_c(4 / 3600, 1 / 2400, 4)
    assert p_wait == pytest.approx(0.3784, abs=1e-4) and wq / 60 == pytest.approx(11.35, abs=0.01)


def test_mmc_wait_matches_erlang_c() -> None:
    # c = 4 units, calls at 4/h, exponential service with mean 40 min, zero travel.
    # 150,000 calls: over seeds the mean wait scatters by about 2 % and P(wait) by 0.005
    n, lam = 150_000, 4 / 3600
    rng = np.random.default_rng(20240601)
    times = np.cumsum(rng.exponential(1 / lam, n))
    service = draw_duration(Distribution(exponential="40min"), rng, n)
    env = simpy.Environment()
    units = [Unit(f"u{i}", "ambulance", "S", 0) for i in range(4)]
    core = DispatchCore(env, units, MatrixTravel(np.zeros((1, 1))), closest, recorder=Recorder())
    drive(core, env, times, np.zeros(n, dtype=int), service)
    wait = np.array([c.wait_s for c in core.calls])
    assert np.isfinite(wait).all() and len(wait) == n
    p_wait, wq = erlang_c(lam, 1 / 2400, 4)
    assert wait.mean() == pytest.approx(wq, rel=0.05)  # 11.35 min
    assert (wait > 0).mean() == pytest.approx(p_wait, abs=0.02)  # 0.3784


def test_fifo_waits_equal_the_kiefer_wolfowitz_recursion() -> None:
    # FIFO with c identical servers: each call starts when it arrives or when the
    # earliest server frees, whichever is later; same draws, waits equal to round-off
    n = 5000
    rng = np.random.default_rng(11)
    times = np.cumsum(rng.exponential(600.0, n))
    service = rng.exponential(2000.0, n)
    env = simpy.Environment()
    units = [Unit(f"u{i}", "ambulance", "S", 0) for i in range(3)]
    core = DispatchCore(env, units, MatrixTravel(np.zeros((1, 1))), closest, recorder=Recorder())
    drive(core, env, times, np.zeros(n, dtype=int), service)
    free, expected = [0.0, 0.0, 0.0], np.empty(n)
    for i in range(n):
        f = heapq.heappop(free)
        start = max(f, times[i])
        expected[i] = start - times[i]
        heapq.heappush(free, start + service[i])
    assert np.allclose([c.wait_s for c in core.calls], expected, rtol=0, atol=1e-6)
    assert (expected > 0).mean() > 0.3  # a busy system, so the test means something


def busy_intervals(rec: Recorder, unit: str) -> np.ndarray:
    """(start, end) of each assignment of *unit*: its dispatch and on_scene_end events."""
    ev = rec.events()
    ev = ev[ev.kind.isin(["dispatch", "on_scene_end"])]
    mine = ev[ev.details.str.contains(f'"unit": "{unit}"', regex=False)]
    kinds, t = mine.kind.to_numpy(), mine.time_s.to_numpy()
    # one assignment at a time per unit: the events alternate
    assert (kinds[0::2] == "dispatch").all() and (kinds[1::2] == "on_scene_end").all()
    return np.column_stack([t[0::2], t[1::2]])


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Total time two sorted lists of disjoint intervals overlap."""
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        total += max(0.0, hi - lo)
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


def test_two_unit_hypercube_state_probabilities_and_workloads() -> None:
    # Larson's hypercube, two units, zero queue (calls lost when both are busy): atom 1
    # (rate 0.6) prefers unit 1, atom 2 (rate 0.4) unit 2, mu = 1 (per hour).
    n, hour = 60_000, 3600.0
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.exponential(hour / 1.0, n))
    zones = (rng.random(n) >= 0.6).astype(int)  # 0: atom 1, 1: atom 2
    service = draw_duration(Distribution(exponential="1h"), rng, n)
    env, rec = simpy.Environment(), Recorder()
    units = [Unit("u1", "ambulance", "S1", 0), Unit("u2", "ambulance", "S2", 1)]
    travel = MatrixTravel(np.array([[1.0, 2.0], [2.0, 1.0]]))
    core = DispatchCore(env, units, travel, closest, recorder=rec, max_wait_s=0.0)
    drive(core, env, times, zones, service)
    end = float(env.now)
    b1, b2 = busy_intervals(rec, "u1"), busy_intervals(rec, "u2")
    r1 = float((b1[:, 1] - b1[:, 0]).sum()) / end
    r2 = float((b2[:, 1] - b2[:, 0]).sum()) / end
    both = overlap(b1, b2) / end
    assert both == pytest.approx(0.20, abs=0.01)
    assert r1 - both == pytest.approx(0.22, abs=0.01)
    assert r2 - both == pytest.approx(0.18, abs=0.01)
    assert 1 - r1 - r2 + both == pytest.approx(0.40, abs=0.01)
    assert r1 == pytest.approx(0.42, abs=0.01) and r2 == pytest.approx(0.38, abs=0.01)
    lost = sum(c.state == "lost" for c in core.calls) / n
    assert lost == pytest.approx(0.20, abs=0.01)  # Erlang B(2, 1): arrivals see time averages


def _one_unit(order: str, max_wait: float | None = None) -> tuple[DispatchCore, Recorder]:
    env, rec = simpy.Environment(), Recorder()
    core = DispatchCore(env, [Unit("u", "ambulance", "S", 0)], MatrixTravel(np.zeros((1, 1))),
                        closest, order=order, recorder=rec, max_wait_s=max_wait)  # fmt: skip
    # call 0 (priority 2) keeps the unit busy 0-100 s; 1 (priority 2) at 10 s; 2 (priority 1)
    # at 20 s
    drive(core, env, np.array([0.0, 10.0, 20.0]), np.zeros(3, dtype=int),
          np.array([100.0, 100.0, 100.0]), priority=np.array([2, 2, 1]))  # fmt: skip
    return core, rec


def test_fifo_and_priority_orders() -> None:
    core, _ = _one_unit("fifo")
    assert [c.dispatch_s for c in core.calls] == [0.0, 100.0, 200.0]
    core, _ = _one_unit("priority")
    assert [c.dispatch_s for c in core.calls] == [0.0, 200.0, 100.0]


def test_calls_waiting_longer_than_max_wait_are_lost() -> None:
    core, rec = _one_unit("fifo", max_wait=50.0)
    assert [c.state for c in core.calls] == ["done", "lost", "lost"]
    ev = rec.events()
    assert ev[ev.kind == "call_lost"].time_s.tolist() == [60.0, 70.0]
