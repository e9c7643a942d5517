"""What a run produced: :class:`Results`, and the map frames a component returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from emtwin.geo.world import World
    from emtwin.scenarios.models import Scenario
    from emtwin.sim.state import RoadState

__all__ = ["Results", "Frames"]


@dataclass
class Frames:
    """A stack of map frames a component returns from ``outputs()``.

    ``times_s`` (n,), ``stack`` (n, rows, cols) and the grid's affine
    ``transform`` in the World CRS.
    """

    times_s: np.ndarray
    stack: np.ndarray
    transform: Any


@dataclass
class Results:
    """What a run produced.

    Attributes
    ----------
    summary
        The headline metrics (``summary.json``), nested by section; SI units.
    events
        One row per event: ``time_s, kind, entity, node, edge, details``.
    timeseries
        One row per output time: ``time_s`` and each component's columns.
    rasters
        Named 2-D float arrays on the World grid (NaN outside the domain).
    tables
        Other tables by file stem (for example ``gauges``).
    frames
        Named stacks of map frames: ``(times_s, stack)`` with ``stack`` of shape
        (n_times, rows, cols) on a grid that may be coarser than the World's
        (see ``frame_transforms``); for example the flood depth at every output time.
    frame_transforms
        The affine transform (World CRS) of each frame stack's grid.
    world
        The World the run was played on.
    scenario
        The scenario that was run.
    """

    summary: dict[str, Any]
    events: pd.DataFrame
    timeseries: pd.DataFrame
    rasters: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    frame_transforms: dict[str, Any] = field(default_factory=dict)
    world: World | None = None
    scenario: Scenario | None = None
    road_state: RoadState | None = None
