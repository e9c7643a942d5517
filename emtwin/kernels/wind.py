"""Tropical-cyclone wind: the Holland (1980) profile, Holland (2008) B, a moving vortex.

Pure array functions; the private ``@njit`` cores are positional behind
Python wrappers that check shapes. No objects, no I/O, no randomness.

Models and sources (docs/typhoon.md gives the details):

- Gradient wind, Holland (1980, Mon. Wea. Rev. 108, eq. 7)::

      V(r) = sqrt( (B/rho) (Rmax/r)^B dp exp(-(Rmax/r)^B) + (r f/2)^2 ) - r |f| / 2

  with dp the pressure deficit (Pa), rho the air density (kg/m3), f the
  Coriolis parameter ``2 Omega sin(lat)`` (1/s). Without Coriolis its maximum,
  at r = Rmax, is ``sqrt(B dp / (rho e))``.
- B from Holland (2008, Mon. Wea. Rev. 136, eq. 11), fitted for 1-min sustained
  *surface* winds::

      b_s = -4.4e-5 dp^2 + 0.01 dp + 0.03 dpc/dt - 0.014 |lat| + 0.15 vt^x + 1,
      x = 0.6 (1 - dp/215)

  (dp hPa, dpc/dt hPa/h, lat degrees, vt forward speed m/s), kept within
  [1, 2.5] (the range Holland 1980 gives for B).
- Forward-motion asymmetry: the vector ``c(r) T`` is added to the vortex,
  ``c(r) = min(1, Rmax/r)`` (the decay used by Phadke et al. 2003 and by
  CLIMADA after Mouton & Nordbeck 2005) and T the chosen translation vector.
  It adds on the side where the vortex turns with the motion (right in the
  northern hemisphere, left in the southern) and subtracts on the other: along
  the line through the centre across the track, the maximum on the right minus
  the maximum on the left is ``2 |T|`` (``2 |T| cos(inflow angle)`` with the
  inflow angle).
- Inflow angle (surface wind crosses the isobars towards the centre):
  10 deg inside Rmax, rising linearly to 25 deg at 1.2 Rmax and 25 deg beyond
  (Bretschneider 1972, as used by Phadke et al. 2003).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from emtwin.errors import KernelError

__all__ = [
    "OMEGA_EARTH",
    "TROPICAL_STORM_M_S",
    "coriolis_parameter",
    "holland_b_2008",
    "holland_gradient_wind",
    "holland_pressure",
    "holland_vmax",
    "vortex_wind_at_points",
    "bilinear_nodes_to_cells",
    "speed_and_direction",
]

#: Angular speed of the Earth, rad/s.
OMEGA_EARTH = 7.2921e-5
#: Tropical-storm force, 1-min sustained, m/s (34 kt).
TROPICAL_STORM_M_S = 17.5
_HOLLAND_B_RANGE = (1.0, 2.5)


def coriolis_parameter(lat_deg: float | np.ndarray) -> float | np.ndarray:
    """Coriolis parameter ``f = 2 Omega sin(lat)``, 1/s (negative south of the equator)."""
    return 2.0 * OMEGA_EARTH * np.sin(np.radians(lat_deg))


def holland_b_2008(
    dp_hpa: float,
    lat_deg: float,
    translation_m_s: float,
    dpdt_hpa_h: float = 0.0,
    *,
    b_range: tuple[float, float] = _HOLLAND_B_RANGE,
) -> float:
    """Holland (2008) surface B from the pressure deficit, latitude and forward speed.

    Parameters
    ----------
    dp_hpa
        Pressure deficit ``p_env - p_centre``, hPa (>= 0).
    lat_deg
        Latitude of the centre, degrees.
    translation_m_s
        Forward speed of the storm, m/s.
    dpdt_hpa_h
        Tendency of the central pressure, hPa/h (negative while deepening).
    b_range
        The result is clipped to this interval (Holland 1980: 1 to 2.5).

    Returns
    -------
    float
        b_s, dimensionless.
    """
    dp = max(float(dp_hpa), 0.0)
    x = 0.6 * (1.0 - dp / 215.0)
    b = (
        -4.4e-5 * dp**2
        + 0.01 * dp
        + 0.03 * dpdt_hpa_h
        - 0.014 * abs(lat_deg)
        + 0.15 * max(float(translation_m_s), 0.0) ** x
        + 1.0
    )
    return float(min(max(b, b_range[0]), b_range[1]))


def holland_vmax(b: float, dp_pa: float, rho: float) -> float:
    """Cyclostrophic maximum of the Holland profile, ``sqrt(B dp / (rho e))``, m/s."""
    return math.sqrt(b * dp_pa / (rho * math.e))


def holland_gradient_wind(
    r_m: np.ndarray | float, *, rmax_m: float, dp_pa: float, b: float, rho: float, f: float
) -> np.ndarray:
    """Holland (1980) gradient wind speed at radius *r_m* (m), m/s (any shape).

    *dp_pa* is the pressure deficit (Pa), *rho* the air density (kg/m3) and *f*
    the Coriolis parameter (1/s; its sign is ignored).
    """
    r = np.maximum(np.asarray(r_m, dtype=float), 1.0)
    x = (rmax_m / r) ** b
    rf2 = 0.5 * r * abs(f)
    return np.sqrt(b / rho * x * dp_pa * np.exp(-x) + rf2**2) - rf2


def holland_pressure(
    r_m: np.ndarray | float, *, rmax_m: float, p_centre_pa: float, dp_pa: float, b: float
) -> np.ndarray:
    """Surface pressure of the Holland (1980) vortex, ``pc + dp exp(-(Rmax/r)^B)``, Pa."""
    r = np.maximum(np.asarray(r_m, dtype=float), 1.0)
    return p_centre_pa + dp_pa * np.exp(-((rmax_m / r) ** b))


# ---------------------------------------------------------------------------- kernels


@njit(cache=True)
def _inflow_angle_rad(r_over_rmax: float) -> float:
    """Inflow angle (Bretschneider 1972 / Phadke et al. 2003), rad."""
    if r_over_rmax < 1.0:
        deg = 10.0
    elif r_over_rmax < 1.2:
        deg = 10.0 + 75.0 * (r_over_rmax - 1.0)
    else:
        deg = 25.0
    return deg * math.pi / 180.0


@njit(cache=True)
def _vortex_points(
    xs, ys, xc, yc, rmax, dp, b, rho, f, hemisphere, vortex_factor, cell_factor,
    tu, tv, subtract, inflow, out_u, out_v,
):  # pragma: no cover - compiled
    n = xs.shape[0]
    fa = abs(f)
    tnorm = math.sqrt(tu * tu + tv * tv)
    for k in range(n):
        dx = xs[k] - xc
        dy = ys[k] - yc
        r = math.sqrt(dx * dx + dy * dy)
        if r < 1.0:
            r = 1.0
        x = (rmax / r) ** b
        rf2 = 0.5 * r * fa
        vg = math.sqrt(b / rho * x * dp * math.exp(-x) + rf2 * rf2) - rf2
        vs = vortex_factor * vg
        c = rmax / r
        if c > 1.0:
            c = 1.0
        if subtract:
            vs = vs - c * tnorm
            if vs < 0.0:
                vs = 0.0
        # unit tangent: counter-clockwise (north) or clockwise (south)
        tx = -hemisphere * dy / r
        ty = hemisphere * dx / r
        if inflow:
            beta = _inflow_angle_rad(r / rmax)
            cb = math.cos(beta)
            sb = math.sin(beta)
            ex = cb * tx - sb * dx / r
            ey = cb * ty - sb * dy / r
        else:
            ex = tx
            ey = ty
        out_u[k] = cell_factor[k] * (vs * ex + c * tu)
        out_v[k] = cell_factor[k] * (vs * ey + c * tv)


def vortex_wind_at_points(
    x: np.ndarray,
    y: np.ndarray,
    *,
    centre: tuple[float, float],
    rmax_m: float,
    dp_pa: float,
    b: float,
    rho: float = 1.15,
    f: float = 0.0,
    vortex_factor: float = 1.0,
    cell_factor: np.ndarray | float = 1.0,
    translation: tuple[float, float] = (0.0, 0.0),
    subtract_translation: bool = False,
    inflow: bool = False,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Surface wind vector of a moving Holland vortex at points, m/s.

    Parameters
    ----------
    x, y
        Point coordinates in a metric CRS, m, any shape (the same for both).
    centre
        Storm centre ``(x, y)`` in the same CRS, m.
    rmax_m, dp_pa, b, rho, f
        Radius of maximum wind (m), pressure deficit (Pa), Holland B, air
        density (kg/m3), Coriolis parameter (1/s; its sign sets the turning:
        counter-clockwise for ``f >= 0``).
    vortex_factor
        Multiplies the symmetric vortex (gradient-to-surface factor).
    cell_factor
        Multiplies the whole wind per point (e.g. a land-cover reduction);
        a scalar or an array shaped like *x*.
    translation
        Vector ``T = (east, north)`` added as ``min(1, Rmax/r) T``, m/s.
    subtract_translation
        Subtract ``min(1, Rmax/r) |T|`` from the vortex speed first (the
        convention for B fitted to observed total winds, as Holland 2008's).
    inflow
        Turn the vortex wind inwards by the inflow angle.
    out
        Optional ``(u, v)`` arrays shaped like *x* to write into.

    Returns
    -------
    (u, v)
        Eastward and northward wind, m/s, shaped like *x*.
    """
    xa = np.ascontiguousarray(x, dtype=np.float64)
    ya = np.ascontiguousarray(y, dtype=np.float64)
    if xa.shape != ya.shape:
        raise KernelError(f"x and y must have the same shape, got {xa.shape} and {ya.shape}")
    if not (rmax_m > 0 and rho > 0 and b > 0 and dp_pa >= 0):
        raise KernelError(
            f"need rmax_m > 0, rho > 0, b > 0, dp_pa >= 0; got rmax_m={rmax_m}, rho={rho}, "
            f"b={b}, dp_pa={dp_pa}"
        )
    cf = np.broadcast_to(np.asarray(cell_factor, dtype=np.float64), xa.shape)
    if out is None:
        u = np.empty(xa.shape)
        v = np.empty(xa.shape)
    else:
        u, v = out
        if u.shape != xa.shape or v.shape != xa.shape:
            raise KernelError(f"out arrays must have shape {xa.shape}")
    hemi = 1.0 if f >= 0 else -1.0
    _vortex_points(
        xa.ravel(), ya.ravel(), float(centre[0]), float(centre[1]), float(rmax_m),
        float(dp_pa), float(b), float(rho), float(f), hemi, float(vortex_factor),
        np.ascontiguousarray(cf).ravel(), float(translation[0]), float(translation[1]),
        bool(subtract_translation), bool(inflow), u.reshape(-1), v.reshape(-1),
    )
    return u, v


