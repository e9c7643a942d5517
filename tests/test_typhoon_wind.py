"""Typhoon wind: Holland's profile by hand, the asymmetry, the coarse grid, the accumulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import CRS

from emtwin.errors import KernelError
from emtwin.geo.crs import to_crs_xy
from emtwin.geo.track import EARTH_RADIUS_M, StormTrack
from emtwin.kernels.wind import (
    holland_b_2008,
    speed_and_direction,
    vortex_wind_at_points,
)
from emtwin.typhoon.accumulate import WindAccumulator
from emtwin.typhoon.wind import GridSpec, TyphoonWind, WindParameters

UTM51N = CRS.from_epsg(32651)
UTM51S = CRS.from_epsg(32751)
LON0 = 123.0  # central meridian of UTM zone 51


def _track(lat0: float, lat1: float, *, hours: float = 6.0, p: float = 950.0,
           rmax_km: float = 30.0) -> StormTrack:
    nan = np.full(2, np.nan)
    return StormTrack(np.array([0.0, hours * 3600.0]), np.array([LON0, LON0]),
                      np.array([lat0, lat1]), np.array([p, p]), np.array([rmax_km, rmax_km]),
                      nan, nan, nan.copy(), source="test")


def _grid_around(lat: float, crs: CRS, *, half_km: float, dx: float) -> GridSpec:
    x, y = to_crs_xy(LON0, lat, "EPSG:4326", crs)
    n = int(2 * half_km * 1000 / dx)
    return GridSpec(float(x[0]) - half_km * 1000, float(y[0]) + half_km * 1000, dx, n, n)


def _holland_by_hand(r: float, *, rmax: float, dp: float, b: float, rho: float,
                     lat: float) -> float:
    f = 2 * 7.2921e-5 * math.sin(math.radians(lat))
    x = (rmax / r) ** b
    return math.sqrt(b / rho * x * dp * math.exp(-x) + (r * f / 2) ** 2) - r * abs(f) / 2


def test_worked_check_of_references():
    # references.md section 7: B = 1.5, dP = 6000 Pa, Rmax = 1 km, f = 0 -> V(1 km) = 53.7 m/s
    u, v = vortex_wind_at_points(np.array([1000.0]), np.array([0.0]), centre=(0.0, 0.0),
                                 rmax_m=1000.0, dp_pa=6000.0, b=1.5, rho=1.15, f=0.0)
    assert math.hypot(u[0], v[0]) == pytest.approx(53.7, abs=0.05)


def test_stationary_symmetric_storm_max_wind_is_hollands_formula():
    lat = 15.0
    grid = _grid_around(lat, UTM51N, half_km=150, dx=1000.0)
    params = WindParameters(holland_b=1.6, asymmetry=False, surface_factor=1.0, inflow=True)
    wind = TyphoonWind(_track(lat, lat), grid, crs=UTM51N, params=params)
    acc = WindAccumulator.empty(grid.shape, gust_factor=1.49)
    for t in (0.0, 3600.0, 7200.0):
        speed, _ = wind.field(t)
        acc.update(t, speed)
    cx, cy = wind.vortex(0.0).centre
    xs, ys = grid.cell_x(), grid.cell_y()
    for r_km in (10.0, 30.0, 45.0, 60.0, 120.0):
        j = int(np.argmin(np.abs(xs - (cx + r_km * 1000))))
        i = int(np.argmin(np.abs(ys - cy)))
        r = math.hypot(xs[j] - cx, ys[i] - cy)
        want = _holland_by_hand(r, rmax=30e3, dp=6000.0, b=1.6, rho=1.15, lat=lat)
        assert acc.max_wind[i, j] == pytest.approx(want, rel=0.01)
        assert acc.max_gust[i, j] == pytest.approx(1.49 * want, rel=0.01)


def test_surface_factor_scales_a_given_b():
    lat = 15.0
    grid = _grid_around(lat, UTM51N, half_km=60, dx=2000.0)
    track = _track(lat, lat)
    one = TyphoonWind(track, grid, crs=UTM51N,
                      params=WindParameters(holland_b=1.4, asymmetry=False, surface_factor=1.0))
    eight = TyphoonWind(track, grid, crs=UTM51N,
                        params=WindParameters(holland_b=1.4, asymmetry=False, surface_factor=0.8))
    np.testing.assert_allclose(eight.field(0.0)[0], 0.8 * one.field(0.0)[0], rtol=1e-12)


@pytest.mark.parametrize("lat0, crs, right_is_east", [(15.0, UTM51N, True), (-15.0, UTM51S, False)])
def test_asymmetry_right_minus_left_is_twice_the_translation_term(lat0, crs, right_is_east):
    # storm moving north by 0.2 degrees in 1 h: v = 0.2 deg * R / 3600 s; the maxima are
    # taken along the cross-track line through the centre (the grid row of the centre)
    lat1 = lat0 + 0.2
    track = _track(lat0, lat1, hours=1.0)
    grid = _grid_around(0.5 * (lat0 + lat1), crs, half_km=80, dx=250.0)
    tf = 0.55
    params = WindParameters(holland_b=1.5, asymmetry=True, translation_factor=tf,
                            surface_factor=1.0, inflow=False)
    wind = TyphoonWind(track, grid, crs=crs, params=params)
    vortex = wind.vortex(1800.0)
    speed, _ = wind.field(1800.0)
    vt = math.radians(0.2) * EARTH_RADIUS_M / 3600.0
    term = tf * vt
    cx, cy = vortex.centre
    i = int(np.argmin(np.abs(grid.cell_y() - cy)))
    east = grid.cell_x() > cx
    row = speed[i]
    right = row[east].max() if right_is_east else row[~east].max()
    left = row[~east].max() if right_is_east else row[east].max()
    assert right - left == pytest.approx(2.0 * term, rel=0.01)
    # and their mean is Holland's maximum (with Coriolis) at Rmax
    vmax = _holland_by_hand(30e3, rmax=30e3, dp=6000.0, b=1.5, rho=1.15, lat=vortex.lat)
    assert 0.5 * (right + left) == pytest.approx(vmax, rel=0.01)


def test_direction_turns_counter_clockwise_in_the_north():
    # east of the centre a northern-hemisphere storm blows from the south (180 deg)
    u, v = vortex_wind_at_points(np.array([50e3, 0.0]), np.array([0.0, 50e3]), centre=(0, 0),
                                 rmax_m=30e3, dp_pa=5000.0, b=1.5, f=5e-5)
    _, d = speed_and_direction(u, v)
    assert d == pytest.approx([180.0, 90.0])
    u, v = vortex_wind_at_points(np.array([50e3]), np.array([0.0]), centre=(0, 0),
                                 rmax_m=30e3, dp_pa=5000.0, b=1.5, f=-5e-5)
    assert speed_and_direction(u, v)[1] == pytest.approx([0.0])
    # the inflow angle of 25 deg beyond 1.2 Rmax turns it towards the centre
    u, v = vortex_wind_at_points(np.array([50e3]), np.array([0.0]), centre=(0, 0),
                                 rmax_m=30e3, dp_pa=5000.0, b=1.5, f=5e-5, inflow=True)
    assert speed_and_direction(u, v)[1] == pytest.approx([180.0 - 25.0])


def test_coarse_wind_grid_matches_the_fine_one_away_from_the_eye():
    lat = 20.0
    grid = _grid_around(lat, UTM51N, half_km=100, dx=500.0)
    track = _track(lat, lat + 0.3)
    fine = TyphoonWind(track, grid, crs=UTM51N, params=WindParameters())
    coarse = TyphoonWind(track, grid, crs=UTM51N, params=WindParameters(wind_grid_m=2000.0))
    sf, _ = fine.field(1000.0)
    sc, _ = coarse.field(1000.0)
    v = fine.vortex(1000.0)
    xx, yy = np.meshgrid(grid.cell_x(), grid.cell_y())
    far = np.hypot(xx - v.centre[0], yy - v.centre[1]) > 1.5 * v.rmax_m
    assert np.max(np.abs(sc[far] - sf[far]) / sf[far]) < 0.02


def test_holland_2008_b_by_hand():
    # dp = 60 hPa, lat 20, vt = 5 m/s, steady: x = 0.6 (1 - 60/215)
    x = 0.6 * (1 - 60 / 215)
    want = -4.4e-5 * 3600 + 0.6 - 0.28 + 0.15 * 5**x + 1.0
    assert holland_b_2008(60.0, 20.0, 5.0) == pytest.approx(want, rel=1e-12)
    assert holland_b_2008(0.0, 60.0, 0.0) == 1.0  # clipped to Holland's range


def test_outside_the_track_time_there_is_no_wind():
    grid = _grid_around(15.0, UTM51N, half_km=20, dx=2000.0)
    wind = TyphoonWind(_track(15.0, 15.0), grid, crs=UTM51N)
    speed, _ = wind.field(7 * 3600.0)
    assert not speed.any()


def test_arrival_time_interpolates_the_crossing():
    acc = WindAccumulator.empty((1, 2), gust_factor=1.3)
    acc.update(0.0, np.array([[10.0, 18.0]]))
    acc.update(100.0, np.array([[20.0, 30.0]]))
    assert acc.arrival_s[0, 0] == pytest.approx(75.0)  # 10 -> 20 crosses 17.5 at 3/4
    assert acc.arrival_s[0, 1] == 0.0  # already above at the first sample
    again = WindAccumulator.from_state(acc.state())
    again.update(200.0, np.array([[5.0, 40.0]]))
    assert again.max_wind.tolist() == [[20.0, 40.0]]
    assert again.max_gust[0, 1] == pytest.approx(52.0)
    assert again.arrival_s[0, 0] == pytest.approx(75.0)


def test_bad_kernel_input_is_refused():
    with pytest.raises(KernelError, match="rmax_m"):
        vortex_wind_at_points(np.zeros(2), np.zeros(2), centre=(0, 0), rmax_m=0.0, dp_pa=1.0,
                              b=1.5)
    with pytest.raises(KernelError, match="same shape"):
        vortex_wind_at_points(np.zeros(2), np.zeros(3), centre=(0, 0), rmax_m=1.0, dp_pa=1.0,
                              b=1.5)
