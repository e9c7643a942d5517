"""Dry blocks left out of a global step, bit for bit (private; see :mod:`emtwin.kernels.flood`).

The grid is cut into blocks of ``B x B`` cells. A block is *dry* when all its
depths are below the dry depth (exactly 0 under infiltration, which would
otherwise take from them) and it is not *hot*: holding an inflow cell, or on a
grid edge with a water-level boundary (an open edge lets out only what a cell
deeper than the dry depth holds, and a closed one nothing). A dry block whose
eight neighbours are dry too is *skipped*. For the next ``B`` global steps,
without rain, a skipped
block's cells keep their depths and every face around them stays 0, so a step
that leaves them out gives the state of the step that computes them, bit for
bit:

- a face carries water only when its flow depth ``max(eta) - max(z)``, at most
  the deeper of its two depths, exceeds the dry depth; otherwise the kernel sets
  it to exactly 0, whatever else it reads (:func:`emtwin.kernels._flood_numba._y_q`);
- so a depth changes only next to a cell deeper than the dry depth, and what is
  deeper spreads by at most one cell per step; a skipped block's cells start
  ``B + 1`` cells or more from any such cell, and the faces around them stay 0
  for ``B`` steps;
- their records do not change either: a depth below the dry depth has speed,
  hazard rating and class 0, is not an arrival, and is no more than the max
  depth already recorded.

:func:`dry_windows` finds the skipped blocks and sets the faces around their
cells to 0, which is what the next step would set them to (no other face that
reads them carries water), and cuts what is left into windows (rows ``a..b-1``,
columns ``c0..c1-1``) for :func:`emtwin.kernels._flood_numba.step`. A block
skipped at the last find and still skipped, with only steps on the windows run
since, is as that find left it: its faces are not looked at again and its
deepest depth is kept (:attr:`DryWindows.kept`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emtwin.kernels import _flood_numba as _nb

__all__ = ["DryWindows", "balance", "dry_windows", "hot_blocks", "row_counts"]


class DryWindows:
    """The windows of the global steps that leave out dry blocks, with their scratch.

    Made for one grid and one set of hot blocks; :meth:`find` looks at the state and
    makes the windows, which hold for the next *B* steps (:attr:`left`).
    """

    def __init__(self, ncols: int, B: int, hot: np.ndarray, parts: int, dtype) -> None:
        """For a grid of *ncols* columns and state *dtype*; *hot* (uint8) flags the
        blocks never skipped; *parts* is the number of groups of windows (one per
        thread)."""
        nbr, nbc = hot.shape
        nw = nbr * nbc + parts  # at most one window per block, and the cuts of balance()
        self.B = B
        self.hot = hot
        self.skip = np.zeros((nbr, nbc), np.uint8)
        self.test = np.zeros((nbr, nbc), np.uint8)  # the flags of a find(zero=False)
        self.bmax = np.zeros((nbr, nbc))  # deepest depth of each skipped block, m
        #: The blocks of :attr:`skip` are still as the last find left them: their depths
        #: unchanged and the faces around their cells 0 (only steps on the windows have
        #: run since). False until a find; :meth:`stale` sets it False.
        self.kept = False
        self.win = np.zeros((nw, 5), np.int64)
        self.ncols, self.dtype = ncols, dtype
        self.scratch = _nb.scratch(16, ncols, dtype)  # grid-wide rows per window: grown as needed
        self.rowneg = np.zeros(nw * B, np.int64)  # the windows' rows, see balance()
        self.gs = np.zeros(parts + 1, np.int64)
        #: Steps the windows still hold for (0: none are held).
        self.left = 0
        #: Number of windows, cells in them, and the deepest skipped depth (m).
        self.n = 0
        self.cells = 0
        self.hskip = 0.0

    def find(self, h, qx, qy, dry: float, zero_only: bool, max_rows: int, *,
             zero: bool = True) -> int:  # fmt: skip
        """Find the skipped blocks and make the windows (:func:`dry_windows`, then
        :func:`balance`); returns the cells in the windows. With ``zero=False`` only
        that number: nothing else is written, and no windows are held. While
        :attr:`kept` holds, the blocks skipped at the last find are not looked at again:
        they are still dry, their faces 0."""
        self.left = 0
        if not zero:
            return int(dry_windows(h, qx, qy, self.B, dry, zero_only, self.hot, max_rows,
                                   self.skip, self.test, self.win, self.bmax, False,
                                   self.kept)[1])  # fmt: skip
        n, cells, hskip = dry_windows(h, qx, qy, self.B, dry, zero_only, self.hot, max_rows,
                                      self.skip, self.skip, self.win, self.bmax, True,
                                      self.kept)  # fmt: skip
        self.n = int(balance(self.win, n, self.gs.size - 1, self.gs))
        if self.n > self.scratch[0].shape[0]:
            self.scratch = _nb.scratch(max(self.n, 2 * self.scratch[0].shape[0]), self.ncols,
                                       self.dtype)  # fmt: skip
        self.cells, self.hskip, self.left = int(cells), float(hskip), self.B
        self.kept = True
        return int(cells)

    def stale(self) -> None:
        """Say that something other than a step on the windows has changed the state (a
        full step, a local macro step, water added): the next find looks at every
        skipped block's faces and depths."""
        self.kept = False


