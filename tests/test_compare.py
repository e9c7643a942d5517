"""Plan comparison: common random numbers, paired intervals, the response index, the command."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import rasterio
import simpy
from rasterio.transform import from_origin
from scipy import stats
from typer.testing import CliRunner

from emtwin.batch import (
    CatalogError,
    comparison_table,
    response_index,
    run_batch,
    run_comparison,
)
from emtwin.batch.compare import metric_bounds, t_interval
from emtwin.batch.index import describe, index_columns
from emtwin.cli import app
from emtwin.errors import ScenarioError
from emtwin.scenarios.models import ResponseIndex, Scenario
from emtwin.sim import Component
from emtwin.sim.components import REGISTRY
from emtwin.viz.compare import comparison_html

TRAVEL_S = 300.0  # the toy's drive to every call, s


def write_dem(folder: Path) -> None:
    z = np.tile(10.0 + np.arange(50) * 0.2, (50, 1)).astype("float32")
    with rasterio.open(folder / "dem.tif", "w", driver="GTiff", height=50, width=50, count=1,
                       dtype="float32", crs="EPSG:32633", nodata=-9999.0,
                       transform=from_origin(500000.0, 5501000.0, 20.0, 20.0)) as dst:
        dst.write(z, 1)  # fmt: skip


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.write_text(textwrap.dedent(text))
    return p


# ---------------------------------------------------------------- common random numbers


@pytest.fixture()
def flood_town(tmp_path: Path) -> Path:
    write_dem(tmp_path)
    return write(tmp_path, "base.yaml", """\
        name: town
        seed: 21
        duration: 20min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif}
        hazards:
          - type: flood
            rain: [[0, 50], [10min, 0]]
        outputs: {every: 10min}
        uncertain:
          parameters:
            hazards.0.rain: {scale: {lognormal: {mean: 1, sd: 0.3}}}
            hazards.0.initial_depth: {uniform: [0, 0.02]}
        """)


def test_identical_plans_differ_by_exactly_zero_on_every_metric(flood_town: Path) -> None:
    d = flood_town.parent
    same = write(d, "same.yaml", "duration: 20min\n")
    wet = write(d, "wet.yaml", "hazards: [{type: flood, rain: [[0, 100], [10min, 0]]}]\n")
    res = run_comparison(flood_town, [same, wet], runs=6, out_dir=d / "c", workers=0)
    t = res.batch.table
    assert t.groupby("plan").size().to_dict() == {"base": 6, "same": 6, "wet": 6}
    assert t[t.plan == "base"]["flood.peak_volume_m3"].std() > 100  # the runs do vary
    st = res.stats[res.stats.plan == "same"]
    assert len(st) >= 5 and (st["diff_n"] == 6).all()
    assert (st["diff_mean"] == 0).all() and (st["diff_ci_low"] == 0).all()
    assert (st["diff_ci_high"] == 0).all() and (~st["significant"]).all()
    # the wetter plan: twice the rain on the same draws; on a closed box the paired
    # difference is the base rain volume times each run's rain factor (mass balance)
    f = t[t.plan == "base"]["scale.hazards.0.rain"].to_numpy()
    diffs = 1e6 * 0.05 / 6 * f
    w = res.stats[(res.stats.plan == "wet") & (res.stats.metric == "flood.peak_volume_m3")].iloc[0]
    m, lo, hi = diffs.mean(), *stats.t.interval(0.95, 5, diffs.mean(), stats.sem(diffs))
    assert w["diff_mean"] == pytest.approx(m, rel=1e-9)
    assert (w["diff_ci_low"], w["diff_ci_high"]) == pytest.approx((lo, hi), rel=1e-6)
    assert w["significant"] and w["verdict"] == "worse"  # more water is worse
    saved = pd.read_csv(d / "c" / "comparison.csv")
    assert len(saved) == len(res.stats) and set(saved["plan"]) == {"base", "same", "wet"}


def test_a_plan_may_not_bring_its_own_uncertainties(flood_town: Path) -> None:
    bad = write(flood_town.parent, "bad.yaml", "uncertain: {parameters: {}}\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml:1: uncertain: a compared plan cannot"):
        run_comparison(flood_town, [bad], runs=2, out_dir=flood_town.parent / "c", workers=0)


def test_compare_reuses_a_finished_batch_as_its_base_and_grows_by_plans(
    flood_town: Path,
) -> None:
    """A batch of the base lends its 4 runs to a comparison (only the plan's 4 runs are run,
    and the base rows are the batch's); adding a plan runs only that plan; a batch of
    another seed is refused as a base."""
    d = flood_town.parent
    batch = run_batch(flood_town, runs=4, out_dir=d / "b", workers=0)
    wet = write(d, "wet.yaml", "hazards: [{type: flood, rain: [[0, 100], [10min, 0]]}]\n")
    res = run_comparison(flood_town, [wet], runs=4, out_dir=d / "c", workers=0,
                         base_batch=d / "b")  # fmt: skip
    assert res.batch.reused == 4 and res.batch.executed == 4 and res.batch.skipped == 4
    base = res.batch.table[res.batch.table.plan == "base"].drop(columns="plan")
    pd.testing.assert_frame_equal(base.reset_index(drop=True), batch.table)
    same = write(d, "same.yaml", "duration: 20min\n")
    more = run_comparison(flood_town, [wet, same], runs=4, out_dir=d / "c", workers=0)
    assert more.batch.executed == 4 and more.batch.skipped == 8
    assert set(more.batch.table["plan"]) == {"base", "wet", "same"}
    run_batch(flood_town, runs=2, out_dir=d / "other", workers=0, overrides={"seed": 5})
    with pytest.raises(CatalogError, match=r"other is not a batch of this base .*seed 5"):
        run_comparison(flood_town, [wet], runs=4, out_dir=d / "c2", workers=0,
                       base_batch=d / "other")  # fmt: skip
    with pytest.raises(CatalogError, match="no catalog.sqlite"):
        run_comparison(flood_town, [wet], runs=4, out_dir=d / "c2", workers=0, base_batch=d)


# ---------------------------------------------------------------- statistics


def test_paired_intervals_match_the_t_distribution() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(100, 10, 12)
    plan = base + rng.normal(-3, 2, 12)
    table = pd.DataFrame({"plan": ["base"] * 12 + ["b"] * 12, "run": list(range(12)) * 2,
                          "status": "done", "dispatch.response_p90_s": [*base, *plan]})  # fmt: skip
    row = comparison_table(table, base="base").set_index("plan").loc["b"]
    d = plan - base
    lo, hi = stats.t.interval(0.95, 11, loc=d.mean(), scale=stats.sem(d))
    assert row["diff_mean"] == pytest.approx(d.mean())
    assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((lo, hi))
    assert row["p_value"] == pytest.approx(stats.ttest_rel(plan, base).pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        stats.t.interval(0.95, 11, loc=plan.mean(), scale=stats.sem(plan)))  # fmt: skip
    assert row["significant"] and row["verdict"] == "better"  # shorter responses
    assert np.isnan(t_interval(np.array([5.0]))[1:3]).all()  # one run: no interval


def test_intervals_of_bounded_metrics_stay_within_their_bounds() -> None:
    """Four runs by hand: stranded people 0, 0, 0, 8 of 100 residents (t interval of the
    mean 2 +- 3.182 * 4 / 2 = [-4.36, 8.36]: below 0), an index part 100, 100, 100, 40
    ([49.6, 120.4]: above 100), and a plan stranding 100 more in run 3 (a paired
    difference 25 +- 3.182 * 50 / 2 = [-54.6, 104.6] on counts of 0 to 100). Each is
    clipped to what it can take; an unbounded metric is not."""
    def rows(plan: str, stranded: list[float], part: list[float], other: list[float]) -> dict:
        return {"plan": [plan] * 4, "run": [0, 1, 2, 3], "status": "done",
                "evacuation.people": 100.0, "evacuation.stranded": stranded,
                "index.safe": part, "flood.mass_error_m3_signed": other}  # fmt: skip

    table = pd.concat([pd.DataFrame(rows("base", [0, 0, 0, 8], [100, 100, 100, 40],
                                         [-1, 0, 0, 1])),
                       pd.DataFrame(rows("b", [0, 0, 0, 108], [100] * 4, [-3, 0, 0, 1]))])
    t = comparison_table(table, base="base").set_index(["metric", "plan"])
    h = stats.t.ppf(0.975, 3)
    stranded = t.loc[("evacuation.stranded", "base")]
    assert stranded["mean"] == 2 and stranded["ci_low"] == 0  # not 2 - 4 h / 2 < 0
    assert stranded["ci_high"] == pytest.approx(2 + h * 4 / 2)
    part = t.loc[("index.safe", "base")]
    assert part["ci_high"] == 100 and part["ci_low"] == pytest.approx(85 - h * 30 / 2)
    diff = t.loc[("evacuation.stranded", "b")]
    assert diff["diff_ci_high"] == 100 and diff["diff_ci_low"] == pytest.approx(25 - h * 50 / 2)
    # unknown bounds (the name says nothing): the plain t interval, below 0 allowed
    other = t.loc[("flood.mass_error_m3_signed", "base")]
    assert other["ci_low"] == pytest.approx(-h * math.sqrt(2 / 3) / 2)
    assert metric_bounds("index.exposed.value") == (0, 1)
    assert metric_bounds("evacuation.stranded", table) == (0, 100)
    assert metric_bounds("dispatch.response_p90_s") == (0, math.inf)
    page = comparison_html({"base": [{}], "b": [{}]}, metrics=["evacuation.stranded"],
                           paired=comparison_table(table, base="base"))  # fmt: skip
    assert "2 [0, " in page and "[-4.3" not in page


# ---------------------------------------------------------------- resources, a toy case


class ToyDispatch(Component):
    """A dispatch-like test component: Poisson calls at response.incidents.background_rate
    served first come first served by as many units as response.resources count; each
    call's service time is drawn when it arrives, so plans share calls and service times.
    Response = wait for a free unit (a call still waiting at the end counts its wait so
    far) + a fixed drive of TRAVEL_S."""

    name: ClassVar[str] = "dispatch"

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        return scenario.response is not None

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        r = self.scenario.response
        self.units = simpy.Resource(self.env, capacity=sum(g.count for g in r.resources))
        self.rate = r.incidents.background_rate
        self.calls: list[float] = []
        self.began: dict[int, float] = {}

    def run(self):
        while True:
            yield self.env.timeout(self.rng.exponential(1 / self.rate))
            self.calls.append(self.env.now)
            self.env.process(self.serve(len(self.calls) - 1, self.rng.exponential(1200.0)))

    def serve(self, i: int, service_s: float):
        with self.units.request() as req:
            yield req
            self.began[i] = self.env.now
            yield self.env.timeout(TRAVEL_S + service_s)

    def summary(self) -> dict[str, Any]:
        end = float(self.scenario.duration)
        resp = np.array([self.began.get(i, end) - t + TRAVEL_S for i, t in enumerate(self.calls)])
        stats_ = {"calls": len(resp), "unserved": len(resp) - len(self.began),
                  "response_p90_s": float(np.percentile(resp, 90)),
                  "response_mean_s": float(resp.mean())}  # fmt: skip
        return {**stats_, "by_priority": {"1": dict(stats_)}}


@pytest.fixture()
def toy_only():
    saved = REGISTRY[:]
    REGISTRY[:] = [ToyDispatch]
    yield
    REGISTRY[:] = saved


def test_adding_units_never_worsens_a_seeds_response(tmp_path: Path, toy_only) -> None:
    write_dem(tmp_path)
    base = write(tmp_path, "base.yaml", """\
        name: toy
        seed: 2
        duration: 3h
        crs: EPSG:32633
        world: {terrain: {dem: dem.tif}}
        response:
          resources: [{type: ambulance, station: North, count: 1}]
          incidents: {background_rate: 6/h}
        uncertain:
          parameters:
            response.incidents.background_rate: {uniform: [3/h, 9/h]}
        """)
    plans = [write(tmp_path, f"{k}.yaml", f"""\
        response:
          resources: [{{type: ambulance, station: North, count: {n}}}]
          incidents: {{background_rate: 6/h}}
        """) for k, n in (("two", 2), ("many", 100))]  # fmt: skip
    res = run_comparison(base, plans, runs=10, out_dir=tmp_path / "c", workers=0)
    t = res.batch.table.set_index(["plan", "run"])
    for m in ("dispatch.response_p90_s", "dispatch.response_mean_s", "dispatch.unserved"):
        one, two, many = (t.loc[p, m] for p in ("base", "two", "many"))
        assert (two <= one).all() and (many <= two).all(), m
    assert (t.loc["two", "dispatch.response_p90_s"] < t.loc["base", "dispatch.response_p90_s"]
            ).any()  # fmt: skip
    # common random numbers: the same calls in every plan, run by run
    assert (t.loc["two", "dispatch.calls"] == t.loc["base", "dispatch.calls"]).all()
    assert t.loc["base", "dispatch.calls"].nunique() > 3
    # with a unit for every call nobody waits: every response is the drive alone
    assert (t.loc["many", "dispatch.response_p90_s"] == TRAVEL_S).all()
    assert (t.loc["many", "dispatch.unserved"] == 0).all()
    assert res.headline.startswith("many wins on index.score")
    assert "left out (not in these runs), weights renormalised: safe, exposed" \
        in res.batch.index_note  # fmt: skip


# ---------------------------------------------------------------- the response index

METRICS = {"evacuation.people": 1000, "evacuation.out": 600, "evacuation.sheltered": 200,
           **{f"evacuation.exposed_by_aidr.{k}": v for k, v in
              zip(range(1, 7), [50, 0, 0, 0, 0, 0], strict=True)},  # first class met
           **{f"evacuation.exposed_by_peak_aidr.{k}": v for k, v in
              zip(range(1, 7), [40, 0, 10, 0, 0, 0], strict=True)},  # worst class met
           "dispatch.calls": 20, "dispatch.unserved": 2,
           "dispatch.by_priority.1.response_p90_s": 1800.0,
           "dispatch.by_priority.2.response_p90_s": 2400.0}  # fmt: skip


def test_response_index_by_hand() -> None:
    ix = response_index(METRICS)
    # safe 0.8 -> 80; exposed 10/1000 on [0, 0.05] -> 80; p1 30 min on [15, 60] min -> 66.7;
    # p2 at its 40 min target -> 100; unserved 0.1 on [0, 0.2] -> 50
    old = ("safe", "exposed", "response_p1", "response_p2", "unserved")
    assert {k: ix.scores[k] for k in old} == pytest.approx(
        {"safe": 80, "exposed": 80, "response_p1": 200 / 3, "response_p2": 100, "unserved": 50})
    # no consequences in these metrics: their parts are left out, the others renormalised
    assert math.isnan(ix.scores["damage"]) and math.isnan(ix.scores["life_loss"])
    assert ix.score == pytest.approx(0.3 * 80 + 0.3 * 80 + 0.15 * 200 / 3 + 0.1 * 100
                                     + 0.15 * 50)  # fmt: skip
    no_evac = {k: v for k, v in METRICS.items() if not k.startswith("evacuation")}
    ix = response_index(no_evac)
    assert ix.left_out == ["safe", "exposed", "damage", "life_loss"]
    assert ix.score == pytest.approx((0.15 * 200 / 3 + 0.1 * 100 + 0.15 * 50) / 0.4)
    spec = ResponseIndex(weights={"exposed": 0}, targets={"response_p1": ["10min", "30min"]})
    ix = response_index(METRICS, spec)
    assert ix.scores["response_p1"] == 0 and ix.weights["exposed"] == 0
    assert ix.score == pytest.approx((0.3 * 80 + 0.1 * 100 + 0.15 * 50) / 0.7)
    cols = index_columns(pd.DataFrame([METRICS, no_evac]))
    assert cols["index.safe.value"].iloc[0] == 0.8 and math.isnan(cols["index.safe"].iloc[1])
    assert "safe 30%" in describe(cols.iloc[:1])
    assert describe(cols.iloc[:1]).endswith("weights renormalised: damage, life_loss")


# ---------------------------------------------------------------- the command


def test_compare_command_writes_the_statistics_and_the_report(flood_town: Path) -> None:
    d = flood_town.parent
    wet = write(d, "wet.yaml", "hazards: [{type: flood, rain: [[0, 100], [10min, 0]]}]\n")
    res = CliRunner().invoke(app, ["batch", str(flood_town), "--runs", "4", "--workers", "0",
                                   "--out", str(d / "b"), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["compare", str(flood_town), "--plan", str(wet), "--runs",
                                   "4", "--workers", "0", "--out", str(d / "c"), "--quiet",
                                   "--base-batch", str(d / "b")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "(4 run now, 4 done before, 4 of them reused from --base-batch)" in res.output
    assert "flood.peak_volume_m3" in res.output and "worse" in res.output
    page = (d / "c" / "comparison.html").read_text()
    assert "Paired differences against the base" in page and "Headline figures" in page
    assert {"comparison.csv", "comparison.parquet", "results.parquet", "catalog.sqlite"} <= {
        p.name for p in (d / "c").iterdir()}  # fmt: skip
    res = CliRunner().invoke(app, ["compare", str(flood_town), "--runs", "2"])
    assert res.exit_code == 2 and "--plan" in res.output
