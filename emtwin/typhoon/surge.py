"""Sea level at the coast from a storm: inverse barometer plus wind setup.

- Inverse barometer: the sea rises by ``dp / (rho_w g)`` for a local pressure
  deficit dp (about 1 cm per hPa: 50 hPa gives 0.497 m with rho_w = 1025
  kg/m3, g = 9.81 m/s2). The local deficit at distance r from the centre is
  that of the Holland (1980) pressure profile,
  ``dp_local = dp (1 - exp(-(Rmax/r)^B))``.
- Wind setup: the steady balance of surface stress and the water-surface slope
  over a shelf of width L and uniform depth h, linearised for a setup small
  against h: ``eta = tau L / (rho_w g h)`` (e.g. Dean & Dalrymple 1991, ch. 5),
  with ``tau = rho_a C_d U |U|`` for the onshore wind component U and the drag
  law of Wu (1982, J. Geophys. Res. 87): ``C_d = (0.8 + 0.065 U10) 1e-3``,
  capped at 2.5e-3 because the drag levels off in hurricane winds (Powell,
  Vickery & Reinhold 2003, Nature 422). Offshore wind gives a set-down.

Limits: the wind at the coast point stands for the wind over the whole shelf;
no wave setup, no tide-surge interaction, no shelf resonance or time lag.
"""

from __future__ import annotations

import math

import numpy as np

from emtwin.kernels.wind import holland_pressure
from emtwin.typhoon.wind import TyphoonWind

__all__ = [
    "RHO_SEAWATER",
    "GRAVITY",
    "inverse_barometer_m",
    "drag_coefficient_wu",
    "wind_setup_m",
    "surge_level_series",
]

#: Density of sea water, kg/m3.
RHO_SEAWATER = 1025.0
#: Gravity, m/s2.
GRAVITY = 9.81
_CD_MAX = 2.5e-3


def inverse_barometer_m(dp_hpa: np.ndarray | float, *, rho_water: float = RHO_SEAWATER,
                        g: float = GRAVITY) -> np.ndarray:
    """Sea-level rise for a pressure deficit *dp_hpa* (hPa), m."""
    return np.asarray(dp_hpa, dtype=float) * 100.0 / (rho_water * g)


def drag_coefficient_wu(u10_m_s: np.ndarray | float) -> np.ndarray:
    """Wu (1982) sea-surface drag coefficient, capped at 2.5e-3 (dimensionless)."""
    u = np.abs(np.asarray(u10_m_s, dtype=float))
    return np.minimum((0.8 + 0.065 * u) * 1e-3, _CD_MAX)


def wind_setup_m(onshore_m_s: np.ndarray | float, *, shelf_width_m: float, shelf_depth_m: float,
                 air_density: float = 1.15, rho_water: float = RHO_SEAWATER,
                 g: float = GRAVITY, speed_m_s: np.ndarray | float | None = None) -> np.ndarray:
    """Steady wind setup over a uniform shelf, m (negative: set-down).

    *onshore_m_s* is the onshore component of the 10 m wind (m/s); *speed_m_s*
    the full speed for the drag law (default: the onshore component).
    """
    un = np.asarray(onshore_m_s, dtype=float)
    spd = np.abs(un) if speed_m_s is None else np.asarray(speed_m_s, dtype=float)
    tau = air_density * drag_coefficient_wu(spd) * un * np.abs(un)
    return tau * shelf_width_m / (rho_water * g * shelf_depth_m)


def surge_level_series(
    wind: TyphoonWind,
    times_s: np.ndarray,
    *,
    at: tuple[float, float],
    onshore_bearing_deg: float,
    shelf_width_m: float,
    shelf_depth_m: float,
    base_level_m: float = 0.0,
) -> list[tuple[float, float]]:
    """Sea level at a coast point over time, ``[(t_s, level_m), ...]``.

    Parameters
    ----------
    wind
        The storm's wind model (its track, grid CRS and parameters).
    times_s
        Times, s.
    at
        The coast point (x, y), m in the World CRS.
    onshore_bearing_deg
        Direction from sea to land, degrees clockwise from north (a wind
        blowing *towards* it piles water up).
    shelf_width_m, shelf_depth_m
        Width and mean depth of the shelf in front of the coast, m.
    base_level_m
        Still-water level (tide, mean sea level), m.
    """
    th = math.radians(onshore_bearing_deg)
    out: list[tuple[float, float]] = []
    x = np.array([at[0]])
    y = np.array([at[1]])
    for t in np.asarray(times_s, dtype=float):
        v = wind.vortex(float(t))
        if v is None:
            out.append((float(t), base_level_m))
            continue
        r = math.hypot(at[0] - v.centre[0], at[1] - v.centre[1])
        penv = wind.params.environment_pressure_hpa * 100.0
        p = float(holland_pressure(r, rmax_m=v.rmax_m, p_centre_pa=penv - v.dp_pa,
                                   dp_pa=v.dp_pa, b=v.b))
        ib = float(inverse_barometer_m((penv - p) / 100.0))
        u, w = wind.uv_of(v, x, y, 1.0)
        onshore = float(u[0] * math.sin(th) + w[0] * math.cos(th))
        setup = float(wind_setup_m(onshore, shelf_width_m=shelf_width_m,
                                   shelf_depth_m=shelf_depth_m,
                                   air_density=wind.params.air_density,
                                   speed_m_s=math.hypot(u[0], w[0])))
        out.append((float(t), base_level_m + ib + setup))
    return out
