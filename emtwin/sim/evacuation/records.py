"""What the evacuation writes: events, sampled trips, shelter occupancy, summary, tables.

Trips are recorded for a random sample of at most :data:`TRIP_SAMPLE`
households (drawn once with the component's generator): a vehicle's
waypoints are its origin node at departure, the tail node of every link it
enters (at the entry time), and where it arrived or stopped; a walker's are
the nodes of its path with the times it reaches them.

Exposure peaks: for each exposed household the records keep the AIDR class at
its exposure and the flood's running maximum class at its home cell then
(``M_e``). When it leaves home (departs, or is stranded setting off), or at the
end if it never does, the running maximum ``M_d`` is read again. Its peak class
while exposed is ``M_d`` if that rose after the exposure (so the rise happened
while it was exposed), else the class at exposure: a lower bound only where the
cell had met a worse class before the exposure (shallow fast water). Leaving is
seen at the coupling step after it, so the class met up to that step counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from emtwin.sim.evacuation.states import (
    HOME,
    OUT,
    RESCUED,
    SHELTERED,
    STATE_NAMES,
    STRANDED,
    TRAVELLING,
)

if TYPE_CHECKING:
    from emtwin.sim.components.evacuation import EvacuationComponent

__all__ = ["EvacuationRecords", "TRIP_SAMPLE", "weighted_quantile"]

#: Households whose trips are kept for the map, at most.
TRIP_SAMPLE = 2000

#: Events that end a household's time at home (the first one ends its exposure).
_LEAVE_HOME = frozenset({"departed", "stranded", "sheltered", "out"})


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value with at least a share *q* of the total weight at or below it.

    With unit weights this is the inverted-CDF quantile (``np.quantile(...,
    method="inverted_cdf")``). NaN for no values.
    """
    if values.size == 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    i = int(np.searchsorted(cum, q * cum[-1] - 1e-9 * cum[-1], side="left"))
    return float(values[order][min(i, values.size - 1)])


