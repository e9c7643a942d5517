"""The edge->cell index: which terrain cells every road edge passes through.

The hazard samples water depth under each road edge through this index, so it
is built once per World, vectorised over all edges (no Python loop per edge).
"""

from __future__ import annotations

import logging

import numpy as np
import shapely

from emtwin.geo.world import EdgeCellIndex, RoadNetwork, Terrain

__all__ = ["edge_cell_index"]

log = logging.getLogger(__name__)

_TINY = 1e-9  # pieces shorter than this (in cells) only touch a cell corner


def edge_cell_index(roads: RoadNetwork, terrain: Terrain) -> EdgeCellIndex:
    """For every road edge, the terrain cells its geometry passes through.

    Every segment of every edge geometry is cut where it crosses a grid line;
    each piece between two cuts lies in exactly one cell (found from its
    midpoint). A cell counts when the line passes through its interior with
    positive length: touching a corner does not, and a line running exactly
    along a grid line is given to the cells south / east of it. This is exact,
    unlike point sampling, which misses cells clipped at a corner.

    Parameters
    ----------
    roads
        The road network; ``roads.geometry`` in the terrain's CRS (m). Edges
        without a geometry use the straight line between their nodes.
    terrain
        The grid (north-up, square cells of ``terrain.dx`` m) and its mask.

    Returns
    -------
    EdgeCellIndex
        CSR arrays: the cells of edge ``i`` are ``cells[indptr[i]:indptr[i+1]]``,
        flat indices ``row * ncols + col``, without duplicates and ordered by
        first visit along the edge (tail to head). Cells outside the grid or
        outside ``terrain.mask`` are left out, so edges off the domain have none.
    """
    nrows, ncols = terrain.shape
    m = roads.n_edges
    geoms = _edge_geometries(roads)
    coords, gi = shapely.get_coordinates(geoms, return_index=True)
    # grid units: gx along columns (east), gy along rows (south), origin = grid corner
    gx = (coords[:, 0] - terrain.transform.c) / terrain.dx
    gy = (terrain.transform.f - coords[:, 1]) / terrain.dx
    s = np.flatnonzero(gi[:-1] == gi[1:])  # segment s joins vertex s and s + 1
    seg_edge = gi[s]
    ax, ay, bx, by = gx[s], gy[s], gx[s + 1], gy[s + 1]

    # clip segments to the grid box (Liang-Barsky) so far-off edges cost nothing
    ddx, ddy = bx - ax, by - ay
    t0, t1 = np.zeros(len(s)), np.ones(len(s))
    outside = np.zeros(len(s), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in ((-ddx, ax), (ddx, ncols - ax), (-ddy, ay), (ddy, nrows - ay)):
            outside |= (p == 0) & (q < 0)
            r = q / p
            t0 = np.where(p < 0, np.maximum(t0, r), t0)
            t1 = np.where(p > 0, np.minimum(t1, r), t1)
    keep = ~outside & (t1 > t0)
    seg_edge, ddx, ddy = seg_edge[keep], ddx[keep], ddy[keep]
    ax, ay = ax[keep] + t0[keep] * ddx, ay[keep] + t0[keep] * ddy
    ddx, ddy = ddx * (t1[keep] - t0[keep]), ddy * (t1[keep] - t0[keep])
    bx, by = ax + ddx, ay + ddy
    nseg = len(ax)

    # cut points: segment ends (t = 0, 1) and every crossing of a grid line
    tx, sx = _crossings(ax, bx, ddx)
    ty, sy = _crossings(ay, by, ddy)
    seg_ids = np.arange(nseg)
    t = np.concatenate([np.zeros(nseg), np.ones(nseg), tx, ty])
    sid = np.concatenate([seg_ids, seg_ids, sx, sy])
    order = np.lexsort((t, sid))
    t, sid = t[order], sid[order]
    same = sid[1:] == sid[:-1]
    ta, tb, ps = t[:-1][same], t[1:][same], sid[:-1][same]
    seglen = np.hypot(ddx, ddy)
    piece = (tb - ta) * seglen[ps] > _TINY
    ta, tb, ps = ta[piece], tb[piece], ps[piece]
    tm = 0.5 * (ta + tb)
    col = np.clip(np.floor(ax[ps] + tm * ddx[ps]).astype(np.int64), 0, ncols - 1)
    row = np.clip(np.floor(ay[ps] + tm * ddy[ps]).astype(np.int64), 0, nrows - 1)
    flat = row * ncols + col
    edge = seg_edge[ps]
    inside = terrain.mask.ravel()[flat]
    flat, edge = flat[inside], edge[inside]

    # one entry per (edge, cell), ordered by first visit along the edge
    ncell = nrows * ncols
    _, first = np.unique(edge * ncell + flat, return_index=True)
    first.sort()  # pieces are in (edge, along-the-line) order already
    cells, edge = flat[first], edge[first]
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(edge, minlength=m), out=indptr[1:])
    log.info(
        "edge->cell index: %d edges, %d (edge, cell) pairs, %d edges on the grid",
        m,
        len(cells),
        int(np.count_nonzero(np.diff(indptr))),
    )
    return EdgeCellIndex(indptr=indptr, cells=cells.astype(np.int64))


def _edge_geometries(roads: RoadNetwork) -> np.ndarray:
    """Edge LineStrings as a shapely array; straight lines where missing."""
    m = roads.n_edges
    geoms = np.empty(m, dtype=object)
    if len(roads.geometry) == m:
        geoms[:] = roads.geometry
    missing = shapely.is_missing(geoms)
    if missing.any():
        u, v = roads.edge_u[missing], roads.edge_v[missing]
        pts = np.stack(
            [
                np.column_stack([roads.node_x[u], roads.node_y[u]]),
                np.column_stack([roads.node_x[v], roads.node_y[v]]),
            ],
            axis=1,
        )
        geoms[missing] = shapely.linestrings(pts)
    return geoms


def _crossings(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters t in (0, 1) where segments a->b cross integer grid lines, and their segment."""
    lo = np.floor(np.minimum(a, b))
    n = np.maximum(np.ceil(np.maximum(a, b)) - lo - 1, 0).astype(np.int64)
    total = int(n.sum())
    seg = np.repeat(np.arange(len(a)), n)
    start = np.cumsum(n) - n
    k = lo[seg] + 1 + (np.arange(total) - start[seg])
    t = (k - a[seg]) / d[seg]
    return t, seg
