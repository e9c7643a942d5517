"""Cell-centre water speed from the flood state, in one pass (coupling reads).

The speed of a cell is ``sqrt(u^2 + v^2)`` with ``u`` the mean of its two
x-face unit discharges and ``v`` (north positive) minus the mean of its two
y-face unit discharges, each divided by the depth, both scaled down where their
speed would exceed ``FROUDE_MAX sqrt(g h)``
(:data:`emtwin.kernels._flood_numba.FROUDE_MAX`, as the kernel's records); 0
where the depth is below the dry tolerance. These loops give the same numbers, bit for bit, as the
NumPy expression of :meth:`emtwin.kernels.flood.FloodModel.velocity` followed
by ``np.hypot`` (the same operations in the same order and precision: the
face sums and halves in the discharge dtype, the rest in float64), without
its five grid-sized temporaries.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emtwin.kernels._flood_numba import FR2G

__all__ = ["cell_speed", "cell_speed_at"]


@njit(cache=True, error_model="numpy", inline="always")
def _one(h, qx, qy, r, c, dry, half, nhalf):
    hh = np.float64(h[r, c])
    inv = 1.0 / hh if hh >= dry else 0.0
    u = (half * (qx[r, c] + qx[r, c + 1])) * inv
    v = (nhalf * (qy[r, c] + qy[r + 1, c])) * inv
    if u == 0.0 and v == 0.0:  # hypot(+-0, +-0) is +0: spares the call on dry cells
        return 0.0
    s = np.hypot(u, v)
    cap = np.sqrt(FR2G * hh)
    if s > cap:  # (as velocity(): both components scaled, then their hypot)
        k = cap / s
        return np.hypot(u * k, v * k)
    return s


@njit(cache=True, error_model="numpy")
def _grid(h, qx, qy, dry, half, nhalf, out):
    nr, nc = h.shape
    for r in range(nr):
        for c in range(nc):
            out[r, c] = _one(h, qx, qy, r, c, dry, half, nhalf)


@njit(cache=True, error_model="numpy")
def _cells(h, qx, qy, dry, half, nhalf, cells, out):
    nc = h.shape[1]
    for k in range(cells.shape[0]):
        f = cells[k]
        out[k] = _one(h, qx, qy, f // nc, f % nc, dry, half, nhalf)


def _halves(qx: np.ndarray) -> tuple[np.floating, np.floating]:
    return qx.dtype.type(0.5), qx.dtype.type(-0.5)


def cell_speed(h: np.ndarray, qx: np.ndarray, qy: np.ndarray, dry_tol: float) -> np.ndarray:
    """Speed of every cell, m/s, float64, shape of *h*.

    Parameters
    ----------
    h
        Depth, m, shape (nrows, ncols).
    qx
        Unit discharge on x-faces, m2/s, shape (nrows, ncols + 1), + east.
    qy
        Unit discharge on y-faces, m2/s, shape (nrows + 1, ncols), + south.
    dry_tol
        Depth below which a cell has no speed, m.
    """
    out = np.empty(h.shape, np.float64)
    _grid(h, qx, qy, float(dry_tol), *_halves(qx), out)
    return out


def cell_speed_at(h: np.ndarray, qx: np.ndarray, qy: np.ndarray, dry_tol: float,
                  cells: np.ndarray) -> np.ndarray:  # fmt: skip
    """Speed, m/s (float64), at flat cell indices *cells* (``row * ncols + col``).

    The same numbers as ``cell_speed(h, qx, qy, dry_tol).reshape(-1)[cells]``,
    reading only those cells. Raises IndexError for a cell outside the grid.
    """
    flat = np.ascontiguousarray(cells, dtype=np.int64).reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= h.size):
        raise IndexError(f"cell_speed_at: cell indices must lie in [0, {h.size}), got "
                         f"{int(flat.min())}..{int(flat.max())}")  # fmt: skip
    out = np.empty(flat.size, np.float64)
    _cells(h, qx, qy, float(dry_tol), *_halves(qx), flat, out)
    return out.reshape(np.shape(cells))
