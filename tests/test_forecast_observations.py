"""Observations: gauge tables (a run's gauges.csv), bad rows, timestamps, rain gauges, rasters."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from emtwin.errors import InputDataError
from emtwin.forecast.observations import (
    RainField,
    member_values_at,
    observation_table,
    rain_field_from_gauges,
    read_gauge_observations,
    read_rain_gauges,
    read_rain_rasters,
)
from emtwin.scenarios.models import Scenario
from emtwin.sim.components.hazard import HazardComponent

X0, Y0 = 500000.0, 5500200.0  # the small_world grid: 20 x 20 cells of 10 m


def scenario(start: str | None = "2024-09-01T06:00:00Z") -> Scenario:
    data = {
        "crs": "EPSG:32633",
        "world": {"terrain": {"builtin": "riverside"}},
        "hazards": [{"type": "flood", "gauges": [
            {"name": "bridge", "at": [X0 + 50, Y0 - 50]},
            {"name": "mill", "at": [X0 + 150, Y0 - 150]},
        ]}],
    }  # fmt: skip
    if start:
        data["start"] = start
    return Scenario.model_validate(data)


def run_gauges_csv(path: Path, rows: list[tuple[float, str, float, float, float]]) -> Path:
    """A gauges.csv written as a run writes it (HazardComponent.gauge_table, outputs' format)."""
    table = HazardComponent.gauge_table(SimpleNamespace(gauge_rows=rows, gauge_sections={}))
    table.to_csv(path, index=False, float_format="%.10g")
    return path


def test_a_runs_gauges_csv_reads_as_observations(tmp_path: Path) -> None:
    rows = [(0.0, "bridge", 0.0, 0.0, 10.0), (0.0, "mill", 0.1, 0.2, 8.1),
            (60.0, "bridge", 0.2, 0.1, 10.2), (60.0, "mill", 0.3, 0.2, 8.3)]  # fmt: skip
    f = run_gauges_csv(tmp_path / "gauges.csv", rows)
    obs = read_gauge_observations(f, scenario())
    assert obs.quantity == "level_m"  # a run's table holds depth and level: level is preferred
    assert obs.table["value"].tolist() == [10.0, 8.1, 10.2, 8.3]
    assert obs.gauges == ["bridge", "mill"]
    depth = read_gauge_observations(f, scenario(), quantity="depth_m")
    assert depth.table["value"].tolist() == [0.0, 0.1, 0.2, 0.3]
    assert obs.until(30.0).table["time_s"].tolist() == [0.0, 0.0]


def test_a_runs_flows_read_per_quantity(tmp_path: Path) -> None:
    """A run whose `bridge` has a section writes flow there and a blank at `mill`;
    FILE:QUANTITY reads one column, and the same file serves twice."""
    from emtwin.forecast.runner import read_observations

    nan = np.nan
    rows = [(0.0, "bridge", 0.0, 0.0, 10.0, 1.5), (0.0, "mill", 0.1, 0.2, 8.1, nan),
            (60.0, "bridge", 0.2, 0.1, 10.2, 2.5), (60.0, "mill", 0.3, 0.2, 8.3, nan)]  # fmt: skip
    table = HazardComponent.gauge_table(
        SimpleNamespace(gauge_rows=rows, gauge_sections={"bridge": None}))
    assert table.columns[-1] == "flow_m3_s"
    f = tmp_path / "gauges.csv"
    table.to_csv(f, index=False, float_format="%.10g")
    sc = scenario().model_dump(mode="json", by_alias=True, exclude_none=True)
    sc["hazards"][0]["gauges"][0]["section"] = [[X0 + 40, Y0 - 50], [X0 + 60, Y0 - 50]]
    sc = Scenario.model_validate(sc)
    gauges, rain = read_observations([f"{f}:flow_m3_s", f"{f}:level_m", str(f)], sc)
    assert rain is None and [g.quantity for g in gauges] == ["flow_m3_s", "level_m", "level_m"]
    assert gauges[0].table["value"].tolist() == [1.5, 2.5]  # the blanks at `mill` skipped
    assert gauges[0].table["row"].tolist() == [1, 3]
    assert gauges[0].gauges == ["bridge"]


def test_parquet_and_iso_timestamps(tmp_path: Path) -> None:
    df = pd.DataFrame({"time_s": ["2024-09-01T06:00:00Z", "2024-09-01T07:30:00Z",
                                  "2024-09-01 08:00:00"],  # no zone: UTC
                       "gauge": ["mill"] * 3, "depth_m": [0.0, 0.5, 0.7]})  # fmt: skip
    f = tmp_path / "obs.parquet"
    df.to_parquet(f)
    obs = read_gauge_observations(f, scenario())
    assert obs.table["time_s"].tolist() == [0.0, 5400.0, 7200.0]
    # a start in another zone: 08:00+02:00 is 06:00 UTC
    obs2 = read_gauge_observations(f, scenario("2024-09-01T08:00:00+02:00"))
    assert obs2.table["time_s"].tolist() == [0.0, 5400.0, 7200.0]
    with pytest.raises(InputDataError, match=r"obs.parquet: .*timestamps.*`start:`"):
        read_gauge_observations(f, scenario(start=None))


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0,bridge,0.1\n60,weir,0.2\n", r"row 2 \(line 3\): unknown gauge 'weir'.*bridge, mill"),
        ("0,bridge,0.1\n60,bridge,\n", r"row 2 \(line 3\): depth_m .* missing or not a number"),
        ("0,bridge,0.1\n60,bridge,nan\n", r"row 2 \(line 3\): depth_m"),
        ("0,bridge,0.1\n60,bridge,-0.2\n", r"row 2 \(line 3\): depth_m -0.2 is negative"),
        ("60,bridge,0.1\n0,mill,0.1\n30,bridge,0.2\n",
         r"row 3 \(line 4\): gauge 'bridge': time 30 s comes after 60 s at row 1"),
        ("0,bridge,0.1\n60,bridge,0.2\n60,bridge,0.3\n",
         r"row 3 \(line 4\): gauge 'bridge': time 60 s repeats row 2 \(line 3\)"),
        ("-60,bridge,0.1\n", r"row 1 \(line 2\): time_s -60 s is before"),
        ("0,bridge,0.1\nsoon,bridge,0.2\n", r"row 2 \(line 3\): time_s 'soon' is neither"),
    ],
)  # fmt: skip
def test_bad_rows_are_named_with_file_and_row(tmp_path: Path, body: str, message: str) -> None:
    f = write_csv(tmp_path / "bad.csv", "time_s,gauge,depth_m\n" + body)
    with pytest.raises(InputDataError, match=message) as exc:
        read_gauge_observations(f, scenario())
    assert str(exc.value).startswith(f"{f}: ")


