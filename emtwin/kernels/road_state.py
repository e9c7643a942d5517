"""Road state from the flood grid: the deepest water along each road edge.

The edge->cell index is in CSR layout: the cells under edge ``e`` are
``cells[indptr[e]:indptr[e + 1]]``, each a flat cell index
``row * ncols + col`` into the depth grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emtwin.errors import KernelError

__all__ = ["edge_max_depth"]


@njit(cache=True)
def _edge_max_depth(indptr, cells, h_flat, out):
    """Max of ``h_flat`` over each edge's cells into ``out``; returns the bad-index count.

    Serial on purpose: a city's index (20k edges, 230k edge->cell pairs) is read
    in under 1 ms on one core, and the parallel loop's thread launch and
    reduction cost about 10x that in CPU time (benchmarks/whole_city.py).
    """
    n_edges = indptr.shape[0] - 1
    n_cells = h_flat.shape[0]
    bad = 0
    for e in range(n_edges):
        m = 0.0
        for k in range(indptr[e], indptr[e + 1]):
            c = cells[k]
            if c < 0 or c >= n_cells:
                bad += 1
                continue
            d = h_flat[c]
            if d > m:
                m = d
        out[e] = m
    return bad


def edge_max_depth(
    indptr: np.ndarray, cells: np.ndarray, h_flat: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Deepest water under each road edge.

    Parameters
    ----------
    indptr
        CSR row pointer, integer, shape (n_edges + 1,), non-decreasing, starting at 0
        and ending at ``len(cells)``.
    cells
        Flat cell indices ``row * ncols + col`` of every edge in turn, integer,
        shape (indptr[-1],).
    h_flat
        Water depth per cell, m, shape (nrows * ncols,) (any array; it is
        flattened without a copy when C-contiguous).
    out
        Optional output, shape (n_edges,), written in place.

    Returns
    -------
    numpy.ndarray
        Max depth per edge, m, shape (n_edges,), dtype of *h_flat* (or of *out*);
        0 for edges with no cells. Negative depths count as 0.

    Raises
    ------
    KernelError
        If the arrays are inconsistent or a cell index is outside the grid.
    """
    indptr = np.asarray(indptr)
    cells = np.asarray(cells)
    h_flat = np.ascontiguousarray(h_flat).reshape(-1)
    if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr.dtype.kind not in "iu":
        raise KernelError(
            f"edge_max_depth: indptr must be a 1-D integer array of n_edges + 1 offsets, "
            f"got shape {indptr.shape} dtype {indptr.dtype}"
        )
    if cells.ndim != 1 or (cells.dtype.kind not in "iu" and cells.size):
        raise KernelError(
            f"edge_max_depth: cells must be a 1-D integer array, got shape {cells.shape} "
            f"dtype {cells.dtype}"
        )
    if cells.size == 0:
        cells = cells.astype(np.int64)
    n_edges = indptr.shape[0] - 1
    if indptr[0] != 0 or indptr[-1] != cells.shape[0]:
        raise KernelError(
            f"edge_max_depth: indptr must start at 0 and end at len(cells)={cells.shape[0]}, "
            f"got {int(indptr[0])}..{int(indptr[-1])}"
        )
    if n_edges and np.any(np.diff(indptr) < 0):
        raise KernelError("edge_max_depth: indptr must be non-decreasing")
    if out is None:
        out = np.empty(n_edges, dtype=h_flat.dtype if h_flat.dtype.kind == "f" else np.float64)
    elif out.shape != (n_edges,):
        raise KernelError(
            f"edge_max_depth: out must have shape ({n_edges},), got {out.shape}"
        )
    bad = _edge_max_depth(indptr, cells, h_flat, out)
    if bad:
        raise KernelError(
            f"edge_max_depth: {bad} cell indices are outside the grid of {h_flat.shape[0]} cells"
        )
    return out
