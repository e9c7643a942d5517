"""What the drill page shows now: headline figures and the map's moving parts.

Everything here only reads a running :class:`~emtwin.sim.engine.Simulation`
(its shared state, and the evacuation and dispatch components through
``sim.component``, as a tool may); nothing is changed, so reading does not alter
the run. Call these while holding the session's lock, between steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from emtwin.batch.index import response_index
from emtwin.viz._common import depth_palette_image, max_pool, png_data_uri, to_lonlat

__all__ = ["headline", "MapFeed", "index_metrics", "HEADLINE_LABELS"]

#: Labels of the headline figures, in the order the page shows them.
HEADLINE_LABELS: dict[str, str] = {
    "people": "people in the area",
    "warned": "people warned",
    "left": "people who left home",
    "sheltered": "people sheltered",
    "out": "people out of the area",
    "stranded": "people stranded",
    "exposed": "people exposed at home",
    "calls": "calls so far",
    "calls_waiting": "calls waiting",
    "calls_lost": "calls lost",
    "response_p90_s": "response time p90",
    "roads_closed": "road edges closed",
    "index": "response index (0-100)",
}


def _now(sim: Any) -> float:
    """The simulated time of the run, s (the clock stops a hair past it)."""
    return float(np.round(float(sim.env.now), 6))


def headline(sim: Any) -> dict[str, Any]:
    """The headline figures now (people as counts, times in s; None where not modelled)."""
    now = float(sim.env.now)
    out: dict[str, Any] = dict.fromkeys(HEADLINE_LABELS)
    out["time_s"] = _now(sim)
    evac = sim.component("evacuation")
    if evac is not None:
        from emtwin.sim.evacuation.states import HOME, OUT, SHELTERED, STRANDED

        p = np.asarray(evac.hh.people, dtype=float)
        st = evac.state
        out.update(
            people=int(p.sum()),
            warned=int(p[evac.warned_t <= now].sum()),
            left=int(p[st != HOME].sum()),
            sheltered=int(p[st == SHELTERED].sum()),
            out=int(p[st == OUT].sum()),
            stranded=int(p[st == STRANDED].sum()),
            exposed=int(p[evac.exposed].sum()),
        )
    disp = sim.component("dispatch")
    if disp is not None:
        calls = [c for c in disp.core.calls if c.time_s <= now]
        resp = np.array([c.response_s for c in calls], dtype=float)
        resp = resp[np.isfinite(resp)]
        out.update(
            calls=len(calls),
            calls_waiting=int(disp.core.waiting),
            calls_lost=sum(1 for c in calls if c.state == "lost"),
            response_p90_s=round(float(np.percentile(resp, 90)), 1) if resp.size else None,
        )
    if sim.roads is not None:
        out["roads_closed"] = int((~sim.roads.open).sum())
    score = response_index(index_metrics(sim), sim.scenario.response_index).score
    out["index"] = round(score, 1) if math.isfinite(score) else None
    return out


def index_metrics(sim: Any) -> dict[str, float]:
    """The flattened metrics the response index reads, as they stand now."""
    now = float(sim.env.now)
    m: dict[str, float] = {}
    evac = sim.component("evacuation")
    if evac is not None:
        from emtwin.sim.evacuation.states import OUT, SHELTERED

        p = np.asarray(evac.hh.people, dtype=float)
        m["evacuation.people"] = float(p.sum())
        m["evacuation.out"] = float(p[evac.state == OUT].sum())
        m["evacuation.sheltered"] = float(p[evac.state == SHELTERED].sum())
        cls = np.asarray(evac.exposed_aidr)
        for k in range(1, 7):
            m[f"evacuation.exposed_by_aidr.{k}"] = float(p[evac.exposed & (cls == k)].sum())
    disp = sim.component("dispatch")
    if disp is not None:
        calls = [c for c in disp.core.calls if c.time_s <= now]
        m["dispatch.calls"] = float(len(calls))
        m["dispatch.unserved"] = float(sum(1 for c in calls if c.state == "lost"))
        for prio in (1, 2):
            r = np.array([c.response_s for c in calls if c.priority == prio], dtype=float)
            r = r[np.isfinite(r)]
            if r.size:
                m[f"dispatch.by_priority.{prio}.response_p90_s"] = float(np.percentile(r, 90))
    return m


class MapFeed:
    """The moving parts of the live map for one World: roads, water, shelters, units, calls.

    Roads are grouped as the map groups them (both directions of a two-way road
    together, in the order of :func:`emtwin.viz.layers.roads_layer`), each with a
    state: 0 open, 1 slowed (water >= 5 cm on it), 2 closed, 3 one way (contraflow).

    Parameters
    ----------
    world
        The run's World, read once: the feed keeps its place as plain tables
        and arrays (:func:`emtwin.sim.results.world_parts`, in :attr:`parts`).
    max_water_pixels
        The water image is the deepest water of square blocks of cells, to hold
        at most this many pixels.
    """

    def __init__(self, world: Any, *, max_water_pixels: int = 250_000) -> None:
        from emtwin.sim.results import world_parts
        from emtwin.viz.layers import road_groups

        #: the place of the run: crs, grid, roads, nodes, places, buildings
        self.parts: dict[str, Any] = world_parts(world)
        self.crs: str = self.parts["crs"]
        self.grid = self.parts["grid"]
        roads = self.parts["roads"]
        if roads is not None and len(roads):
            self.group, self.first = road_groups(roads["road_id"], roads["u"], roads["v"])
            self.bridge = roads["bridge"].to_numpy(bool)
        else:
            self.group = self.first = np.zeros(0, dtype=np.int64)
            self.bridge = np.zeros(0, dtype=bool)
        nrows, ncols = self.grid.shape
        self.factor = max(1, math.ceil(math.sqrt(nrows * ncols / max_water_pixels)))
        self._water_key: Any = None
        self._water_uri = ""

    def roads(self, sim: Any) -> list[int]:
        """The state of each road group now (see the class notes)."""
        rs = sim.roads
        n = len(self.first)
        if rs is None or n == 0:
            return []
        c = rs.closed
        hard = c["flood"] | c["plan"] | c["wind"]
        slowed = (rs.flood_depth_m >= 0.05) & ~self.bridge
        state = np.zeros(n, dtype=np.int8)
        np.maximum.at(state, self.group, np.where(slowed, 1, 0).astype(np.int8))
        np.maximum.at(state, self.group, np.where(c["contraflow"], 3, 0).astype(np.int8))
        closed = np.zeros(n, dtype=bool)
        np.logical_or.at(closed, self.group, hard)
        state[closed] = 2
        return state.tolist()

    def water(self, sim: Any) -> tuple[float | None, str]:
        """(the time the water belongs to, s; a PNG data URI of the depth) -- "" when dry or absent.

        The image is encoded again only when the water has moved on.
        """
        if not sim.state.has("water__depth"):
            return None, ""
        t = sim.state.get("water__time")
        t = float(t) if t is not None else float(sim.env.now)
        key = (id(sim), t)
        if key != self._water_key:
            depth = np.asarray(sim.state.get("water__depth"), dtype=float)
            mask = self.grid.mask
            img = depth_palette_image(max_pool(np.where(mask, depth, 0.0), self.factor))
            self._water_uri = png_data_uri(img)
            self._water_key = key
        return t, self._water_uri

    def water_bounds(self) -> list[list[float]]:
        """The corners of the water image (lon, lat), as a BitmapLayer's bounds."""
        from affine import Affine

        from emtwin.viz._common import grid_corners_lonlat

        t = self.grid
        nrows, ncols = t.shape
        f = self.factor
        return grid_corners_lonlat(self.crs, t.transform @ Affine.scale(f, f),
                                   (math.ceil(nrows / f), math.ceil(ncols / f)))  # fmt: skip

    def shelters(self, sim: Any) -> list[float]:
        """People in each shelter now, in the World's shelter order (empty without evacuation)."""
        evac = sim.component("evacuation")
        if evac is None:
            return []
        occ = np.asarray(evac.shelters.occupancy, dtype=float)
        names = [str(n) for n in self.parts["places"]["shelters"]["name"]]
        own = [str(n) for n in getattr(evac.shelters, "names", names)]
        by = dict(zip(own, occ.tolist(), strict=False))
        return [round(by.get(n, 0.0), 1) for n in names]

    def units(self, sim: Any) -> list[dict[str, Any]]:
        """Each response unit: id, type, state and position (lon, lat) now."""
        disp = sim.component("dispatch")
        if disp is None:
            return []
        now = float(sim.env.now)
        xs, ys, rows = [], [], []
        for u in disp.core.units:
            leg = u.leg
            if leg is not None and len(leg):
                x = float(np.interp(now, leg.t, leg.x))
                y = float(np.interp(now, leg.t, leg.y))
            else:
                try:
                    x, y = disp.travel.node_xy(int(u.node))
                except (IndexError, KeyError, ValueError):
                    continue
            xs.append(x)
            ys.append(y)
            rows.append({"id": u.id, "ty": u.type, "s": u.state, "st": u.station})
        if rows:
            lon, lat = to_lonlat(self.crs, np.array(xs), np.array(ys))
            for r, a, b in zip(rows, lon, lat, strict=True):
                r["pos"] = [round(float(a), 6), round(float(b), 6)]
        return rows

    def calls(self, sim: Any, *, keep_done_s: float = 900.0) -> list[dict[str, Any]]:
        """Calls open now (and those closed in the last *keep_done_s* s): id, priority, state."""
        disp = sim.component("dispatch")
        if disp is None:
            return []
        now = float(sim.env.now)
        rows = []
        for c in disp.core.calls:
            if c.time_s > now:
                continue
            done = c.state in ("done", "lost")
            end = c.end_s if math.isfinite(c.end_s) else c.time_s
            if done and now - end > keep_done_s:
                continue
            rows.append((c.x, c.y, {"id": c.id, "p": int(c.priority), "s": c.state,
                                    "ty": c.type, "t": round(float(c.time_s), 1)}))  # fmt: skip
        if not rows:
            return []
        lon, lat = to_lonlat(self.crs, np.array([r[0] for r in rows]),
                             np.array([r[1] for r in rows]))  # fmt: skip
        out = []
        for (_, _, d), a, b in zip(rows, lon, lat, strict=True):
            d["pos"] = [round(float(a), 6), round(float(b), 6)]
            out.append(d)
        return out

    def frame(self, sim: Any, *, with_water: bool = True) -> dict[str, Any]:
        """Everything the map needs now, as JSON-able values."""
        t, uri = self.water(sim) if with_water else (None, "")
        return {
            "time_s": _now(sim),
            "roads": self.roads(sim),
            "water_t": t,
            "water": uri,
            "shelters": self.shelters(sim),
            "units": self.units(sim),
            "calls": self.calls(sim),
        }
