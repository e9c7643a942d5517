"""Running wind statistics per cell: max wind, max gust, arrival of storm-force wind.

State is explicit (:meth:`WindAccumulator.state` / :meth:`WindAccumulator.from_state`)
so that a checkpoint can save it and a forked run continue from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emtwin.errors import KernelError
from emtwin.kernels.wind import TROPICAL_STORM_M_S

__all__ = ["WindAccumulator"]


@dataclass
class WindAccumulator:
    """Max sustained wind, max gust and first arrival of sustained wind > threshold.

    Attributes
    ----------
    max_wind
        Max 1-min sustained wind seen so far, m/s, shape (nrows, ncols).
    max_gust
        Max gust (sustained times *gust_factor*), m/s.
    arrival_s
        First time the sustained wind exceeded *threshold_m_s*, s (NaN: not
        yet). Between two updates the crossing time is interpolated linearly
        in the sampled speeds.
    last_speed, last_time_s
        The previous update's speed (m/s) and time (s; NaN before the first).
    gust_factor
        Gust / sustained ratio (Harper et al. 2010, see GUST_FACTOR_3S_1MIN).
    threshold_m_s
        Tropical-storm force, 17.5 m/s by default.
    """

    max_wind: np.ndarray
    max_gust: np.ndarray
    arrival_s: np.ndarray
    last_speed: np.ndarray
    last_time_s: float
    gust_factor: float
    threshold_m_s: float = TROPICAL_STORM_M_S

    @classmethod
    def empty(cls, shape: tuple[int, ...], *, gust_factor: float,
              threshold_m_s: float = TROPICAL_STORM_M_S) -> WindAccumulator:
        """A fresh accumulator for a grid of *shape*."""
        if gust_factor < 1.0:
            raise KernelError(f"gust_factor must be >= 1, got {gust_factor}")
        return cls(np.zeros(shape), np.zeros(shape), np.full(shape, np.nan), np.zeros(shape),
                   float("nan"), float(gust_factor), float(threshold_m_s))

    def update(self, t_s: float, speed: np.ndarray) -> None:
        """Take the sustained wind *speed* (m/s, grid shape) at time *t_s* (s)."""
        if speed.shape != self.max_wind.shape:
            raise KernelError(f"speed must have shape {self.max_wind.shape}, got {speed.shape}")
        np.maximum(self.max_wind, speed, out=self.max_wind)
        np.maximum(self.max_gust, self.gust_factor * speed, out=self.max_gust)
        thr = self.threshold_m_s
        new = np.isnan(self.arrival_s) & (speed > thr)
        if new.any():
            if np.isnan(self.last_time_s):
                self.arrival_s[new] = t_s
            else:
                s0 = self.last_speed[new]
                s1 = speed[new]
                w = np.clip((thr - s0) / np.maximum(s1 - s0, 1e-12), 0.0, 1.0)
                self.arrival_s[new] = self.last_time_s + w * (t_s - self.last_time_s)
        self.last_speed[...] = speed
        self.last_time_s = float(t_s)

    def state(self) -> dict[str, np.ndarray | float]:
        """Everything needed to continue: plain arrays and floats (copies)."""
        return {
            "max_wind": self.max_wind.copy(), "max_gust": self.max_gust.copy(),
            "arrival_s": self.arrival_s.copy(), "last_speed": self.last_speed.copy(),
            "last_time_s": self.last_time_s, "gust_factor": self.gust_factor,
            "threshold_m_s": self.threshold_m_s,
        }

    @classmethod
    def from_state(cls, state: dict) -> WindAccumulator:
        """Rebuild from :meth:`state`."""
        return cls(
            np.array(state["max_wind"], dtype=float), np.array(state["max_gust"], dtype=float),
            np.array(state["arrival_s"], dtype=float), np.array(state["last_speed"], dtype=float),
            float(state["last_time_s"]), float(state["gust_factor"]),
            float(state["threshold_m_s"]),
        )
