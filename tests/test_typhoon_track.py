"""Storm tracks: both CSV dialects, interpolation by hand, errors naming row and column."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emtwin.errors import InputDataError
from emtwin.geo.track import EARTH_RADIUS_M, read_track, rmax_vickery_wadhera_km


def _write(tmp_path, text: str, name: str = "track.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_plain_track_interpolates_linearly(tmp_path):
    p = _write(tmp_path, "time_s,lon,lat,pressure_hpa,rmax_km,vmax_m_s\n"
                         "0,120.0,15.0,980,40,35\n"
                         "21600,121.0,16.0,950,30,50\n")
    tr = read_track(p)
    pt = tr.at(5400.0)  # a quarter of the way
    assert pt.lon == pytest.approx(120.25)
    assert pt.lat == pytest.approx(15.25)
    assert pt.pressure_hpa == pytest.approx(972.5)
    assert pt.rmax_km == pytest.approx(37.5)
    assert pt.vmax_m_s == pytest.approx(38.75)
    assert math.isnan(pt.holland_b)
    # translation: 1 degree of latitude north in 6 h; 1 degree of longitude at 15.5 N
    assert pt.v_m_s == pytest.approx(math.radians(1.0) * EARTH_RADIUS_M / 21600.0)
    assert pt.u_m_s == pytest.approx(
        math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(15.5)) / 21600.0)
    assert pt.dpdt_hpa_h == pytest.approx(-5.0)
    assert tr.covers(21600.0) and not tr.covers(21601.0)


def test_iso_times_are_counted_from_the_start(tmp_path):
    p = _write(tmp_path, "time,lon,lat,pressure_hpa,rmax_km\n"
                         "2013-11-07T00:00:00,128.0,10.0,905,15\n"
                         "2013-11-07T06:00:00,126.0,10.5,895,15\n")
    tr = read_track(p, start="2013-11-06T18:00:00")
    assert tr.time_s.tolist() == [21600.0, 43200.0]
    assert read_track(p).time_s.tolist() == [0.0, 21600.0]  # no start: from the first row


def test_track_crossing_the_antimeridian(tmp_path):
    p = _write(tmp_path, "time_s,lon,lat,pressure_hpa,rmax_km\n"
                         "0,179.5,-15,970,30\n3600,-179.5,-15,970,30\n")
    pt = read_track(p).at(1800.0)
    assert abs(pt.lon) == pytest.approx(180.0)
    assert pt.u_m_s > 0  # moving east across the line, not 359 degrees west


def test_ibtracs_columns_units_row_and_conversions(tmp_path):
    p = _write(tmp_path, "SID,NAME,ISO_TIME,LAT,LON,WMO_PRES,USA_WIND,USA_PRES,USA_RMW\n"
                         " ,Year,degrees_north,degrees_east,mb,kts,mb,nmile\n"
                         "2013306N07162,HAIYAN,2013-11-07 18:00:00,10.8,127.5,,150,900,10\n"
                         "2013306N07162,HAIYAN,2013-11-08 00:00:00,11.0,125.0,910,140, ,\n")
    tr = read_track(p)
    assert tr.time_s.tolist() == [0.0, 21600.0]
    assert tr.vmax_m_s[0] == pytest.approx(150 * 1852 / 3600)
    assert tr.rmax_km[0] == pytest.approx(18.52)
    assert tr.pressure_hpa.tolist() == [900.0, 910.0]  # WMO_PRES where USA_PRES is blank
    # the missing RMW is estimated from the deficit (1010 - 910 hPa) and latitude
    assert tr.rmax_km[1] == pytest.approx(math.exp(3.015 - 6.291e-5 * 100**2 + 0.0337 * 11.0))


def test_ibtracs_rows_without_pressure_at_the_ends_are_skipped(tmp_path):
    head = "SID,ISO_TIME,LAT,LON,USA_PRES,WMO_PRES\n"
    p = _write(tmp_path, head + "A,2000-01-01 00:00:00,9,120, , \n"
                                "A,2000-01-01 06:00:00,10,120,990,\n"
                                "A,2000-01-01 12:00:00,11,120,985,\n"
                                "A,2000-01-01 18:00:00,12,120, , \n")
    tr = read_track(p)
    assert tr.lat.tolist() == [10.0, 11.0] and tr.time_s.tolist() == [0.0, 21600.0]
    gap = _write(tmp_path, head + "A,2000-01-01 00:00:00,9,120,995,\n"
                                  "A,2000-01-01 06:00:00,10,120, , \n"
                                  "A,2000-01-01 12:00:00,11,120,985,\n", name="gap.csv")
    with pytest.raises(InputDataError, match="row 3, column 'USA_PRES': missing"):
        read_track(gap)


def test_vickery_wadhera_rmax_by_hand():
    assert rmax_vickery_wadhera_km(50.0, 25.0) == pytest.approx(
        math.exp(3.015 - 6.291e-5 * 2500 + 0.0337 * 25))


@pytest.mark.parametrize(
    "text, match",
    [
        ("time_s,lon,lat,pressure_hpa,rmax_km\n0,120,15,980,40\n3600,x,15,980,40\n",
         r"row 3, column 'lon': expected a number"),
        ("time_s,lon,lat,pressure_hpa,rmax_km\n0,120,15,98,40\n3600,120,15,980,40\n",
         r"row 2, column 'pressure_hpa': expected a central pressure in hPa"),
        ("time_s,lon,lat,pressure_hpa\n0,120,15,980\n", r"missing column\(s\) rmax_km"),
        ("time_s,lon,lat,pressure_hpa,rmax_km\n0,120,15,980,40\n0,120,15,980,40\n",
         r"point 2: times must increase"),
        ("time_s,lon,lat,pressure_hpa,rmax_km\n0,120,95,980,40\n3600,120,15,980,40\n",
         r"row 2, column 'lat': latitude must be within"),
        ("time,lon,lat,pressure_hpa,rmax_km\nyesterday,120,15,980,40\n",
         r"row 2, column 'time': expected an ISO 8601 time"),
    ],
)
def test_errors_name_file_row_and_column(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(InputDataError, match=match) as e:
        read_track(p)
    assert str(p) in str(e.value)


def test_ibtracs_with_several_storms_needs_one_named(tmp_path):
    p = _write(tmp_path, "SID,NAME,ISO_TIME,LAT,LON,USA_PRES\n"
                         "A,ONE,2000-01-01 00:00:00,10,120,990\n"
                         "A,ONE,2000-01-01 06:00:00,11,120,985\n"
                         "B,TWO,2000-01-02 00:00:00,20,130,990\n")
    with pytest.raises(InputDataError, match="2 storms"):
        read_track(p)
    tr = read_track(p, storm="ONE")
    assert tr.lat.tolist() == [10.0, 11.0]


def test_shifted_track_moves_right_of_motion_and_scales_the_deficit(tmp_path):
    p = _write(tmp_path, "time_s,lon,lat,pressure_hpa,rmax_km\n0,120,15,960,40\n"
                         "3600,120,16,950,40\n")
    tr = read_track(p)
    moved = tr.shifted(cross_track_km=10.0, intensity_scale=1.2, env_pressure_hpa=1010.0)
    # moving north: right is east; 10 km east at 15 N
    want = math.degrees(10e3 / EARTH_RADIUS_M) / math.cos(math.radians(15.0))
    assert moved.lon[0] - 120.0 == pytest.approx(want)
    np.testing.assert_allclose(moved.pressure_hpa, [1010 - 1.2 * 50, 1010 - 1.2 * 60])
