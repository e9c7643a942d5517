"""The typhoon section of a scenario and the per-step model built from it on a World."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pydantic import ValidationError

from emtwin.geo.crs import to_crs_xy
from emtwin.geo.world import EdgeCellIndex
from emtwin.scenarios.typhoon import TyphoonHazard
from emtwin.typhoon.model import TyphoonModel


@pytest.fixture()
def track_csv(tmp_path):
    # a storm 40 km west of the small world (UTM 33N, near 15 E 49.6 N), drifting north
    lon, lat = to_crs_xy(500100.0 - 40e3, 5500100.0, "EPSG:32633", "EPSG:4326")
    p = tmp_path / "track.csv"
    p.write_text("time_s,lon,lat,pressure_hpa,rmax_km\n"
                 f"0,{lon[0]:.6f},{lat[0] - 0.1:.6f},950,40\n"
                 f"21600,{lon[0]:.6f},{lat[0] + 0.1:.6f},950,40\n")
    return p


def _hazard(tmp_path, **kw) -> TyphoonHazard:
    data = {"type": "typhoon", "track": "track.csv", **kw}
    return TyphoonHazard.model_validate(data, context={"base_dir": str(tmp_path)})


def test_section_defaults_and_derived_values(tmp_path, track_csv):
    h = _hazard(tmp_path)
    assert h.environment_pressure_hpa == 1010.0 and h.air_density == 1.15
    assert h.gust_factor_value == 1.49  # WMO in-land exposure
    assert h.rain_settings is not None and h.rain_settings.scale == 1.0
    assert _hazard(tmp_path, rain=False).rain_settings is None
    assert _hazard(tmp_path, gust_factor=1.3).gust_factor_value == 1.3
    table = _hazard(tmp_path, fragility={"residential": {"median_gust_m_s": 30,
                                                         "beta": 0.4}}).fragility_table()
    assert table["residential"].median_gust_m_s == 30.0 and table["primary"].beta == 0.3
    wp = _hazard(tmp_path, holland_b=1.4, asymmetry=False).wind_parameters()
    assert wp.holland_b == 1.4 and not wp.asymmetry


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"holland_b": 5}, "holland_b"),
        ({"surge": {"side": "south"}}, "give `level`"),
        ({"surge": {"side": "south", "level": [[0, 1], [60, 2]], "at": [1, 2],
                    "onshore_bearing": 0}}, "not both"),
        ({"gust_factor": "windy"}, "gust_factor"),
        ({"colour": "red"}, "colour"),
        ({"gauges": [{"name": "a", "at": [0, 0]}, {"name": "a", "at": [1, 1]}]}, "repeated: a"),
    ],
)
def test_bad_sections_are_refused(tmp_path, track_csv, extra, match):
    with pytest.raises(ValidationError, match=match):
        _hazard(tmp_path, **extra)


def test_missing_track_file_is_named(tmp_path):
    with pytest.raises(ValidationError, match="file not found: 'nope.csv'"):
        TyphoonHazard.model_validate({"type": "typhoon", "track": "nope.csv"},
                                     context={"base_dir": str(tmp_path)})


def _world_with_cells(small_world):
    # every one of the 8 edges lies over two cells of the 20 x 20 grid
    n = small_world.roads.n_edges
    cells = np.arange(2 * n, dtype=np.int64) * 7 % 400
    small_world.edge_cells = EdgeCellIndex(np.arange(0, 2 * n + 1, 2, dtype=np.int64), cells)
    return small_world


def test_step_writes_wind_rain_surge_and_blocks_roads(tmp_path, track_csv, small_world):
    world = _world_with_cells(small_world)
    h = _hazard(tmp_path, surge={"side": "south", "level": [[0, 0.0], [3600, 1.0]]},
                fragility={"residential": {"median_gust_m_s": 62.0, "beta": 0.3}},
                facility_wind_limits={"shelters": 20.0},
                gauges=[{"name": "town", "at": [15.0, 49.6]}])
    model = TyphoonModel(h, world, rng=np.random.default_rng(3))
    step = model.step(1800.0)
    assert step.wind_speed.shape == world.terrain.shape
    # the field is the wind model's own at this time
    np.testing.assert_array_equal(step.wind_speed, model.wind.field(1800.0)[0])
    assert step.wind_speed.min() > 17.5  # storm force 40 km from a 950 hPa centre
    np.testing.assert_array_equal(model.stats.max_wind, step.wind_speed)
    assert step.rain_mm_h is not None and step.rain_mm_h.min() > 0
    assert step.sea_level_m == pytest.approx(0.5)  # halfway along the given series
    assert model.sea_level_series(np.array([0.0, 900.0, 7200.0])) == [
        (0.0, 0.0), (900.0, 0.25), (7200.0, 1.0)]
    # the same seed blocks the same edges, and a blocked edge is reported once
    again = TyphoonModel(h, world, rng=np.random.default_rng(3))
    assert again.step(1800.0).newly_blocked.tolist() == step.newly_blocked.tolist()
    assert 0 < len(step.newly_blocked) < world.roads.n_edges  # gusts near the median
    later = model.step(3600.0)
    assert not set(later.newly_blocked) & set(step.newly_blocked)
    assert model.blocked.sum() == len(step.newly_blocked) + len(later.newly_blocked)
    # gauges and facility limits
    speed, direction = model.gauge_wind(1800.0)["town"]
    assert speed > 17.5 and 0 <= direction < 360
    sx = world.places.shelters.geometry.x.to_numpy()
    sy = world.places.shelters.geometry.y.to_numpy()
    assert model.facility_unusable("shelters", sx, sy, step.wind_speed).tolist() == [True]
    assert model.facility_unusable("hospitals", sx, sy, step.wind_speed).tolist() == [False]
    # results for the output files and the summary
    r = model.rasters()
    np.testing.assert_array_equal(r["max_wind"], np.maximum(step.wind_speed, later.wind_speed))
    assert np.all(r["wind_arrival"] == 1800.0)  # storm force from the first step
    summ = model.summary()
    assert summ["first_arrival_s"] == 1800.0 and summ["roads_blocked"] == model.blocked.sum()
    assert summ["max_gust_m_s"] == pytest.approx(1.49 * summ["max_wind_m_s"])
    # state round trip
    saved = model.state()
    fresh = TyphoonModel(h, world, rng=np.random.default_rng(3))
    fresh.restore(saved)
    np.testing.assert_array_equal(fresh.blocked, model.blocked)
    np.testing.assert_array_equal(fresh.stats.max_gust, model.stats.max_gust)


def test_track_uncertainty_keys_move_and_deepen_the_storm(tmp_path, track_csv, small_world):
    base = TyphoonModel(_hazard(tmp_path), small_world, rng=np.random.default_rng(0))
    moved = TyphoonModel(_hazard(tmp_path, cross_track_shift_km=20.0, intensity_scale=1.2),
                         small_world, rng=np.random.default_rng(0))
    v0, v1 = base.wind.vortex(0.0), moved.wind.vortex(0.0)
    # moving north, right of motion is east: the centre comes 20 km closer to the town
    assert v1.centre[0] - v0.centre[0] == pytest.approx(20e3, rel=0.01)
    assert v1.dp_pa == pytest.approx(1.2 * v0.dp_pa)


def test_land_cover_factor_reduces_the_wind_where_its_class_says(tmp_path, track_csv,
                                                                small_world):
    # west half class 1 (forest, factor 0.7), east half class 2 (not in the table: 1)
    classes = np.ones((20, 20), dtype=np.int16)
    classes[:, 10:] = 2
    with rasterio.open(tmp_path / "lc.tif", "w", driver="GTiff", height=20, width=20, count=1,
                       dtype="int16", crs="EPSG:32633",
                       transform=Affine(10.0, 0, 500000.0, 0, -10.0, 5500200.0)) as dst:
        dst.write(classes, 1)
    plain = TyphoonModel(_hazard(tmp_path), small_world, rng=np.random.default_rng(0))
    rough = TyphoonModel(_hazard(tmp_path, land_cover={"raster": "lc.tif", "table": {1: 0.7}}),
                         small_world, rng=np.random.default_rng(0))
    a = plain.wind.field(0.0)[0]
    b = rough.wind.field(0.0)[0]
    np.testing.assert_allclose(b[:, :10], 0.7 * a[:, :10])
    np.testing.assert_allclose(b[:, 10:], a[:, 10:])


def test_forecast_arrival_matches_the_storm_force_radius_by_hand(tmp_path, small_world):
    # a symmetric storm (no asymmetry, B = 1.5, surface factor 1) moving due east at
    # 0.5 deg of longitude per 6 h along 49.6 N towards the town
    lon0, lat0 = to_crs_xy(500100.0, 5500100.0, "EPSG:32633", "EPSG:4326")
    lat = float(lat0[0])
    (tmp_path / "east.csv").write_text(
        "time_s,lon,lat,pressure_hpa,rmax_km\n"
        f"0,{lon0[0] - 2.5:.6f},{lat:.6f},970,30\n"
        f"108000,{lon0[0] + 0.5:.6f},{lat:.6f},970,30\n")
    h = TyphoonHazard.model_validate(
        {"type": "typhoon", "track": "east.csv", "holland_b": 1.5, "asymmetry": False,
         "surface_factor": 1.0}, context={"base_dir": str(tmp_path)})
    model = TyphoonModel(h, small_world, rng=np.random.default_rng(0))
    arrival = model.forecast_arrival(step_s=600.0)
    # by hand: the radius r* where Holland's wind (with Coriolis) falls to 17.5 m/s
    f = 2 * 7.2921e-5 * np.sin(np.radians(lat))

    def v(r):
        x = (30e3 / r) ** 1.5
        return np.sqrt(1.5 / 1.15 * x * 4000.0 * np.exp(-x) + (r * f / 2) ** 2) - r * f / 2

    lo, hi = 30e3, 2000e3
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if v(mid) > 17.5 else (lo, mid)
    # the centre's distance to the town: along the parallel, 2.5 deg of longitude at t = 0
    speed = np.radians(3.0) * 6_371_008.8 * np.cos(np.radians(lat)) / 108000.0
    d0 = np.radians(2.5) * 6_371_008.8 * np.cos(np.radians(lat))
    want = (d0 - lo) / speed
    assert np.nanmean(arrival) == pytest.approx(want, rel=0.01)  # UTM vs sphere: 0.6 %
    warn, first = TyphoonModel.warning_time(arrival, clearance_s=3 * 3600.0)
    assert first == pytest.approx(np.nanmin(arrival)) and warn == first - 10800.0
    assert model.stats.last_time_s != model.stats.last_time_s  # untouched (still NaN)
