"""Batches: result tables, executors, resumption, failures, the `emtwin batch` command."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
import uuid
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from emtwin.cli import app
from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Scenario
from emtwin.sim import Component
from emtwin.sim.batch import CatalogError, run_batch, run_seed
from emtwin.sim.batch.index import response_index
from emtwin.sim.batch.worker import flatten

# rain of 50 mm/h for 10 min on a closed 1 km x 1 km box stays on it: 8333.3 m3
RAIN_M3 = 1e6 * 0.050 / 6


@pytest.fixture()
def town(tmp_path: Path) -> Path:
    """A flood-only scenario on a closed 50 x 50 DEM of 20 m cells, 20 min simulated."""
    d = tmp_path / "town"
    d.mkdir()
    z = np.tile(10.0 + np.arange(50) * 0.2, (50, 1)).astype("float32")
    with rasterio.open(d / "dem.tif", "w", driver="GTiff", height=50, width=50, count=1,
                       dtype="float32", crs="EPSG:32633", nodata=-9999.0,
                       transform=from_origin(500000.0, 5501000.0, 20.0, 20.0)) as dst:
        dst.write(z, 1)  # fmt: skip
    (d / "s.yaml").write_text(textwrap.dedent("""\
        name: town
        seed: 3
        duration: 20min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif}
        hazards:
          - type: flood
            rain: [[0, 50], [10min, 0]]
        outputs: {every: 10min}
        uncertain:
          method: lhs
          parameters:
            hazards.0.rain: {scale: {uniform: [0.5, 1.5]}}
            hazards.0.initial_depth: {triangular: [0, 0.01, 0.02]}
        """))
    return d / "s.yaml"


def timeless(table: pd.DataFrame) -> pd.DataFrame:
    """The table without its wall-clock timings (the only columns that differ between runs)."""
    return table.drop(columns=[c for c in table.columns if c.endswith("wall_s")])


def test_every_run_is_one_row_with_its_seed_draw_and_metrics(town: Path, tmp_path: Path) -> None:
    res = run_batch(town, runs=5, out_dir=tmp_path / "b", workers=0)
    t = pd.read_parquet(tmp_path / "b" / "results.parquet")
    pd.testing.assert_frame_equal(t, res.table)
    assert t["run"].tolist() == list(range(5)) and (t["status"] == "done").all()
    assert t["seed"].tolist() == [run_seed(3, i) for i in range(5)]
    f, h0 = t["scale.hazards.0.rain"], t["param.hazards.0.initial_depth"]
    assert f.between(0.5, 1.5).all() and h0.between(0, 0.02).all() and f.nunique() == 5
    # mass balance of the closed box: peak volume = rain * factor + initial water
    np.testing.assert_allclose(t["flood.peak_volume_m3"], f * RAIN_M3 + h0 * 1e6, rtol=1e-9)
    assert "run.wall_s" not in t and t["wall_s"].gt(0).all()
    assert res.counts == {"pending": 0, "done": 5, "failed": 0} and res.executed == 5
    assert "not available" in res.index_note  # a flood-only run has no index part
    assert not (tmp_path / "b" / "runs").exists()  # per-run folders only with keep
    meta = json.loads((tmp_path / "b" / "batch.json").read_text())
    assert meta["method"] == "lhs" and meta["runs"] == 5


class Crasher(Component):
    """Test component: records each run it starts in a marker file; kills its worker process
    (os._exit) in the run whose seed is $EMTWIN_TEST_CRASH_SEED, once, or raises
    KeyboardInterrupt there when $EMTWIN_TEST_INTERRUPT is set."""

    name: ClassVar[str] = "crasher"

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        return True

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        marks = Path(os.environ["EMTWIN_TEST_MARKS"])
        seed = self.scenario.seed
        (marks / f"{os.environ['EMTWIN_TEST_PHASE']}-{seed}-{uuid.uuid4().hex}").touch()
        flag = marks / "crashed"
        if str(seed) == os.environ.get("EMTWIN_TEST_CRASH_SEED") and not flag.exists():
            flag.touch()
            if os.environ.get("EMTWIN_TEST_INTERRUPT"):
                raise KeyboardInterrupt
            os._exit(3)


def starts(marks: Path, phase: str) -> list[int]:
    """Seeds of the runs started in *phase* (one marker per start)."""
    return sorted(int(p.name.split("-")[1]) for p in marks.glob(f"{phase}-*"))


def test_killed_batch_resumes_and_matches_two_workers_and_dask(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch, 5 runs: a worker dies (os._exit) in run 2 with 1 worker; re-running the
    same command runs only what had not finished; the finished table equals the same
    batch on 2 workers and on a Dask LocalCluster, column for column."""
    marks = tmp_path / "marks"
    marks.mkdir()
    seeds = [run_seed(3, i) for i in range(5)]
    monkeypatch.setenv("EMTWIN_TEST_MARKS", str(marks))
    monkeypatch.setenv("EMTWIN_TEST_CRASH_SEED", str(seeds[2]))
    out = tmp_path / "one"
    opts = {"runs": 5, "components": [Crasher]}

    monkeypatch.setenv("EMTWIN_TEST_PHASE", "1")
    first = run_batch(town, out_dir=out, workers=1, **opts)
    assert first.interrupted and "run 2" in first.interrupted
    assert first.counts == {"pending": 3, "done": 2, "failed": 0}
    assert starts(marks, "1") == sorted(seeds[:3])  # runs 0, 1 finished; run 2 killed

    monkeypatch.setenv("EMTWIN_TEST_PHASE", "2")
    second = run_batch(town, out_dir=out, workers=1, **opts)
    assert second.interrupted is None and second.counts["done"] == 5
    assert second.skipped == 2 and second.executed == 3
    assert starts(marks, "2") == sorted(seeds[2:])  # finished runs were not run again
    with sqlite3.connect(out / "catalog.sqlite") as db:
        rows = dict(db.execute("SELECT run, attempts FROM runs").fetchall())
    assert rows == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}

    monkeypatch.setenv("EMTWIN_TEST_PHASE", "3")
    two = run_batch(town, out_dir=tmp_path / "two", workers=2, **opts)
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:  # fmt: skip
        dask = run_batch(town, out_dir=tmp_path / "dask", executor="dask",
                         scheduler=cluster.scheduler_address, **opts)  # fmt: skip
    ref = timeless(second.table)
    assert ref["flood.peak_volume_m3"].nunique() == 5
    pd.testing.assert_frame_equal(timeless(two.table), ref)
    pd.testing.assert_frame_equal(timeless(dask.table), ref)


