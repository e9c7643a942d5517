"""Bad input, one row each: the scenario (or command line) and what the error must say.

To add a case, add a :class:`Case` to ``CASES``: the scenario text (``{dir}`` is
the case's folder), the command (``{scn}`` is the scenario file), the exit code
and fragments the output must contain (``{scn}`` allowed, for ``file:line``).
``setup`` writes further files into the folder; ``check`` looks at the folder
afterwards (for example, that a user's files are still there). Each case runs
in its own folder, which is also the current folder.

Below the table, checks of the same rules one level down (the Python API).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from typer.testing import CliRunner

from emtwin.cli import app
from emtwin.errors import OutputError, SimulationError
from emtwin.scenarios import load_scenario

runner = CliRunner()

#: A valid scenario that builds quickly: the built-in terrain only (no roads, no people).
BASE = """\
name: t
seed: 1
duration: 1h
crs: EPSG:32633
world:
  terrain: {builtin: riverside}
"""

#: The built-in town with a station, for cases that need the World's places.
TOWN = """\
name: places
seed: 2
duration: 1h
crs: EPSG:32633
world:
  terrain: {builtin: riverside}
  roads: builtin:riverside
  population: {total: 100}
  shelters: shelters.csv
  stations: stations.csv
response:
  dispatch: DISPATCH
  resources:
    - {type: ambulance, station: STATION, count: 1}
"""


def town(station: str = "A", dispatch: str = "closest_idle") -> str:
    """TOWN with the resources' station and the dispatch policy filled in."""
    return TOWN.replace("STATION", station).replace("DISPATCH", dispatch)


def base(*lines: str, name: str = "t") -> str:
    """BASE with its name replaced and *lines* added at the top level."""
    text = BASE.replace("name: t", f"name: {name}")
    return text + "".join(line + "\n" for line in lines)


def places(d: Path, shelters: str, stations: str) -> None:
    (d / "shelters.csv").write_text(shelters)
    (d / "stations.csv").write_text(stations)


def good_places(d: Path) -> None:
    places(d, "name,capacity,x,y\nHall,100,401000,5551800\n", "name,x,y\nA,401000,5551370\n")


def afile(d: Path) -> None:
    (d / "afile").write_text("a user's file\n")


def users_folder(d: Path) -> None:
    (d / "mine").mkdir()
    (d / "mine" / "thesis.txt").write_text("years of work\n")


def still_there(d: Path) -> None:
    assert (d / "mine" / "thesis.txt").read_text() == "years of work\n"
    assert (d / "s.yaml").exists()


def plan(d: Path) -> None:
    (d / "plan.yaml").write_text("seed: 3\n")


def sparse_dem(d: Path) -> None:
    """A 20000 x 20000 DEM of 1 m cells, 50 KB on disk (one block written)."""
    profile = {"driver": "GTiff", "height": 20000, "width": 20000, "count": 1,
               "dtype": "float32", "crs": "EPSG:32633", "nodata": -9999.0,
               "transform": Affine(1, 0, 400000, 0, -1, 5560000), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate",
               "SPARSE_OK": True}  # fmt: skip
    with rasterio.open(d / "big.tif", "w", **profile) as dst:
        dst.write(np.full((256, 256), 5.0, "float32"), 1, window=Window(0, 0, 256, 256))


def policy_module(name: str, signature: str) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        good_places(d)
        (d / f"{name}.py").write_text(f"def choose({signature}):\n    return None\n")

    return setup


@dataclass(frozen=True)
class Case:
    """One bad input: scenario text, command, exit code and what the output must say."""

    id: str
    yaml: str
    expect: tuple[str, ...]
    args: tuple[str, ...] = ("validate", "{scn}", "--no-world")
    code: int = 1
    setup: Callable[[Path], None] | None = None
    check: Callable[[Path], None] | None = field(default=None)


ALIAS_BOMB = "".join(
    f"{a}: &{a} [{', '.join([f'*{p}'] * 10) if p else ', '.join(['1'] * 10)}]\n"
    for p, a in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi", strict=True)
)


