"""Forecast products: probability rasters, road closures, gauge quantiles, files, summary."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from pyproj import CRS

from emtwin.forecast.products import (
    ForecastProducts,
    exceedance_probability,
    forecast_summary,
    gauge_quantiles,
    gauges_forecast_table,
    quantile_rasters,
    risk_map,
    road_closures,
    shelter_loads,
    write_products,
)
from emtwin.geo.world import Terrain
from emtwin.sim.outputs import RASTER_NODATA, json_safe

W4 = np.array([0.1, 0.2, 0.3, 0.4])


def test_exceedance_probability_by_hand() -> None:
    depth = np.array([0.1, 0.3, 0.5, 0.2]).reshape(4, 1, 1) * np.ones((4, 1, 2))
    depth[:, 0, 1] = np.nan  # outside the domain in every member
    p = exceedance_probability(depth, 0.3, W4)
    assert p[0, 0] == pytest.approx(0.2 + 0.3)  # members 1 (0.3 m: at the threshold) and 2
    assert np.isnan(p[0, 1])
    assert exceedance_probability(depth, 0.3)[0, 0] == pytest.approx(0.5)


def test_risk_map_layers() -> None:
    depth = np.array([0.0, 0.31, 0.6, 1.0]).reshape(4, 1, 1)
    hazard = np.array([1, 2, 3, 5], dtype=float).reshape(4, 1, 1)
    maps = risk_map(depth, hazard, W4)
    assert set(maps) == {"prob_depth_0.3m", "prob_hazard_h3"}
    assert maps["prob_depth_0.3m"][0, 0] == pytest.approx(0.9)
    assert maps["prob_hazard_h3"][0, 0] == pytest.approx(0.7)


def test_quantile_rasters_and_band_coverage() -> None:
    from emtwin.forecast.skill import coverage

    stack = np.array([0.1, 0.4, 0.2, 0.3]).reshape(4, 1, 1) * np.ones((4, 1, 3))
    stack[:, 0, 2] = np.nan  # outside the domain
    stack[0, 0, 1] = np.nan  # dry in member 0: counts as 0 m
    p5, p50, p95 = quantile_rasters(stack, W4)
    # cell 0 sorted: 0.1 (0.1), 0.2 (0.3), 0.3 (0.4), 0.4 (0.2): cumulative 0.1, 0.4, 0.8, 1.0
    assert (p5[0, 0], p50[0, 0], p95[0, 0]) == (0.1, 0.3, 0.4)
    assert p5[0, 1] == 0.0 and np.isnan(p50[0, 2])
    truth = np.array([[0.35, 0.5, np.nan]])
    assert coverage(p5, p95, truth, where=truth > 0.05) == 0.5


def test_road_closures_by_hand() -> None:
    nan = np.nan
    # edges 0 and 1 are two directions of road "A"; edge 2 is road "B"
    t = np.array(
        [
            [100.0, 50.0, nan],  # A closes at 50 s
            [nan, 300.0, 900.0],  # A at 300 s; B at 900 s (after the window: not counted)
            [nan, nan, 200.0],  # A open
            [400.0, nan, nan],  # A at 400 s
        ]
    )
    df = road_closures(t, ["A", "A", "B"], W4, until_s=600.0)
    a, b = df.set_index("road_id").loc["A"], df.set_index("road_id").loc["B"]
    assert a.p_closed == pytest.approx(0.1 + 0.2 + 0.4)
    # times 50 (0.1), 300 (0.2), 400 (0.4), never (0.3): cumulative 0.1, 0.3, 0.7 -> 400
    assert a.median_closure_s == 400.0
    # among closing members: 50 (1/7), 300 (2/7), 400 (4/7): cumulative 3/7 < 0.5 -> 400
    assert a.median_closure_if_closed_s == 400.0
    assert b.p_closed == pytest.approx(0.3)
    assert np.isnan(b.median_closure_s)  # closed in fewer than half the members
    assert b.median_closure_if_closed_s == 200.0
    eq = road_closures(t, ["A", "A", "B"], until_s=600.0).set_index("road_id")
    assert eq.loc["A", "median_closure_s"] == 300.0  # 50, 300, 400, never: the second of four


def test_gauge_quantiles_by_hand() -> None:
    rows = []
    for m, (d, lv) in enumerate([(0.4, 10.4), (0.1, 10.1), (0.3, 10.3), (0.2, 10.2)]):
        rows.append((60.0, "bridge", m, d, lv))
    g = pd.DataFrame(rows, columns=["time_s", "gauge", "member", "depth_m", "level_m"])
    q = gauge_quantiles(g, W4)
    d = q[q.quantity == "depth_m"].iloc[0]
    # sorted depths 0.1 (w 0.2), 0.2 (0.4), 0.3 (0.3), 0.4 (0.1): cumulative 0.2, 0.6, 0.9, 1.0
    assert (d.p5, d.p50, d.p95) == (0.1, 0.2, 0.4)
    assert d["mean"] == pytest.approx(0.04 + 0.02 + 0.09 + 0.08)
    lv = q[q.quantity == "level_m"].iloc[0]
    assert (lv.p5, lv.p50, lv.p95) == (10.1, 10.2, 10.4)
    with pytest.raises(ValueError, match="no depth_m for gauge 'bridge' at 60 s"):
        gauge_quantiles(g[g.member != 2], W4)


def test_gauges_forecast_table_keeps_the_window() -> None:
    runs = [
        pd.DataFrame({"time_s": [0.0, 300.0, 600.0, 900.0], "gauge": "g",
                      "depth_m": [0.0, 0.1, 0.2, 0.3], "speed_m_s": 0.0,
                      "level_m": [5.0, 5.1, 5.2, 5.3]})  # fmt: skip
        for _ in range(2)
    ]
    t = gauges_forecast_table(runs, at_s=300.0, horizon_s=600.0)
    assert list(t.columns) == ["time_s", "gauge", "member", "depth_m", "level_m"]
    assert t[["time_s", "member"]].values.tolist() == [[600.0, 0], [900.0, 0], [600.0, 1],
                                                       [900.0, 1]]  # fmt: skip
    q = gauge_quantiles(t)
    assert q[q.quantity == "depth_m"]["p50"].tolist() == [0.2, 0.3]


def test_flows_in_the_forecast_table_and_quantiles() -> None:
    """Flows where the members record them; a gauge without a section gets no flow band."""
    runs = [
        pd.DataFrame({"time_s": [600.0, 600.0], "gauge": ["q", "p"], "depth_m": [0.1, 0.2],
                      "level_m": [5.1, 6.2], "flow_m3_s": [flow, np.nan]})  # fmt: skip
        for flow in (4.0, 1.0, 3.0, 2.0)
    ]
    t = gauges_forecast_table(runs, at_s=0.0, horizon_s=600.0)
    assert list(t.columns) == ["time_s", "gauge", "member", "depth_m", "level_m", "flow_m3_s"]
    q = gauge_quantiles(t, W4)
    fl = q[q.quantity == "flow_m3_s"]
    assert fl.gauge.tolist() == ["q"]  # not p: it has no section
    # sorted 1 (w 0.2), 2 (0.4), 3 (0.3), 4 (0.1), as in test_gauge_quantiles_by_hand
    assert (fl.p5.iloc[0], fl.p50.iloc[0], fl.p95.iloc[0]) == (1.0, 2.0, 4.0)
    assert fl["mean"].iloc[0] == pytest.approx(0.4 + 0.2 + 0.9 + 0.8)
    assert set(q.quantity) == {"depth_m", "level_m", "flow_m3_s"}


def test_shelter_loads() -> None:
    loads = np.array([[10.0, 0.0], [20.0, 5.0], [30.0, 5.0], [40.0, 5.0]])
    df = shelter_loads(loads, ["school", "hall"], W4)
    assert df["mean"].tolist() == pytest.approx([30.0, 4.5])
    assert df["p50"].tolist() == [30.0, 5.0]


def test_files_written(tmp_path: Path) -> None:
    z = np.zeros((3, 4))
    mask = np.ones((3, 4), dtype=bool)
    mask[0, 0] = False
    terrain = Terrain(
        z=z, mask=mask, transform=Affine(10.0, 0, 500000.0, 0, -10.0, 5500030.0), dx=10.0
    )
    world = SimpleNamespace(terrain=terrain, crs=CRS.from_epsg(32633))
    prob = np.linspace(0, 1, 12).reshape(3, 4)
    gauges = pd.DataFrame(
        {"time_s": [60.0, 60.0], "gauge": ["g", "g"], "member": [0, 1], "depth_m": [0.1, 0.2],
         "level_m": [1.1, 1.2], "speed_m_s": [0.0, 0.0]}
    )  # fmt: skip
    products = ForecastProducts(
        rasters={"prob_depth_0.3m": prob},
        gauges=gauges,
        gauge_quantiles=gauge_quantiles(gauges),
        roads=road_closures(np.array([[10.0], [np.nan]]), ["A"], until_s=60.0),
    )
    written = write_products(tmp_path / "fc", products, world)
    assert sorted(p.name for p in written) == [
        "gauges_forecast.csv", "gauges_quantiles.csv", "prob_depth_0.3m.tif", "roads_forecast.csv"
    ]  # fmt: skip
    import rasterio

    with rasterio.open(tmp_path / "fc" / "prob_depth_0.3m.tif") as ds:
        band = ds.read(1)
        assert ds.crs.to_epsg() == 32633 and ds.transform == terrain.transform
        assert ds.nodata == RASTER_NODATA
    assert band[0, 0] == RASTER_NODATA
    np.testing.assert_allclose(band[mask], prob[mask], rtol=1e-6)
    gf = pd.read_csv(tmp_path / "fc" / "gauges_forecast.csv")
    assert list(gf.columns) == ["time_s", "gauge", "member", "depth_m", "level_m"]
    roads = pd.read_csv(tmp_path / "fc" / "roads_forecast.csv")
    assert roads.p_closed.tolist() == [0.5]
    with pytest.raises(ValueError, match=r"expected shape \(3, 4\)"):
        write_products(tmp_path / "x", ForecastProducts(rasters={"p": np.zeros((2, 2))}), world)


def test_summary_section_is_json_safe() -> None:
    s = forecast_summary(
        members=16, at_s=3600.0, horizon_s=10800.0,
        observations=[{"file": "gauges.csv", "quantity": "level_m", "gauges": ["bridge"],
                       "readings": 61}],
        posterior={"hazards.0.rain": {"mean": 1.4, "p5": 1.1, "p95": 1.6}},
        ess=7.5, sigma_m=0.05,
    )  # fmt: skip
    assert s["observations_used"] == 61
    assert s["posterior"]["hazards.0.rain"]["p95"] == 1.6
    assert json.loads(json.dumps(json_safe(s)))["effective_sample_size"] == 7.5


def test_fan_chart_draws_the_band_median_and_readings() -> None:
    from emtwin.viz.forecast_charts import fan_chart, fan_charts

    q = pd.DataFrame({"time_s": [3600.0, 7200.0] * 2, "gauge": ["g"] * 4,
                      "quantity": ["level_m"] * 2 + ["depth_m"] * 2,
                      "p5": [1.0, 2.0, 0.1, 0.2], "p50": [1.5, 2.5, 0.15, 0.25],
                      "p95": [2.0, 3.0, 0.2, 0.3]})  # fmt: skip
    obs = pd.DataFrame({"time_s": [0.0, 1800.0], "gauge": ["g", "g"], "value": [0.9, 1.1],
                        "quantity": ["level_m", "level_m"]})  # fmt: skip
    fig = fan_chart(q, "g", observations=obs, at_s=3600.0)
    ax = fig.axes[0]
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 1.0 and band[:, 1].max() == 3.0  # p5 .. p95 of the level
    median, points = ax.lines[0], ax.lines[1]
    assert median.get_xydata().tolist() == [[1.0, 1.5], [2.0, 2.5]]  # hours, m
    assert points.get_xydata().tolist() == [[0.0, 0.9], [0.5, 1.1]]
    assert fan_chart(q, "other") is None
    assert list(fan_charts(q, quantity="depth_m")) == ["g"]