def hot_blocks(shape: tuple[int, int], B: int, rows: np.ndarray, cols: np.ndarray,
               level_sides: tuple[bool, bool, bool, bool]) -> np.ndarray:  # fmt: skip
    """uint8 flags of the blocks never skipped: those holding a cell of (*rows*, *cols*)
    (the inflow cells) and those on a side (north, south, west, east) with a water-level
    boundary."""
    nr, nc = shape
    hot = np.zeros((-(-nr // B), -(-nc // B)), np.uint8)
    if len(rows):
        hot[np.asarray(rows) // B, np.asarray(cols) // B] = 1
    n, s, w, e = level_sides
    if n:
        hot[0, :] = 1
    if s:
        hot[-1, :] = 1
    if w:
        hot[:, 0] = 1
    if e:
        hot[:, -1] = 1
    return hot


@njit(cache=True, error_model="numpy")
def dry_windows(h, qx, qy, B, dry, zero_only, hot, max_rows, prev, skip, win, bmax, zero,
                kept):  # fmt: skip
    """Mark the skipped blocks in *skip*, zero the faces of their cells (with *zero*;
    without, nothing but *skip* and *win* is written), cut the rest into windows in *win*.

    *dry* is the dry depth (m; a skipped cell is below it, or exactly 0 with
    *zero_only*), *hot* (uint8, one per block) the blocks never skipped,
    *max_rows* the tallest window (rows), *skip* (uint8, one per block) is
    written, *win* (int64, at least one row per block) receives the windows
    ``(a, b, c0, c1)``: rows a..b-1, columns c0..c1-1 (:func:`balance` then cuts
    them and sets the fifth column). Blocks in a band of B rows
    that are not skipped and touch form one window; a window of the same
    columns as one just above it extends that one, up to *max_rows*. With
    *zero*, *bmax* (float64, one per block) receives each skipped block's
    deepest depth (m). *prev* (uint8, one per block; may be *skip* itself) flags
    the blocks skipped at the last find with *zero*; with *kept* (nothing but
    steps on the windows since), such a block is not looked at again: its depths
    are unchanged, so it is still dry, its faces are 0 and its *bmax* holds.

    Returns (number of windows, cells in them, the deepest skipped depth m; with *zero*
    only).
    """
    nr, nc = h.shape
    nbr, nbc = skip.shape
    wet = np.zeros((nbr, nbc), np.uint8)
    for bi in range(nbr):
        for r in range(bi * B, min(bi * B + B, nr)):
            for bj in range(nbc):
                if wet[bi, bj] or (kept and prev[bi, bj]):
                    continue
                for j in range(bj * B, min(bj * B + B, nc)):
                    d = h[r, j]
                    if (d != 0.0) if zero_only else not (d < dry):
                        wet[bi, bj] = 1
                        break
    hskip = 0.0
    for bi in range(nbr):
        for bj in range(nbc):
            s = 1
            for a in range(max(bi - 1, 0), min(bi + 2, nbr)):
                for b in range(max(bj - 1, 0), min(bj + 2, nbc)):
                    if wet[a, b] or hot[a, b]:
                        s = 0
            old = prev[bi, bj]
            skip[bi, bj] = s
            if not (s and zero):
                continue
            if not (kept and old):
                hb = 0.0
                for r in range(bi * B, min(bi * B + B, nr)):
                    for j in range(bj * B, min(bj * B + B, nc)):
                        hb = max(hb, float(h[r, j]))
                        if qx[r, j] != 0.0:  # (-0.0 on the west edge, as the step writes)
                            qx[r, j] = -0.0 if j == 0 else 0.0
                        if qx[r, j + 1] != 0.0:
                            qx[r, j + 1] = 0.0
                        if qy[r, j] != 0.0:
                            qy[r, j] = 0.0
                        if qy[r + 1, j] != 0.0:
                            qy[r + 1, j] = 0.0
                bmax[bi, bj] = hb
            hskip = max(hskip, bmax[bi, bj])
    n = 0
    cells = 0
    above = np.full(nbc, -1, np.int64)  # the window of the band above that starts at a block
    here = np.full(nbc, -1, np.int64)
    for bi in range(nbr):
        a = bi * B
        b = min(a + B, nr)
        here[:] = -1
        bj = 0
        while bj < nbc:
            if skip[bi, bj]:
                bj += 1
                continue
            e = bj
            while e < nbc and not skip[bi, e]:
                e += 1
            c0 = bj * B
            c1 = min(e * B, nc)
            cells += (b - a) * (c1 - c0)
            k = above[bj]
            if k >= 0 and win[k, 3] == c1 and b - win[k, 0] <= max_rows:
                win[k, 1] = b
            else:
                k = n
                win[k, 0], win[k, 1], win[k, 2], win[k, 3] = a, b, c0, c1
                n += 1
            here[bj] = k
            bj = e
        above[:] = here
    return n, cells, hskip


@njit(cache=True, error_model="numpy")
def balance(win, n, parts, gs):
    """Cut the windows ``win[:n]`` by rows, in place, into *parts* consecutive groups of
    about the same number of cells: group g is ``win[gs[g]:gs[g + 1]]``, one parallel
    task (Numba hands a parallel loop's iterations to its threads in equal contiguous
    shares, whatever their work). *win* needs room for ``n + parts - 1`` windows; sets
    their row offsets (column 4) and returns their number.
    """
    total = 0
    for k in range(n):
        total += (win[k, 1] - win[k, 0]) * (win[k, 3] - win[k, 2])
    src = win[:n].copy()
    m = 0
    acc = 0
    g = 1
    gs[0] = 0
    for k in range(n):
        a, b, c0, c1 = src[k, 0], src[k, 1], src[k, 2], src[k, 3]
        w = c1 - c0
        while a < b:
            goal = (total * g) // parts  # cells before the end of group g - 1
            rows = b - a
            if g < parts and acc + rows * w >= goal:
                rows = max(-(-(goal - acc) // w), 1)
            win[m, 0], win[m, 1], win[m, 2], win[m, 3] = a, a + rows, c0, c1
            m += 1
            acc += rows * w
            a += rows
            while g < parts and acc >= (total * g) // parts:
                gs[g] = m
                g += 1
    while g <= parts:
        gs[g] = m
        g += 1
    rows = 0
    for k in range(m):
        win[k, 4] = rows
        rows += win[k, 1] - win[k, 0]
    return m


@njit(cache=True, error_model="numpy")
def row_counts(win, counts, rows):
    """Sum the per-row counts of the windows *win* (``counts[o + r - a]``) into *rows*
    (one per grid row), for :func:`emtwin.kernels._flood_numba.fix_negative`."""
    rows[:] = 0
    for k in range(win.shape[0]):
        a, b, o = win[k, 0], win[k, 1], win[k, 4]
        for r in range(a, b):
            rows[r] += counts[o + r - a]
