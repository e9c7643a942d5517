"""Batches: result tables, executors, resumption, failures, the `emtwin batch` command."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import types
import uuid
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from emtwin.batch import CatalogError, run_batch, run_seed
from emtwin.batch.catalog import MAX_CRASHES
from emtwin.batch.index import response_index
from emtwin.batch.worker import flatten
from emtwin.cli import app
from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Scenario
from emtwin.sim import Component

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
    """Test component: records each run it starts in a marker file (holding the pid of the
    process running it); in the run whose seed is $EMTWIN_TEST_CRASH_SEED it kills its
    worker process (os._exit(3)) once, or every time with $EMTWIN_TEST_CRASH_ALWAYS, or
    raises KeyboardInterrupt there with $EMTWIN_TEST_INTERRUPT; in the run whose seed is
    $EMTWIN_TEST_HANG_SEED it sleeps ten minutes."""

    name: ClassVar[str] = "crasher"

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        return True

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        marks = Path(os.environ["EMTWIN_TEST_MARKS"])
        seed = self.scenario.seed
        mark = marks / f"{os.environ['EMTWIN_TEST_PHASE']}-{seed}-{uuid.uuid4().hex}"
        mark.write_text(str(os.getpid()))
        if str(seed) == os.environ.get("EMTWIN_TEST_HANG_SEED"):
            time.sleep(600)
        flag = marks / "crashed"
        if str(seed) == os.environ.get("EMTWIN_TEST_CRASH_SEED") and (
            not flag.exists() or os.environ.get("EMTWIN_TEST_CRASH_ALWAYS")
        ):
            flag.touch()
            if os.environ.get("EMTWIN_TEST_INTERRUPT"):
                raise KeyboardInterrupt
            os._exit(3)


def starts(marks: Path, phase: str) -> list[int]:
    """Seeds of the runs started in *phase* (one marker per start)."""
    return sorted(int(p.name.split("-")[1]) for p in marks.glob(f"{phase}-*"))


def catalog_runs(folder: Path) -> dict[int, tuple[str, int, int]]:
    """Run -> (status, attempts, worker deaths) as the catalog holds them."""
    with sqlite3.connect(folder / "catalog.sqlite") as db:
        rows = db.execute("SELECT run, status, attempts, crashes FROM runs").fetchall()
    return {r: (st, a, c) for r, st, a, c in rows}


def test_a_dying_worker_costs_only_its_own_run_and_tables_match_across_executors(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 runs on 2 workers; run 2 kills its worker (os._exit) once: it alone is charged a
    death and run again, and the batch finishes every run. When it kills its worker every
    time, it alone is failed after MAX_CRASHES deaths. The finished table equals the same
    batch in this process and on a Dask LocalCluster, column for column."""
    marks = tmp_path / "marks"
    marks.mkdir()
    seeds = [run_seed(3, i) for i in range(5)]
    monkeypatch.setenv("EMTWIN_TEST_MARKS", str(marks))
    monkeypatch.setenv("EMTWIN_TEST_CRASH_SEED", str(seeds[2]))
    opts = {"runs": 5, "components": [Crasher]}

    monkeypatch.setenv("EMTWIN_TEST_PHASE", "1")
    once = run_batch(town, out_dir=tmp_path / "once", workers=2, **opts)
    assert once.interrupted is None and once.failures == []
    assert once.counts == {"pending": 0, "done": 5, "failed": 0} and once.executed == 5
    assert starts(marks, "1") == sorted([*seeds, seeds[2]])  # only run 2 was started twice
    assert catalog_runs(tmp_path / "once") == {0: ("done", 1, 0), 1: ("done", 1, 0),
                                               2: ("done", 2, 1), 3: ("done", 1, 0),
                                               4: ("done", 1, 0)}  # fmt: skip

    monkeypatch.setenv("EMTWIN_TEST_PHASE", "2")
    monkeypatch.setenv("EMTWIN_TEST_CRASH_ALWAYS", "1")
    always = run_batch(town, out_dir=tmp_path / "always", workers=2, runs=4,
                       components=[Crasher])  # fmt: skip
    assert always.counts == {"pending": 0, "done": 3, "failed": 1}
    assert catalog_runs(tmp_path / "always")[2] == ("failed", MAX_CRASHES, MAX_CRASHES)
    assert always.table["status"].tolist() == ["done", "done", "failed", "done"]
    assert always.table.loc[2, "error"] == "WorkerLost: its worker process died (exit code 3)"

    monkeypatch.delenv("EMTWIN_TEST_CRASH_SEED")
    monkeypatch.setenv("EMTWIN_TEST_PHASE", "3")
    here = run_batch(town, out_dir=tmp_path / "here", workers=0, **opts)
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:  # fmt: skip
        dask = run_batch(town, out_dir=tmp_path / "dask", executor="dask",
                         scheduler=cluster.scheduler_address, **opts)  # fmt: skip
    ref = timeless(here.table)
    assert ref["flood.peak_volume_m3"].nunique() == 5
    pd.testing.assert_frame_equal(timeless(once.table), ref)
    pd.testing.assert_frame_equal(timeless(dask.table), ref)


