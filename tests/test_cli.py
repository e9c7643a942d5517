"""The `emtwin` command: runs, validation, and one clear error for each kind of bad input."""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point
from typer.testing import CliRunner

from emtwin import __version__
from emtwin.cli import app

DATA = Path(__file__).parent / "data"

runner = CliRunner()
X0, Y0, DX, N = 500000.0, 5501000.0, 20.0, 50  # a 1 km x 1 km DEM in UTM 33N


def write_dem(path: Path, z: np.ndarray, *, crs: str | None = "EPSG:32633",
              transform=None, nodata: float | None = -9999.0) -> None:  # fmt: skip
    profile = {"driver": "GTiff", "height": z.shape[0], "width": z.shape[1], "count": 1,
               "dtype": "float32", "transform": transform or from_origin(X0, Y0, DX, DX),
               "nodata": nodata}  # fmt: skip
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z.astype("float32"), 1)


@pytest.fixture()
def town(tmp_path: Path) -> Path:
    """A valid little town: a sloping DEM, a 3 x 3 street grid, people, a shelter."""
    d = tmp_path / "town"
    d.mkdir()
    cols = np.arange(N) * DX
    write_dem(d / "dem.tif", np.tile(10.0 + cols / 100.0, (N, 1)))
    xs = X0 + np.array([200.0, 500.0, 800.0])
    ys = Y0 - np.array([200.0, 500.0, 800.0])
    lines = [LineString([(x, ys[0]), (x, ys[-1])]) for x in xs]
    lines += [LineString([(xs[0], y), (xs[-1], y)]) for y in ys]
    gpd.GeoDataFrame({"id": [f"r{i}" for i in range(6)], "highway": ["residential"] * 6},
                     geometry=lines, crs=32633).to_file(d / "roads.geojson")  # fmt: skip
    homes = [Point(X0 + 210, Y0 - 300), Point(X0 + 520, Y0 - 480)]
    gpd.GeoDataFrame({"occupants": [40, 60]}, geometry=homes, crs=32633).to_file(
        d / "people.geojson"
    )
    gpd.GeoDataFrame({"name": ["Hall"], "capacity": [500]}, geometry=[Point(X0 + 790, Y0 - 790)],
                     crs=32633).to_file(d / "shelters.geojson")  # fmt: skip
    gpd.GeoDataFrame({"name": ["North"]}, geometry=[Point(X0 + 500, Y0 - 210)],
                     crs=32633).to_file(d / "stations.geojson")  # fmt: skip
    (d / "s.yaml").write_text(textwrap.dedent("""\
        name: town
        seed: 3
        duration: 30min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif}
          roads: roads.geojson
          population: {source: people.geojson}
          shelters: shelters.geojson
          stations: stations.geojson
        hazards:
          - type: flood
            rain: [[0, 50], [10min, 0]]
            gauges: [{name: low, at: [500100, 5500500]}]
        actions:
          - {at: 10min, close_road: r1}
        outputs: {every: 5min}
        """))
    return d


def edit(town: Path, old: str, new: str) -> Path:
    p = town / "s.yaml"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new))
    return p


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


# ---------------------------------------------------------------- good runs


def test_version_and_scenarios() -> None:
    assert run("--version").output.strip() == f"emtwin {__version__}"
    out = run("scenarios").output
    for name in ("riverside", "cloudburst", "dam-break", "surge"):
        assert name in out


def test_validate_prints_a_summary(town: Path) -> None:
    res = run("validate", str(town / "s.yaml"))
    assert res.exit_code == 0, res.output
    assert "valid" in res.output and "EPSG:32633" in res.output and "100 people" in res.output