@njit(cache=True)
def _bilinear(src, nx0, ny0, ndx, xs, ys, out):  # pragma: no cover - compiled
    nrow, ncol = src.shape
    for i in range(ys.shape[0]):
        fy = (ny0 - ys[i]) / ndx
        r0 = int(math.floor(fy))
        if r0 < 0:
            r0 = 0
        if r0 > nrow - 2:
            r0 = nrow - 2
        wy = fy - r0
        for j in range(xs.shape[0]):
            fx = (xs[j] - nx0) / ndx
            c0 = int(math.floor(fx))
            if c0 < 0:
                c0 = 0
            if c0 > ncol - 2:
                c0 = ncol - 2
            wx = fx - c0
            out[i, j] = (
                (1.0 - wy) * ((1.0 - wx) * src[r0, c0] + wx * src[r0, c0 + 1])
                + wy * ((1.0 - wx) * src[r0 + 1, c0] + wx * src[r0 + 1, c0 + 1])
            )


def bilinear_nodes_to_cells(
    nodes: np.ndarray,
    *,
    node_x0: float,
    node_y0: float,
    node_dx: float,
    cell_x: np.ndarray,
    cell_y: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Bilinear interpolation from a coarse node grid to fine cell centres.

    Parameters
    ----------
    nodes
        Values at nodes, shape (nrow, ncol) with ``nrow, ncol >= 2``; node
        ``(i, j)`` lies at ``(node_x0 + j node_dx, node_y0 - i node_dx)``, m.
    cell_x, cell_y
        Cell-centre coordinates of the fine grid's columns (ncols,) and rows
        (nrows,), m. Points outside the nodes are extrapolated linearly from
        the edge cells.

    Returns
    -------
    numpy.ndarray
        Shape (nrows, ncols).
    """
    src = np.ascontiguousarray(nodes, dtype=np.float64)
    if src.ndim != 2 or min(src.shape) < 2:
        raise KernelError(f"nodes must be 2-D with at least 2x2 nodes, got {src.shape}")
    xs = np.ascontiguousarray(cell_x, dtype=np.float64)
    ys = np.ascontiguousarray(cell_y, dtype=np.float64)
    if out is None:
        out = np.empty((ys.shape[0], xs.shape[0]))
    elif out.shape != (ys.shape[0], xs.shape[0]):
        raise KernelError(f"out must have shape {(ys.shape[0], xs.shape[0])}, got {out.shape}")
    _bilinear(src, float(node_x0), float(node_y0), float(node_dx), xs, ys, out)
    return out


def speed_and_direction(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speed (m/s) and meteorological direction (degrees) of wind vectors.

    The direction is where the wind blows *from*, clockwise from grid north:
    0 a north wind, 90 an east wind, in [0, 360).
    """
    speed = np.hypot(u, v)
    direction = np.mod(np.degrees(np.arctan2(-u, -v)), 360.0)
    return speed, direction
