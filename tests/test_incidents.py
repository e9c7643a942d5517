"""Calls: the duration sampler, the background Poisson stream, and calls from hazard events."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_dispatch import NODE, bridge_world, inject, of, scenario

from emtwin.scenarios.models import Distribution
from emtwin.sim import Simulation
from emtwin.sim.components.incidents import draw_duration

N = 200_000


@pytest.mark.parametrize(
    ("spec", "mean", "sd"),
    [
        ({"exponential": "40min"}, 2400.0, 2400.0),
        ({"lognormal": {"mean": "30min", "sd": "10min"}}, 1800.0, 600.0),
        ({"uniform": ["10min", "30min"]}, 1200.0, 1200.0 / math.sqrt(12)),
        # triangular: mean (a + b + c) / 3, variance (a2 + b2 + c2 - ab - ac - bc) / 18
        ({"triangular": [0, 600, 1800]}, 800.0, math.sqrt((600**2 + 1800**2 - 600 * 1800) / 18)),
        ("20min", 1200.0, 0.0),
    ],
)  # fmt: skip
def test_duration_sampler_moments(spec, mean, sd) -> None:
    x = draw_duration(Distribution.model_validate(spec), np.random.default_rng(1), N)
    assert x.shape == (N,) and (x >= 0).all()
    se = sd / math.sqrt(N)
    assert x.mean() == pytest.approx(mean, abs=4 * se + 1e-9)
    assert x.std() == pytest.approx(sd, rel=0.02, abs=1e-9)


def test_normal_is_truncated_at_zero() -> None:
    # mean 10 min, sd 10 min, truncated at 0: E = mu + sigma phi(a) / (1 - Phi(a)), a = -1
    phi, tail = math.exp(-0.5) / math.sqrt(2 * math.pi), 0.5 * math.erfc(-1 / math.sqrt(2))
    x = draw_duration(Distribution(normal={"mean": 600, "sd": 600}), np.random.default_rng(2), N)
    assert (x >= 0).all()
    assert x.mean() == pytest.approx(600 + 600 * phi / tail, rel=0.01)  # 772.6 s


def test_one_draw_is_a_float() -> None:
    x = draw_duration(Distribution(exponential=60), np.random.default_rng(0))
    assert isinstance(x, float) and x > 0


def background_run(hours: float, **response):
    inc = {"background_rate": "10/h",
           "types": [{"name": "medical", "share": 4, "needs": "ambulance", "priority": 1},
                     {"name": "fire", "share": 1, "needs": "fire_engine",
                      "priority": 2}]}  # fmt: skip
    resp = {"resources": [], "incidents": inc}
    resp.update(response)
    sc = scenario(duration=f"{hours}h", outputs={"every": f"{hours}h"}, response=resp)
    world = bridge_world()
    pop = world.places.population
    # two homes: node c with 1 person, node b with 3 people
    world.places.population = pop.iloc[[0, 0]].reset_index(drop=True)
    world.places.population["people"] = [1.0, 3.0]
    world.places.population["node"] = [NODE["c"], NODE["b"]]
    return Simulation(sc, world=world).run()


def test_background_stream_is_poisson_with_the_type_mix_and_people_weights() -> None:
    hours = 300
    res = background_run(hours)
    calls = of(res.events, "call")
    n = len(calls)
    assert n == pytest.approx(10 * hours, abs=4 * math.sqrt(10 * hours))
    gaps = np.diff(np.concatenate([[0.0], calls.time_s.to_numpy()]))
    assert gaps.mean() == pytest.approx(360.0, rel=4 / math.sqrt(n))
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.06)  # exponential gaps
    sd = lambda p: 4 * math.sqrt(p * (1 - p) / n)  # noqa: E731
    medical = (calls.d.map(lambda d: d["type"]) == "medical").mean()
    assert medical == pytest.approx(0.8, abs=sd(0.8))
    at_b = (calls.node == NODE["b"]).mean()
    assert at_b == pytest.approx(0.75, abs=sd(0.75))
    fire = calls[calls.d.map(lambda d: d["type"]) == "fire"]
    assert all(d["priority"] == 2 and d["needs"] == ["fire_engine"] for d in fire.d)
    # no units: every call still waits at the end
    s = res.summary["dispatch"]
    assert s["calls"] == n and s["unserved"] == n and res.timeseries.calls_waiting.iloc[-1] == n


def test_the_same_seed_gives_the_same_calls_under_any_plan() -> None:
    a = of(background_run(20).events, "call")
    b = of(background_run(20, resources=[{"type": "ambulance", "station": "B", "count": 3}],
                          dispatch="priority_then_closest").events, "call")  # fmt: skip
    assert len(a) > 100
    assert a[["time_s", "entity", "node", "details"]].equals(b[["time_s", "entity", "node",
                                                               "details"]])  # fmt: skip


def test_hazard_events_become_calls_once_per_household() -> None:
    sc = scenario(response={"resources": [{"type": "ambulance", "station": "A"}]})
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(60.0, NODE["d"]), (90.0, NODE["d"])])  # hh0, hh1
    x, y = float(sim.world.roads.node_x[NODE["e"]]), float(sim.world.roads.node_y[NODE["e"]])

    def more():
        yield sim.env.timeout(120)
        for _ in range(2):  # the same household twice: one call
            sim.recorder.event(sim.env.now, "exposed", 17, node=NODE["e"], people=3,
                               depth_m=0.8, aidr=3, x=x, y=y)  # fmt: skip

    sim.env.process(more())
    res = sim.run()
    calls = of(res.events, "call")
    assert calls.time_s.tolist() == [60.0, 90.0, 120.0]
    assert [d["source"] for d in calls.d] == ["stranded", "stranded", "exposed"]
    exposed = calls.d[2]
    # the exposed type's defaults: priority 2, boats, trucks or fire engines; people kept
    assert exposed["priority"] == 2 and exposed["needs"] == ["boat", "truck", "fire_engine"]
    assert exposed["people"] == 3 and exposed["household"] == "17" and exposed["aidr"] == 3
    assert calls.node.tolist() == [NODE["d"], NODE["d"], NODE["e"]]


def test_hazard_share_thins_the_calls() -> None:
    sc = scenario(response={"incidents": {"hazard_share": 0.3}, "resources": []})
    sim = Simulation(sc, world=bridge_world())
    n = 2000
    inject(sim, [(float(i + 1), NODE["c"]) for i in range(n)])
    calls = of(sim.run().events, "call")
    assert len(calls) / n == pytest.approx(0.3, abs=4 * math.sqrt(0.21 / n))


def test_from_hazard_false_ignores_hazard_events() -> None:
    sc = scenario(response={"incidents": {"from_hazard": False}})
    sim = Simulation(sc, world=bridge_world())
    inject(sim, [(60.0, NODE["c"])])
    res = sim.run()
    assert (res.events.kind != "call").all()
    assert res.summary["dispatch"]["calls"] == 0
    assert json.loads(res.events[res.events.kind == "stranded"].details.iloc[0])["people"] == 2


def test_rate_written_to_scenario_yaml_reads_back() -> None:
    import yaml

    from emtwin.scenarios.models import Scenario

    sc = scenario(response={"incidents": {"background_rate": "4/h",
                                          "types": [{"name": "medical"}]}})  # fmt: skip
    text = yaml.safe_dump(sc.model_dump(mode="json", by_alias=True, exclude_none=True))
    again = Scenario.model_validate(yaml.safe_load(text), context={"check_files": False})
    assert again.response.incidents.background_rate == sc.response.incidents.background_rate
    assert again.response.incidents.background_rate * 3600 == pytest.approx(4.0)
