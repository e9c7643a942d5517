"""More evacuation checks: repeated warnings, the never-warned share, quantiles, time series."""

from __future__ import annotations

import numpy as np
import pytest
from test_evacuation import X0, Y0, grid_world, hh_events, node_xy, rich, run, scenario, world_of

from emtwin.errors import SimulationError
from emtwin.sim.evacuation.records import weighted_quantile

AT_ONCE = {"curve": "table", "table": [[0, 1.0]]}  # everyone leaves when warned
WORLD = {"terrain": {"dem": "d.tif"}, "roads": "r.geojson"}
#: a 50 m square around node 0 of the test worlds (which sits 5 m in from X0, Y0)
CORNER = [[X0, Y0], [X0 + 50, Y0], [X0 + 50, Y0 - 50], [X0, Y0 - 50]]


# ---------------------------------------------------------------------------- warnings


def line_world(people: int = 4):
    """Home (node 0, *people*) -> 1000 m at 10 m/s -> exit (node 1)."""
    return world_of({0: (0, 0), 1: (1000, 0)}, [(0, 1, "a", 10.0)], homes=[(0, people)])


def _one_trip_each(res, n: int, at: float) -> None:
    """*n* households of one each left once, at *at* s, and each is out once (100 s on)."""
    dep = hh_events(res, "departed")
    assert len(dep) == n and dep.entity.nunique() == n
    assert dep.time_s.tolist() == [at] * n
    out = hh_events(res, "out")
    assert len(out) == n and out.entity.nunique() == n
    s = res.summary["evacuation"]
    assert s["vehicles"] == n and s["out"] == n and s["households_by_state"]["out"] == n


def test_a_warn_action_before_warning_at_warns_once() -> None:
    # warning.at 10 min, but `warn: all` at 5 min: the order at 5 min counts; the
    # scheduled one at 10 min changes nothing (no second warning, departure or car).
    w = line_world()
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 1)], "warning": {"at": "10min"}},
                  actions=[{"at": "5min", "warn": "all"}],
                  world={**WORLD, "population": {"total": 4, "household_size": 1}})  # fmt: skip
    _, res = run(sc, w)
    warn = hh_events(res, "warning")
    assert warn.time_s.tolist() == [300.0] and warn.entity.tolist() == ["all"]
    assert warn.d.iloc[0] == {"households": 4, "people": 4}
    _one_trip_each(res, 4, 300.0)


def test_a_warn_action_before_a_zones_own_warning_warns_it_once() -> None:
    # zone z (all 4 households) has its own warning at 20 min; `warn: z` at 5 min
    # and `warn: all` at 15 min. z is warned once, at 5 min; "all" at 15 min finds
    # every zone warned already (households outside every zone: none, warned at 0).
    w = line_world()
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 1)], "warning": {"at": 0},
                   "zones": [{"name": "z", "area": CORNER, "warning": {"at": "20min"}}]},
                  actions=[{"at": "5min", "warn": "z"}, {"at": "15min", "warn": "all"}],
                  world={**WORLD, "population": {"total": 4, "household_size": 1}})  # fmt: skip
    sim, res = run(sc, w)
    warn = hh_events(res, "warning")
    assert list(zip(warn.time_s, warn.entity, strict=True)) == [(0.0, "outside zones"),
                                                                (300.0, "z")]  # fmt: skip
    assert warn.d.map(lambda d: d["households"]).tolist() == [0, 4]
    _one_trip_each(res, 4, 300.0)
    assert sim.component("evacuation").warned_t.tolist() == [300.0] * 4


def test_the_conservation_check_catches_a_second_vehicle() -> None:
    # after a clean run, give household 0 another car: its first car is now
    # neither its current one nor one left behind by a transfer.
    w = line_world()
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 1)]},
                  world={**WORLD, "population": {"total": 4, "household_size": 1}})  # fmt: skip
    sim, _ = run(sc, w)
    comp = sim.component("evacuation")
    assert comp.check_conservation()["out"] == 4
    comp._add_vehicles(np.array([0]), np.array([0]), np.array([7200.0]),
                       np.array([comp._g_all]))  # fmt: skip
    with pytest.raises(SimulationError, match="neither their household's current one"):
        comp.check_conservation()


