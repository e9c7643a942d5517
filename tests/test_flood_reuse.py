"""Floods computed once: a replayed flood gives exactly the run that computes it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from conftest import UTM33, hand_roads, points
from rasterio.transform import from_origin

from emtwin.batch import run_comparison
from emtwin.batch.flood_cache import CACHE_DIR, cache_size, flood_key, run_with_cache
from emtwin.geo.index import edge_cell_index
from emtwin.geo.world import Places, Terrain, World
from emtwin.scenarios.models import Scenario
from emtwin.sim.engine import Simulation

X0, Y0 = 500000.0, 5500400.0


@pytest.fixture(scope="module")
def valley() -> World:
    """40 x 40 cells of 10 m sloping down to the west (1 %), a loop of two-way roads across
    it, 200 people in the low west, a shelter on the high east side."""
    cols = np.arange(40)
    z = np.tile(0.1 * cols, (40, 1)).astype(float)
    terrain = Terrain(z=z, mask=np.ones_like(z, dtype=bool), dx=10.0, manning=0.03,
                      transform=Affine(10.0, 0, X0, 0, -10.0, Y0))  # fmt: skip
    nodes = {1: (X0 + 25, Y0 - 45), 2: (X0 + 205, Y0 - 45), 3: (X0 + 375, Y0 - 45),
             4: (X0 + 375, Y0 - 355), 5: (X0 + 205, Y0 - 355), 6: (X0 + 25, Y0 - 355)}  # fmt: skip
    links = []
    for a, b, rid in ((1, 2, "n-west"), (2, 3, "n-east"), (3, 4, "east"), (4, 5, "s-east"),
                      (5, 6, "s-west"), (6, 1, "west"), (2, 5, "middle")):  # fmt: skip
        links += [(a, b, rid, 10.0), (b, a, rid, 10.0)]
    roads = hand_roads(nodes, links)
    places = Places(
        population=points(UTM33, [nodes[1], nodes[6]], people=[100.0, 100.0], node=[0, 5],
                          snap_m=[0.0, 0.0]),
        shelters=points(UTM33, [nodes[3]], name=["Hill"], capacity=[500.0], node=[2],
                        snap_m=[0.0]),
        stations=points(UTM33, [], name=[]),
        hospitals=points(UTM33, [], name=[]),
    )  # fmt: skip
    return World(crs=UTM33, terrain=terrain, roads=roads, places=places,
                 edge_cells=edge_cell_index(roads, terrain), name="valley")  # fmt: skip


def scenario(**over: Any) -> Scenario:
    """Rain and a river inflow on the west edge flood the low roads within 30 min."""
    flood = {"type": "flood", "rain": [[0, 60], [20 * 60, 0]], "road_closure_depth": 0.05,
             "inflows": [{"name": "river", "along": [[X0 + 5, Y0 - 5], [X0 + 5, Y0 - 395]],
                          "hydrograph": [[0, 2], [1800, 8]]}],
             "gauges": [{"name": "low", "at": [X0 + 15, Y0 - 200]}]}  # fmt: skip
    flood.update(over.pop("flood", {}))
    data = {"name": "valley", "seed": 5, "duration": "30min", "crs": "EPSG:32633",
            "outputs": {"every": "5min"},
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"},
            "hazards": [flood],
            "evacuation": {"warning": {"at": "5min"},
                           "departure": {"curve": "rayleigh", "sigma": "5min"}}}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


def timeless(summary: dict) -> dict:
    """A summary without its wall-clock timings (the only values that differ between runs)."""
    return {k: timeless(v) if isinstance(v, dict) else v for k, v in summary.items()
            if not k.endswith("wall_s")}  # fmt: skip


def assert_same_run(a: Any, b: Any) -> None:
    """Every output of two runs is identical, bit for bit (wall-clock timings aside)."""
    assert timeless(a.summary) == timeless(b.summary)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    assert a.rasters.keys() == b.rasters.keys()
    for k in a.rasters:
        np.testing.assert_array_equal(a.rasters[k], b.rasters[k])
    assert a.tables.keys() == b.tables.keys()
    pd.testing.assert_frame_equal(a.tables["gauges"], b.tables["gauges"])
    for k in a.frames:
        np.testing.assert_array_equal(a.frames[k][0], b.frames[k][0])
        np.testing.assert_array_equal(a.frames[k][1], b.frames[k][1])
    for col in ("first_closed_s", "first_closed_reason", "max_depth_m"):
        np.testing.assert_array_equal(a.roads[col].to_numpy(), b.roads[col].to_numpy())


def test_a_replayed_flood_is_the_computed_one_bit_for_bit(valley: World, tmp_path: Path) -> None:
    """The base records its flood; a plan changing only the evacuation replays it and gives
    exactly the run that computes its flood: the same road closures and their events, the
    same people sheltered, gauges, rasters and frames. A plan changing the rain does not
    share the key and computes its own."""
    base = scenario()
    later = scenario(evacuation={"warning": {"at": "10min"},
                                 "departure": {"curve": "rayleigh", "sigma": "5min"}})  # fmt: skip
    wetter = scenario(flood={"rain": [[0, 90], [20 * 60, 0]]})
    cache = tmp_path / CACHE_DIR
    rec, how = run_with_cache(base, cache, world=valley)
    assert how == "recorded" and cache_size(tmp_path) > 0
    assert_same_run(rec, Simulation(base, world=valley).run())
    closed = rec.events[rec.events.kind == "road_closed"]
    assert len(closed) >= 4  # the flood closes roads (events written by the replay too)
    assert rec.summary["evacuation"]["sheltered"] > 0
    replayed, how = run_with_cache(later, cache, world=valley)
    assert how == "replayed"
    live = Simulation(later, world=valley).run()
    assert_same_run(replayed, live)
    assert timeless(live.summary) != timeless(rec.summary)  # the plan did change the run
    wet, how = run_with_cache(wetter, cache, world=valley)
    assert how == "recorded"
    assert wet.summary["flood"]["peak_volume_m3"] > rec.summary["flood"]["peak_volume_m3"]


def test_the_key_changes_with_what_the_flood_reads_only(valley: World) -> None:
    key = flood_key(scenario(), valley)[0]
    assert flood_key(scenario(evacuation={"warning": {"at": "20min"}}), valley)[0] == key
    assert flood_key(scenario(seed=6), valley)[0] == key  # the flood draws no random numbers
    for other in (scenario(flood={"rain": [[0, 61], [20 * 60, 0]]}),
                  scenario(flood={"road_closure_depth": 0.06}),
                  scenario(flood={"theta": 0.7}),
                  scenario(duration="40min"), scenario(coupling="30s"),
                  scenario(outputs={"every": "10min"})):  # fmt: skip
        assert flood_key(other, valley)[0] != key
    z = valley.terrain.z.copy()
    z[20, 20] += 0.5  # a levee of one cell
    higher = World(crs=valley.crs, terrain=Terrain(z=z, mask=valley.terrain.mask, dx=10.0,
                   manning=0.03, transform=valley.terrain.transform),
                   roads=valley.roads, places=valley.places, edge_cells=valley.edge_cells,
                   name="valley")  # fmt: skip
    assert flood_key(scenario(), higher)[0] != key


def test_a_run_that_stops_the_flood_elsewhere_recomputes_it(valley: World, tmp_path: Path) -> None:
    """A warning at an off-step time (125 s) brings the flood to 125 s: the recording has no
    such stop, so the run computes its flood, equal to the run without a cache, and
    records it as a second variant of the key, which the next such run replays; the
    runs without the stop still replay the first."""
    cache = tmp_path / CACHE_DIR
    base = scenario()
    run_with_cache(base, cache, world=valley)
    odd = scenario(actions=[{"at": 125, "warn": "all"}])
    assert flood_key(odd, valley) == flood_key(base, valley)
    res, how = run_with_cache(odd, cache, world=valley)
    assert how == "recomputed"
    live = Simulation(odd, world=valley).run()
    assert_same_run(res, live)
    again, how = run_with_cache(odd, cache, world=valley)
    assert how == "replayed"
    assert_same_run(again, live)
    assert run_with_cache(base, cache, world=valley)[1] == "replayed"
    assert len(list(cache.glob("*/recording-*.pkl"))) == 2


def write_town(d: Path) -> Path:
    z = np.tile(10.0 + np.arange(30) * 0.2, (30, 1)).astype("float32")
    with rasterio.open(d / "dem.tif", "w", driver="GTiff", height=30, width=30, count=1,
                       dtype="float32", crs="EPSG:32633", nodata=-9999.0,
                       transform=from_origin(500000.0, 5501000.0, 20.0, 20.0)) as dst:
        dst.write(z, 1)  # fmt: skip
    (d / "base.yaml").write_text(textwrap.dedent("""\
        name: town
        seed: 3
        duration: 20min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif}
        hazards:
          - type: flood
            rain: [[0, 50], [10min, 0]]
        outputs: {every: 5min}
        uncertain:
          parameters:
            hazards.0.initial_depth: {choice: [0.0, 0.01]}
        """))
    (d / "same.yaml").write_text("seed: 3\n")
    (d / "wet.yaml").write_text("hazards: [{type: flood, rain: [[0, 100], [10min, 0]]}]\n")
    return d / "base.yaml"


def test_compare_with_reuse_writes_the_results_of_compare_without(tmp_path: Path) -> None:
    """Three plans, 4 runs: the draws of the initial depth take 2 values and the wet plan
    doubles the rain, so 4 floods are computed and the 8 other runs replay one;
    results.parquet is the same as with every flood computed."""
    base = write_town(tmp_path)
    plans = [tmp_path / "same.yaml", tmp_path / "wet.yaml"]
    on = run_comparison(base, plans, runs=4, out_dir=tmp_path / "on", workers=0)
    off = run_comparison(base, plans, runs=4, out_dir=tmp_path / "off", workers=0,
                         flood_reuse=False)  # fmt: skip
    draws = on.batch.table["param.hazards.0.initial_depth"].nunique()
    assert draws == 2  # two floods per plan that changes none (base, same), two for wet
    assert on.batch.floods == {"recorded": 2 * draws, "replayed": 12 - 2 * draws}
    assert off.batch.floods == {"off": 12} and not (tmp_path / "off" / CACHE_DIR).exists()
    a, b = (pd.read_parquet(p / "results.parquet") for p in (tmp_path / "on", tmp_path / "off"))
    drop = [c for c in a.columns if c.endswith("wall_s")]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))
    assert len(list((tmp_path / "on" / CACHE_DIR).iterdir())) == 4


def test_the_command_reports_reuse_and_can_turn_it_off(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from emtwin.cli import app

    base = write_town(tmp_path)
    runner = CliRunner()
    for flag, folder in (("--flood-reuse", "on"), ("--no-flood-reuse", "off")):
        res = runner.invoke(app, ["compare", str(base), "--plan", str(tmp_path / "same.yaml"),
                                  "--runs", "1", "--workers", "0", "--out",
                                  str(tmp_path / folder), flag, "-q"])  # fmt: skip
        assert res.exit_code == 0, res.output
        reused = "flood: computed in 1 runs, replayed in 1" in res.output
        assert reused == (flag == "--flood-reuse")
        assert (tmp_path / folder / CACHE_DIR).exists() == (flag == "--flood-reuse")