def test_dask_without_a_scheduler_starts_its_own_process_cluster(
    town: Path, tmp_path: Path
) -> None:
    """executor="dask" with no scheduler: a LocalCluster of worker processes (workers=1)
    gives the same table as the runs done in this process."""
    local = run_batch(town, runs=2, out_dir=tmp_path / "local", workers=0)
    dask = run_batch(town, runs=2, out_dir=tmp_path / "dask", executor="dask", workers=1)
    assert dask.counts == {"pending": 0, "done": 2, "failed": 0} and dask.executed == 2
    ref = timeless(local.table)
    assert ref["flood.peak_volume_m3"].nunique() == 2
    pd.testing.assert_frame_equal(timeless(dask.table), ref)


def test_keyboard_interrupt_loses_no_finished_run(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    seeds = [run_seed(3, i) for i in range(4)]
    for k, v in {"EMTWIN_TEST_MARKS": str(marks), "EMTWIN_TEST_CRASH_SEED": str(seeds[1]),
                 "EMTWIN_TEST_INTERRUPT": "1", "EMTWIN_TEST_PHASE": "1"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run_batch(town, runs=4, out_dir=out, workers=0, components=[Crasher])
    assert pd.read_parquet(out / "results.parquet")["status"].tolist() == [
        "done", "pending", "pending", "pending"]  # fmt: skip
    monkeypatch.setenv("EMTWIN_TEST_PHASE", "2")
    res = run_batch(town, runs=4, out_dir=out, workers=0, components=[Crasher])
    assert res.counts["done"] == 4 and starts(marks, "2") == sorted(seeds[1:])


def test_a_failing_run_is_recorded_and_the_batch_goes_on(town: Path, tmp_path: Path) -> None:
    text = town.read_text().replace("{triangular: [0, 0.01, 0.02]}",
                                    "{normal: {mean: 0, sd: 0.01}}")  # fmt: skip
    town.write_text(text.replace("method: lhs", "method: monte_carlo"))
    res = run_batch(town, runs=8, out_dir=tmp_path / "b", workers=0)
    t = res.table
    neg = t["param.hazards.0.initial_depth"] < 0
    assert 0 < neg.sum() < 8  # some draws are negative depths, which the scenario refuses
    assert (t.loc[neg, "status"] == "failed").all() and (t.loc[~neg, "status"] == "done").all()
    assert t.loc[neg, "error"].str.contains(r"hazards\.0\.initial_depth: .*greater than").all()
    assert t.loc[neg, "flood.peak_volume_m3"].isna().all()
    assert len(res.failures) == neg.sum() and res.counts["failed"] == neg.sum()
    again = run_batch(town, runs=8, out_dir=tmp_path / "b", workers=0)
    assert again.executed == 0 and again.skipped == 8 - neg.sum()  # failed runs are not retried


def test_a_folder_of_another_batch_is_refused(town: Path, tmp_path: Path) -> None:
    run_batch(town, runs=2, out_dir=tmp_path / "b", workers=0)
    with pytest.raises(CatalogError, match=r"holds another batch .*2 runs.* this one is .*3 runs"):
        run_batch(town, runs=3, out_dir=tmp_path / "b", workers=0)
    town.write_text(town.read_text().replace("seed: 3", "seed: 4"))
    with pytest.raises(CatalogError, match="choose another --out folder"):
        run_batch(town, runs=2, out_dir=tmp_path / "b", workers=0)
    with pytest.raises(ScenarioError, match="at least 1 run"):
        run_batch(town, runs=0, out_dir=tmp_path / "c", workers=0)


def test_index_counts_people_whose_class_rose_to_h3_after_their_first_exposure() -> None:
    """100 residents, 95 safe; 3 first exposed at H2 whose home water then reached H3, 1 at
    H1 throughout: the exposed part is 3/100 = 0.03 on [best 0, worst 0.05] -> 40."""
    aidr = dict.fromkeys(map(str, range(1, 7)), 0)
    summary = {"evacuation": {
        "people": 100, "out": 90, "sheltered": 5,
        "exposed_by_aidr": {**aidr, "1": 1, "2": 3},
        "exposed_by_peak_aidr": {**aidr, "1": 1, "3": 3},
    }}  # fmt: skip
    ix = response_index(flatten(summary))
    assert ix.values["exposed"] == pytest.approx(0.03)
    assert ix.scores["safe"] == pytest.approx(95.0) and ix.scores["exposed"] == pytest.approx(40.0)
    assert ix.score == pytest.approx((0.3 * 95 + 0.3 * 40) / 0.6)  # no calls: 2 parts
    # a run written before the peak key: the class at first exposure (H2) is all there is
    del summary["evacuation"]["exposed_by_peak_aidr"]
    old = response_index(flatten(summary))
    assert old.values["exposed"] == 0 and old.scores["exposed"] == 100


runner = CliRunner()


def test_batch_command_prints_intervals_and_keeps_map_files(town: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    res = runner.invoke(app, ["batch", str(town), "--runs", "3", "--workers", "0", "--out",
                              str(out), "--keep", "maps", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3 runs done, 0 failed" in res.output and "flood.peak_volume_m3: mean" in res.output
    kept = sorted(p.name for p in (out / "runs").iterdir())
    assert kept == ["00000", "00001", "00002"]
    files = {p.name for p in (out / "runs" / "00001").iterdir()}
    assert {"summary.json", "max_depth.tif"} <= files and "events.parquet" not in files
    s = json.loads((out / "runs" / "00001" / "summary.json").read_text())
    assert s["run"]["seed"] == run_seed(3, 1)
    again = runner.invoke(app, ["batch", str(town), "--runs", "3", "--workers", "0", "--out",
                                str(out), "--quiet"])  # fmt: skip
    assert again.exit_code == 0 and "(0 run now, 3 done before)" in again.output


def test_keep_all_keeps_every_output_file_with_the_report(town: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    res = runner.invoke(app, ["batch", str(town), "--runs", "1", "--workers", "0", "--out",
                              str(out), "--keep", "all", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    files = {p.name for p in (out / "runs" / "00000").iterdir()}
    assert {"summary.json", "max_depth.tif", "map.html", "report.html",
            "events.parquet"} <= files  # fmt: skip
    assert (out / "runs" / "00000" / "report.html").stat().st_size > 0


def test_batch_command_bad_input(town: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["batch", str(town), "--runs", "0"])
    assert res.exit_code == 2 and "--runs" in res.output
    town.write_text(town.read_text().replace("hazards.0.initial_depth", "hazards.0.initial_dept"))
    res = runner.invoke(app, ["batch", str(town), "--runs", "2", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert "uncertain.parameters.hazards.0.initial_dept: no key 'initial_dept'" in res.output