def test_run_writes_the_contract_files(town: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run("run", str(town / "s.yaml"), "--out", str(out), "--seed", "9")
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "events.parquet", "timeseries.parquet", "gauges.csv", "roads.geojson",
            "max_depth.tif", "arrival_time.tif", "hazard_class.tif"} <= names  # fmt: skip
    s = json.loads((out / "summary.json").read_text())
    assert s["run"]["seed"] == 9 and s["run"]["scenario"] == "town"
    # rain of 50 mm/h for 10 min on a closed 1 km2 box stays on it: 8333 m3
    assert s["flood"]["peak_volume_m3"] == pytest.approx(1e6 * 0.05 / 6, rel=1e-6)
    assert abs(s["flood"]["mass_error_rel"]) < 1e-9
    with rasterio.open(out / "max_depth.tif") as r:
        assert r.crs.to_epsg() == 32633 and r.shape == (N, N)


# ---------------------------------------------------------------- bad input


BAD = {
    "malformed yaml": (("terrain: {dem: dem.tif}", "terrain: {dem: dem.tif"), "malformed YAML"),
    "unknown key": (("duration: 30min", "duraton: 30min"), "did you mean 'duration'"),
    "wrong type": (("seed: 3", "seed: three"), "s.yaml:2: seed"),
    "negative duration": (("duration: 30min", "duration: -30min"), "must be positive"),
    "missing dem": (("dem: dem.tif", "dem: nowhere.tif"), "world.terrain.dem: file not found"),
    "bad rate": (("outputs: {every: 5min}", "response: {incidents: {background_rate: 4/x}}"),
                 "background_rate"),
    "unknown road in action": (("close_road: r1", "close_road: nowhere"), "no road with id"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_scenario_errors_exit_1_and_write_nothing(case: str, town: Path, tmp_path: Path) -> None:
    (old, new), expected = BAD[case]
    edit(town, old, new)
    out = tmp_path / "out"
    res = run("run", str(town / "s.yaml"), "--out", str(out))
    assert res.exit_code == 1
    assert expected in res.output and "Traceback" not in res.output
    assert not out.exists()
    assert run("validate", str(town / "s.yaml")).exit_code == 1


def _not_a_raster(town: Path) -> str:
    (town / "dem.tif").write_text("this is not a raster\n")
    return "world.terrain.dem"


def _all_nodata(town: Path) -> str:
    write_dem(town / "dem.tif", np.full((N, N), -9999.0))
    return "nodata"


def _polar(town: Path) -> str:
    write_dem(town / "dem.tif", np.ones((10, 10)), crs="EPSG:4326",
              transform=from_origin(10.0, 89.9, 0.01, 0.01))  # fmt: skip
    for line in ("roads: roads.geojson", "population: {source: people.geojson}",
                 "shelters: shelters.geojson", "stations: stations.geojson"):  # fmt: skip
        edit(town, f"  {line}\n", "")
    edit(town, "  - {at: 10min, close_road: r1}\n", "")
    return "zone"


def _unusable_crs(town: Path) -> str:
    shutil.copy(DATA / "bubenec.gpkg", town / "b.gpkg")
    edit(town, "dem: dem.tif", "dem: GPKG:b.gpkg:dtm")
    return "world.terrain.crs"


def _no_roads(town: Path) -> str:
    (town / "roads.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    return "no roads"


def _shelter_off_network(town: Path) -> str:
    big = np.tile(10.0, (400, 400))
    write_dem(town / "dem.tif", big)
    gpd.GeoDataFrame({"name": ["Far Hall"], "capacity": [500]},
                     geometry=[Point(X0 + 7000, Y0 - 7000)], crs=32633,
                     ).to_file(town / "shelters.geojson")  # fmt: skip
    return "off the road network"


def _population_no_geometry(town: Path) -> str:
    (town / "people.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", '
        '"properties": {"occupants": 3}, "geometry": null}]}'
    )
    return "geometr"


def _place_outside_dem(town: Path) -> str:
    gpd.GeoDataFrame({"name": ["Away"]}, geometry=[Point(X0 + 5000, Y0 - 100)],
                     crs=32633).to_file(town / "stations.geojson")  # fmt: skip
    return "outside"


def _plan_unknown_key(town: Path) -> str:
    (town / "plan.yaml").write_text("evacuation:\n  warnign: {at: 5min}\n")
    return "plan.yaml:2: evacuation.warnign"


DATA_BAD = [_not_a_raster, _all_nodata, _polar, _unusable_crs, _no_roads, _shelter_off_network,
            _population_no_geometry, _place_outside_dem, _plan_unknown_key]  # fmt: skip


@pytest.mark.parametrize("make", DATA_BAD, ids=lambda f: f.__name__.strip("_"))
def test_data_errors_exit_1_with_one_message(make, town: Path, tmp_path: Path) -> None:
    expected = make(town)
    out = tmp_path / "out"
    args = ["run", str(town / "s.yaml"), "--out", str(out)]
    if (town / "plan.yaml").exists():
        args += ["--plan", str(town / "plan.yaml")]
    res = run(*args)
    assert res.exit_code == 1, res.output
    assert expected in res.output, res.output
    assert "Traceback" not in res.output and res.output.count("error:") == 1
    assert not out.exists()


def test_usage_error_exits_2() -> None:
    assert runner.invoke(app, ["run"]).exit_code == 2
    assert runner.invoke(app, ["run", "x.yaml", "--frobnicate"]).exit_code == 2


# ---------------------------------------------------------------- options and reporting


POLICY = '''
def first_unit(call, units, now_s, travel_time_s):
    """Send the first free unit."""
    return units[0] if units else None
'''


def test_validate_allow_code_checks_a_user_policy(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = tmp_path / "cli_user_policy.py"
    mod.write_text(POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cli_user_policy", raising=False)
    edit(town, "outputs: {every: 5min}", textwrap.dedent("""\
        response:
          dispatch: "cli_user_policy:first_unit"
          resources: [{type: ambulance, station: North, count: 2}]
        outputs: {every: 5min}"""))
    refused = run("validate", str(town / "s.yaml"))
    assert refused.exit_code == 1
    assert "names Python code" in refused.output and "--allow-code" in refused.output
    ok = run("validate", str(town / "s.yaml"), "--allow-code")
    assert ok.exit_code == 0, ok.output
    assert "response (2 units)" in ok.output
    edit(town, "cli_user_policy:first_unit", "cli_user_policy:missing")
    res = run("validate", str(town / "s.yaml"), "--allow-code")
    assert res.exit_code == 1 and "has no function 'missing'" in res.output


def _deck(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="deck-json">(.*?)</script>', page, re.S)
    assert m, "no deck-json in map.html"
    return json.loads(m.group(1))


def test_run_basemap_reaches_the_map(town: Path, tmp_path: Path) -> None:
    from emtwin.cli import Basemap
    from emtwin.viz.map import BASEMAPS

    assert {b.value for b in Basemap} == set(BASEMAPS)
    res = run("run", str(town / "s.yaml"), "--out", str(tmp_path / "tiles"), "--basemap", "light",
              "--duration", "5min", "--quiet")  # fmt: skip
    assert res.exit_code == 0, res.output
    deck = _deck((tmp_path / "tiles" / "map.html").read_text(encoding="utf-8"))
    assert deck["mapProvider"] == "carto" and "positron" in deck["mapStyle"]
    res = run("run", str(town / "s.yaml"), "--out", str(tmp_path / "offline"),
              "--duration", "5min", "--quiet")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "mapProvider" not in _deck((tmp_path / "offline" / "map.html").read_text("utf-8"))
    assert runner.invoke(app, ["run", str(town / "s.yaml"), "--basemap", "satellite"]
                         ).exit_code == 2  # fmt: skip


def test_bad_overrides_are_named_by_their_option(town: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run("run", str(town / "s.yaml"), "--out", str(out), "--duration=-1h")
    assert res.exit_code == 1
    assert "error: --duration: a duration must be positive, got '-1h'" in res.output
    assert "s.yaml:3" not in res.output and not out.exists()
    res = run("run", str(town / "s.yaml"), "--out", str(out), "--duration=-1h", "--seed=-1")
    assert res.exit_code == 1
    assert "2 problems" in res.output and "  - --seed: " in res.output
    assert "  - --duration: " in res.output and "s.yaml:2" not in res.output
    # a problem in the file itself keeps its file and line
    edit(town, "seed: 3", "seed: three")
    res = run("run", str(town / "s.yaml"), "--out", str(out), "--duration=-1h")
    assert "s.yaml:2: seed" in res.output and "--duration: a duration" in res.output


def test_debug_shows_the_traceback(town: Path, tmp_path: Path) -> None:
    edit(town, "dem: dem.tif", "dem: nowhere.tif")
    res = run("--debug", "run", str(town / "s.yaml"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert "Traceback" in res.output and "ScenarioError" in res.output
    assert "world.terrain.dem: file not found" in res.output
    res = run("run", str(town / "s.yaml"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_validate_reports_every_problem(town: Path) -> None:
    edit(town, "seed: 3", "seed: three")
    edit(town, "duration: 30min", "duraton: 30min")
    res = run("validate", str(town / "s.yaml"))
    assert res.exit_code == 1
    assert "2 problems in" in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("  - ")]
    assert len(lines) == 2
    assert any("s.yaml:2: seed" in ln for ln in lines)
    assert any("did you mean 'duration'" in ln for ln in lines)


def test_validate_with_a_plan(town: Path) -> None:
    (town / "plan.yaml").write_text("seed: 11\nduration: 2h\n"
                                    "actions:\n  - {at: 5min, close_road: r2}\n"
                                    "  - {at: 20min, open_road: r2}\n")  # fmt: skip
    res = run("validate", str(town / "s.yaml"), "--plan", str(town / "plan.yaml"))
    assert res.exit_code == 0, res.output
    assert "valid" in res.output and "seed: 11" in res.output and "duration: 2 h" in res.output
    assert "actions: 2" in res.output and "100 people" in res.output
    (town / "plan.yaml").write_text("actions:\n  - {at: 5min, close_road: nowhere}\n")
    res = run("validate", str(town / "s.yaml"), "--plan", str(town / "plan.yaml"))
    assert res.exit_code == 1 and "no road with id" in res.output


def test_validate_does_not_warn_about_the_gpu(town: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emtwin.kernels import backend

    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    monkeypatch.setattr(backend, "_noticed", set())
    res = run("validate", str(town / "s.yaml"))
    assert res.exit_code == 0, res.output
    assert "CUDA" not in res.output
    # `run` with backend auto still says it fell back to the CPU
    res = run("run", str(town / "s.yaml"), "--out", str(town / "out"), "--duration", "5min")
    assert res.exit_code == 0, res.output
    assert "no CUDA GPU found" in res.output


def test_action_error_names_the_plan_file_and_line(town: Path, tmp_path: Path) -> None:
    """An action that came from a plan is reported at the plan's file and line, not the base's."""
    plan = town / "plan.yaml"
    plan.write_text("# a plan\nactions:\n  - {at: 5min, close_road: r2}\n"
                    "  - {at: 10min, close_road: nowhere}\n")  # fmt: skip
    res = run("validate", str(town / "s.yaml"), "--plan", str(plan))
    assert res.exit_code == 1
    assert "plan.yaml:4: actions.1: close_road: no road with id" in res.output
    # the base file's own action still points at the base file
    edit(town, "close_road: r1", "close_road: nowhere")
    res = run("validate", str(town / "s.yaml"))
    assert res.exit_code == 1
    assert "s.yaml:16: actions.0: close_road: no road with id" in res.output


def test_validate_reports_every_bad_place_layer(town: Path) -> None:
    """Two place layers wrong at once: both are reported, in one error, exit 1."""
    gpd.GeoDataFrame({"name": ["Away"]}, geometry=[Point(X0 + 5000, Y0 - 100)],
                     crs=32633).to_file(town / "stations.geojson")  # fmt: skip
    gpd.GeoDataFrame({"name": ["Gone"], "capacity": [10]}, geometry=[Point(X0 - 3000, Y0)],
                     crs=32633).to_file(town / "shelters.geojson")  # fmt: skip
    res = run("validate", str(town / "s.yaml"))
    assert res.exit_code == 1
    assert "2 problems with the World's layers" in res.output
    assert "world.shelters" in res.output and "world.stations" in res.output
    assert "Traceback" not in res.output
