"""Dispatch metrics and tables: response times, waits, utilisation, by priority and type."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from emtwin.sim.dispatch.legs import Call, Leg, Unit

__all__ = ["call_stats", "dispatch_summary", "calls_table", "units_table", "trips_table"]

#: Why a call was never reached (``Call.reason``): no route, no free unit, run over.
UNSERVED_REASONS = ("unreachable", "no_unit", "ended")

#: Final call states as written in the calls table.
FINAL_STATE = {"done": "served", "new": "waiting"}


def _pct(a: np.ndarray, q: float) -> float | None:
    return float(np.percentile(a, q)) if a.size else None


def call_stats(calls: Sequence[Call]) -> dict[str, Any]:
    """Counts and response statistics of *calls*.

    ``served`` counts calls a unit reached (arrival on scene) by the end,
    ``unserved`` the others (waiting, en route, or lost); response times run
    from the call to the arrival on scene, s; waits from the call to the first
    dispatch, over the calls dispatched, s.
    """
    resp = np.array([c.response_s for c in calls if math.isfinite(c.arrival_s)])
    waits = np.array([c.wait_s for c in calls if math.isfinite(c.dispatch_s)])
    return {
        "calls": len(calls),
        "served": int(resp.size),
        "unserved": len(calls) - int(resp.size),
        "response_p50_s": _pct(resp, 50),
        "response_p90_s": _pct(resp, 90),
        "response_mean_s": float(resp.mean()) if resp.size else None,
        "wait_mean_s": float(waits.mean()) if waits.size else None,
    }


def _groups(calls: Iterable[Call], key: str) -> dict[str, list[Call]]:
    out: dict[str, list[Call]] = {}
    for c in calls:
        out.setdefault(str(getattr(c, key)), []).append(c)
    return dict(sorted(out.items()))


def dispatch_summary(
    calls: Sequence[Call], units: Sequence[Unit], busy_s: Sequence[float], duration_s: float
) -> dict[str, Any]:
    """The ``dispatch`` section of summary.json.

    Parameters
    ----------
    calls, units
        Every call and unit of the run.
    busy_s
        Time each unit was assigned to calls, s (same order as *units*).
    duration_s
        Length of the run, s.
    """
    out = call_stats(calls)
    util = np.asarray(busy_s, dtype=float) / duration_s if len(units) else np.zeros(0)
    out["utilisation_mean"] = float(util.mean()) if util.size else None
    by_type_u: dict[str, list[float]] = {}
    for u, x in zip(units, util, strict=True):
        by_type_u.setdefault(u.type, []).append(float(x))
    out["utilisation_by_unit_type"] = {k: float(np.mean(v)) for k, v in sorted(by_type_u.items())}
    out["by_priority"] = {k: call_stats(v) for k, v in _groups(calls, "priority").items()}
    out["by_type"] = {k: call_stats(v) for k, v in _groups(calls, "type").items()}
    out["by_source"] = {k: call_stats(v) for k, v in _groups(calls, "source").items()}
    hosp = np.array([c.hospital_s - c.time_s for c in calls if math.isfinite(c.hospital_s)])
    out["hospital_transports"] = int(hosp.size)
    out["to_hospital_mean_s"] = float(hosp.mean()) if hosp.size else None
    states: dict[str, int] = {}
    for c in calls:
        s = FINAL_STATE.get(c.state, c.state)
        states[s] = states.get(s, 0) + 1
    out["states"] = dict(sorted(states.items()))
    reasons = dict.fromkeys(UNSERVED_REASONS, 0)
    for c in calls:
        if not math.isfinite(c.arrival_s):
            reasons[c.reason or "no_unit"] = reasons.get(c.reason or "no_unit", 0) + 1
    out["unserved_by_reason"] = reasons
    out["units"] = len(units)
    return out


def calls_table(calls: Sequence[Call]) -> pd.DataFrame:
    """One row per call: where, what, final state, response and wait, the unit that came."""
    cols = ["id", "time_s", "x", "y", "priority", "type", "needs", "state", "response_s",
            "wait_s", "unit", "source", "people", "to_hospital", "hospital",
            "hospital_s", "unserved_reason"]  # fmt: skip
    rows = [
        (c.id, c.time_s, c.x, c.y, c.priority, c.type, "|".join(c.needs),
         FINAL_STATE.get(c.state, c.state), c.response_s, c.wait_s, c.unit, c.source, c.people,
         bool(c.to_hospital), c.hospital, c.hospital_s - c.time_s,
         "" if math.isfinite(c.arrival_s) else (c.reason or "no_unit"))  # fmt: skip
        for c in calls
    ]
    return pd.DataFrame(rows, columns=cols)


def units_table(units: Sequence[Unit], busy_s: Sequence[float], duration_s: float) -> pd.DataFrame:
    """One row per unit: type, home station at the end, busy time, calls, utilisation."""
    return pd.DataFrame(
        {
            "id": [u.id for u in units],
            "type": [u.type for u in units],
            "station": [u.station for u in units],
            "busy_s": np.asarray(busy_s, dtype=float),
            "calls": [u.calls for u in units],
            "utilisation": np.asarray(busy_s, dtype=float) / duration_s,
            "state": [u.state for u in units],
        }
    )


def trips_table(units: Sequence[Unit], now: float) -> pd.DataFrame:
    """Waypoints of every unit movement: ``id, kind ("unit"), time_s, x, y``, by id then time.

    A movement under way at *now* is cut at *now*.
    """
    ids, t, x, y = [], [], [], []
    for u in units:
        legs: list[Leg] = list(u.trips)
        if u.leg is not None and len(u.leg) > 1 and (not legs or u.leg is not legs[-1]):
            legs.append(u.leg.until(now))
        for leg in legs:
            ids.append(np.full(len(leg), u.id, dtype=object))
            t.append(leg.t)
            x.append(leg.x)
            y.append(leg.y)
    if not ids:
        return pd.DataFrame({"id": pd.Series([], dtype=object), "kind": pd.Series([], dtype=object),
                             "time_s": [], "x": [], "y": []})  # fmt: skip
    df = pd.DataFrame({"id": np.concatenate(ids), "kind": "unit", "time_s": np.concatenate(t),
                       "x": np.concatenate(x), "y": np.concatenate(y)})  # fmt: skip
    df = df.sort_values(["id", "time_s"], kind="stable")
    df = df[~df.duplicated(["id", "time_s", "x", "y"])]
    return df.reset_index(drop=True)