def test_several_bad_rows_are_listed_together(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "bad.csv", "time_s,gauge,depth_m\n0,x,0.1\n0,bridge,-1\n")
    with pytest.raises(InputDataError, match=r"2 problems:\n  - row 1 .*\n  - row 2 "):
        read_gauge_observations(f, scenario())


def test_missing_columns_and_files(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "o.csv", "time_s,gauge,speed_m_s\n0,bridge,0.1\n")
    with pytest.raises(InputDataError, match="level_m, depth_m, flow_m3_s"):
        read_gauge_observations(f, scenario())
    with pytest.raises(InputDataError, match="no column level_m"):
        read_gauge_observations(f, scenario(), quantity="level_m")
    with pytest.raises(InputDataError, match="not found"):
        read_gauge_observations(tmp_path / "none.csv", scenario())
    with pytest.raises(InputDataError, match=r"expected a \.csv or \.parquet"):
        read_gauge_observations(write_csv(tmp_path / "o.txt", "x"), scenario())


def test_observation_table_and_member_values(tmp_path: Path) -> None:
    a = read_gauge_observations(
        write_csv(tmp_path / "a.csv", "time_s,gauge,depth_m\n30,bridge,0.1\n90,bridge,0.3\n"),
        scenario(),
    )
    b = read_gauge_observations(
        write_csv(tmp_path / "b.csv", "time_s,gauge,depth_m\n60,mill,0.2\n200,mill,0.9\n"),
        scenario(),
    )
    table = observation_table([a, b], at_s=100.0)
    assert table[["gauge", "time_s", "value"]].values.tolist() == [
        ["bridge", 30.0, 0.1], ["bridge", 90.0, 0.3], ["mill", 60.0, 0.2]]  # fmt: skip
    member = pd.DataFrame({"time_s": [0.0, 60.0, 120.0] * 2, "gauge": ["bridge"] * 3 + ["mill"] * 3,
                           "depth_m": [0.0, 0.6, 1.2, 0.0, 0.4, 0.4]})  # fmt: skip
    # linear in time: bridge 0.3 at 30 s, 0.9 at 90 s; mill 0.4 at 60 s
    np.testing.assert_allclose(member_values_at(table, member), [0.3, 0.9, 0.4])
    twice = read_gauge_observations(
        write_csv(tmp_path / "c.csv", "time_s,gauge,depth_m\n90,bridge,0.35\n"), scenario()
    )
    with pytest.raises(
        InputDataError, match=r"'bridge' depth_m at 90 s .*a.csv row 2.*c.csv row 1"
    ):
        observation_table([a, twice])


