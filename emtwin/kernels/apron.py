"""Boundary aprons: carry a masked domain out to the grid edge on its open sides.

The flood kernel's boundary faces are the grid's outer faces. A DEM whose data
do not reach the grid edge (a reprojected, rotated tile; a coastline clipped by
nodata) would have almost no in-domain cell on that edge, and a level or open
boundary there would touch nothing. An *apron* fixes this without touching the
kernel: on each side with a non-closed boundary, every row (west, east) or
column (north, south) that has an in-domain cell gets the out-of-domain cells
between the grid edge and its outermost in-domain cell added to the model's
domain, with that cell's bed elevation and roughness (a flat strip). Water then
reaches the side's boundary faces through the strip. Apron cells are part of
the model (the mass ledger counts their water) but not of the terrain: outputs
read only the terrain's own mask.

Pure NumPy; knows nothing of the simulation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apron_sources"]

_SIDES = ("north", "south", "west", "east")


def apron_sources(mask: np.ndarray, sides: list[str] | tuple[str, ...]) -> np.ndarray:
    """Source cell of every apron cell for the given sides.

    Parameters
    ----------
    mask
        Boolean domain mask, shape (nrows, ncols), row 0 north.
    sides
        Sides with a non-closed boundary, any of "north", "south", "west",
        "east".

    Returns
    -------
    numpy.ndarray
        int64 array of the mask's shape: for an apron cell, the flat index of
        the in-domain cell it copies its bed and roughness from; -1 elsewhere
        (in-domain cells and cells left out). Where the strips of two sides
        meet, the side named first wins.
    """
    mask = np.asarray(mask, bool)
    nrows, ncols = mask.shape
    src = np.full(mask.shape, -1, np.int64)
    for side in sides:
        if side not in _SIDES:
            raise ValueError(f"apron_sources: side must be one of {_SIDES}, got {side!r}")
        along_rows = side in ("west", "east")
        m = mask if along_rows else mask.T
        n_out = m.shape[1]
        flip = side in ("east", "south")
        mm = m[:, ::-1] if flip else m
        has = mm.any(axis=1)
        first = mm.argmax(axis=1)  # outermost in-domain index from this side
        k = np.arange(n_out)
        strip = (k[None, :] < first[:, None]) & has[:, None]
        pos = first if not flip else n_out - 1 - first
        if flip:
            strip = strip[:, ::-1]
        li, ki = np.nonzero(strip)
        si = pos[li]
        if along_rows:
            r, c, sr, sc = li, ki, li, si
        else:
            r, c, sr, sc = ki, li, si, li
        free = src[r, c] < 0
        src[r[free], c[free]] = sr[free] * ncols + sc[free]
    return src
