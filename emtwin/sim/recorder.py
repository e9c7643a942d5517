"""The Recorder: events and time series of a run, in memory until the end."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Recorder", "EVENT_COLUMNS"]

#: Columns of ``events.parquet``: time (s), kind, entity, node and edge (array
#: indices, -1 when none) and details (a JSON object as text).
EVENT_COLUMNS = ["time_s", "kind", "entity", "node", "edge", "details"]


class Recorder:
    """Collects events (one row each) and time-series samples (one row per output time).

    Components may also :meth:`subscribe` to event kinds: the recorder calls them
    with each such event as it is recorded (for example, dispatch turns the
    evacuation's ``stranded`` events into calls). Subscribers are called in the
    order they subscribed, synchronously, at the event's simulated time.
    """

    def __init__(self) -> None:
        self._events: list[tuple[float, str, str, int, int, str]] = []
        self._rows: list[dict[str, float]] = []
        self._subscribers: dict[str, list[Callable[..., None]]] = {}

    def subscribe(self, kind: str, callback: Callable[..., None]) -> None:
        """Call ``callback(time_s, entity, node=, edge=, **details)`` for every *kind* event."""
        self._subscribers.setdefault(kind, []).append(callback)

    def event(
        self,
        time_s: float,
        kind: str,
        entity: str = "",
        *,
        node: int = -1,
        edge: int = -1,
        **details: Any,
    ) -> None:
        """Record one event at *time_s* (s since start); *details* become a JSON object."""
        text = json.dumps(details, default=_jsonable, sort_keys=True) if details else "{}"
        self._events.append((float(time_s), kind, str(entity), int(node), int(edge), text))
        for callback in self._subscribers.get(kind, ()):
            callback(time_s, entity, node=node, edge=edge, **details)

    def sample(self, row: dict[str, float]) -> None:
        """Record one time-series row (must include ``time_s``)."""
        self._rows.append(dict(row))

    @property
    def n_events(self) -> int:
        """Number of events recorded so far."""
        return len(self._events)

    def events(self) -> pd.DataFrame:
        """The events as a table, in time order (stable for equal times)."""
        df = pd.DataFrame(self._events, columns=EVENT_COLUMNS)
        df = df.astype({"time_s": "float64", "node": "int64", "edge": "int64"})
        return df.sort_values("time_s", kind="stable").reset_index(drop=True)

    def timeseries(self) -> pd.DataFrame:
        """The time series as a table, one row per output time."""
        if not self._rows:
            return pd.DataFrame({"time_s": pd.Series([], dtype="float64")})
        return pd.DataFrame(self._rows)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
