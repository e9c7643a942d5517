"""The four built-in drills run, and their first minutes check out by hand.

Each runs through the `emtwin run` command for a short stretch (10-35 s of
wall time each on the 2-core machine) and is checked against numbers taken
from its own scenario file, not from an earlier run: the volume its
hydrograph or rain put in, the level on its sea boundary, the time its dam
is released, the people of the town and the units of its response. Every
drill has a flood, an evacuation, a response and an `uncertain:` section
whose every draw is a valid scenario; its "town" gauge stands on land.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import Point
from typer.testing import CliRunner

from emtwin.cli import app
from emtwin.geo.synthetic import synthetic_town
from emtwin.scenarios.loader import load_scenario
from emtwin.sim.engine import component_classes

runner = CliRunner()
DRILLS = ("riverside", "cloudburst", "dam-break", "surge")


def _run(name: str, duration: str, out: Path) -> tuple[dict, pd.DataFrame]:
    res = runner.invoke(app, ["run", name, "--duration", duration, "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    flood = summary["flood"]
    assert abs(flood["mass_error_rel"]) < 1e-9
    # the whole drill ran: every resident evacuated or not, every unit of the file on duty
    sc = load_scenario(name)
    assert summary["evacuation"]["people"] == synthetic_town(sc.world.terrain.builtin) \
        .buildings.occupants.sum() == 20000  # fmt: skip
    assert summary["dispatch"]["units"] == sum(r.count for r in sc.response.resources)
    # flooded land leaves out the river (and sea, reservoir) that the wet area counts
    assert flood["peak_flooded_area_m2"] < flood["peak_wet_area_m2"]
    return flood, pd.read_csv(out / "gauges.csv")


def _spec(name: str):
    return load_scenario(name).hazards[0]


def test_riverside_inflow_volume_is_the_hydrograph_integral(tmp_path: Path) -> None:
    flood, gauges = _run("riverside", "20min", tmp_path)
    (inflow,) = _spec("riverside").inflows
    t, q = np.array(inflow.hydrograph).T
    tt = np.linspace(0.0, 1200.0, 12001)
    expected = np.trapezoid(np.interp(tt, t, q), tt)  # 200,000 m3 (150 -> 183 m3/s)
    assert flood["ledger_m3"]["inflow_in"] == pytest.approx(expected, rel=1e-9)
    assert flood["max_depth_by_gauge"]["bridge"] > 0.5  # the river runs under the bridge


def test_cloudburst_rain_volume_and_pooling(tmp_path: Path) -> None:
    flood, gauges = _run("cloudburst", "30min", tmp_path)
    spec = _spec("cloudburst")
    # 100 mm/h from 15 min: 25 mm by 30 min over every cell of the domain
    rate = dict(spec.rain)[900.0]
    with rasterio.open(tmp_path / "max_depth.tif") as src:
        cell_area = abs(src.transform.a * src.transform.e)
    expected = rate / 1000.0 * (1800.0 - 900.0) / 3600.0 * flood["cells"] * cell_area
    assert flood["ledger_m3"]["rain_in"] == pytest.approx(expected, rel=1e-12)
    # nothing pools before the rain; the underpasses hold water after 15 min of it
    under = gauges[gauges.gauge == "underpass"].set_index("time_s").depth_m
    assert under.loc[:600].max() == 0.0
    assert under.loc[1800] > 0.1


def test_dam_break_wave_comes_after_the_release(tmp_path: Path) -> None:
    flood, gauges = _run("dam-break", "35min", tmp_path)
    (breach,) = _spec("dam-break").breaches
    release = breach.reservoir.release_at  # 30 min
    below = gauges[gauges.gauge == "below-dam"].set_index("time_s").depth_m
    assert below.loc[: release - 1].max() == 0.0  # the dam holds
    assert below.loc[release + 300 :].max() > 1.0  # then the wave passes
    # the reservoir holds the 'about 20 million m3' of the scenario's description
    assert flood["ledger_m3"]["initial"] == pytest.approx(20e6, rel=0.01)


def test_surge_shore_follows_the_sea_level(tmp_path: Path) -> None:
    flood, gauges = _run("surge", "30min", tmp_path)
    t, level = np.array(_spec("surge").boundary["east"].level).T
    shore = gauges[(gauges.gauge == "shore") & (gauges.time_s >= 600)]
    sea = np.interp(shore.time_s, t, level)  # 0.5 m rising to 0.75 m at 30 min
    assert np.abs(shore.level_m.to_numpy() - sea).max() < 0.15  # seiche of a few cm
    assert flood["ledger_m3"]["boundary_in"] > 0.0


@pytest.mark.parametrize("name", DRILLS)
def test_every_drill_has_a_flood_an_evacuation_and_a_response(name: str) -> None:
    sc = load_scenario(name)
    enabled = {c.name for c in component_classes() if c.enabled(sc)}
    assert {"flood", "evacuation", "dispatch", "incidents"} <= enabled
    assert sc.evacuation.exits and sc.response.resources and sc.uncertain.parameters


@pytest.mark.parametrize("name", (*DRILLS, "typhoon"))
def test_every_drill_reports_damage_and_life_loss(name: str) -> None:
    """Issue 19: the consequences component is on in every built-in drill."""
    sc = load_scenario(name)
    enabled = {c.name for c in component_classes() if c.enabled(sc)}
    assert "consequences" in enabled and sc.consequences.life_loss.method == "jonkman"


@pytest.mark.parametrize("name", DRILLS)
def test_every_uncertain_draw_of_a_drill_is_a_valid_scenario(name: str) -> None:
    from emtwin.batch import uncertain as unc
    from emtwin.batch.ensemble import load_plan
    from emtwin.batch.worker import _validate

    plan = load_plan(name)
    params = unc.parameters(plan.scenario)
    assert len(params) == len(plan.scenario.uncertain.parameters) >= 3
    draws = unc.sample(params, seed=plan.scenario.seed, runs=8,
                       method=plan.scenario.uncertain.method)  # fmt: skip
    for draw in draws:
        data = unc.apply_edits(plan.data, unc.edits(plan.scenario, params, draw))
        _validate(data, plan.base_dir)


@pytest.mark.parametrize("name", DRILLS)
def test_the_town_gauge_stands_on_land_above_the_river(name: str) -> None:
    """Not in the channel (the terrain's water at rest) and above the bank top of its column."""
    sc = load_scenario(name)
    (gauge,) = [g for g in sc.flood.gauges if g.name == "town"]
    t = synthetic_town(sc.world.terrain.builtin).terrain
    r, c = (int(v) for v in t.cell_of(*gauge.at))
    assert not t.water[r, c]
    assert t.z[r, c] > t.z[t.water[:, c], c].max()
    # on a street of the town, not in a back yard
    roads = synthetic_town(sc.world.terrain.builtin).roads
    assert roads.distance(Point(gauge.at)).min() < 1.0