def test_workers_that_cannot_start_stop_the_batch_and_charge_no_run(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers told a parent pid that is not theirs end as they start (as any worker that
    cannot start): the batch stops with that reason and no run is charged or failed."""
    import emtwin.batch.runner as runner

    monkeypatch.setattr(runner, "os", types.SimpleNamespace(getpid=lambda: 1))
    res = run_batch(town, runs=3, out_dir=tmp_path / "b", workers=2)
    assert res.interrupted == "a worker process died as it started (exit code 70)"
    assert res.counts == {"pending": 3, "done": 0, "failed": 0} and res.failures == []
    assert {c for _, _, c in catalog_runs(tmp_path / "b").values()} == {0}


def alive(pid: int) -> bool:
    """Whether process *pid* runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(check: Any, timeout: float, what: str) -> None:
    """Poll *check* every 0.1 s until it is true; fail naming *what* after *timeout* s."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def done_rows(path: Path) -> int:
    try:
        return int((pd.read_parquet(path)["status"] == "done").sum())
    except (OSError, ValueError):  # not written yet
        return -1


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_kill_9_of_a_batch_ends_its_workers_and_leaves_its_finished_runs(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of 5 runs on 2 workers in a subprocess; run 2 hangs. Once the other 4 are
    done, results.parquet already lists them (it is current after every run, not only at
    the end); then the batch process is killed with SIGKILL: both its workers, the hung
    one included, are gone within seconds, and running the batch again runs run 2 only."""
    marks = tmp_path / "marks"
    marks.mkdir()
    seeds = [run_seed(3, i) for i in range(5)]
    out = tmp_path / "b"
    env = {**os.environ, "EMTWIN_TEST_MARKS": str(marks), "EMTWIN_TEST_PHASE": "1",
           "EMTWIN_TEST_HANG_SEED": str(seeds[2])}  # fmt: skip
    script = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_batch import Crasher
        from emtwin.batch import run_batch
        run_batch({str(town)!r}, runs=5, out_dir={str(out)!r}, workers=2, components=[Crasher])
        """)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=Path.cwd())
    try:
        wait_for(lambda: done_rows(out / "results.parquet") == 4 or proc.poll() is not None,
                 240, "4 finished runs in results.parquet")  # fmt: skip
        assert proc.poll() is None, "the batch ended although run 2 hangs"
        assert starts(marks, "1") == sorted(seeds)
        t = pd.read_parquet(out / "results.parquet")
        assert t["status"].tolist() == ["done", "done", "pending", "done", "done"]
        pids = {int(p.read_text()) for p in marks.glob("1-*")}
        assert len(pids) == 2 and os.getpid() not in pids and proc.pid not in pids
        assert all(alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not any(alive(p) for p in pids), 10, f"the workers {pids} to end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    monkeypatch.setenv("EMTWIN_TEST_MARKS", str(marks))
    monkeypatch.setenv("EMTWIN_TEST_PHASE", "2")
    res = run_batch(town, runs=5, out_dir=out, workers=0, components=[Crasher])
    assert res.executed == 1 and res.skipped == 4 and starts(marks, "2") == [seeds[2]]
    assert res.counts == {"pending": 0, "done": 5, "failed": 0}
    assert not list(out.glob(".results.parquet.tmp-*"))


def test_the_watchdog_alone_ends_a_worker_whose_parent_was_killed(tmp_path: Path) -> None:
    """Without the Linux parent-death signal (as on other systems), the watchdog thread on
    the parent's pid ends a worker within seconds of a kill -9 of its parent."""
    pid_file = tmp_path / "child"
    script = textwrap.dedent(f"""\
        import multiprocessing, time
        from emtwin.batch import worker

        def child(parent):
            worker._parent_death_signal = lambda: False
            worker.die_with_parent(parent)
            open({str(pid_file)!r}, "w").write(str(multiprocessing.current_process().pid))
            time.sleep(600)

        if __name__ == "__main__":
            import os
            ctx = multiprocessing.get_context("spawn")
            ctx.Process(target=child, args=(os.getpid(),)).start()
            time.sleep(600)
        """)  # fmt: skip
    (tmp_path / "parent.py").write_text(script)
    root = str(Path(__file__).resolve().parents[1])  # this checkout's emtwin
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], env=env)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60, "the child to start")
        pid = int(pid_file.read_text())
        assert alive(pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not alive(pid), 10, f"the orphaned child {pid} to end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


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
    with pytest.raises(CatalogError, match=r"holds another batch .*Latin hypercube draws for 2 "
                       r"runs.* this one is .*3 runs.*method: lhs"):
        run_batch(town, runs=3, out_dir=tmp_path / "b", workers=0)
    town.write_text(town.read_text().replace("seed: 3", "seed: 4"))
    with pytest.raises(CatalogError, match="choose another --out folder"):
        run_batch(town, runs=2, out_dir=tmp_path / "b", workers=0)
    with pytest.raises(ScenarioError, match="at least 1 run"):
        run_batch(town, runs=0, out_dir=tmp_path / "c", workers=0)


def test_a_grown_batch_runs_only_its_new_runs(
    town: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monte Carlo run i depends on i alone: --runs 4 then --runs 5 in one folder runs run 4
    only, and the table equals a batch of 5 made at once; --runs 3 then shows the first 3
    without running anything. Latin hypercube draws depend on --runs: growing is refused."""
    town.write_text(town.read_text().replace("method: lhs", "method: monte_carlo"))
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("EMTWIN_TEST_MARKS", str(marks))
    seeds = [run_seed(3, i) for i in range(5)]
    out = tmp_path / "b"
    for phase, runs in (("1", 4), ("2", 5), ("3", 3)):
        monkeypatch.setenv("EMTWIN_TEST_PHASE", phase)
        res = run_batch(town, runs=runs, out_dir=out, workers=0, components=[Crasher])
    assert starts(marks, "1") == sorted(seeds[:4])
    assert starts(marks, "2") == [seeds[4]] and starts(marks, "3") == []
    assert res.executed == 0 and res.skipped == 3 and res.table["run"].tolist() == [0, 1, 2]
    assert pd.read_parquet(out / "results.parquet")["run"].tolist() == [0, 1, 2]
    monkeypatch.setenv("EMTWIN_TEST_PHASE", "4")
    grown = run_batch(town, runs=5, out_dir=out, workers=0, components=[Crasher])
    fresh = run_batch(town, runs=5, out_dir=tmp_path / "fresh", workers=0, components=[Crasher])
    assert grown.executed == 0 and fresh.executed == 5
    pd.testing.assert_frame_equal(timeless(grown.table), timeless(fresh.table))


def test_a_catalog_of_one_fingerprint_per_batch_is_carried_on(town: Path, tmp_path: Path) -> None:
    """A folder written before per-plan fingerprints (one fingerprint of the whole batch in
    `meta`) is carried on when that fingerprint is this batch's, refused otherwise."""
    from emtwin.batch.ensemble import _legacy_fingerprint, load_plan

    out = tmp_path / "b"
    run_batch(town, runs=2, out_dir=out, workers=0)
    with sqlite3.connect(out / "catalog.sqlite") as db:
        db.execute("DROP TABLE plans")
        db.execute("INSERT INTO meta VALUES ('fingerprint', ?), ('describe', 'the old one')",
                   (_legacy_fingerprint([load_plan(town)], 2),))  # fmt: skip
    res = run_batch(town, runs=2, out_dir=out, workers=0)
    assert res.executed == 0 and res.skipped == 2
    with sqlite3.connect(out / "catalog.sqlite") as db:
        db.execute("DROP TABLE plans")
    with pytest.raises(CatalogError, match=r"holds another batch \(the old one\)"):
        run_batch(town, runs=2, out_dir=out, workers=0, overrides={"seed": 9})


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


def test_a_draw_past_the_run_limits_fails_that_run_with_the_limit() -> None:
    from emtwin.batch.worker import _validate
    from emtwin.errors import ScenarioError
    from emtwin.scenarios import load_scenario

    base = load_scenario("riverside")
    data = base.model_dump(mode="python", by_alias=True, exclude={"source"}, exclude_none=True)
    data["response"]["incidents"]["background_rate"] = "20000/h"  # a scale draw gone wild
    with pytest.raises(ScenarioError, match=r"background_rate: .*calls expected \(limit 100,000\)"):
        _validate(data, str(Path(base.source).parent))
    data["response"]["incidents"]["background_rate"] = "4/h"
    assert _validate(data, str(Path(base.source).parent)).response is not None
