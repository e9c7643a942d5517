"""emtwin.kernels: Numba kernels on plain NumPy arrays (no SimPy, no I/O).

- :class:`FloodModel`: 2-D local inertial flood (Bates et al. 2010; de Almeida et al. 2012).
- Hazard to people and vehicles: FD2320 hazard rating and classes, AIDR 7-3
  classes, the Pregnolato et al. (2017) vehicle speed factor.
- :func:`edge_max_depth`: deepest water under each road edge (CSR edge->cells index).
- :func:`select_backend`: "cpu" or "cuda" for the flood (``CudaFloodModel`` in
  :mod:`emtwin.kernels.flood_cuda`, imported on demand; docs/gpu.md).
"""

from __future__ import annotations

from emtwin.kernels._numba_cache import use_keyed_cache

use_keyed_cache()  # before any kernel module defines its cached functions

from emtwin.kernels.backend import select_backend  # noqa: E402
from emtwin.kernels.flood import FloodModel  # noqa: E402
from emtwin.kernels.hazard_rating import (  # noqa: E402
    AIDR_CLASS_NAMES,
    DEBRIS_PASTURE,
    DEBRIS_URBAN,
    HR_CLASS_NAMES,
    aidr_class,
    aidr_class_nb,
    hazard_rating,
    hazard_rating_nb,
    hr_class,
    hr_class_nb,
    pregnolato_speed_factor,
    pregnolato_speed_factor_nb,
)
from emtwin.kernels.road_state import edge_max_depth  # noqa: E402

__all__ = [
    "FloodModel",
    "hazard_rating",
    "hr_class",
    "aidr_class",
    "pregnolato_speed_factor",
    "hazard_rating_nb",
    "hr_class_nb",
    "aidr_class_nb",
    "pregnolato_speed_factor_nb",
    "HR_CLASS_NAMES",
    "AIDR_CLASS_NAMES",
    "DEBRIS_URBAN",
    "DEBRIS_PASTURE",
    "edge_max_depth",
    "select_backend",
]
