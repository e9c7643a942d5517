"""Rain that moves with the storm: the R-CLIPER profile (Tuleya et al. 2007).

R-CLIPER (the rainfall climatology and persistence model of Marks & DeMaria,
with the bias-adjusted coefficients of Tuleya, DeMaria & Kuligowski 2007,
Wea. Forecasting 22, 56-70, Table 1) gives a symmetric rain rate as a function
of the distance r (km) from the centre and the storm's maximum wind through
``U = 1 + (Vmax_kt - 35) / 33``::

    T0 = -1.10 + 3.96 U,  Tm = -1.60 + 4.80 U     (inch/day)
    rm = 64.5 - 13.0 U,   re = 150.0 - 16.0 U     (km)
    R(r) = T0 + (Tm - T0) r / rm        for r <  rm
    R(r) = Tm exp(-(r - rm) / re)       for r >= rm

converted to mm/h (1 inch/day = 25.4 / 24 mm/h) and floored at 0. rm is kept at
least 5 km (it would vanish near Vmax = 170 kt). The model is a climatology:
no shear or topographic asymmetry (Lonfat et al. 2004 give the shear-relative
asymmetry; not modelled here).
"""

from __future__ import annotations

import math

import numpy as np

from emtwin.geo.track import KNOT_M_S
from emtwin.kernels.wind import holland_vmax
from emtwin.typhoon.wind import TyphoonWind

__all__ = ["rcliper_rate_mm_h", "rain_on_grid"]

_IN_DAY_TO_MM_H = 25.4 / 24.0
_RM_MIN_KM = 5.0


def rcliper_rate_mm_h(r_km: np.ndarray | float, vmax_m_s: float) -> np.ndarray:
    """R-CLIPER rain rate at distance *r_km* (km) for max sustained wind *vmax_m_s*, mm/h."""
    u = 1.0 + (vmax_m_s / KNOT_M_S - 35.0) / 33.0
    t0 = -1.10 + 3.96 * u
    tm = -1.60 + 4.80 * u
    rm = max(64.5 - 13.0 * u, _RM_MIN_KM)
    re = 150.0 - 16.0 * u
    r = np.asarray(r_km, dtype=float)
    inner = t0 + (tm - t0) * r / rm
    outer = tm * np.exp(-(r - rm) / re)
    rate = np.where(r < rm, inner, outer) * _IN_DAY_TO_MM_H
    return np.maximum(rate, 0.0)


def rain_on_grid(wind: TyphoonWind, t_s: float, *, scale: float = 1.0) -> np.ndarray:
    """R-CLIPER rain rate on the wind model's grid at *t_s*, mm/h, shape grid.shape.

    The max wind is the track's ``vmax_m_s`` where given, else the vortex's
    (``surface factor * sqrt(B dp / (rho e))``). *scale* multiplies the rate.
    Zero outside the track's time range.
    """
    v = wind.vortex(t_s)
    g = wind.grid
    if v is None:
        return np.zeros(g.shape)
    vmax = wind.track.at(t_s).vmax_m_s
    if not math.isfinite(vmax):
        vmax = v.vortex_factor * holland_vmax(v.b, v.dp_pa, wind.params.air_density)
    dx = g.cell_x()[None, :] - v.centre[0]
    dy = g.cell_y()[:, None] - v.centre[1]
    r_km = np.hypot(dx, dy) / 1000.0
    return scale * rcliper_rate_mm_h(r_km, vmax)