@pytest.fixture()
def grid_world() -> SimpleNamespace:
    from pyproj import CRS

    from emtwin.geo.world import Terrain

    z = np.zeros((20, 20))
    t = Terrain(z=z, mask=np.ones_like(z, dtype=bool), transform=Affine(10.0, 0, X0, 0, -10.0, Y0),
                dx=10.0)  # fmt: skip
    return SimpleNamespace(terrain=t, crs=CRS.from_epsg(32633))


def test_rain_gauges_idw_and_nearest(tmp_path: Path, grid_world: SimpleNamespace) -> None:
    # gauge a on the centre of cell (0, 0), gauge b on cell (0, 10); b reports from 600 s on
    f = write_csv(tmp_path / "rain.csv",
                  "time_s,gauge,rain_mm_h,x,y\n"
                  f"0,a,10,{X0 + 5},{Y0 - 5}\n"
                  f"600,b,30,{X0 + 105},{Y0 - 5}\n"
                  f"1200,a,0,{X0 + 5},{Y0 - 5}\n")  # fmt: skip
    obs = read_rain_gauges(f, scenario(), grid_world)
    field = rain_field_from_gauges(obs, grid_world)
    assert field.times_s.tolist() == [0.0, 600.0, 1200.0]
    assert np.all(field.rate_mm_h[0] == 10.0)  # only a reports
    at600 = field.rate_mm_h[1]
    assert at600[0, 0] == pytest.approx(10.0, abs=1e-6)
    assert at600[0, 10] == pytest.approx(30.0, abs=1e-6)
    assert at600[0, 5] == pytest.approx(20.0)  # equidistant: the mean
    # cell (0, 2): distances 20 and 80 m, weights 1/400 and 1/6400 -> (16*10 + 30) / 17
    assert at600[0, 2] == pytest.approx((16 * 10 + 30) / 17)
    near = rain_field_from_gauges(obs, grid_world, method="nearest")
    assert near.rate_mm_h[2, 0, 4] == 0.0 and near.rate_mm_h[2, 0, 6] == 30.0
    local = rain_field_from_gauges(obs, grid_world, radius_m=25.0)
    # cells whose centre is within 25 m (dr^2 + dc^2 <= 6.25): 8 around corner gauge a,
    # 5 + 5 + 3 in rows 0-2 around gauge b
    assert local.area.sum() == 8 + 13
    assert np.isnan(field.at(-1.0)).all() and np.all(field.at(599.0) == 10.0)


def test_rain_gauge_bad_rows(tmp_path: Path, grid_world: SimpleNamespace) -> None:
    f = write_csv(tmp_path / "rain.csv", "time_s,gauge,rain_mm_h\n0,a,-1\n")
    with pytest.raises(
        InputDataError, match=r"rain.csv: row 1 \(line 2\): rain_mm_h -1 is negative"
    ):
        read_rain_gauges(f, scenario(), grid_world, positions={"a": (X0, Y0)})
    with pytest.raises(InputDataError, match="gauge 'a' has no position"):
        read_rain_gauges(f, scenario(), grid_world, positions={"b": (X0, Y0)})
    with pytest.raises(InputDataError, match="expected columns x, y"):
        read_rain_gauges(f, scenario(), grid_world)


def write_tif(path: Path, array: np.ndarray, transform: Affine, crs: str | None = "EPSG:32633"
              ) -> Path:  # fmt: skip
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", height=array.shape[0], width=array.shape[1],
                       count=1, dtype="float32", crs=crs, transform=transform,
                       nodata=-1.0) as ds:  # fmt: skip
        ds.write(array.astype("float32"), 1)
    return path


