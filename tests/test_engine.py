"""The engine core: clock, seeds, plan timeline, results and the output folder."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Scenario
from emtwin.sim import SUMMARY_KEYS, Component, Simulation
from emtwin.sim.components import REGISTRY
from emtwin.sim.engine import _component_seed, check_actions
from emtwin.sim.outputs import write_results


def scenario(**over: Any) -> Scenario:
    data = {"name": "t", "seed": 5, "duration": "1h", "outputs": {"every": "10min"},
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"}}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


def test_world_only_run_samples_every_output_time(small_world) -> None:
    res = Simulation(scenario(), world=small_world).run()
    assert res.timeseries["time_s"].tolist() == [0, 600, 1200, 1800, 2400, 3000, 3600]
    for section, keys in SUMMARY_KEYS.items():
        assert set(keys) <= set(res.summary[section])
    assert res.summary["flood"]["peak_volume_m3"] is None  # no flood in this run
    assert res.summary["run"]["seed"] == 5 and res.summary["run"]["scenario"] == "t"
    assert res.summary["world"]["edges"] == 8


def test_close_and_open_road_at_their_times(small_world) -> None:
    sc = scenario(actions=[{"at": "15min", "close_road": "north"},
                           {"at": "35min", "open_road": "north street"}])  # fmt: skip
    sim = Simulation(sc, world=small_world)
    res = sim.run()
    ts = res.timeseries.set_index("time_s")["roads_closed_by_plan"]
    # both directed edges of 'north' are closed from 900 s to 2100 s
    assert ts.loc[600] == 0 and ts.loc[1200] == 2 and ts.loc[1800] == 2 and ts.loc[2400] == 0
    ev = res.events
    closed = ev[ev.kind == "road_closed"]
    assert closed.time_s.tolist() == [900.0] and closed.entity.tolist() == ["north"]
    assert ev[ev.kind == "road_opened"].time_s.tolist() == [2100.0]
    assert sorted(ev[ev.kind == "action"].entity) == ["close_road", "open_road"]
    assert np.isnan(sim.roads.first_closed_s[2:]).all()
    assert (sim.roads.first_closed_s[:2] == 900.0).all()


def test_unhandled_action_is_an_error_at_validation() -> None:
    sc = scenario(world={"terrain": {"dem": "dem.tif"}},
                  actions=[{"at": "10min", "close_road": "north"}])  # fmt: skip
    (problem,) = check_actions(sc)
    assert problem.startswith("actions.0: close_road: it is carried out by the roads component")
    assert "give world.roads" in problem


def test_action_naming_a_missing_road_is_an_error(small_world) -> None:
    sc = scenario(actions=[{"at": "10min", "close_road": "bridge-north"}])
    with pytest.raises(ScenarioError, match="actions.0: close_road: no road .*bridge-north"):
        Simulation(sc, world=small_world)


def test_action_after_the_end_does_not_happen(small_world, caplog) -> None:
    res = Simulation(scenario(actions=[{"at": "2h", "close_road": "north"}]),
                     world=small_world).run()  # fmt: skip
    assert "after the end of the run" in caplog.text
    assert (res.events.kind != "road_closed").all()


def test_subscribers_hear_events_in_order() -> None:
    from emtwin.sim.recorder import Recorder

    rec, heard = Recorder(), []
    rec.subscribe("stranded", lambda t, e, **kw: heard.append((t, e, kw["node"], kw["people"])))
    rec.event(10.0, "departed", "h1", node=3)
    rec.event(20.0, "stranded", "h2", node=4, people=3)
    assert heard == [(20.0, "h2", 4, 3)] and rec.n_events == 2


def test_component_seeds_do_not_depend_on_other_components() -> None:
    a = np.random.default_rng(_component_seed(7, "evacuation")).random(5)
    b = np.random.default_rng(_component_seed(7, "evacuation")).random(5)
    c = np.random.default_rng(_component_seed(7, "dispatch")).random(5)
    d = np.random.default_rng(_component_seed(8, "evacuation")).random(5)
    assert (a == b).all() and not np.allclose(a, c) and not np.allclose(a, d)


class Counter(Component):
    """A test component: counts Poisson arrivals at 1/min, needs shelters."""

    name: ClassVar[str] = "counter"
    requires: ClassVar[tuple[str, ...]] = ("shelters",)
    samples: ClassVar[dict[str, str]] = {"arrivals": "count"}

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        return True

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.n = 0

    def run(self):
        while True:
            yield self.env.timeout(self.rng.exponential(60.0))
            self.n += 1
            self.sim.recorder.event(self.env.now, "arrival", str(self.n))

    def sample(self) -> dict[str, float]:
        return {"arrivals": self.n}

    def summary(self) -> dict[str, Any]:
        return {"arrivals": self.n}


@pytest.fixture()
def counter():
    REGISTRY.append(Counter)
    yield Counter
    REGISTRY.remove(Counter)


def test_same_seed_same_results_other_seed_differs(small_world, counter) -> None:
    r1 = Simulation(scenario(), world=small_world).run()
    r2 = Simulation(scenario(), world=small_world).run()
    r3 = Simulation(scenario(seed=6), world=small_world).run()
    pd.testing.assert_frame_equal(r1.events, r2.events)
    pd.testing.assert_frame_equal(r1.timeseries, r2.timeseries)
    assert not r1.events.equals(r3.events)
    # a Poisson stream at 1/min over 1 h: 60 expected; 4 sigma is about 31
    assert abs(r1.summary["counter"]["arrivals"] - 60) < 31
    assert (np.diff(r1.timeseries["arrivals"]) >= 0).all()


def test_missing_world_part_is_named(small_world, counter) -> None:
    small_world.places.shelters = small_world.places.shelters.iloc[0:0]
    with pytest.raises(ScenarioError, match="counter component needs world.shelters"):
        Simulation(scenario(), world=small_world)


def test_outputs_written_whole_or_not_at_all(small_world, tmp_path) -> None:
    res = Simulation(scenario(), world=small_world).run()
    out = tmp_path / "run"
    write_results(res, out)
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "events.parquet", "timeseries.parquet", "roads.geojson",
            "scenario.yaml"} <= names  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["seed"] == 5 and summary["flood"]["cells"] is None
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 7

    def boom(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_results(res, tmp_path / "other", extra={"map.html": boom})
    assert not (tmp_path / "other").exists()
    with pytest.raises(RuntimeError):
        write_results(res, out, extra={"map.html": boom})
    assert (out / "summary.json").exists()  # the older complete folder is kept
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
