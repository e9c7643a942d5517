"""Routing boats over the flood raster: the wet-cell graph, travel times, paths, launch points.

Pure array functions (no SimPy, no World): a boat moves between 8-neighbouring
wet cells (depth >= a minimum) at a constant speed, so a move costs
``dx / speed`` s (``sqrt(2) dx / speed`` on a diagonal). Shortest times come
from Dijkstra on the wet-cell graph (``scipy.sparse.csgraph``). The graph is
undirected, so the times *from* a call's cell to every wet cell are also the
times *to* the call, and the predecessor tree read from any cell leads to the
call.

Cells are named by their flat index ``row * ncols + col`` on the raster;
inside the graph, wet cells are numbered 0..n_wet-1 (``WetGraph.index``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from emtwin.errors import KernelError

__all__ = ["WetGraph", "wet_cell_graph", "water_times_from", "water_path", "launch_pairs"]

#: Smallest edge cost, s: csgraph must never see a zero weight.
_EPS_S = 1e-9


@dataclass(frozen=True)
class WetGraph:
    """The graph of wet cells of one flood state.

    Attributes
    ----------
    shape
        (nrows, ncols) of the raster.
    index
        Wet-cell number of every raster cell, -1 where dry, shape (nrows, ncols).
    cells
        Flat raster index of each wet cell, shape (n_wet,).
    matrix
        Symmetric travel times between neighbouring wet cells, s, (n_wet, n_wet) CSR.
    dx
        Cell size, m.
    speed_m_s
        Boat speed on water, m/s.
    """

    shape: tuple[int, int]
    index: np.ndarray
    cells: np.ndarray
    matrix: csr_matrix
    dx: float
    speed_m_s: float

    @property
    def n_wet(self) -> int:
        """Number of wet cells."""
        return int(self.cells.shape[0])


def wet_cell_graph(
    depth_m: np.ndarray,
    mask: np.ndarray,
    dx: float,
    *,
    min_depth_m: float,
    speed_m_s: float,
) -> WetGraph:
    """The graph of cells a boat can use: depth >= *min_depth_m* inside *mask*.

    Parameters
    ----------
    depth_m
        Water depth, m, shape (nrows, ncols).
    mask
        True inside the domain, same shape.
    dx
        Cell size, m (> 0).
    min_depth_m
        Shallowest water a boat can use, m (> 0).
    speed_m_s
        Boat speed, m/s (> 0).

    Returns
    -------
    WetGraph
        8-neighbour graph; a move costs its centre-to-centre length / speed, s.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or np.shape(mask) != depth.shape:
        raise KernelError(f"depth and mask must be 2-D of one shape, got {depth.shape} "
                          f"and {np.shape(mask)}")  # fmt: skip
    if not (dx > 0 and min_depth_m > 0 and speed_m_s > 0):
        raise KernelError(
            f"dx, min_depth_m and speed_m_s must be > 0, got {dx}, {min_depth_m}, {speed_m_s}"
        )
    nr, nc = depth.shape
    wet = np.asarray(mask, dtype=bool) & (depth >= min_depth_m)
    cells = np.flatnonzero(wet)
    index = np.full(nr * nc, -1, dtype=np.int64)
    index[cells] = np.arange(cells.size)
    index = index.reshape(nr, nc)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    cost: list[np.ndarray] = []
    # four forward directions; each pair is added both ways
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, b = _shifted_pair(index, dr, dc)
        ok = (a >= 0) & (b >= 0)
        a, b = a[ok], b[ok]
        t = max(np.hypot(dr, dc) * dx / speed_m_s, _EPS_S)
        src += [a, b]
        dst += [b, a]
        cost += [np.full(a.size, t), np.full(a.size, t)]
    n = cells.size
    if src:
        rows = np.concatenate(src)
        cols = np.concatenate(dst)
        data = np.concatenate(cost)
    else:  # pragma: no cover - the loop always runs
        rows = cols = np.zeros(0, np.int64)
        data = np.zeros(0)
    matrix = csr_matrix((data, (rows, cols)), shape=(n, n))
    return WetGraph((nr, nc), index, cells, matrix, float(dx), float(speed_m_s))


