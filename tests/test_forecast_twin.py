"""The twin experiment through the command line, bad observation files, the watch mode.

A small valley (40 x 30 cells of 20 m) fills with rain; the prior draws the
rain's scale from U[0.4, 2.0] (centre 1.2). The hidden truth rains 1.5 times
the scenario's rain. Its gauges up to T = 20 min are the observations; the
members are forecast to T + H = 40 min with and without assimilation, and
checked against the truth's own records (an independent run).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from emtwin.cli import app
from emtwin.forecast import products as prod
from emtwin.forecast import skill

runner = CliRunner()
T, H = 1200.0, 1200.0

SCENARIO = """\
    name: valley
    seed: 5
    duration: 40min
    crs: EPSG:32633
    world:
      terrain: {{dem: dem.tif}}
    hazards:
      - type: flood
        rain: {rain}
        gauges:
          - {{name: low, at: [500770, 5500700],
             section: [[500700, 5501000], [500700, 5500400]]}}
          - {{name: mid, at: [500400, 5500700]}}
    outputs: {{every: 5min}}
    uncertain:
      method: lhs
      parameters:
        hazards.0.rain: {{scale: {{uniform: [0.4, 2.0]}}}}
    """


@pytest.fixture(scope="module")
def valley(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The valley scenario (prior) and the truth (1.5x rain), and the truth's run."""
    d = tmp_path_factory.mktemp("valley")
    z = np.tile(10.0 - np.arange(40) * 0.05, (30, 1))
    z += (np.abs(np.arange(30) - 15) * 0.1)[:, None]
    with rasterio.open(d / "dem.tif", "w", driver="GTiff", height=30, width=40, count=1,
                       dtype="float32", crs="EPSG:32633", nodata=-9999.0,
                       transform=from_origin(500000.0, 5501000.0, 20.0, 20.0)) as dst:
        dst.write(z.astype("float32"), 1)  # fmt: skip
    (d / "s.yaml").write_text(textwrap.dedent(SCENARIO.format(rain="[[0, 40], [40min, 10]]")))
    (d / "truth.yaml").write_text(textwrap.dedent(SCENARIO.format(rain="[[0, 60], [40min, 15]]")))
    res = runner.invoke(app, ["run", str(d / "truth.yaml"), "--out", str(d / "truth"), "-q"])
    assert res.exit_code == 0, res.output
    return d


def _forecast(d: Path, out: str, *extra: str, obs: str = "gauges.csv") -> Path:
    if (d / out / "summary.json").exists():  # made by an earlier test of this module
        return d / out
    args = ["forecast", str(d / "s.yaml"), "--observations", str(d / "truth" / obs),
            "--at", "20min", "--horizon", "20min", "--members", "8", "--workers", "0",
            "--out", str(d / out), *extra]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return d / out


def _rmse(folder: Path, truth: pd.DataFrame, quantity: str = "level_m") -> float:
    g = pd.read_csv(folder / "gauges_forecast.csv").dropna(subset=[quantity])
    wide = g.pivot_table(index=["gauge", "time_s"], columns="member", values=quantity)
    tr = truth.set_index(["gauge", "time_s"])[quantity].reindex(wide.index)
    return skill.ensemble_mean_rmse(wide.to_numpy().T, tr.to_numpy())


def test_twin_experiment_assimilation_halves_the_gauge_error_and_covers_the_truth(
    valley: Path,
) -> None:
    truth = pd.read_csv(valley / "truth" / "gauges.csv")
    window = truth[(truth.time_s > T) & (truth.time_s <= T + H)]
    with_da = _forecast(valley, "with")
    without = _forecast(valley, "without", "--no-assimilation")
    rmse_da, rmse_free = _rmse(with_da, window), _rmse(without, window)
    assert rmse_da <= 0.5 * rmse_free, (rmse_da, rmse_free)

    s = json.loads((with_da / "summary.json").read_text())["forecast"]
    assert s["members"] == 8 and s["at_s"] == T and s["horizon_s"] == H
    assert 1.0 <= s["effective_sample_size"] <= 8.0
    post = s["posterior"]["hazards.0.rain"]
    prior = json.loads((without / "summary.json").read_text())["forecast"]["posterior"]
    # the truth's scale is 1.5: the posterior mean moves to it from the prior's
    assert abs(post["mean"] - 1.5) < abs(prior["hazards.0.rain"]["mean"] - 1.5)
    assert abs(post["mean"] - 1.5) < 0.2  # within one of the 8 LHS strata of the prior
    assert s["observations_used"] == int(((truth.time_s <= T)).sum())

    # the rain keeps falling over the window, so the truth's run maximum is its window maximum
    with rasterio.open(valley / "truth" / "max_depth.tif") as ds:
        true_max = ds.read(1, masked=True).filled(np.nan)
    with rasterio.open(with_da / "prob_depth_0.3m.tif") as ds:
        prob = ds.read(1, masked=True).filled(np.nan)
    assert np.nanmin(prob) >= 0.0 and np.nanmax(prob) <= 1.0
    q = pd.read_csv(with_da / "gauges_quantiles.csv")
    assert set(q.columns) >= {"time_s", "gauge", "quantity", "p5", "p50", "p95"}
    assert (q.p5 <= q.p50).all() and (q.p50 <= q.p95).all()
    assert (with_da / "report.html").read_text().count("<img") >= 3  # 2 fans + maps

    # coverage of the truth's max depth by the members' 5-95 % band, from the Python API
    from emtwin.forecast.runner import forecast

    res = forecast(str(valley / "s.yaml"), [valley / "truth" / "gauges.csv"], at_s=T,
                   horizon_s=H, members=8, workers=0, out_dir=valley / "api", report=False)
    p5, _, p95 = prod.quantile_rasters(res.max_depth)
    wet = true_max > 0.05
    assert skill.coverage(p5, p95, true_max, where=wet) >= 0.9
    # the same scenario and seed give the same risk map as the command line's
    np.testing.assert_allclose(res.products.rasters["prob_depth_0.3m"], prob, atol=1e-6)


