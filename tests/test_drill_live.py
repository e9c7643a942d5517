"""The drill's live figures and map feed read only the shared state: households, shelters,
calls and units as the evacuation and dispatch publish them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from drill_world import drill_scenario, drill_world

from emtwin.drill.live import MapFeed, headline, index_metrics
from emtwin.sim import Simulation
from emtwin.sim.evacuation.states import HOME


@pytest.fixture(scope="module")
def played() -> Simulation:
    """The drill world played to 50 min: warned at 40 min, calls coming in since the start."""
    world = drill_world()
    sc = drill_scenario(world)
    sc.flood.backend = "cpu"
    sim = Simulation(sc, world=world)
    sim.run_until(3000.0)
    return sim


def _events(sim: Simulation, kind: str):
    ev = sim.recorder.events()
    return ev[(ev["kind"] == kind) & (ev["time_s"] <= float(sim.env.now))]


def test_headline_counts_agree_with_the_event_log(played: Simulation) -> None:
    sim = played
    h = headline(sim)
    people = sim.state.get("household__people")
    assert h["people"] == int(np.sum(people)) > 0
    # every household left home or not; together they are everyone
    st = sim.state.get("household__state")
    assert h["left"] + int(np.sum(people[st == HOME])) == h["people"]
    assert 0 < h["warned"] <= h["people"]  # warned from 40 min on
    calls = _events(sim, "call")
    assert h["calls"] == len(calls) > 0
    assert h["calls_lost"] == len(_events(sim, "call_lost"))
    reached = _events(sim, "arrival")["entity"].nunique()
    assert h["calls_waiting"] <= h["calls"] - reached
    assert h["roads_closed"] == int((~sim.state.roads.open).sum()) >= 2  # v2-2, by the plan
    m = index_metrics(sim)
    assert m["evacuation.people"] == h["people"] and m["dispatch.calls"] == h["calls"]


def test_map_feed_reads_the_shared_fields(played: Simulation) -> None:
    sim = played
    feed = MapFeed(sim.world)
    occ = sim.state.get("shelter__occupancy")
    names = [str(n) for n in feed.parts["places"]["shelters"]["name"]]
    assert feed.shelters(sim) == [round(occ.get(n, 0.0), 1) for n in names]
    assert sum(feed.shelters(sim)) == pytest.approx(headline(sim)["sheltered"], abs=1.0)
    units = feed.units(sim)
    assert sorted(u["id"] for u in units) == ["ambulance-1", "ambulance-2", "ambulance-3"]
    assert {u["st"] for u in units} == {"A", "B"}
    table = sim.state.get("call__table")
    assert len(table) == len(_events(sim, "call"))
    assert set(table["id"]) == {str(e) for e in _events(sim, "call")["entity"]}
    shown = {c["id"] for c in feed.calls(sim, keep_done_s=1e9)}
    assert shown == set(table["id"])  # with no time limit, every call so far is on the map
    frame = json.loads(json.dumps(feed.frame(sim)))
    assert len(frame["roads"]) == len(feed.first)
