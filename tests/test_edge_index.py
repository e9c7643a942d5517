"""The edge->cell index: hand-computed cases and a brute-force comparison."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from affine import Affine
from shapely.geometry import LineString

from emtwin.geo.index import edge_cell_index
from emtwin.geo.world import RoadNetwork, Terrain


def _terrain(
    nrows: int,
    ncols: int,
    dx: float = 10.0,
    x0: float = 0.0,
    ytop: float = 40.0,
    mask: np.ndarray | None = None,
) -> Terrain:
    return Terrain(
        z=np.zeros((nrows, ncols)),
        mask=np.ones((nrows, ncols), dtype=bool) if mask is None else mask,
        transform=Affine(dx, 0.0, x0, 0.0, -dx, ytop),
        dx=dx,
    )


def _roads(lines: list[LineString]) -> RoadNetwork:
    """A RoadNetwork holding only what the index reads: edges and their geometry."""
    m = len(lines)
    ends = np.array([[ln.coords[0], ln.coords[-1]] for ln in lines], dtype=float).reshape(-1, 2)
    z = np.zeros(m)
    return RoadNetwork(
        graph=nx.MultiDiGraph(),
        node_id=np.arange(2 * m),
        node_x=ends[:, 0],
        node_y=ends[:, 1],
        edge_u=np.arange(0, 2 * m, 2),
        edge_v=np.arange(1, 2 * m, 2),
        length_m=np.array([ln.length for ln in lines]),
        speed_m_s=z + 10,
        lanes=z + 1,
        capacity_veh_h=z + 600,
        road_id=np.array([str(i) for i in range(m)]),
        name=np.array([""] * m),
        highway=np.array(["residential"] * m),
        geometry=list(lines),
    )


def test_diagonal_hand_computed():
    # 4x4 cells of 10 m, grid corner at (0, 40); row 0 is the north row.
    # The line (2, 2) -> (38, 22) has slope 20/36: it crosses x=10 at y=6.4,
    # y=10 at x=16.4, x=20 at y=12, x=30 at y=17.6 and y=20 at x=34.4. So it
    # visits (row, col) (3,0) (3,1) (2,1) (2,2) (2,3) (1,3): flat 12 13 9 10 11 7.
    # The corner-to-corner diagonal (0,0)->(40,40) only touches the corners of
    # its neighbours: (3,0) (2,1) (1,2) (0,3) = 12 9 6 3.
    lines = [
        LineString([(2, 2), (38, 22)]),
        LineString([(38, 22), (2, 2)]),
        LineString([(0, 0), (40, 40)]),
    ]
    idx = edge_cell_index(_roads(lines), _terrain(4, 4))
    assert idx.of(0).tolist() == [12, 13, 9, 10, 11, 7]
    assert idx.of(1).tolist() == [7, 11, 10, 9, 13, 12]  # ordered along the edge
    assert idx.of(2).tolist() == [12, 9, 6, 3]
    assert idx.indptr.tolist() == [0, 6, 12, 16]


def test_horizontal_edge_along_a_row_and_clipping():
    lines = [
        LineString([(-5, 15), (25, 15)]),  # row 2, starts off the grid
        LineString([(1, 20), (39, 20)]),  # exactly on the grid line between rows 1 and 2
        LineString([(5, 35), (5, 35.0001), (5, 36), (5, 35)]),  # goes back and forth in one cell
    ]
    idx = edge_cell_index(_roads(lines), _terrain(4, 4))
    assert idx.of(0).tolist() == [8, 9, 10]
    assert idx.of(1).tolist() == [8, 9, 10, 11]  # a line on a grid line goes to the south row
    assert idx.of(2).tolist() == [0]  # no duplicates


def test_off_grid_and_masked_edges():
    mask = np.ones((4, 4), dtype=bool)
    mask[2, :] = False
    lines = [
        LineString([(100, 100), (200, 150)]),  # off the grid
        LineString([(-10, 50), (50, 50)]),  # passes north of the grid
        LineString([(-5, 15), (25, 15)]),  # in the masked row
        LineString([(5, 5), (5, 35)]),  # column 0 across the masked row
    ]
    idx = edge_cell_index(_roads(lines), _terrain(4, 4, mask=mask))
    assert idx.of(0).size == 0
    assert idx.of(1).size == 0
    assert idx.of(2).size == 0
    assert idx.of(3).tolist() == [12, 4, 0]
    assert idx.indptr.tolist() == [0, 0, 0, 0, 3]


def test_matches_brute_force_on_random_lines():
    rng = np.random.default_rng(42)
    nrows, ncols, dx = 9, 12, 7.5
    ter = _terrain(nrows, ncols, dx=dx, x0=100.0, ytop=500.0)
    xmin, ymin, xmax, ymax = ter.bounds
    lines = []
    for _ in range(150):
        n = rng.integers(2, 6)
        x = rng.uniform(xmin - 20, xmax + 20, n)
        y = rng.uniform(ymin - 20, ymax + 20, n)
        lines.append(LineString(np.column_stack([x, y])))
    idx = edge_cell_index(_roads(lines), ter)
    rows, cols = np.divmod(np.arange(nrows * ncols), ncols)
    x0, y0 = ter.transform.c, ter.transform.f
    boxes = shapely.box(x0 + cols * dx, y0 - (rows + 1) * dx, x0 + (cols + 1) * dx, y0 - rows * dx)
    for i, ln in enumerate(lines):
        crossed = shapely.intersects(ln, boxes) & ~shapely.touches(ln, boxes)
        expected = set(np.flatnonzero(crossed).tolist())
        got = idx.of(i).tolist()
        assert len(got) == len(set(got))
        assert set(got) == expected, i


def test_straight_line_when_geometry_missing():
    roads = _roads([LineString([(2, 2), (38, 22)])])
    roads.geometry = [None]
    idx = edge_cell_index(roads, _terrain(4, 4))
    assert idx.of(0).tolist() == [12, 13, 9, 10, 11, 7]


@pytest.mark.parametrize("n_edges", [0])
def test_no_edges(n_edges):
    roads = _roads([LineString([(0, 0), (1, 1)])])
    roads.edge_u = roads.edge_u[:n_edges]
    roads.edge_v = roads.edge_v[:n_edges]
    roads.geometry = []
    idx = edge_cell_index(roads, _terrain(4, 4))
    assert idx.indptr.tolist() == [0]
    assert idx.cells.size == 0
