"""Watching a folder: complete files only, changed files again, history of forecasts."""

from __future__ import annotations

import os
from pathlib import Path

from emtwin.forecast.watch import ObservationFolder, history_stamp, keep_history, watch


def test_a_file_is_taken_once_it_stops_changing(tmp_path: Path) -> None:
    obs = ObservationFolder(tmp_path / "in")
    f = obs.folder / "a.csv"
    f.write_text("time_s,gauge,level_m\n")
    assert obs.poll() == []  # seen once: may still be written
    assert obs.poll() == [f]
    assert obs.poll() == []  # taken already
    with f.open("a") as fh:
        fh.write("60,bridge,10.2\n")
    assert obs.poll() == []  # changed: wait one poll
    assert obs.poll() == [f]


def test_partial_hidden_and_other_files_are_ignored(tmp_path: Path) -> None:
    obs = ObservationFolder(tmp_path)
    for name in (".part-1.csv", "b.csv.tmp", "notes.txt", "c.parquet", "b.csv"):
        (tmp_path / name).write_text("x")
    os.utime(tmp_path / "b.csv", ns=(1_000_000_000, 1_000_000_000))  # older: first
    obs.poll()
    assert [p.name for p in obs.poll()] == ["b.csv", "c.parquet"]


def test_watch_calls_back_and_survives_a_failing_callback(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    got: list[list[str]] = []

    def on_new(paths: list[Path]) -> None:
        got.append([p.name for p in paths])
        raise RuntimeError("bad delivery")

    n = watch(tmp_path, on_new, interval_s=1.0, max_polls=4, sleep=lambda s: None)
    assert n == 1 and got == [["a.csv"]]


def test_history_keeps_each_forecast(tmp_path: Path) -> None:
    out = tmp_path / "fc"
    out.mkdir()
    (out / "prob_depth_0.3m.tif").write_bytes(b"1")
    first = keep_history(out, [out / "prob_depth_0.3m.tif"], history_stamp(3600.0))
    (out / "prob_depth_0.3m.tif").write_bytes(b"2")
    second = keep_history(out, [out / "prob_depth_0.3m.tif"], history_stamp(7200.0))
    assert first.name == "t0003600" and second.name == "t0007200"
    assert (first / "prob_depth_0.3m.tif").read_bytes() == b"1"
    assert (second / "prob_depth_0.3m.tif").read_bytes() == b"2"
    assert sorted(p.name for p in (out / "history").iterdir()) == ["t0003600", "t0007200"]
