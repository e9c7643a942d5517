"""The hurricane-planning warning rule per zone, and the margin each zone had.

HURREVAC's rule: warn a zone so that its clearance ends before tropical-storm
force (17.5 m/s) arrives, i.e. at the forecast arrival over the zone minus the
estimated clearance time. After the run, the margin of the zone is the
forecast arrival minus the zone's actual clearance end (the last of its
households to reach a shelter or leave the area): positive, the zone was clear
that long before the wind; negative, people were still arriving that long
after it.

Pure functions on arrays and plain records; the typhoon component calls them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ZoneWarning", "plan_zone", "zone_table", "WARNING_ZONE_COLUMNS"]

#: Columns of the ``warning_zones`` table (times in s since the start).
WARNING_ZONE_COLUMNS = ("zone", "wind_arrival_s", "clearance_s", "warning_s", "too_late_s",
                        "households", "households_cleared", "clearance_end_s",
                        "margin_s")  # fmt: skip


@dataclass
class ZoneWarning:
    """The plan for one zone.

    ``wind_arrival_s``: the forecast first arrival of storm-force wind over the
    zone (None: never); ``clearance_s``: the estimated clearance time;
    ``warning_s``: when the warning is issued, ``max(arrival - clearance, 0)``
    (None: no warning); ``too_late_s``: by how much ``arrival - clearance`` was
    before the start (0 when on time); ``households``: indices of the
    households at home in the zone at the start (None: not known, then the
    clearance end counts every household and the ``households`` column is -1).
    """

    zone: str
    wind_arrival_s: float | None
    clearance_s: float
    warning_s: float | None
    too_late_s: float | None
    households: np.ndarray | None = None


def plan_zone(zone: str, arrival_s: np.ndarray, clearance_s: float) -> ZoneWarning:
    """The warning of *zone* from the forecast arrival over its cells (s, NaN: never)."""
    a = np.asarray(arrival_s, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return ZoneWarning(zone, None, float(clearance_s), None, None)
    first = float(a.min())
    warn = first - float(clearance_s)
    return ZoneWarning(zone, first, float(clearance_s), max(warn, 0.0), max(-warn, 0.0))


def zone_table(plans: list[ZoneWarning], safe_s: dict[int, float]) -> pd.DataFrame:
    """The ``warning_zones`` table: one row per zone (columns :data:`WARNING_ZONE_COLUMNS`).

    *safe_s* maps a household's index to the time it reached safety (sheltered
    or out), s. ``clearance_end_s`` is the latest of these over the zone's
    households (NaN: none arrived), ``margin_s`` = ``wind_arrival_s -
    clearance_end_s`` (NaN where either is unknown).
    """
    rows = []
    for p in plans:
        if p.households is None:
            times = np.array(list(safe_s.values()), dtype=float)
            n = -1  # not known (a checkpoint of an older emtwin)
        else:
            times = np.array([safe_s[h] for h in p.households.tolist() if h in safe_s], float)
            n = int(p.households.size)
        end = float(times.max()) if times.size else float("nan")
        arrival = p.wind_arrival_s if p.wind_arrival_s is not None else float("nan")
        rows.append({
            "zone": p.zone, "wind_arrival_s": arrival, "clearance_s": p.clearance_s,
            "warning_s": p.warning_s if p.warning_s is not None else float("nan"),
            "too_late_s": p.too_late_s if p.too_late_s is not None else float("nan"),
            "households": n, "households_cleared": int(times.size), "clearance_end_s": end,
            "margin_s": arrival - end,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(WARNING_ZONE_COLUMNS))
