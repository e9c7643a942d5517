"""Typhoon rain, surge and road fragility against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import CRS
from scipy.stats import norm

from emtwin.errors import KernelError
from emtwin.geo.crs import to_crs_xy
from emtwin.geo.track import StormTrack
from emtwin.typhoon.fragility import BlockageDraws, RoadFragility, blockage_probability
from emtwin.typhoon.rain import rain_on_grid, rcliper_rate_mm_h
from emtwin.typhoon.surge import (
    drag_coefficient_wu,
    inverse_barometer_m,
    surge_level_series,
    wind_setup_m,
)
from emtwin.typhoon.wind import GridSpec, TyphoonWind, WindParameters

UTM51N = CRS.from_epsg(32651)
KT = 1852.0 / 3600.0


def _track(lon: tuple[float, float], lat: tuple[float, float], p: float = 960.0,
           vmax: float = math.nan) -> StormTrack:
    two = np.ones(2)
    return StormTrack(np.array([0.0, 21600.0]), np.array(lon), np.array(lat), p * two,
                      30.0 * two, vmax * two, np.full(2, np.nan), np.full(2, np.nan))


def test_rcliper_by_hand_for_a_35_knot_storm():
    # U = 1: T0 = 2.86 in/day at the centre, Tm = 3.2 in/day at rm = 51.5 km, re = 134 km
    mm_h = 25.4 / 24.0
    assert rcliper_rate_mm_h(0.0, 35 * KT) == pytest.approx(2.86 * mm_h)
    assert rcliper_rate_mm_h(51.5, 35 * KT) == pytest.approx(3.2 * mm_h)
    assert rcliper_rate_mm_h(51.5 + 134.0, 35 * KT) == pytest.approx(3.2 * mm_h / math.e)
    # 100 kt: U = 1 + 65/33
    u = 1 + 65 / 33
    assert rcliper_rate_mm_h(10.0, 100 * KT) == pytest.approx(
        ((-1.1 + 3.96 * u) + ((-1.6 + 4.8 * u) - (-1.1 + 3.96 * u)) * 10 / (64.5 - 13 * u)) * mm_h)


def test_rain_moves_with_the_storm():
    x0, y0 = to_crs_xy(123.0, 15.0, "EPSG:4326", UTM51N)
    grid = GridSpec(float(x0[0]) - 150e3, float(y0[0]) + 150e3, 2000.0, 150, 150)
    wind = TyphoonWind(_track((123.0, 123.0), (14.8, 15.2), vmax=35 * KT), grid, crs=UTM51N)
    xx, yy = np.meshgrid(grid.cell_x(), grid.cell_y())
    for t in (0.0, 21600.0):
        rain = rain_on_grid(wind, t)
        c = wind.vortex(t).centre
        r_km = np.hypot(xx - c[0], yy - c[1]) / 1000.0
        np.testing.assert_allclose(rain, rcliper_rate_mm_h(r_km, 35 * KT))
    assert not rain_on_grid(wind, 30000.0).any()  # after the track ends


def test_inverse_barometer_50_hpa_is_half_a_metre():
    assert inverse_barometer_m(50.0) == pytest.approx(5000.0 / (1025.0 * 9.81))
    assert inverse_barometer_m(50.0) == pytest.approx(0.5, abs=0.01)


def test_wind_setup_by_hand():
    # U = 20 m/s onshore: Cd = (0.8 + 1.3) e-3; tau = 1.15 Cd 400; eta = tau 50 km / (rho g 20 m)
    cd = 2.1e-3
    tau = 1.15 * cd * 400.0
    assert drag_coefficient_wu(20.0) == pytest.approx(cd)
    assert drag_coefficient_wu(60.0) == pytest.approx(2.5e-3)  # capped
    got = wind_setup_m(20.0, shelf_width_m=50e3, shelf_depth_m=20.0)
    assert got == pytest.approx(tau * 50e3 / (1025.0 * 9.81 * 20.0))
    assert wind_setup_m(-20.0, shelf_width_m=50e3, shelf_depth_m=20.0) == pytest.approx(-got)


def test_surge_series_at_the_eye_is_the_inverse_barometer():
    # a stationary 960 hPa storm on the coast point: no wind at the centre, deficit 50 hPa
    x0, y0 = to_crs_xy(123.0, 15.0, "EPSG:4326", UTM51N)
    grid = GridSpec(float(x0[0]) - 10e3, float(y0[0]) + 10e3, 1000.0, 20, 20)
    wind = TyphoonWind(_track((123.0, 123.0), (15.0, 15.0)), grid, crs=UTM51N,
                       params=WindParameters(environment_pressure_hpa=1010.0))
    series = surge_level_series(wind, np.array([0.0, 3600.0, 90000.0]),
                                at=(float(x0[0]), float(y0[0])), onshore_bearing_deg=0.0,
                                shelf_width_m=50e3, shelf_depth_m=20.0, base_level_m=0.3)
    assert [t for t, _ in series] == [0.0, 3600.0, 90000.0]
    assert series[0][1] == pytest.approx(0.3 + 5000.0 / (1025 * 9.81), abs=1e-3)
    assert series[2][1] == 0.3  # after the track


def test_surge_at_rmax_is_the_holland_pressure_deficit_there():
    # at r = Rmax the Holland deficit is dp (1 - 1/e); the wind there blows along the
    # coast (east of a northern storm it blows north; onshore is east), so no setup
    x0, y0 = to_crs_xy(123.0, 15.0, "EPSG:4326", UTM51N)
    grid = GridSpec(float(x0[0]) - 10e3, float(y0[0]) + 10e3, 1000.0, 20, 20)
    wind = TyphoonWind(_track((123.0, 123.0), (15.0, 15.0)), grid, crs=UTM51N,
                       params=WindParameters(asymmetry=False, inflow=False))
    c = wind.vortex(0.0).centre
    ((_, level),) = surge_level_series(wind, np.array([0.0]), at=(c[0] + 30e3, c[1]),
                                       onshore_bearing_deg=90.0, shelf_width_m=50e3,
                                       shelf_depth_m=20.0)
    assert level == pytest.approx(5000.0 * (1 - math.exp(-1)) / (1025 * 9.81), rel=1e-6)


def test_fragility_is_half_at_the_median_and_lognormal_elsewhere():
    assert blockage_probability(40.0, 40.0, 0.3) == pytest.approx(0.5)
    assert blockage_probability(50.0, 40.0, 0.3) == pytest.approx(norm.cdf(math.log(1.25) / 0.3))
    assert blockage_probability(0.0, 40.0, 0.3) == 0.0
    with pytest.raises(KernelError):
        RoadFragility(0.0, 0.3)


def test_blockage_draws_are_seeded_monotone_and_as_frequent_as_the_curve():
    n = 20000
    hw = np.array(["residential"] * n)
    table = {"residential": RoadFragility(38.0, 0.3)}
    a = BlockageDraws(hw, np.random.default_rng(7), table)
    b = BlockageDraws(hw, np.random.default_rng(7), table)
    g1, g2 = np.full(n, 35.0), np.full(n, 42.0)
    assert np.array_equal(a.blocked(g1), b.blocked(g1))
    assert not np.any(a.blocked(g1) & ~a.blocked(g2))  # more gust never unblocks
    p = float(blockage_probability(42.0, 38.0, 0.3))
    sd = math.sqrt(p * (1 - p) / n)
    assert a.blocked(g2).mean() == pytest.approx(p, abs=4 * sd)