CASES = [
    # ------------------------------------------------ data safety: names and output folders
    Case("name ..", base(name='".."'), ("{scn}:1: name", "plain file name", "folder above")),
    Case("name empty", base(name='""'), ("{scn}:1: name", "it is empty")),
    Case("name absolute", base(name='"/abs/dir"'), ("{scn}:1: name", "path separator")),
    Case("name climbs", base(name='"a/../../b"'), ("{scn}:1: name", "path separator")),
    Case("name dot", base(name='"."'), ("{scn}:1: name", "plain file name")),
    Case("name hidden", base(name='".x"'), ("{scn}:1: name", "starts or ends with a dot")),
    Case("run --out a user's folder", base(),
         ("output folder", "was not written by emtwin", ".emtwin-output"),
         args=("run", "{scn}", "--out", "{dir}/mine"), setup=users_folder, check=still_there),
    Case("run --out .", base(), ("the current folder",),
         args=("run", "{scn}", "--out", "."), setup=users_folder, check=still_there),
    Case("run --out ..", base(), ("one above it",), args=("run", "{scn}", "--out", "..")),
    Case("run --out a file", base(), ("exists and is not a folder",),
         args=("run", "{scn}", "--out", "{dir}/afile"), setup=afile),
    Case("run --out unwritable", base(), ("cannot be written",),
         args=("run", "{scn}", "--out", "{dir}/afile/sub"), setup=afile),
    Case("batch --out unwritable", base(), ("cannot be written",),
         args=("batch", "{scn}", "--runs", "1", "--workers", "0", "--out", "{dir}/afile/sub"),
         setup=afile),
    Case("compare --out unwritable", base(), ("cannot be written",),
         args=("compare", "{scn}", "--plan", "{dir}/plan.yaml", "--runs", "1", "--workers", "0",
               "--out", "{dir}/afile/sub"),
         setup=lambda d: (afile(d), plan(d))),
    # ------------------------------------------------ bounded memory and time
    Case("alias bomb", base() + ALIAS_BOMB, ("aliases (*name) are expanded", "200,000")),
    Case("recursive alias", base("x: &r [*r]"), ("refers to a value that holds the alias",)),
    Case("deep nesting", base("x: " + "[" * 3000 + "]" * 3000), ("nested too deep",)),
    Case("nesting over the limit", base("x: " + "[" * 60 + "]" * 60),
         ("nested more than 50 levels",)),
    Case("50 MB of YAML", base("description: " + "x" * 1_100_000),
         ("may be at most 1 MB", "CSV or Parquet")),
    Case("huge DEM without resolution",
         base().replace("{builtin: riverside}", "{dem: big.tif}"),
         ("world.terrain.dem", "declares 20,000 x 20,000 cells", "resolution to 3 m or coarser"),
         args=("validate", "{scn}"), setup=sparse_dem),
    Case("huge DEM, resolution too fine",
         base().replace("{builtin: riverside}", "{dem: big.tif, resolution: 2}"),
         ("2 m is too fine", "resolution to 3 m or coarser"),
         args=("validate", "{scn}"), setup=sparse_dem),
    Case("duration 1e12", base().replace("duration: 1h", "duration: 1e12"),
         ("{scn}:3: duration", "longer than the limit of 7 d")),
    Case("--duration 30d", base(), ("--duration: 30 d is longer than the limit of 7 d",),
         args=("run", "{scn}", "--duration", "30d")),
    Case("background_rate 1e9/s", base("response: {incidents: {background_rate: 1e9/s}}"),
         ("{scn}:7: response.incidents.background_rate", "calls expected", "limit 100,000")),
    Case("outputs.every 1s over 6h",
         base("outputs: {every: 1s}").replace("duration: 1h", "duration: 6h"),
         ("{scn}:7: outputs.every", "21,600 output times", "every: 2.16 s or more")),
    # ------------------------------------------------ input that was accepted wrongly
    Case("duration 3:00 is 3 h", base().replace("duration: 1h", "duration: 3:00"),
         ("duration: 3 h",), code=0),
    Case("duration 1:30 is 1.5 h", base().replace("duration: 1h", "duration: 1:30"),
         ("duration: 1.5 h",), code=0),  # YAML 1.1 read 90 (s)
    # base 60 happened to give 5400 s here too; kept so that h:mm:ss stays right
    Case("duration 1:30:00 is 1.5 h", base().replace("duration: 1h", "duration: 1:30:00"),
         ("duration: 1.5 h",), code=0),
    Case("duration 3:75", base().replace("duration: 1h", "duration: 3:75"),
         ("{scn}:3: duration", "1:30 (h:mm)")),
    Case("duplicate key", base("seed: 4"), ("duplicate key 'seed' (lines 2 and 7)",)),
    Case("nested duplicate key", base().replace("{builtin: riverside}",
                                                "{builtin: riverside, builtin: surge}"),
         ("duplicate key 'builtin' (lines 6 and 6)",)),
    Case("manning .inf", base().replace("{builtin: riverside}", "{builtin: riverside, "
                                        "manning: .inf}"),
         ("{scn}:6: world.terrain.manning", "must be > 0 and finite", "inf")),
    Case("policy of a wrong signature", town(dispatch="bad_sig_policy:choose"),
         ("response.dispatch", "cannot be called as policy(call, units, now_s, travel_time_s)"),
         args=("validate", "{scn}", "--allow-code"),
         setup=policy_module("bad_sig_policy", "call, units")),
    Case("view --port 99999", base(), ("65535",), code=2,
         args=("view", "{dir}", "--serve", "--port", "99999")),
    Case("place data: every problem at once", town(),
         ("3 problems", "{scn}:9: world.shelters: 1 of 1 shelters lie outside",
          "{scn}:10: world.stations", "missing required column 'name'",
          "{scn}:10: world.stations: 1 of 2 stations lie outside"),
         args=("validate", "{scn}"),
         setup=lambda d: places(d, "name,capacity,x,y\nFar Hall,100,300000,5551000\n",
                                "label,x,y\nA,401000,5551370\nB,300000,5551370\n")),
    Case("unknown station with other place problems", town(station="Nowhere"),
         ("2 problems", "{scn}:9: world.shelters: 1 of 1 shelters lie outside",
          "{scn}:14: response.resources.0.station: no station named 'Nowhere'"),
         args=("validate", "{scn}"),
         setup=lambda d: places(d, "name,capacity,x,y\nFar Hall,100,300000,5551000\n",
                                "name,x,y\nA,401000,5551370\n")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "case"
    d.mkdir()
    monkeypatch.chdir(d)
    monkeypatch.syspath_prepend(str(d))
    scn = d / "s.yaml"
    scn.write_text(case.yaml.replace("{dir}", str(d)))
    if case.setup:
        case.setup(d)
    args = [a.replace("{scn}", str(scn)).replace("{dir}", str(d)) for a in case.args]
    res = runner.invoke(app, args)
    out = " ".join(res.output.split())  # the console wraps long lines
    assert res.exit_code == case.code, res.output
    for frag in case.expect:
        assert " ".join(frag.replace("{scn}", str(scn)).split()) in out, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output
    if case.code:
        assert "Results are in" not in res.output  # refused before a run, not after
    if case.check:
        case.check(d)


# ---------------------------------------------------------------- the same rules, in Python


def test_write_results_replaces_only_what_emtwin_wrote(tmp_path: Path) -> None:
    from emtwin.sim.outputs import OUTPUT_MARKER, prepare_out_dir, write_results

    users_folder(tmp_path)
    with pytest.raises(OutputError, match="was not written by emtwin"):
        write_results(None, tmp_path / "mine")  # type: ignore[arg-type]
    assert (tmp_path / "mine" / "thesis.txt").exists()
    # an empty folder and one marked by emtwin may be replaced
    (tmp_path / "empty").mkdir()
    assert prepare_out_dir(tmp_path / "empty") == (tmp_path / "empty").resolve()
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / OUTPUT_MARKER).write_text("{}")
    (tmp_path / "ours" / "summary.json").write_text("{}")
    assert prepare_out_dir(tmp_path / "ours") == (tmp_path / "ours").resolve()


def test_stale_temporary_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    import json
    import socket

    from emtwin.sim.outputs import OUTPUT_MARKER, prepare_out_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    for name, pid in ((".run.tmp-dead", int(dead.stdout)), (".run.old-dead", int(dead.stdout)),
                      (".run.tmp-alive", os.getpid())):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / OUTPUT_MARKER).write_text(json.dumps({"pid": pid, "host": host}))
    (tmp_path / ".run.tmp-users").mkdir()  # no marker: not emtwin's, never touched
    (tmp_path / ".run.tmp-users" / "notes.txt").write_text("mine")
    prepare_out_dir(tmp_path / "run")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".run.tmp-alive", ".run.tmp-users"]


