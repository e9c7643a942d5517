"""Gauge cross-sections: the faces a line cuts, and the discharge the flood gauges record.

Independent numbers: a hand count of faces on a grid line, the divergence
theorem on a random discharge field (the flux through a line that splits the
grid equals the net inflow summed over the cells on one side), and the water
balance of a channel (the water north of a section grows by inflow minus the
section's discharge).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from dip_world import COLS, DX, ROWS, X0, Y0, write_dip

from emtwin.errors import ScenarioError
from emtwin.geo.sections import section_faces, section_flow
from emtwin.geo.world import Terrain
from emtwin.scenarios import load_scenario
from emtwin.sim import Simulation


def _terrain(rows: int = ROWS, cols: int = COLS) -> Terrain:
    return Terrain(z=np.zeros((rows, cols)), mask=np.ones((rows, cols), bool),
                   transform=Affine(DX, 0, X0, 0, -DX, Y0), dx=DX)  # fmt: skip


def test_a_line_on_a_grid_line_cuts_the_faces_under_it() -> None:
    """Walking south along x = 5 cells from row 2 to row 8: the six x-faces of column 5."""
    t = _terrain()
    f = section_faces(t, [[X0 + 5 * DX, Y0 - 2 * DX], [X0 + 5 * DX, Y0 - 8 * DX]])
    assert f.y_faces.size == 0
    np.testing.assert_array_equal(f.x_faces, np.arange(2, 8) * (COLS + 1) + 5)
    # walking south the right hand points west: eastward flow crosses right to left, +
    np.testing.assert_array_equal(f.x_signs, 1.0)
    back = section_faces(t, [[X0 + 5 * DX, Y0 - 8 * DX], [X0 + 5 * DX, Y0 - 2 * DX]])
    np.testing.assert_array_equal(back.x_signs, -1.0)


@pytest.mark.parametrize("line", [
    [[X0 - 3.0, Y0 - 17.0], [X0 + COLS * DX + 4.0, Y0 - 331.0]],  # diagonal, edge to edge
    [[X0 + 123.0, Y0 + 5.0], [X0 + 181.0, Y0 - 161.0], [X0 + 97.0, Y0 - ROWS * DX - 5.0]],
])  # fmt: skip
def test_the_discharge_through_a_splitting_line_is_the_net_inflow_of_one_side(
    line: list[list[float]],
) -> None:
    rng = np.random.default_rng(3)
    t = _terrain()
    qx = rng.normal(size=(ROWS, COLS + 1))
    qy = rng.normal(size=(ROWS + 1, COLS))
    qx[:, [0, -1]] = 0.0  # no flow through the grid's own edges
    qy[[0, -1], :] = 0.0
    faces = section_faces(t, line)
    got = section_flow(qx, qy, faces)
    # the cells on the line's left (+ crossing is right -> left): the net inflow into them
    rr, cc = np.mgrid[0:ROWS, 0:COLS]
    x, y = t.cell_centre(rr, cc)
    left = _left_of(np.asarray(line), x, y)
    inflow = qx[:, :-1] - qx[:, 1:] + qy[:-1, :] - qy[1:, :]
    assert got == pytest.approx(float(inflow[left].sum()) * DX, rel=1e-12, abs=1e-9)
    assert 0 < left.sum() < left.size


def _left_of(line: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cells left of a polyline that runs from one grid edge to another, by the nearest segment.

    The side is taken from the segment whose span (by projection) holds the cell;
    for the test lines here every cell projects onto exactly one segment, or onto
    the end of one.
    """
    best = np.full(x.shape, np.inf)
    side = np.zeros(x.shape)
    for a, b in zip(line[:-1], line[1:], strict=True):
        d = b - a
        s = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1]) / (d @ d), 0.0, 1.0)
        dist = np.hypot(x - a[0] - s * d[0], y - a[1] - s * d[1])
        closer = dist < best
        best = np.where(closer, dist, best)
        side = np.where(closer, d[0] * (y - a[1]) - d[1] * (x - a[0]), side)
    return side >= 0


