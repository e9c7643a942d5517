"""Critical facilities: loss of function when the water at them passes a set depth.

A hospital, shelter, station, substation or pump stops working the first time
the water depth at it (m above the ground) exceeds its limit: its own
``fail_depth_m`` where one is given (a site), else its type's
(:data:`~emtwin.consequences.defaults.FACILITY_FAIL_DEPTH_M`, settable per type
in ``consequences.facilities``). Function is not restored during the run: a
flooded plant room or ward is not back in service within hours.

A facility may *feed* others (a substation powers a hospital, a pump, a
shelter): when it loses function, every facility it feeds loses function at the
same time, whatever the water there (cause ``power``, and the facility it was
fed by), and so on down the chain. The caller (a component) turns each new loss
into an event and acts on it (dispatch routes to the next hospital; a shelter
is closed and its people moved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emtwin.consequences.defaults import FACILITY_FAIL_DEPTH_M
from emtwin.errors import InputDataError

__all__ = ["FacilityWatch", "CAUSES"]

#: Why a facility lost its function: the water at it, or the loss of the one feeding it.
CAUSES: tuple[str, ...] = ("water", "power")


class FacilityWatch:
    """Which facilities have lost function, when and why.

    Parameters
    ----------
    kinds
        Type of each facility (``hospital``, ``shelter``, ``station``,
        ``substation``, ``pump``), shape (n,).
    fail_depth_m
        Per type, overriding the defaults, m.
    limits_m
        Per facility, overriding its type's depth where finite (NaN: the
        type's), m, shape (n,).
    feeds
        Per facility, the indices of the facilities it feeds (an empty
        sequence for most), length n.

    Attributes
    ----------
    failed
        True for facilities that have lost function, shape (n,).
    time_failed_s
        When they did, s (NaN for the others), shape (n,).
    cause
        ``water``, ``power`` or "" (still working), shape (n,).
    fed_by
        Index of the facility whose loss took this one down (-1 otherwise), shape (n,).
    """

    def __init__(
        self,
        kinds: np.ndarray,
        fail_depth_m: Mapping[str, float] | None = None,
        *,
        limits_m: np.ndarray | None = None,
        feeds: Sequence[Sequence[int]] | None = None,
    ) -> None:
        table = {**FACILITY_FAIL_DEPTH_M, **(fail_depth_m or {})}
        self.kinds = np.asarray(kinds, dtype=object)
        n = self.kinds.size
        unknown = sorted(set(self.kinds.tolist()) - set(table))
        if unknown:
            raise InputDataError(
                f"consequences.facilities: no fail_depth_m for type(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(table))}"
            )
        self.limit_m = np.array([table[k] for k in self.kinds], dtype=np.float64)
        if limits_m is not None:
            own = np.asarray(limits_m, dtype=np.float64)
            if own.shape != (n,):
                raise InputDataError(f"FacilityWatch: limits_m has shape {own.shape}, "
                                     f"expected ({n},)")  # fmt: skip
            self.limit_m = np.where(np.isfinite(own), own, self.limit_m)
        self.feeds: list[list[int]] = [[] for _ in range(n)]
        if feeds is not None:
            if len(feeds) != n:
                raise InputDataError(f"FacilityWatch: feeds has {len(feeds)} entries, "
                                     f"expected {n}")  # fmt: skip
            for i, fed in enumerate(feeds):
                bad = [j for j in fed if not 0 <= int(j) < n or int(j) == i]
                if bad:
                    raise InputDataError(f"FacilityWatch: facility {i} feeds {bad}: expected "
                                         f"other facilities' indices in [0, {n})")  # fmt: skip
                self.feeds[i] = [int(j) for j in fed]
        self.failed = np.zeros(n, dtype=bool)
        self.time_failed_s = np.full(n, np.nan)
        self.cause = np.full(n, "", dtype=object)
        self.fed_by = np.full(n, -1, dtype=np.int64)

    def update(self, depth_m: np.ndarray, t_s: float) -> np.ndarray:
        """Take the depth at each facility (m) at time *t_s* (s); return the indices newly lost.

        First those the water took (in index order), then those that lost their
        feed, in the order the chain reaches them (breadth first).
        """
        d = np.asarray(depth_m, dtype=np.float64)
        if d.shape != self.limit_m.shape:
            raise InputDataError(f"FacilityWatch.update: depth has shape {d.shape}, "
                                 f"expected {self.limit_m.shape}")  # fmt: skip
        new = np.flatnonzero(~self.failed & (d > self.limit_m)).tolist()
        for i in new:
            self._fail(i, t_s, "water", -1)
        k = 0
        while k < len(new):
            i = new[k]
            for j in self.feeds[i]:
                if not self.failed[j]:
                    self._fail(j, t_s, "power", i)
                    new.append(j)
            k += 1
        return np.asarray(new, dtype=np.int64)

    def _fail(self, i: int, t_s: float, cause: str, fed_by: int) -> None:
        self.failed[i] = True
        self.time_failed_s[i] = t_s
        self.cause[i] = cause
        self.fed_by[i] = fed_by