class EvacuationRecords:
    """Recording helper of :class:`EvacuationComponent` (events, trips, shelter rows)."""

    def __init__(self, comp: EvacuationComponent, rng: np.random.Generator) -> None:
        self.c = comp
        n = len(comp.hh)
        self.sampled = np.zeros(n, bool)
        self.sampled[rng.choice(n, size=min(n, TRIP_SAMPLE), replace=False)] = True
        self.counts: dict[str, int] = {}
        self._wp: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._shelter_rows: list[tuple[float, str, float, float, bool]] = []
        # AIDR class (0 none, 1..6) at exposure, the cell's running maximum then, and the
        # peak while exposed (set at departure, or at the end for those still at home)
        self._exp_aidr = np.zeros(n, np.int8)
        self._exp_max = np.zeros(n, np.int8)
        self._peak = np.zeros(n, np.int8)
        self._left = np.zeros(n, bool)

    def event(self, t: float, kind: str, h: int, *, node: int = -1, edge: int = -1,
              **details: Any) -> None:  # fmt: skip
        """Record an event of household *h* (entity ``h<index>``) and its trip waypoint."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.c.sim.recorder.event(t, kind, f"h{h}", node=node, edge=edge, **details)
        if kind == "exposed":
            self._exp_aidr[h] = self._peak[h] = int(details.get("aidr", 0))
            self._exp_max[h] = self._cell_max(np.array([h]))[0]
        elif kind in _LEAVE_HOME and self.c.exposed[h] and not self._left[h]:
            self._peak[h] = self._peak_now(np.array([h]))[0]
            self._left[h] = True
        if self.sampled[h] and details.get("vehicle") and kind in (
            "departed", "sheltered", "out", "stranded"
        ):  # fmt: skip
            roads = self.c.world.roads
            x = details.get("x", roads.node_x[node])
            y = details.get("y", roads.node_y[node])
            self._wp.append((np.array([h]), np.array([t]), np.array([x]), np.array([y])))

    def _cell_max(self, hh: np.ndarray) -> np.ndarray:
        """The flood's running maximum AIDR class (int8) at the home cells of *hh* now."""
        cls = self.c.fields.get("hazard__max_class")
        if cls is None:
            return np.zeros(hh.size, np.int8)
        return np.asarray(cls)[self.c.hh.row[hh], self.c.hh.col[hh]]

    def _peak_now(self, hh: np.ndarray) -> np.ndarray:
        """Peak class while exposed of exposed households *hh* whose exposure ends now."""
        now = self._cell_max(hh)
        return np.where(now > self._exp_max[hh], now, self._exp_aidr[hh]).astype(np.int8)

    def link_entries(self, hh: np.ndarray, t: np.ndarray, node: np.ndarray) -> None:
        """Waypoints of sampled vehicles entering links at *node* at times *t* (s)."""
        keep = self.sampled[hh]
        if keep.any():
            roads = self.c.world.roads
            nd = node[keep]
            self._wp.append((hh[keep], t[keep], roads.node_x[nd], roads.node_y[nd]))

    def shelter_rows(self, now: float) -> None:
        """One ``shelters`` row per shelter at output time *now*."""
        s = self.c.shelters
        for i in range(len(s)):
            self._shelter_rows.append((now, str(s.names[i]), float(s.occupancy[i]),
                                       float(s.capacity[i]), bool(s.is_open[i])))  # fmt: skip

    # ------------------------------------------------------------------ end of run

    def trips(self) -> pd.DataFrame:
        """The ``trips`` table: ``id, kind, time_s, x, y``, sorted by id then time."""
        c = self.c
        roads = c.world.roads
        parts = list(self._wp)
        wp = c.walk.waypoints
        if wp:
            w, t, node = (np.array(a) for a in zip(*wp, strict=True))
            parts.append((c.walk.hh[w], t.astype(float), roads.node_x[node], roads.node_y[node]))
        cols = ["id", "kind", "time_s", "x", "y"]
        if not parts:
            return pd.DataFrame({k: pd.Series([], dtype=d) for k, d in
                                 zip(cols, [str, str, float, float, float], strict=True)})
        hh, t, x, y = (np.concatenate(a) for a in zip(*parts, strict=True))
        df = pd.DataFrame({"hh": hh.astype(np.int64), "time_s": t, "x": x, "y": y})
        df = df.sort_values(["hh", "time_s"], kind="stable")
        df = df[~df.duplicated(["hh", "time_s", "x", "y"])]
        kind = np.where(c.on_foot[df["hh"].to_numpy()], "pedestrian", "vehicle")
        df.insert(0, "id", "h" + df["hh"].astype(str))
        df.insert(1, "kind", kind)
        df = df.drop(columns="hh")
        # sort by the id string, as the contract says, then by time
        return df.sort_values(["id", "time_s"], kind="stable").reset_index(drop=True)

    def households(self) -> pd.DataFrame:
        """The ``households`` table: one row per household, every one of them.

        Columns ``household`` (``h<index>``, as in events), ``people``, ``zone``
        ("" outside every zone), ``mode`` (car, foot), ``warned_s`` (when it
        heard the warning), ``departed_s`` (when it set off: its delay ended),
        ``entered_road_s`` (when it got onto its first road, later than
        ``departed_s`` when the road was full), ``arrived_s``, ``destination``
        (the shelter(s) or exit it reached; else the one it was sent to by name,
        "" for the nearest), ``state`` (as in the summary's counts). Times in s
        since the start; NaN where it did not happen within the run.
        """

        c = self.c
        end = float(c.env.now)
        zones = np.array(c.zone_names + [""], dtype=object)
        rep = c.replay
        bound = rep.destination if rep is not None else np.full(len(c.hh), "", dtype=object)
        if rep is None and c.spec.shelter_choice == "assigned":
            named = np.array([str(z.shelter or "") for z in c.spec.zones] + [""], dtype=object)
            bound = named[c.zone]
        dest = np.where(c.arrived_at != "", c.arrived_at, bound)

        def t(x: np.ndarray) -> np.ndarray:
            return np.where(np.isfinite(x) & (x <= end), x, np.nan)

        df = pd.DataFrame({
            "household": [f"h{i}" for i in range(len(c.hh))],
            "people": c.hh.people.astype(np.int64),
            "zone": zones[c.zone],
            "mode": np.where(c.on_foot, "foot", "car"),
            "warned_s": t(c.warned_t),
            "departed_s": t(c.depart_t),
            "entered_road_s": c.entered_t,
            "arrived_s": c.arrive_t,
            "destination": dest.astype(str),
            "state": np.array(STATE_NAMES, dtype=object)[c.state],
        })  # fmt: skip
        if rep is not None:
            df["input_household"] = rep.input_id.astype(str)
        return df

    def outputs(self) -> dict[str, Any]:
        """Tables ``shelters``, ``trips``, ``roads`` and ``households``."""
        net = self.c.net
        shelters = pd.DataFrame(self._shelter_rows,
                                columns=["time_s", "shelter", "occupancy", "capacity", "open"])
        roads = pd.DataFrame({"peak_queue": net.link_peak_queue.astype(np.int64),
                              "passed": net.link_passed.astype(np.int64)})  # fmt: skip
        return {"shelters": shelters, "trips": self.trips(), "roads": roads,
                "households": self.households()}

    def summary(self) -> dict[str, Any]:
        """The ``evacuation`` section: contract keys in people and seconds, then extras."""

        c = self.c
        states = c.check_conservation()
        p = c.hh.people
        st = c.state
        safe = np.flatnonzero((st == SHELTERED) | (st == OUT))
        times, w = c.arrive_t[safe], p[safe].astype(float)

        def q(x: float) -> float | None:
            v = weighted_quantile(times, w, x)
            return None if np.isnan(v) else round(v, 1)

        by_aidr = {str(k): int(p[c.exposed & (c.exposed_aidr == k)].sum()) for k in range(1, 7)}
        stayed = np.flatnonzero(c.exposed & (st == HOME))
        self._peak[stayed] = self._peak_now(stayed)  # their exposure ends with the run
        by_peak = {str(k): int(p[c.exposed & (self._peak == k)].sum()) for k in range(1, 7)}
        peak = dict.fromkeys(map(str, range(1, 7)), 0)
        max_class = c.fields.get("hazard__max_class")
        if max_class is not None and stayed.size:
            worst = np.asarray(max_class)[c.hh.row[stayed], c.hh.col[stayed]]
            for k in range(1, 7):
                peak[str(k)] = int(p[stayed[worst == k]].sum())
        n_trips = int(self.sampled[st != HOME].sum())
        return {
            "households": len(c.hh),
            "people": int(p.sum()),
            "sheltered": int(p[st == SHELTERED].sum()),
            "out": int(p[st == OUT].sum()),
            "stranded": int(p[st == STRANDED].sum()),
            "never_left": int(p[st == HOME].sum()),
            "t50_s": q(0.5),
            "t90_s": q(0.9),
            "clearance_s": round(float(times.max()), 1) if times.size else None,
            "travelling": int(p[st == TRAVELLING].sum()),
            "rescued": int(p[st == RESCUED].sum()),
            "walked_out": int(p[c.walked_out > 0].sum()),
            "households_by_state": states,
            # reach times are drawn ahead; those after the end had not heard it yet
            "warned": int(p[c.warned_t <= float(c.env.now)].sum()),
            "exposed": int(p[c.exposed].sum()),
            "exposed_by_aidr": by_aidr,
            "exposed_by_peak_aidr": by_peak,
            "stayed_exposed_by_peak_aidr": peak,
            "exposed_households": int(c.exposed.sum()),
            "on_foot_households": int(c.on_foot.sum()),
            "vehicles": int(c.net.n_vehicles),
            "turned_away": self.counts.get("turned_away", 0),
            "rerouted": self.counts.get("rerouted", 0),
            "shelters": {str(n): float(o) for n, o in zip(c.shelters.names,
                                                          c.shelters.occupancy, strict=True)},
            "shelter_capacity": float(c.shelters.capacity.sum()),
            "exits": int(c.exits.size),
            "quantiles_weighted_by": "people",
            "trips_sampled": bool(self.sampled.sum() < len(c.hh)),
            "trips_households": n_trips,
            "trips_of_households": int((st != HOME).sum()),
            "traffic_replans": int(c.net.n_replans),
            "coupling_s": c.step_s,
        }