def test_large_dem_is_read_decimated_when_the_resolution_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emtwin.geo.terrain as terrain

    # 400 x 400 cells of 1 m over a limit of 10,000 cells: read at 4 m (a factor of 4 at
    # least), averaging each 4 x 4 block; z = row index, so block k averages 4k + 1.5
    z = np.repeat(np.arange(400, dtype="float32")[:, None], 400, axis=1)
    profile = {"driver": "GTiff", "height": 400, "width": 400, "count": 1, "dtype": "float32",
               "crs": "EPSG:32633", "transform": Affine(1, 0, 400000, 0, -1, 5560000)}
    with rasterio.open(tmp_path / "dem.tif", "w", **profile) as dst:
        dst.write(z, 1)
    monkeypatch.setattr(terrain, "MAX_READ_CELLS", 10_000)
    with pytest.raises(Exception, match=r"resolution to 5 m or coarser"):
        terrain.read_terrain(tmp_path / "dem.tif")
    t, _ = terrain.read_terrain(tmp_path / "dem.tif", resolution=4.0)
    assert t.z.shape == (100, 100) and t.dx == 4.0
    np.testing.assert_allclose(t.z[:, 0], 4 * np.arange(100) + 1.5, atol=1e-4)


def test_map_frames_are_capped_and_evenly_spaced() -> None:
    from emtwin.sim.components import hazard

    comp = hazard.HazardComponent.__new__(hazard.HazardComponent)
    comp.world = SimpleNamespace(terrain=SimpleNamespace(mask=np.ones((2, 2), bool)))
    comp.frame_factor, comp._frame_stride, comp._samples = 1, 1, 0
    comp.frame_times, comp.frames, comp._last_frame = [], [], None
    n = 2 * hazard.MAX_FRAMES + 7  # output times 0, 1, ..., n - 1
    for i in range(n):
        comp._keep_frame(float(i), np.full((2, 2), float(i)))
    # over the cap once: every 2nd output time is kept; 0, 2, ..., 606 is 304 > 300 frames,
    # so it halved again: 0, 4, ..., 604 (152 frames)
    assert comp.frame_times == [float(t) for t in range(0, n, 4)]
    assert len(comp.frames) <= hazard.MAX_FRAMES
    assert [f[0, 0] for f in comp.frames] == comp.frame_times
    assert comp._last_frame[0] == n - 1  # the last output time is added at the end


def test_a_failing_user_policy_is_named_as_such() -> None:
    from emtwin.sim.dispatch.policies import _user_chooser

    def policy(call, units, now_s, travel_time_s):  # noqa: ANN001, ANN202
        return units[0].nonexistent  # an AttributeError in the user's code

    choose = _user_chooser(policy, "mine:policy")
    call = SimpleNamespace(id="c1", type="medical", source="background", time_s=0.0,
                           priority=2, needs=("ambulance",), node=0, x=0.0, y=0.0, people=1)
    unit = SimpleNamespace(id="u1", type="ambulance", station="A", state="idle", calls=0,
                           busy_s=0.0, anchor=lambda now: (0, 0.0))  # fmt: skip
    with pytest.raises(SimulationError, match=r"user dispatch policy 'mine:policy'.*"
                       r"AttributeError.*not in emtwin"):
        choose(call, [unit], 60.0, lambda us, c: np.zeros(len(us)))


def test_h_mm_durations_reach_every_duration_key(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(base("outputs: {every: 0:10}").replace("duration: 1h", "duration: 1:30:00"))
    sc = load_scenario(p)
    assert (sc.duration, sc.outputs.every) == (5400.0, 600.0)