def _shifted_pair(index: np.ndarray, dr: int, dc: int) -> tuple[np.ndarray, np.ndarray]:
    """Wet numbers of every cell (a) and of its neighbour at (+dr, +dc) (b), flattened."""
    nr, nc = index.shape
    r0, r1 = max(0, -dr), nr - max(0, dr)
    c0, c1 = max(0, -dc), nc - max(0, dc)
    a = index[r0:r1, c0:c1]
    b = index[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
    return a.ravel(), b.ravel()


def water_times_from(graph: WetGraph, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Shortest boat times from raster cell *cell* to every wet cell, and the tree.

    Parameters
    ----------
    graph
        The wet-cell graph.
    cell
        Flat raster index of the source; it must be wet.

    Returns
    -------
    times_s, pred
        Times, s (inf where unreachable), and predecessors (wet-cell numbers,
        -9999 at the source and where unreachable), each shape (n_wet,). Since
        the graph is undirected, ``pred[k]`` is the next cell on the way from
        ``k`` to *cell*.
    """
    k = int(graph.index.reshape(-1)[cell]) if 0 <= cell < graph.index.size else -1
    if k < 0:
        raise KernelError(f"cell {cell} is not wet (depth below the boat's minimum)")
    t, pred = dijkstra(graph.matrix, directed=True, indices=k, return_predecessors=True)
    return t, pred


def water_path(graph: WetGraph, pred: np.ndarray, start: int) -> np.ndarray:
    """Flat raster cells of the path from wet cell number *start* along *pred* to its root.

    Returns the raster cells, *start*'s first, shape (n,); empty when *start*
    is not connected to the root.
    """
    out = [start]
    k = start
    while True:
        p = int(pred[k])
        if p < 0:
            break
        out.append(p)
        k = p
        if len(out) > graph.n_wet:  # pragma: no cover - a tree has no cycles
            raise KernelError("water_path: the predecessor array has a cycle")
    return graph.cells[np.asarray(out, dtype=np.int64)]


def launch_pairs(
    graph: WetGraph,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    node_x: np.ndarray,
    node_y: np.ndarray,
    origin: tuple[float, float],
    *,
    radius_cells: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where boats can be put in the water: road nodes within *radius_cells* of wet cells.

    Parameters
    ----------
    graph
        The wet-cell graph.
    node_rows, node_cols
        Raster cell of each road node (-1 off the raster), shape (n_nodes,).
    node_x, node_y
        Node coordinates, m, shape (n_nodes,).
    origin
        (x, y) of the raster's north-west corner, m.
    radius_cells
        Chebyshev radius of the neighbourhood searched around a node, cells.

    Returns
    -------
    nodes, wet, dist_m
        One entry per (node, wet cell) pair: the node index, the wet-cell
        number and the straight distance from the node to the cell centre, m.
    """
    nr, nc = graph.shape
    ok = (node_rows >= 0) & (node_cols >= 0)
    idx = np.flatnonzero(ok)
    r, c = node_rows[idx], node_cols[idx]
    nodes, wet, dist = [], [], []
    for dr in range(-radius_cells, radius_cells + 1):
        for dc in range(-radius_cells, radius_cells + 1):
            rr, cc = r + dr, c + dc
            inside = (rr >= 0) & (rr < nr) & (cc >= 0) & (cc < nc)
            k = np.full(idx.size, -1, dtype=np.int64)
            k[inside] = graph.index[rr[inside], cc[inside]]
            hit = k >= 0
            if not hit.any():
                continue
            n = idx[hit]
            cx = origin[0] + (cc[hit] + 0.5) * graph.dx
            cy = origin[1] - (rr[hit] + 0.5) * graph.dx
            nodes.append(n)
            wet.append(k[hit])
            dist.append(np.hypot(cx - node_x[n], cy - node_y[n]))
    if not nodes:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0)
    return np.concatenate(nodes), np.concatenate(wet), np.concatenate(dist)
