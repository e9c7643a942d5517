"""The flood model's coupling reads (edge depths, point depths, depth statistics).

Checked on the CPU against hand-set depths; the CUDA versions are compared with
these in tests/test_flood_cuda.py (simulator child).
"""

from __future__ import annotations

import numpy as np
import pytest

from emtwin.errors import KernelError
from emtwin.kernels.flood import FloodModel


@pytest.fixture
def model() -> FloodModel:
    """A flat 3 x 4 grid of 1 m cells with depths 0.0, 0.1, ..., 1.1 m, row by row."""
    h0 = np.arange(12, dtype=float).reshape(3, 4) / 10.0
    return FloodModel(np.zeros((3, 4)), None, 1.0, manning=0.03, h0=h0)


def test_edge_depths_are_the_deepest_cell_of_each_edge(model: FloodModel) -> None:
    # edge 0: cells 0, 5, 2 -> 0.5; edge 1: none -> 0; edge 2: cell 11 -> 1.1
    indptr = np.array([0, 3, 3, 4])
    cells = np.array([0, 5, 2, 11])
    assert model.edge_depths(indptr, cells) == pytest.approx([0.5, 0.0, 1.1])
    with pytest.raises(KernelError, match="outside the grid"):
        model.edge_depths(np.array([0, 1]), np.array([12]))


def test_depths_at_reads_flat_cells(model: FloodModel) -> None:
    d = model.depths_at(np.array([11, 0, 6]))
    assert d.dtype == np.float64 and d == pytest.approx([1.1, 0.0, 0.6])


def test_depth_stats_count_sum_and_max(model: FloodModel) -> None:
    n, total, mx = model.depth_stats(0.55)
    # depths >= 0.55: 0.6 .. 1.1 (6 cells); sum 0 + 0.1 + ... + 1.1 = 6.6
    assert (n, total, mx) == (6, pytest.approx(6.6), pytest.approx(1.1))
    region = np.zeros((3, 4), bool)
    region[0, :2] = True  # 0.0 and 0.1
    assert model.depth_stats(0.05, region) == (1, pytest.approx(0.1), pytest.approx(0.1))
    assert model.depth_stats(0.05, np.zeros((3, 4), bool)) == (0, 0.0, 0.0)
