"""Checkpoints, resume and forks: the run's state saved and continued bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from emtwin.errors import CheckpointError, ScenarioError
from emtwin.scenarios import load_scenario
from emtwin.sim import Simulation
from emtwin.sim.checkpoint import Checkpoint
from emtwin.sim.outputs import write_results

# riverside cut to 90 min: the flood, the valley warned at 10 min and the rest at 1 h,
# calls, units and the 1 h move of an ambulance all cross the checkpoint at 1 h
DURATION = "90min"
AT_S = 3600.0


def _summary(res) -> dict:  # noqa: ANN001
    s = json.loads(json.dumps(res.summary, default=str))
    s["run"].pop("wall_s")
    s["flood"].pop("kernel_wall_s")
    return s


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The uninterrupted run, and a checkpoint of it at 1 h written to a file."""
    sc = load_scenario("riverside", overrides={"duration": DURATION})
    whole = Simulation(sc).run()
    whole.folder = write_results(whole, tmp_path_factory.mktemp("whole") / "run")
    sim = Simulation(load_scenario("riverside", overrides={"duration": DURATION}))
    sim.run_until(AT_S)
    path = tmp_path_factory.mktemp("ck") / "riverside.emtwin"
    sim.checkpoint().save(path)
    return whole, path


def test_resumed_in_a_new_process_equals_the_uninterrupted_run(original, tmp_path) -> None:
    whole, path = original
    out = tmp_path / "resumed"
    code = ("import sys; from emtwin.sim import Simulation; from emtwin.sim.outputs import "
            "write_results; write_results(Simulation.from_checkpoint(sys.argv[1]).run(), "
            "sys.argv[2])")  # fmt: skip
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], check=True,
                   cwd=Path(__file__).parents[1])  # fmt: skip
    events = pd.read_parquet(out / "events.parquet")
    pd.testing.assert_frame_equal(events, whole.events)
    got = json.loads((out / "summary.json").read_text())
    want = json.loads(json.dumps(_summary(whole)))
    got["run"].pop("wall_s")
    got["flood"].pop("kernel_wall_s")
    assert got == want
    assert (out / "gauges.csv").read_bytes() == (whole.folder / "gauges.csv").read_bytes()


def test_a_fork_equals_the_original_before_and_differs_after(original, tmp_path) -> None:
    whole, path = original
    plan = tmp_path / "close-east-bridge.yaml"
    plan.write_text("actions:\n  - {at: 80min, close_road: bridge-east}\n")
    fork = Simulation.from_checkpoint(path, plans=[plan]).run()
    ev_w, ev_f = whole.events, fork.events
    before_w, before_f = ev_w[ev_w.time_s <= AT_S], ev_f[ev_f.time_s <= AT_S]
    pd.testing.assert_frame_equal(before_w.reset_index(drop=True),
                                  before_f.reset_index(drop=True))  # fmt: skip
    acts = ev_f[ev_f.kind == "action"]
    assert (acts.time_s == 4800.0).any() and "close_road" in set(acts.entity)
    closed = ev_f[(ev_f.kind == "road_closed") & (ev_f.entity == "bridge-east")]
    assert closed.time_s.min() == 4800.0
    after_w, after_f = ev_w[ev_w.time_s > AT_S], ev_f[ev_f.time_s > AT_S]
    assert not after_w.reset_index(drop=True).equals(after_f.reset_index(drop=True))
    # the plan changes the roads, not the flood: the water is the same, step for step
    assert fork.summary["flood"]["peak_volume_m3"] == whole.summary["flood"]["peak_volume_m3"]


def test_a_fork_cannot_change_the_past_or_the_set_up(original, tmp_path) -> None:
    _, path = original
    early = tmp_path / "early.yaml"
    early.write_text("actions:\n  - {at: 30min, close_road: bridge-east}\n")
    with pytest.raises(ScenarioError, match=r"before the checkpoint \(3600 s\)"):
        Simulation.from_checkpoint(path, plans=[early])
    setup = tmp_path / "setup.yaml"
    setup.write_text("seed: 9\n")
    with pytest.raises(ScenarioError, match="a fork's plan may set only actions"):
        Simulation.from_checkpoint(path, plans=[setup])


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path) -> None:
    bad = tmp_path / "x.emtwin"
    bad.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not an emtwin checkpoint"):
        Checkpoint.load(bad)


def test_run_checkpoint_and_resume_on_the_command_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from emtwin.cli import app

    runner = CliRunner()
    ck = tmp_path / "ck.emtwin"
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    r = runner.invoke(app, ["run", "riverside", "--duration", "20min", "--out", str(whole),
                            "-q", "--checkpoint-at", "10min", "--checkpoint", str(ck)])
    assert r.exit_code == 0, r.output
    assert ck.read_bytes().startswith(b"EMTWINCK")
    r = runner.invoke(app, ["resume", str(ck), "--out", str(resumed), "-q"])
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(pd.read_parquet(resumed / "events.parquet"),
                                  pd.read_parquet(whole / "events.parquet"))  # fmt: skip
    # misuse of the options is a command-line error (exit 2)
    r = runner.invoke(app, ["run", "riverside", "--checkpoint-at", "10min"])
    assert r.exit_code == 2