def test_twin_experiment_on_the_discharge_alone(valley: Path) -> None:
    """The truth's flow through the section of `low` (3 m across the valley), its only
    observation: the posterior finds the rain and the flow forecast error halves."""
    truth = pd.read_csv(valley / "truth" / "gauges.csv")
    window = truth[(truth.time_s > T) & (truth.time_s <= T + H) & (truth.gauge == "low")]
    assert (window.flow_m3_s > 0).all()  # water runs east, downhill, through the section
    assert truth.loc[truth.gauge == "mid", "flow_m3_s"].isna().all()
    with_q = _forecast(valley, "with_flow", obs="gauges.csv:flow_m3_s")
    without = _forecast(valley, "without", "--no-assimilation")
    rmse_q, rmse_free = (_rmse(f, window, "flow_m3_s") for f in (with_q, without))
    assert rmse_q <= 0.5 * rmse_free, (rmse_q, rmse_free)
    s = json.loads((with_q / "summary.json").read_text())["forecast"]
    assert [o["quantity"] for o in s["observations"]] == ["flow_m3_s"]
    assert s["observation_flow_error_rel"] == 0.1
    assert s["observations_used"] == int(((truth.time_s <= T) & (truth.gauge == "low")).sum())
    assert abs(s["posterior"]["hazards.0.rain"]["mean"] - 1.5) < 0.2
    q = pd.read_csv(with_q / "gauges_quantiles.csv")
    assert set(q.loc[q.quantity == "flow_m3_s", "gauge"]) == {"low"}


def test_bad_observation_files_are_named_with_their_rows(valley: Path) -> None:
    bad = valley / "bad.csv"
    bad.write_text("time_s,gauge,level_m\n60,low,8.2\n30,low,8.3\n90,weir,8.1\n120,mid,nan\n")
    res = runner.invoke(app, ["forecast", str(valley / "s.yaml"), "--observations", str(bad),
                              "--at", "20min", "--horizon", "10min", "--members", "4",
                              "--workers", "0", "--out", str(valley / "bad")])  # fmt: skip
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "bad.csv" in text and "3 problems" in text
    assert "row 2 (line 3)" in text and "unknown gauge 'weir'" in text and "row 4" in text


def test_watch_re_forecasts_on_a_new_file_and_keeps_the_history(valley: Path) -> None:
    from emtwin.forecast.command import run_watch

    truth = pd.read_csv(valley / "truth" / "gauges.csv")
    inbox = valley / "inbox"
    inbox.mkdir()
    first = valley / "first.csv"
    truth[truth.time_s <= 600].to_csv(first, index=False)
    polls = iter(range(100))

    def deliver(_s: float) -> None:  # the feed drops the next 10 minutes after the first poll
        if next(polls) == 0:
            truth[(truth.time_s > 600) & (truth.time_s <= 1200)].to_csv(inbox / "late.csv",
                                                                        index=False)  # fmt: skip

    made = run_watch(str(valley / "s.yaml"), inbox, observations=[first], at_s=300.0,
                     out_dir=valley / "live", interval_s=1.0, max_polls=4, sleep=deliver,
                     horizon_s=600.0, members=4, workers=0, report=False)  # fmt: skip
    assert made == 2
    hist = sorted(p.name for p in (valley / "live" / "history").iterdir())
    assert hist == ["t0000600", "t0001200"]  # "now" = the last reading of each delivery
    s = json.loads((valley / "live" / "summary.json").read_text())["forecast"]
    assert s["at_s"] == 1200.0 and len(s["observations"]) == 2


def test_observed_rain_replaces_the_members_rain_over_its_area(valley: Path) -> None:
    from emtwin.forecast.runner import forecast

    # one rain gauge reads 0 mm/h all along and covers the whole valley: nothing falls,
    # whatever the member's rain scale, so every cell stays dry (no inflow, no initial water)
    gauge = valley / "rain.csv"
    gauge.write_text("time_s,gauge,rain_mm_h,x,y\n0,r1,0,500400,5500700\n")
    res = forecast(str(valley / "s.yaml"), [gauge], at_s=600.0, horizon_s=300.0, members=2,
                   assimilate=False, workers=0, out_dir=valley / "dry", report=False)
    assert np.nanmax(res.max_depth) == 0.0
    assert res.products.summary["rain_observed"].endswith("rain.csv")
    # a gauge reading 20 mm/h over the valley: 20 mm/h for 15 min puts 5 mm on every cell
    gauge.write_text("time_s,gauge,rain_mm_h,x,y\n0,r1,20,500400,5500700\n")
    wet = forecast(str(valley / "s.yaml"), [gauge], at_s=600.0, horizon_s=300.0, members=2,
                   assimilate=False, workers=0, out_dir=valley / "wet", report=False)
    g = wet.products.gauges
    # the ridge cell at the valley's upper corner loses its water downhill: at most 5 mm
    assert 0.0 < np.nanmax(wet.max_depth[:, 0, 0]) <= 0.005 + 1e-6
    assert (g.groupby("member")["depth_m"].max().diff().dropna().abs() < 1e-9).all()