def test_the_never_share_of_households_is_never_warned() -> None:
    # 10,000 households of one outside every zone (never = 0.2) and 10,000 in zone
    # z with its own warning (never = 0.5), both issued at 0 with instant reach.
    # The unwarned share of each is binomial: within 3 sigma = 3 sqrt(p (1-p) / n)
    # of p (0.012 and 0.015); the unwarned never leave.
    n = 10_000
    w = world_of({0: (0, 0), 1: (100, 0), 2: (200, 0)}, [(0, 1, "a", 10.0), (2, 1, "b", 10.0)],
                 homes=[(0, n), (2, n)])  # fmt: skip
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 1)],
                   "warning": {"at": 0, "never": 0.2},
                   "zones": [{"name": "z", "area": CORNER, "warning": {"at": 0, "never": 0.5}}]},
                  duration=1, seed=5,
                  world={**WORLD, "population": {"total": 1, "household_size": 1}})  # fmt: skip
    sim, res = run(sc, w)
    comp = sim.component("evacuation")
    unwarned = np.isinf(comp.warned_t)
    in_z = comp.zone == 0
    assert in_z.sum() == n and (comp.hh.node[in_z] == 0).all()
    for mask, p in ((in_z, 0.5), (~in_z, 0.2)):
        share = unwarned[mask].mean()
        assert abs(share - p) < 3 * np.sqrt(p * (1 - p) / n), (p, share)
    assert (comp.warned_t[~unwarned] == 0.0).all()
    assert np.isinf(comp.depart_t[unwarned]).all() and (comp.vehicle[unwarned] < 0).all()
    assert res.summary["evacuation"]["warned"] == int((~unwarned).sum())


def test_warned_counts_only_those_reached_before_the_end() -> None:
    # 2,000 households of one warned at 0 with exponential reach, mean 10 min, in a
    # 10 min run: a share 1 - exp(-1) = 0.632 have heard it by the end; the others'
    # reach times lie after it and must not count as warned (within 3 sigma).
    n = 2_000
    w = world_of({0: (0, 0), 1: (1000, 0)}, [(0, 1, "a", 10.0)], homes=[(0, n)])
    sc = scenario({"departure": AT_ONCE, "exits": [node_xy(w, 1)],
                   "warning": {"at": 0, "reach": "exponential", "reach_time": "10min"}},
                  duration="10min", seed=11,
                  world={**WORLD, "population": {"total": 1, "household_size": 1}})  # fmt: skip
    sim, res = run(sc, w)
    comp = sim.component("evacuation")
    heard = int((comp.warned_t <= 600.0).sum())
    assert 0 < heard < n  # some reach times fall after the end
    p = 1 - np.exp(-1.0)
    assert abs(heard / n - p) < 3 * np.sqrt(p * (1 - p) / n)
    assert res.summary["evacuation"]["warned"] == heard
    assert res.timeseries["warned"].iloc[-1] == heard


# ---------------------------------------------------------------------------- records


def test_weighted_quantile_with_unequal_weights_by_hand() -> None:
    # values 3, 1, 2, 4 with weights 1, 5, 2, 2; sorted: 1 (5), 2 (2), 3 (1), 4 (2),
    # cumulative weight 5, 7, 8, 10 of 10. The q-quantile is the smallest value
    # with at least q x 10 at or below it: q = 0.5 -> 1 (5 >= 5), 0.6 -> 2, 0.7 -> 2
    # (7 >= 7 exactly), 0.75 -> 3 (8 >= 7.5), 0.9 -> 4, 0 -> 1, 1 -> 4.
    v = np.array([3.0, 1.0, 2.0, 4.0])
    wt = np.array([1.0, 5.0, 2.0, 2.0])
    got = {q: weighted_quantile(v, wt, q) for q in (0.0, 0.5, 0.6, 0.7, 0.75, 0.9, 1.0)}
    assert got == {0.0: 1.0, 0.5: 1.0, 0.6: 2.0, 0.7: 2.0, 0.75: 3.0, 0.9: 4.0, 1.0: 4.0}
    # unit weights: NumPy's inverted-CDF quantile
    x = np.random.default_rng(0).random(101)
    for q in (0.1, 0.5, 0.9):
        assert weighted_quantile(x, np.ones(101), q) == np.quantile(x, q, method="inverted_cdf")
    assert np.isnan(weighted_quantile(np.array([]), np.array([]), 0.5))


def test_the_time_series_agrees_with_the_households_and_events() -> None:
    # the rich grid run (reach spread over time, walkers, a closure, a zone warned
    # by action): at every output time t > 0, warned is the people with warning
    # time <= t; departed, sheltered and out are the people of those events up to
    # t; departed splits into on_road + sheltered + out + stranded.
    sim, res = run(rich(1), grid_world())
    comp = sim.component("evacuation")
    p = comp.hh.people
    ts = res.timeseries[res.timeseries.time_s > 0]
    assert len(ts) == 24
    for col in ("departed", "sheltered", "out"):
        ev = hh_events(res, col)
        people = ev.d.map(lambda d: d["people"])
        assert ts[col].tolist() == [int(people[ev.time_s <= t].sum()) for t in ts.time_s], col
    assert ts.warned.tolist() == [int(p[comp.warned_t <= t].sum()) for t in ts.time_s]
    assert (ts.departed == ts.on_road + ts.sheltered + ts.out + ts.stranded).all()
    assert ts.warned.is_monotonic_increasing and ts.warned.iloc[-1] < p.sum()  # never: 5 %
    last = ts.iloc[-1]
    s = res.summary["evacuation"]
    assert (last.sheltered, last.out, last.stranded) == (s["sheltered"], s["out"], s["stranded"])