def test_rain_rasters_resampled_onto_the_grid(tmp_path: Path, grid_world: SimpleNamespace) -> None:
    # 20 m cells over the western half of the grid (5 x 10 source cells = 100 x 200 m)
    tr = Affine(20.0, 0, X0, 0, -20.0, Y0)
    folder = tmp_path / "radar"
    folder.mkdir()
    a = np.full((10, 5), 4.0)
    a[0, 0] = -1.0  # nodata
    write_tif(folder / "rain_0.tif", a, tr)
    write_tif(folder / "rain_1800.tif", np.full((10, 5), 8.0), tr)
    field = read_rain_rasters(folder, scenario(), grid_world, resampling="nearest")
    assert field.times_s.tolist() == [0.0, 1800.0]
    first = field.rate_mm_h[0]
    assert np.all(first[:, :10][2:] == 4.0) and np.isnan(first[:2, :2]).all()
    assert np.isnan(field.rate_mm_h[:, :, 10:]).all()  # east half not covered
    assert field.area[:, :10].all() and not field.area[:, 10:].any()
    # times from a times.csv with timestamps (needs the scenario start)
    (folder / "times.csv").write_text("file,time\nrain_0.tif,2024-09-01T06:10:00Z\n"
                                      "rain_1800.tif,2024-09-01T06:40:00Z\n")  # fmt: skip
    assert read_rain_rasters(folder, scenario(), grid_world).times_s.tolist() == [600.0, 2400.0]
    # a list of files with their times; duplicate times are an error naming both files
    files = [folder / "rain_0.tif", folder / "rain_1800.tif"]
    with pytest.raises(InputDataError, match="rain_0.tif and .*rain_1800.tif are both for 60 s"):
        read_rain_rasters(files, scenario(), grid_world, times=[60, 60])
    neg = write_tif(tmp_path / "neg.tif", np.full((10, 5), -3.0), tr)
    with pytest.raises(InputDataError, match="neg.tif: negative rain"):
        read_rain_rasters([neg], scenario(), grid_world, times=[0])


def test_rain_field_merged_and_separable() -> None:
    shape = np.array([[1.0, 2.0], [3.0, np.nan]], dtype=np.float32)
    field = RainField(np.array([0.0, 100.0]),
                      np.stack([shape * 2, shape * 6]).astype(np.float32))  # fmt: skip
    merged = field.merged([(0.0, 5.0), (50.0, 7.0)])
    assert merged.times_s.tolist() == [0.0, 50.0, 100.0]
    assert merged.rate_mm_h[:, 1, 1].tolist() == [5.0, 7.0, 7.0]  # uncovered: the scenario's
    assert merged.rate_mm_h[:, 0, 1].tolist() == [4.0, 4.0, 12.0]
    mask = np.array([[True, True], [True, False]])
    times, r, m = field.separable(mask, t0=0.0, t1=200.0)
    assert times.tolist() == [0.0, 100.0]
    np.testing.assert_allclose(r, [4.0, 12.0])  # mean of 2*(1, 2, 3) and 6*(1, 2, 3)
    # a field of fixed shape is exactly r(t) * m(cell)
    np.testing.assert_allclose(np.outer(r, m[mask]), field.rate_mm_h[:, mask])
    assert m[mask].mean() == pytest.approx(1.0)


def test_parquet_timestamp_column(tmp_path: Path) -> None:
    stamps = pd.to_datetime(["2024-09-01 06:30", "2024-09-01 07:00"])  # naive: UTC
    f = tmp_path / "o.parquet"
    pd.DataFrame({"time": stamps, "gauge": "bridge", "level_m": [10.0, 10.4]}).to_parquet(f)
    obs = read_gauge_observations(f, scenario())
    assert obs.table["time_s"].tolist() == [1800.0, 3600.0]
    pd.DataFrame({"time": stamps[::-1], "gauge": "bridge", "level_m": [1.0, 2.0]}).to_parquet(f)
    with pytest.raises(InputDataError, match=r"o.parquet: row 2: gauge 'bridge': time 1800 s"):
        read_gauge_observations(f, scenario())
