"""Road blockage by wind (fallen trees, debris): lognormal fragility per road class.

``P(blocked | gust g) = Phi( ln(g / median) / beta )``, the usual lognormal
fragility form (e.g. HAZUS-MH Hurricane Model technical manual). The medians
and dispersions in :data:`DEFAULT_ROAD_FRAGILITY` are an **engineering
assumption**, anchored on the Beaufort scale (force 10, 24.5-28.4 m/s mean
wind, "trees uprooted"; with gust factors of 1.3-1.5 that is gusts of about
32-42 m/s): narrow, tree-lined roads block at lower gusts than wide ones.
Calibrate them against local records before quantitative use.

Each edge draws one uniform number once, from the run's generator; the edge is
blocked as soon as the fragility of its maximum gust so far exceeds it. Hence
the blockage is monotone in time, independent of the coupling step, and the
same seed gives the same blocked edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import lognorm

from emtwin.errors import KernelError

__all__ = [
    "RoadFragility",
    "DEFAULT_ROAD_FRAGILITY",
    "blockage_probability",
    "BlockageDraws",
]


@dataclass(frozen=True)
class RoadFragility:
    """A lognormal fragility: median gust (m/s) and log-standard deviation beta."""

    median_gust_m_s: float
    beta: float

    def __post_init__(self) -> None:
        if not (self.median_gust_m_s > 0 and self.beta > 0):
            raise KernelError(
                f"fragility needs median_gust_m_s > 0 and beta > 0, got "
                f"{self.median_gust_m_s} and {self.beta}"
            )


#: Per OSM highway class (engineering assumption, see the module docstring).
DEFAULT_ROAD_FRAGILITY: dict[str, RoadFragility] = {
    "motorway": RoadFragility(55.0, 0.30),
    "trunk": RoadFragility(50.0, 0.30),
    "primary": RoadFragility(45.0, 0.30),
    "secondary": RoadFragility(42.0, 0.30),
    "tertiary": RoadFragility(40.0, 0.30),
    "residential": RoadFragility(38.0, 0.30),
    "unclassified": RoadFragility(38.0, 0.30),
    "service": RoadFragility(36.0, 0.30),
    "living_street": RoadFragility(36.0, 0.30),
    "track": RoadFragility(33.0, 0.30),
}
_FALLBACK = RoadFragility(38.0, 0.30)


def blockage_probability(gust_m_s: np.ndarray | float, median_gust_m_s: np.ndarray | float,
                         beta: np.ndarray | float) -> np.ndarray:
    """Probability of blockage at gust *gust_m_s* (m/s); 0 for a calm (gust <= 0)."""
    g = np.asarray(gust_m_s, dtype=float)
    return np.where(g > 0, lognorm.cdf(np.maximum(g, 1e-9), s=beta, scale=median_gust_m_s), 0.0)


class BlockageDraws:
    """One uniform draw per edge, and the edges the gusts so far have blocked.

    Parameters
    ----------
    highway
        Road class per edge (OSM ``highway`` values), shape (n_edges,).
    rng
        The run's generator (or a child spawned for the typhoon).
    table
        Class -> fragility; classes missing from it take the residential curve.
    """

    def __init__(self, highway: np.ndarray, rng: np.random.Generator,
                 table: dict[str, RoadFragility] | None = None) -> None:
        tab = DEFAULT_ROAD_FRAGILITY if table is None else table
        fr = [tab.get(str(h), _FALLBACK) for h in highway]
        self.median = np.array([f.median_gust_m_s for f in fr], dtype=float)
        self.beta = np.array([f.beta for f in fr], dtype=float)
        self.u = rng.random(len(fr))

    def probability(self, max_gust_m_s: np.ndarray) -> np.ndarray:
        """Blockage probability per edge for its max gust so far (m/s)."""
        return blockage_probability(max_gust_m_s, self.median, self.beta)

    def blocked(self, max_gust_m_s: np.ndarray) -> np.ndarray:
        """True for edges blocked by a max gust of *max_gust_m_s* (m/s), shape (n_edges,)."""
        if max_gust_m_s.shape != self.u.shape:
            raise KernelError(f"max_gust must have shape {self.u.shape}, got {max_gust_m_s.shape}")
        return self.probability(max_gust_m_s) > self.u
