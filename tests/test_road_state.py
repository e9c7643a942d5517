"""edge_max_depth against a brute-force loop over a hand-built CSR index."""

from __future__ import annotations

import numpy as np
import pytest

from emtwin.errors import KernelError
from emtwin.kernels import edge_max_depth


def _brute(indptr, cells, h_flat):
    out = np.zeros(len(indptr) - 1)
    for e in range(len(indptr) - 1):
        for c in cells[indptr[e] : indptr[e + 1]]:
            out[e] = max(out[e], h_flat[c])
    return out


def test_hand_built_index():
    h = np.array([[0.0, 0.1, 0.5], [0.2, 0.0, 0.05]])  # 2 x 3 grid, flat = row * 3 + col
    indptr = np.array([0, 2, 2, 5, 6])  # edge 1 has no cells
    cells = np.array([0, 1, 2, 3, 4, 5])
    got = edge_max_depth(indptr, cells, h.reshape(-1))
    assert got.tolist() == [0.1, 0.0, 0.5, 0.05]
    assert np.array_equal(got, _brute(indptr, cells, h.reshape(-1)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_index_matches_brute_force(dtype):
    rng = np.random.default_rng(7)
    nrows, ncols, n_edges = 40, 50, 300
    h = np.where(rng.random((nrows, ncols)) < 0.4, rng.uniform(0, 2, (nrows, ncols)), 0.0)
    h = h.astype(dtype)
    counts = rng.integers(0, 12, n_edges)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cells = rng.integers(0, nrows * ncols, indptr[-1]).astype(np.int32)
    out = np.full(n_edges, -1.0, dtype=dtype)
    got = edge_max_depth(indptr, cells, h, out=out)
    assert got is out and got.dtype == dtype
    assert np.array_equal(got, _brute(indptr, cells, h.reshape(-1)).astype(dtype))


def test_empty_and_bad_indices():
    assert edge_max_depth(np.array([0]), np.array([], np.int64), np.zeros(4)).shape == (0,)
    with pytest.raises(KernelError, match="outside the grid"):
        edge_max_depth(np.array([0, 2]), np.array([0, 9]), np.zeros(4))
    with pytest.raises(KernelError, match="end at len"):
        edge_max_depth(np.array([0, 3]), np.array([0, 1]), np.zeros(4))
    with pytest.raises(KernelError, match="non-decreasing"):
        edge_max_depth(np.array([0, 2, 1, 2]), np.array([0, 1]), np.zeros(4))
    with pytest.raises(KernelError, match="out must have shape"):
        edge_max_depth(np.array([0, 1]), np.array([0]), np.zeros(4), out=np.zeros(3))
