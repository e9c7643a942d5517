"""Flood hazard to people and vehicles from depth and speed.

Array functions (NumPy, any shape, broadcasting) and their scalar ``*_nb``
twins compiled with Numba for use inside other kernels. Both give the same
numbers; the tests check that.

Sources (docs/design references.md section 3):

- UK FD2320/FD2321 (Ramsbottom et al. 2006): hazard rating
  ``HR = d (v + 0.5) + DF`` and its four classes.
- Australian AIDR Guideline 7-3 (ARR 2019): hazard classes H1..H6.
- Pregnolato et al. 2017 (Transp. Res. D 55): vehicle speed in flood water.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "ROAD_CLOSURE_DEPTH_M",
    "DEBRIS_URBAN",
    "DEBRIS_PASTURE",
    "HR_CLASS_NAMES",
    "AIDR_CLASS_NAMES",
    "hazard_rating",
    "hr_class",
    "aidr_class",
    "pregnolato_speed_factor",
    "hazard_rating_nb",
    "hr_class_nb",
    "aidr_class_nb",
    "pregnolato_speed_factor_nb",
]

#: FD2320 debris factor for urban land (applied where d >= 0.25 m).
DEBRIS_URBAN = 1.0
#: FD2320 debris factor for pasture/arable land (applied where d >= 0.25 m).
DEBRIS_PASTURE = 0.5
#: Depth from which FD2320 adds the debris factor, m.
_DEBRIS_DEPTH_M = 0.25

#: Names of the classes returned by :func:`hr_class`, by class number.
HR_CLASS_NAMES = ("none", "low", "moderate", "significant", "extreme")
#: Names of the classes returned by :func:`aidr_class`, by class number.
AIDR_CLASS_NAMES = ("dry", "H1", "H2", "H3", "H4", "H5", "H6")

# AIDR 7-3 class limits (ARR 2019): (max d*v m2/s, max d m, max v m/s) for H1..H5;
# H6 is everything beyond H5.
_AIDR_LIMITS = np.array(
    [
        [0.3, 0.3, 2.0],
        [0.6, 0.5, 2.0],
        [0.6, 1.2, 2.0],
        [1.0, 2.0, 2.0],
        [4.0, 4.0, 4.0],
    ]
)

# Pregnolato et al. (2017): v_max(w) = a w^2 + b w + c km/h, w = depth in mm.
_PREG_A = 0.0009
_PREG_B = -0.5529
_PREG_C = 86.9448


# --------------------------------------------------------------------- scalar


@njit(cache=True)
def hazard_rating_nb(d: float, v: float, debris: float) -> float:
    """FD2320 hazard rating of one point (scalar, Numba).

    Parameters are depth *d* (m), speed *v* (m/s) and the debris factor
    *debris* applied where ``d >= 0.25`` m. Returns HR (dimensionless);
    0 where ``d <= 0``.
    """
    if d <= 0.0:
        return 0.0
    df = debris if d >= _DEBRIS_DEPTH_M else 0.0
    return d * (abs(v) + 0.5) + df


@njit(cache=True)
def hr_class_nb(hr: float) -> int:
    """FD2320 class of a hazard rating (scalar, Numba): 0 none .. 4 extreme."""
    if not hr > 0.0:
        return 0
    if hr < 0.75:
        return 1
    if hr < 1.25:
        return 2
    if hr <= 2.0:
        return 3
    return 4


@njit(cache=True)
def aidr_class_nb(d: float, v: float) -> int:
    """AIDR 7-3 hazard class of one point (scalar, Numba): 1..6, 0 where dry.

    *d* depth (m), *v* speed (m/s). The class is the lowest whose limits on
    d*v, d and v all hold.
    """
    if not d > 0.0:
        return 0
    v = abs(v)
    dv = d * v
    # The classes are nested (each holds the one below), so the class is 1 plus
    # the number of classes whose limits fail: branch-free.
    c = 1
    c += not ((dv <= 0.3) & (d <= 0.3) & (v <= 2.0))
    c += not ((dv <= 0.6) & (d <= 0.5) & (v <= 2.0))
    c += not ((dv <= 0.6) & (d <= 1.2) & (v <= 2.0))
    c += not ((dv <= 1.0) & (d <= 2.0) & (v <= 2.0))
    c += not ((dv <= 4.0) & (d <= 4.0) & (v <= 4.0))
    return c


@njit(cache=True)
def pregnolato_speed_factor_nb(depth_m: float, closure_depth_m: float) -> float:
    """Vehicle speed in flood water as a fraction of the dry speed (scalar, Numba).

    Pregnolato et al. (2017): ``v_max(w) = 0.0009 w^2 - 0.5529 w + 86.9448`` km/h
    with w the depth in mm, divided by the dry value 86.9448 and clipped to
    [0, 1]; 0 at or above *closure_depth_m* (m). Negative depths count as dry.
    """
    if depth_m >= closure_depth_m:
        return 0.0
    w = depth_m * 1000.0 if depth_m > 0.0 else 0.0
    f = (_PREG_A * w * w + _PREG_B * w + _PREG_C) / _PREG_C
    return min(max(f, 0.0), 1.0)


# --------------------------------------------------------------------- arrays


def hazard_rating(d: np.ndarray | float, v: np.ndarray | float, debris: float = DEBRIS_URBAN):
    """FD2320 hazard rating ``HR = d (v + 0.5) + DF`` (Ramsbottom et al. 2006).

    Parameters
    ----------
    d
        Water depth, m; any shape (broadcast with *v*).
    v
        Flow speed, m/s; its magnitude is used.
    debris
        Debris factor DF added where ``d >= 0.25`` m: 1.0 for urban land
        (:data:`DEBRIS_URBAN`, default), 0.5 for pasture (:data:`DEBRIS_PASTURE`).
        Below 0.25 m DF is 0 (references.md section 3).

    Returns
    -------
    numpy.ndarray or float
        HR (dimensionless), 0 where ``d <= 0``; float64, broadcast shape of *d* and *v*.
    """
    d = np.asarray(d, dtype=np.float64)
    v = np.abs(np.asarray(v, dtype=np.float64))
    hr = d * (v + 0.5) + np.where(d >= _DEBRIS_DEPTH_M, float(debris), 0.0)
    out = np.where(d > 0.0, hr, 0.0)
    return out if out.ndim else float(out)


def hr_class(hr: np.ndarray | float):
    """FD2320 class of hazard ratings.

    Classes: 0 none (HR <= 0, dry), 1 low (HR < 0.75), 2 moderate
    (0.75 <= HR < 1.25, "danger for some"), 3 significant (1.25 <= HR <= 2.0,
    "danger for most"), 4 extreme (HR > 2.0, "danger for all").

    Parameters
    ----------
    hr
        Hazard ratings, any shape.

    Returns
    -------
    numpy.ndarray or int
        int8 classes 0..4, same shape as *hr*.
    """
    hr = np.asarray(hr, dtype=np.float64)
    cls = np.select(
        [~(hr > 0.0), hr < 0.75, hr < 1.25, hr <= 2.0], [0, 1, 2, 3], default=4
    ).astype(np.int8)
    return cls if cls.ndim else int(cls)


def aidr_class(d: np.ndarray | float, v: np.ndarray | float):
    """AIDR Guideline 7-3 hazard class H1..H6 (ARR 2019) of depth and speed.

    A point takes the lowest class whose limits all hold:
    H1 dv<=0.3, d<=0.3, v<=2; H2 dv<=0.6, d<=0.5, v<=2; H3 dv<=0.6, d<=1.2, v<=2;
    H4 dv<=1, d<=2, v<=2; H5 dv<=4, d<=4, v<=4; H6 beyond.

    Parameters
    ----------
    d
        Water depth, m; any shape (broadcast with *v*).
    v
        Flow speed, m/s; its magnitude is used.

    Returns
    -------
    numpy.ndarray or int
        int8 classes 1..6, and 0 where ``d <= 0`` (dry).
    """
    d = np.asarray(d, dtype=np.float64)
    v = np.abs(np.asarray(v, dtype=np.float64))
    dv = d * v
    cls = np.full(np.broadcast(d, v).shape, 6, dtype=np.int8)
    # Walk from H5 down to H1 so that the lowest class that holds wins.
    for k in range(len(_AIDR_LIMITS) - 1, -1, -1):
        dv_max, d_max, v_max = _AIDR_LIMITS[k]
        cls[(dv <= dv_max) & (d <= d_max) & (v <= v_max)] = k + 1
    cls[np.broadcast_to(~(d > 0.0), cls.shape)] = 0
    return cls if cls.ndim else int(cls)


#: Depth at which a road closes to cars, m (Pregnolato et al. 2017: 300 mm). The one
#: place this default is written; the scenario's ``road_closure_depth`` defaults to it.
ROAD_CLOSURE_DEPTH_M = 0.3


def pregnolato_speed_factor(
    depth_m: np.ndarray | float, closure_depth_m: float = ROAD_CLOSURE_DEPTH_M
):
    """Vehicle speed in flood water as a fraction of the dry speed.

    Pregnolato et al. (2017): ``v_max(w) = 0.0009 w^2 - 0.5529 w + 86.9448``
    km/h, w the depth in mm; the factor is ``v_max(w) / 86.9448`` clipped to
    [0, 1], and 0 at or above *closure_depth_m* (impassable; 0.3 m in the paper).

    Parameters
    ----------
    depth_m
        Water depth on the road, m; any shape. Negative or NaN depths count as dry.
    closure_depth_m
        Depth at and above which the road is closed, m.

    Returns
    -------
    numpy.ndarray or float
        Speed factor in [0, 1], float64, same shape as *depth_m*.
    """
    d = np.asarray(depth_m, dtype=np.float64)
    w = np.where(d > 0.0, d, 0.0) * 1000.0
    f = np.clip((_PREG_A * w * w + _PREG_B * w + _PREG_C) / _PREG_C, 0.0, 1.0)
    f = np.where(d >= closure_depth_m, 0.0, f)
    return f if f.ndim else float(f)
