"""A short riverside event against a stored reference: the engine's numbers must not drift.

The reference in tests/data/regression/riverside-45min was written by
``emtwin run riverside --duration 45min`` on the round-1 engine (before the
engine seam), with the drill's river inflow narrowed to its channel (a fix of
the drill file: it poured water onto the floodplain from t = 0). The engine seam
reproduces it exactly (summary, 5,514 events, gauges). Since then, one fix:
a stranded household reached by a rescue unit is ``rescued`` (it stayed
``stranded`` before): one ``rescued`` event, 3 people moved from ``stranded``,
and the new keys ``rescued``, ``walked_out`` and ``unserved_by_reason``. Then
the consequences component (on in the drill): a new ``consequences`` section,
left out of the comparison (its figures are checked by hand in
tests/test_consequences_engine.py); every other number, event and gauge is
unchanged. Local flood time stepping then became the scenario default: the run here
asks for ``time_stepping: global``, the reference scheme, which is today's flood bit for
bit (local stepping's agreement with it is tested in tests/test_flood_kernel.py and
measured by benchmarks/whole_event.py).
Replace it only with a change that says which bug it fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from emtwin.scenarios import load_scenario
from emtwin.sim import Simulation
from emtwin.sim.outputs import write_results

REF = Path(__file__).parent / "data" / "regression" / "riverside-45min"
#: keys that measure the machine, not the event
WALL = {"wall_s", "kernel_wall_s"}


def _strip(d: object) -> object:
    if isinstance(d, dict):
        return {k: _strip(v) for k, v in d.items() if k not in WALL}
    return d


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sc = load_scenario("riverside", overrides={"duration": "45min"})
    for hz in sc.hazards:  # the reference scheme (local stepping became the default later)
        if hz.type == "flood":
            hz.time_stepping = "global"
    return write_results(Simulation(sc).run(), tmp_path_factory.mktemp("reg") / "run")


def _differences(got: object, want: object, path: str = "") -> list[str]:
    """Where *got* lacks or changes a value of *want*: keys may be added (the summary's
    contract extends, never renames), never dropped or changed; lists compare whole,
    except ``run.components``, which may gain components."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: not a mapping"]
        out = []
        for k, v in want.items():
            out += ([f"{path}{k}: missing"] if k not in got
                    else _differences(got[k], v, f"{path}{k}."))  # fmt: skip
        return out
    if path == "run.components.":
        return [] if [c for c in got if c in want] == want else [f"{path}: {got} vs {want}"]
    return [] if got == want else [f"{path[:-1]}: {got!r} != {want!r}"]


def test_summary_equals_the_reference(run: Path) -> None:
    got = _strip(json.loads((run / "summary.json").read_text()))
    want = _strip(json.loads((REF / "summary.json").read_text()))
    assert _differences(got, want) == []
    assert got["consequences"]["buildings"] == 2671  # on in the drill, not in the reference


def test_events_equal_the_reference(run: Path) -> None:
    got = pd.read_parquet(run / "events.parquet")
    want = pd.read_parquet(REF / "events.parquet")
    pd.testing.assert_frame_equal(got, want)


def test_gauges_equal_the_reference(run: Path) -> None:
    assert (run / "gauges.csv").read_text() == (REF / "gauges.csv").read_text()
