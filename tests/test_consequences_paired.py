"""Warning earlier lowers the expected loss of life, run by run on common random numbers.

The small version of ``benchmarks/consequences_paired.py`` (20 pairs of the riverside
drill): a flat 500 m box under 0.5 m/h of rain, 40 people at home (households of one),
one road of 400 m to the exit, departures spread over a Rayleigh curve. The road
closes at 0.3 m (36 min); whoever has not left by then stays at home in rising water.
Pair *i* runs the base plan (warning at 20 min) and the earlier plan (warning at 0)
with the same seed; the earlier plan must lower ``life_loss_mean`` in every pair.
"""

from __future__ import annotations

import math

import pytest
from test_evacuation import scenario, world_of

from emtwin.sim import Simulation

SEEDS = (1, 2, 3)
PEOPLE = 40
DURATION_H = 1.5
RAIN_M_H = 0.5


def _world():  # noqa: ANN202
    return world_of({0: (0, 0), 1: (400, 0)}, [(0, 1, "out", 10.0), (1, 0, "out", 10.0)],
                    homes=[(0, PEOPLE)], cells=50)  # fmt: skip


def _life_loss(warn_at: str, seed: int) -> dict:
    world = _world()
    evac = {"warning": {"at": warn_at}, "departure": {"curve": "rayleigh", "sigma": "15min"},
            "exits": [[float(world.roads.node_x[1]), float(world.roads.node_y[1])]]}  # fmt: skip
    sc = scenario(evac, seed=seed, duration=f"{DURATION_H}h", coupling="5min",
                  world={"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson",
                         "population": {"total": PEOPLE, "household_size": 1}},
                  hazards=[{"type": "flood", "rain": [[0, RAIN_M_H * 1000]],
                            "road_closure_depth": 0.3}],
                  consequences={})  # fmt: skip
    return Simulation(sc, world=world).run().summary["consequences"]


@pytest.fixture(scope="module")
def pairs() -> list[tuple[dict, dict]]:
    return [(_life_loss("20min", s), _life_loss("0min", s)) for s in SEEDS]


def test_warning_earlier_lowers_the_expected_loss_in_every_pair(pairs) -> None:
    diffs = [early["life_loss_mean"] - base["life_loss_mean"] for base, early in pairs]
    assert all(d < 0 for d in diffs), diffs
    assert sum(diffs) / len(diffs) < 0


def test_the_loss_stays_below_everyone_at_home_to_the_end(pairs) -> None:
    # Jonkman et al. (2008), remaining zone (rise 0.5 m/h, under 2.1 m): nobody leaving,
    # 0.75 m at the end, F = Phi((ln 0.75 - 7.60) / 2.75)
    h = RAIN_M_H * DURATION_H
    f = 0.5 * math.erfc(-((math.log(h) - 7.60) / 2.75) / math.sqrt(2.0))
    for base, early in pairs:
        assert 0 < early["life_loss_mean"] < base["life_loss_mean"] < PEOPLE * f
        assert base["people"] == early["people"] == PEOPLE


def test_the_same_plan_on_the_same_seed_gives_the_same_pair(pairs) -> None:
    again = _life_loss("20min", SEEDS[0])
    assert again == pairs[0][0]
    assert _life_loss("20min", SEEDS[1]) != again  # another seed, other departures
