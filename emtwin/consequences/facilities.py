"""Critical facilities: loss of function when the water at them passes a set depth.

A hospital, shelter, station, substation or pump stops working the first time
the water depth at it (m above the ground) exceeds its type's ``fail_depth_m``
(:data:`~emtwin.consequences.defaults.FACILITY_FAIL_DEPTH_M`, settable per type
in ``consequences.facilities``). Function is not restored during the run: a
flooded plant room or ward is not back in service within hours. The caller
(a component) turns each new loss into an event and acts on it (dispatch
routes to the next hospital; a shelter is closed and its people moved).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from emtwin.consequences.defaults import FACILITY_FAIL_DEPTH_M
from emtwin.errors import InputDataError

__all__ = ["FacilityWatch"]


class FacilityWatch:
    """Which facilities have lost function, and when.

    Parameters
    ----------
    kinds
        Type of each facility (``hospital``, ``shelter``, ``station``,
        ``substation``, ``pump``), shape (n,).
    fail_depth_m
        Per type, overriding the defaults, m.

    Attributes
    ----------
    failed
        True for facilities that have lost function, shape (n,).
    time_failed_s
        When they did, s (NaN for the others), shape (n,).
    """

    def __init__(self, kinds: np.ndarray, fail_depth_m: Mapping[str, float] | None = None) -> None:
        table = {**FACILITY_FAIL_DEPTH_M, **(fail_depth_m or {})}
        self.kinds = np.asarray(kinds, dtype=object)
        unknown = sorted(set(self.kinds.tolist()) - set(table))
        if unknown:
            raise InputDataError(
                f"consequences.facilities: no fail_depth_m for type(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(table))}"
            )
        self.limit_m = np.array([table[k] for k in self.kinds], dtype=np.float64)
        self.failed = np.zeros(self.kinds.size, dtype=bool)
        self.time_failed_s = np.full(self.kinds.size, np.nan)

    def update(self, depth_m: np.ndarray, t_s: float) -> np.ndarray:
        """Take the depth at each facility (m) at time *t_s* (s); return the indices newly lost."""
        d = np.asarray(depth_m, dtype=np.float64)
        if d.shape != self.limit_m.shape:
            raise InputDataError(f"FacilityWatch.update: depth has shape {d.shape}, "
                                 f"expected {self.limit_m.shape}")  # fmt: skip
        new = np.flatnonzero(~self.failed & (d > self.limit_m))
        self.failed[new] = True
        self.time_failed_s[new] = t_s
        return new