def _channel(tmp_path: Path, section: str, actions: str = "[]") -> Path:
    """Flat ground at 10 m with a 1 m deep dip running north-south (columns 13-16).

    A road (`causeway`) crosses the dip west-east along row 20.

    3 m3/s enters the north end of the dip from 10 to 50 min (after a 10 s ramp); the
    south edge is open.
    """
    write_dip(tmp_path)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(f"""\
        name: channel
        duration: 50min
        crs: EPSG:32633
        world:
          terrain: {{dem: dem.tif, manning: 0.03}}
          roads: roads.geojson
        actions: {actions}
        hazards:
          - type: flood
            inflows:
              - along: [[{X0 + 135}, {Y0 - 5}], [{X0 + 165}, {Y0 - 5}]]
                hydrograph: [[0, 0], [590, 0], [600, 3], [50min, 3]]
            boundary: {{south: open}}
            gauges:
              - {{name: mid, at: [{X0 + 150}, {Y0 - 295}], section: {section}}}
              - {{name: spot, at: [{X0 + 150}, {Y0 - 105}]}}
        outputs: {{every: 10s}}
        """))
    return tmp_path / "s.yaml"


def test_a_gauge_section_records_the_discharge_the_water_balance_implies(tmp_path: Path) -> None:
    """Full-width section between rows 29 and 30, drawn east to west (left bank first).

    Between 10 and 50 min the water north of it grows by 3 m3/s x 2,400 s
    less the section's discharge (trapezoid rule on the 10 s record).
    """
    sc = load_scenario(_channel(tmp_path, f"[[{X0 + COLS * DX}, {Y0 - 300}], [{X0}, {Y0 - 300}]]"))
    sim = Simulation(sc)
    sim.run_until(600.0)
    north_10 = float(np.asarray(sim.state.get("water__depth"))[:30].sum()) * DX * DX
    res = sim.run()
    north_50 = float(np.asarray(sim.state.get("water__depth"))[:30].sum()) * DX * DX
    g = res.tables["gauges"]
    assert list(g.columns)[-1] == "flow_m3_s"
    assert g.loc[g.gauge == "spot", "flow_m3_s"].isna().all()  # no section, no flow
    mid = g[(g.gauge == "mid") & (g.time_s >= 600.0)]
    passed = float(np.trapezoid(mid.flow_m3_s, mid.time_s))
    assert passed > 1000.0  # water did get through, downstream: +
    assert north_50 - north_10 == pytest.approx(3.0 * 2400.0 - passed, rel=0.005)
    assert res.summary["flood"]["peak_flow_by_gauge"] == {"mid": pytest.approx(mid.flow_m3_s.max())}


def test_a_section_off_the_domain_is_an_error_naming_the_key(tmp_path: Path) -> None:
    far = f"[[{X0 + 5000}, {Y0 + 5000}], [{X0 + 6000}, {Y0 + 5000}]]"
    with pytest.raises(ScenarioError, match=r"hazards\.0\.gauges\.0\.section: the line cuts no"):
        Simulation(load_scenario(_channel(tmp_path, far)))


def test_a_one_point_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="section"):
        load_scenario(_channel(tmp_path, f"[[{X0}, {Y0 - 300}]]"))


def test_a_flow_trigger_fires_at_the_first_step_above_the_flow(tmp_path: Path) -> None:
    """`when: {gauge: mid, flow_above: 1.0}` closes the causeway at the first coupling step
    (every 10 s here) at which the recorded discharge through the section exceeds 1 m3/s."""
    line = f"[[{X0 + COLS * DX}, {Y0 - 300}], [{X0}, {Y0 - 300}]]"
    act = "[{when: {gauge: mid, flow_above: 1.0}, close_road: causeway}]"
    res = Simulation(load_scenario(_channel(tmp_path, line, act))).run()
    g = res.tables["gauges"]
    mid = g[g.gauge == "mid"]
    first = float(mid.loc[mid.flow_m3_s > 1.0, "time_s"].min())
    assert 600.0 < first < 3000.0
    acts = res.events[res.events.kind == "action"]
    assert acts.time_s.tolist() == [first]
    closed = res.events[(res.events.kind == "road_closed") & (res.events.time_s == first)]
    assert len(closed) > 0


def test_a_flow_trigger_needs_a_gauge_with_a_section(tmp_path: Path) -> None:
    line = f"[[{X0 + COLS * DX}, {Y0 - 300}], [{X0}, {Y0 - 300}]]"
    act = "[{when: {gauge: spot, flow_above: 1.0}, close_road: causeway}]"
    with pytest.raises(ScenarioError, match=r"flow_above: gauge 'spot' has no cross-section"
                                            r".*hazards\.0\.gauges\.1\.section"):
        Simulation(load_scenario(_channel(tmp_path, line, act)))
