"""The map of a typhoon run: the wind colour ramp, the wind arrows and the storm track.

The layers are built from the run's Results data only (frames, tables,
summary). Checked against the run's own numbers, each from another code path:
the track points against the track file, the wind frame at a cell against the
wind gauge at that cell's centre (the vortex evaluated at a point), and the
speeds against the summary's maximum.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emtwin.geo.crs import to_crs_xy
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation
from emtwin.sim.outputs import write_results
from emtwin.viz import build_map
from emtwin.viz.map import map_layers
from emtwin.viz.storm import (
    WIND_CLASSES_M_S,
    arrow_path,
    storm_track_layer,
    wind_arrows_layer,
    wind_layer,
)

X0, Y0 = 500000.0, 5500200.0  # the small world's north-west corner (UTM 33N)
TIMES = np.arange(0.0, 3601.0, 600.0)


def _scenario(tmp_path: Path, *, typhoon: bool) -> Scenario:
    # a 960 hPa storm 25 km south-west of the town, moving north-east at ~5 m/s
    lon, lat = to_crs_xy([X0 - 18e3, X0 - 8e3], [Y0 - 18e3, Y0 - 8e3], "EPSG:32633", "EPSG:4326")
    track = tmp_path / "track.csv"
    track.write_text("time_s,lon,lat,pressure_hpa,rmax_km\n"
                     f"-3600,{lon[0]:.6f},{lat[0]:.6f},960,20\n"
                     f"1800,{(lon[0] + lon[1]) / 2:.6f},{(lat[0] + lat[1]) / 2:.6f},962,20\n"
                     f"7200,{lon[1]:.6f},{lat[1]:.6f},966,22\n")  # fmt: skip
    hazards: list[dict[str, Any]] = [{"type": "flood", "rain": [[0, 5.0]]}]
    if typhoon:
        hazards.append({"type": "typhoon", "track": str(track), "coupling": "5min",
                        "road_blockage": False,
                        "gauges": [{"name": "mid", "at": [X0 + 105, Y0 - 105]}]})  # fmt: skip
    data = {"name": "t", "seed": 1, "duration": "1h", "crs": "EPSG:32633",
            "outputs": {"every": "10min"}, "coupling": "5min",
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.gpkg"},
            "hazards": hazards}  # fmt: skip
    return Scenario.model_validate(data, context={"check_files": False})


@pytest.fixture()
def storm_run(small_world, tmp_path) -> Any:
    return Simulation(_scenario(tmp_path, typhoon=True), world=small_world).run()


def test_typhoon_map_has_the_wind_and_the_track(storm_run, tmp_path) -> None:
    # the storm layers read the Results' data, never the World
    res = storm_run
    track = res.tables["storm_track"]
    assert track.time_s.tolist() == [-3600.0, 1800.0, 7200.0]
    assert track.pressure_hpa.tolist() == [960.0, 962.0, 966.0]
    # the storm track: a line of the three points, and the points with time and pressure
    lyr = storm_track_layer(res)
    line, dots = lyr.layers
    assert len(line.data[0]["p"]) == 3 and len(dots.data) == 3
    assert [d["t"] for d in dots.data] == [-3600.0, 1800.0, 7200.0]
    assert [d["p"] for d in dots.data] == [960.0, 962.0, 966.0]
    np.testing.assert_allclose([d["c"] for d in dots.data],
                               track[["lon", "lat"]].to_numpy(), atol=1e-5)  # fmt: skip
    # the wind ramp: one frame per output time, speeds within the run's own range
    times, stack = res.frames["wind_speed"]
    np.testing.assert_array_equal(times, TIMES)
    assert stack.shape == (len(TIMES), 20, 20)  # 400 cells: no coarsening needed
    peak = res.summary["typhoon"]["max_wind_m_s"]
    assert np.all(stack >= 0.0) and stack.max() <= peak * (1 + 1e-6)
    assert stack.max() > WIND_CLASSES_M_S[1]  # storm-force on the map
    ramp = wind_layer(res)
    assert ramp.anim["wind-speed"]["times"] == TIMES.tolist()
    assert len(ramp.anim["wind-speed"]["frame"]) == len(TIMES)
    assert ramp.notes == []  # drawn at the World's own cells: nothing to say
    # the frame at cell (10, 10) is the wind gauge at that cell's centre, time by time
    g = res.tables["wind_gauges"]
    np.testing.assert_allclose(stack[:, 10, 10], g.speed_m_s, rtol=1e-5)
    _, dirs = res.frames["wind_direction"]
    np.testing.assert_allclose(dirs[:, 10, 10], g.direction_deg, atol=1e-3)
    # arrows: 10 x 10 over the 20 x 20 frame grid, one speed and bearing per time
    arrows = wind_arrows_layer(res)
    data = arrows.layers[0].data
    assert len(data) == 100
    assert all(len(d["v"]) == len(TIMES) == len(d["b"]) for d in data)
    assert max(max(d["v"]) for d in data) <= peak + 0.005  # rounded to 0.01 m/s
    # the whole map holds the three layer groups; storm_track.csv is written
    res = storm_run
    groups = [m.group for m in map_layers(res)]
    assert {"Wind", "Wind arrows", "Storm track"} <= set(groups)
    out = write_results(res, tmp_path / "run")
    written = (out / "storm_track.csv").read_text().splitlines()
    assert written[0] == "time_s,lon,lat,x,y,pressure_hpa,rmax_km,vmax_m_s" and len(written) == 4
    page = build_map(res)
    cfg = json.loads(page.split('id="emtwin-config">')[1].split("</script>")[0])
    assert {"wind-speed", "wind-arrows"} <= set(cfg["anim"])
    assert cfg["tips"]["storm-track-points"] == "storm"


def test_arrow_points_where_the_wind_blows() -> None:
    # wind from the west (270) blows east: the tip is east of the tail, 1000 m apart
    p = arrow_path(15.0, 0.0, 90.0, 1000.0)
    assert p[1][0] - p[0][0] == pytest.approx(1000.0 / 111_320.0)
    assert p[1][1] == pytest.approx(p[0][1])
    assert arrow_path(15.0, 0.0, 90.0, 0.0) == [[15.0, 0.0], [15.0, 0.0]]


def test_a_run_without_a_typhoon_has_no_wind_or_track(small_world, tmp_path) -> None:
    res = Simulation(_scenario(tmp_path, typhoon=False), world=small_world).run()
    assert "storm_track" not in res.tables and "wind_speed" not in res.frames
    assert wind_layer(res) is None and wind_arrows_layer(res) is None
    assert storm_track_layer(res) is None
    groups = [m.group for m in map_layers(res)]
    assert not {"Wind", "Wind arrows", "Storm track"} & set(groups)
