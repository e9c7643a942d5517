"""Cross-section lines on the flood grid: which cell faces a line cuts, and with which sign.

A river gauge reports discharge through a cross-section. On a staggered grid
(unit discharges on cell faces, as the local-inertial kernel keeps them) the
discharge through a line is the sum, over the faces the line separates, of
the face's unit discharge times the face width. The faces are chosen as a
*staircase*: a face between two neighbouring cells belongs to a segment of
the line when the segment's infinite line separates the two cell centres and
the face's midpoint projects onto the segment itself. Those faces form a
connected barrier between the cells on either side, so the discrete flux
through them is exactly the rate at which water moves from one side to the
other (a conservation identity, whatever the line's angle).

Sign: positive when water crosses the line from its right to its left, as
seen walking along it from its first point to its last. A section drawn from
the left bank to the right bank (banks named looking downstream, the habit of
HEC-RAS cross-sections) therefore reports downstream flow as positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emtwin.geo.world import Terrain

__all__ = ["SectionFaces", "section_faces", "section_flow"]


@dataclass(frozen=True)
class SectionFaces:
    """The faces a cross-section cuts.

    Attributes
    ----------
    x_faces, x_signs
        Flat indices into the x-face array (shape (nrows, ncols + 1), unit
        discharge + toward east) and +1/-1 each.
    y_faces, y_signs
        Flat indices into the y-face array (shape (nrows + 1, ncols), + toward
        south) and +1/-1 each.
    width_m
        Face width (the cell size), m.
    """

    x_faces: np.ndarray
    x_signs: np.ndarray
    y_faces: np.ndarray
    y_signs: np.ndarray
    width_m: float

    @property
    def n_faces(self) -> int:
        """How many faces the section cuts."""
        return int(self.x_faces.size + self.y_faces.size)


def _segment_faces(
    terrain: Terrain, p0: np.ndarray, p1: np.ndarray, last: bool, axis: str
) -> tuple[np.ndarray, np.ndarray]:
    """Faces of one axis cut by the segment p0 -> p1: (flat index, sign)."""
    nrows, ncols = terrain.shape
    dx = terrain.dx
    x0, y0 = terrain.transform.c, terrain.transform.f
    # the window of cells the segment can touch, one cell of margin
    cmin = int(np.floor((min(p0[0], p1[0]) - x0) / dx)) - 1
    cmax = int(np.floor((max(p0[0], p1[0]) - x0) / dx)) + 1
    rmin = int(np.floor((y0 - max(p0[1], p1[1])) / dx)) - 1
    rmax = int(np.floor((y0 - min(p0[1], p1[1])) / dx)) + 1
    if axis == "x":  # face (r, c) lies between cells (r, c - 1) and (r, c)
        r = np.arange(max(rmin, 0), min(rmax, nrows - 1) + 1)
        c = np.arange(max(cmin, 1), min(cmax, ncols - 1) + 1)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        ra, ca, rb, cb = rr, cc - 1, rr, cc
        width = ncols + 1
    else:  # face (r, c) lies between cells (r - 1, c) and (r, c)
        r = np.arange(max(rmin, 1), min(rmax, nrows - 1) + 1)
        c = np.arange(max(cmin, 0), min(cmax, ncols - 1) + 1)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        ra, ca, rb, cb = rr - 1, cc, rr, cc
        width = ncols
    if rr.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    ax, ay = terrain.cell_centre(ra, ca)
    bx, by = terrain.cell_centre(rb, cb)
    d = p1 - p0
    side_a = d[0] * (ay - p0[1]) - d[1] * (ax - p0[0])  # > 0: left of the segment
    side_b = d[0] * (by - p0[1]) - d[1] * (bx - p0[0])
    t = ((0.5 * (ax + bx) - p0[0]) * d[0] + (0.5 * (ay + by) - p0[1]) * d[1]) / float(d @ d)
    on = (t >= 0.0) & ((t <= 1.0) if last else (t < 1.0))
    cut = ((side_a < 0) != (side_b < 0)) & on
    inside = terrain.mask[ra, ca] | terrain.mask[rb, cb]
    cut &= inside
    # the face's discharge is + from a to b: + on the section when a is on the right
    sign = np.where(side_a < 0, 1.0, -1.0)
    return (rr[cut] * width + cc[cut]).astype(np.int64), sign[cut]


def section_faces(terrain: Terrain, xy: np.ndarray | list) -> SectionFaces:
    """The faces a polyline cuts on *terrain*'s grid, with their signs.

    Parameters
    ----------
    terrain
        The flood grid (north-up, square cells).
    xy
        The line's vertices, shape (n >= 2, 2), m in the World CRS.

    Returns
    -------
    SectionFaces
        Empty (``n_faces == 0``) when the line cuts no face inside the domain.
        A face cut by two segments (at a bend) counts once, with the first
        segment's sign.
    """
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(pts) < 2:
        raise ValueError("a cross-section needs at least two points")
    out = {}
    for axis in ("x", "y"):
        idx, sgn = [], []
        for k in range(len(pts) - 1):
            if np.allclose(pts[k], pts[k + 1]):
                continue
            i, s = _segment_faces(terrain, pts[k], pts[k + 1], k == len(pts) - 2, axis)
            idx.append(i)
            sgn.append(s)
        i = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        s = np.concatenate(sgn) if sgn else np.zeros(0)
        i, first = np.unique(i, return_index=True)
        out[axis] = (i, s[first])
    return SectionFaces(out["x"][0], out["x"][1], out["y"][0], out["y"][1], float(terrain.dx))


def section_flow(qx: np.ndarray, qy: np.ndarray, faces: SectionFaces) -> float:
    """Discharge through a section, m3/s (+ from the line's right to its left).

    Parameters
    ----------
    qx, qy
        Unit discharges on x-faces (nrows, ncols + 1) and y-faces
        (nrows + 1, ncols), m2/s, + toward east and south.
    faces
        From :func:`section_faces` on the same grid.
    """
    fx = np.asarray(qx).reshape(-1)[faces.x_faces].astype(np.float64)
    fy = np.asarray(qy).reshape(-1)[faces.y_faces].astype(np.float64)
    return float((fx @ faces.x_signs + fy @ faces.y_signs) * faces.width_m)
