"""What a new user sees: the end of `emtwin run`, `--quiet`, `emtwin summary` and `emtwin view`."""

from __future__ import annotations

import json
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from emtwin.cli import app
from emtwin.viz.headline import hmm
from emtwin.viz.view import is_loopback, make_server

runner = CliRunner()
X0, Y0, DX, N = 500000.0, 5501000.0, 20.0, 20


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rain on a closed tilted 400 m x 400 m box: a flood-only run of a few seconds."""
    d = tmp_path_factory.mktemp("box")
    z = np.tile(10.0 + np.arange(N) * DX / 100.0, (N, 1))
    with rasterio.open(d / "dem.tif", "w", driver="GTiff", height=N, width=N, count=1,
                       dtype="float32", crs="EPSG:32633",
                       transform=from_origin(X0, Y0, DX, DX)) as dst:  # fmt: skip
        dst.write(z.astype("float32"), 1)
    (d / "s.yaml").write_text(textwrap.dedent("""\
        name: box
        duration: 20min
        crs: EPSG:32633
        world: {terrain: {dem: dem.tif}}
        hazards:
          - type: flood
            rain: [[0, 60], [10min, 0]]
        outputs: {every: 5min}
        """))
    return d / "s.yaml"


@pytest.fixture(scope="module")
def run_dir(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("runs") / "box"
    res = runner.invoke(app, ["run", str(scenario), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.stdout


def test_run_ends_by_naming_the_report_and_the_view_command(run_dir: tuple[Path, str]) -> None:
    out, text = run_dir
    lines = text.strip().splitlines()
    assert (out / "report.html").is_file()
    assert any(str(out / "report.html") in ln for ln in lines[-3:])
    assert any(f"emtwin view {out}" in ln for ln in lines[-3:])


def test_quiet_run_prints_one_line(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "q"
    res = runner.invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{out}: ")
    # the headline: the box is 400 m x 400 m of land, all of it wet after 10 mm of rain
    area = json.loads((out / "summary.json").read_text())["flood"]["peak_flooded_area_m2"]
    assert f"flooded land {area / 1e6:.2f} km²" in lines[0]


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (5400, "1:30"), (3629, "1:00"),
                                               (3631, "1:01"), (36000, "10:00")])  # fmt: skip
def test_hmm(seconds: float, text: str) -> None:
    assert hmm(seconds) == text


def test_summary_prints_the_headline_with_times_as_hmm(tmp_path: Path) -> None:
    """A hand-written summary.json: times as h:mm, wall time in s, absent sections left out."""
    s = {
        "flood": None,
        "evacuation": {"households": 400, "people": 1000, "sheltered": 700, "out": 250,
                       "stranded": 10, "never_left": 40, "t50_s": 2700.0, "t90_s": 5400.0,
                       "clearance_s": 7260.0},
        "dispatch": {"calls": 12, "served": 11, "unserved": 1, "response_p50_s": 480.0,
                     "response_p90_s": 1500.0, "wait_mean_s": 30.0, "utilisation_mean": 0.25},
        "run": {"wall_s": 12.34, "seed": 5, "scenario": "hand"},
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(s))
    res = runner.invoke(app, ["summary", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    rows = {ln.split("│")[2].strip(): ln.split("│")[3].strip()
            for ln in res.stdout.splitlines() if ln.count("│") == 4}  # fmt: skip
    assert rows["t50_s"] == "0:45" and rows["t90_s"] == "1:30" and rows["clearance_s"] == "2:01"
    assert rows["response_p50_s"] == "0:08" and rows["response_p90_s"] == "0:25"
    assert rows["wall_s"] == "12.3 s" and rows["sheltered"] == "700"
    assert "flood" not in res.stdout and "peak_flooded_area_m2" not in rows


def test_summary_of_a_real_run(run_dir: tuple[Path, str]) -> None:
    out, _ = run_dir
    res = runner.invoke(app, ["summary", str(out)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "peak_flooded_area_m2" in res.stdout and "evacuation" not in res.stdout


@pytest.mark.parametrize("what", ["missing", "not a run folder", "batch", "bad json", "a list"])
def test_summary_of_a_folder_that_is_not_a_run_exits_1(what: str, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    if what != "missing":
        folder.mkdir()
    if what == "batch":
        (folder / "results.parquet").write_bytes(b"")
    if what == "bad json":
        (folder / "summary.json").write_text("{not json")
    if what == "a list":
        (folder / "summary.json").write_text("[1, 2]")
    res = runner.invoke(app, ["summary", str(folder)])
    assert res.exit_code == 1
    msg = {"missing": "no such folder", "not a run folder": "not a run folder",
           "batch": "a batch folder", "bad json": "cannot be read as JSON",
           "a list": "expected a JSON object"}[what]  # fmt: skip
    assert msg in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------- view


def test_view_serves_the_report_at_the_root_and_lists_no_folder(run_dir: tuple[Path, str]) -> None:
    out, _ = run_dir
    server = make_server(out, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert urllib.request.urlopen(base + "/").read() == (out / "report.html").read_bytes()
        assert urllib.request.urlopen(base + "/?x=1").read() == (out / "report.html").read_bytes()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/charts/")
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_view_says_when_no_browser_opened(run_dir: tuple[Path, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    out, _ = run_dir
    monkeypatch.setattr("webbrowser.open", lambda url: False)
    res = runner.invoke(app, ["view", str(out)])
    assert res.exit_code == 0
    assert "No web browser could be opened" in res.stderr and "--serve" in res.stderr


@pytest.mark.parametrize(("host", "loop"), [("127.0.0.1", True), ("127.8.0.1", True),
                                            ("localhost", True), ("::1", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False),
                                            ("example.org", False)])  # fmt: skip
def test_is_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_view_warns_when_serving_beyond_this_machine(
    run_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--host 0.0.0.0 warns; the server is stopped at once (serve_forever interrupted)."""
    import http.server

    out, _ = run_dir

    def stop(self: http.server.HTTPServer, *a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(http.server.ThreadingHTTPServer, "serve_forever", stop)
    monkeypatch.setattr("webbrowser.open", lambda url: True)
    res = runner.invoke(app, ["view", str(out), "--serve", "--port", "0", "--host", "0.0.0.0"])
    assert res.exit_code == 0, res.output
    assert "not a loopback address" in res.stderr
    res = runner.invoke(app, ["view", str(out), "--serve", "--port", "0"])
    assert res.exit_code == 0 and "loopback" not in res.stderr
