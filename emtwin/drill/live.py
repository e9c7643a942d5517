"""What the drill page shows now: headline figures and the map's moving parts.

Everything here only reads a running :class:`~emtwin.sim.engine.Simulation`
through its shared state (``sim.state``: the household, shelter, call and unit
fields the evacuation and dispatch publish, the road state and the water) and its
clock, never a component's insides; nothing is changed, so reading does not alter
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


def _field(sim: Any, name: str) -> Any:
    """Shared-state field *name* now, or None when no running component writes it."""
    return sim.state.get(name) if sim.state.has(name) else None


def headline(sim: Any) -> dict[str, Any]:
    """The headline figures now (people as counts, times in s; None where not modelled)."""
    now = float(sim.env.now)
    out: dict[str, Any] = dict.fromkeys(HEADLINE_LABELS)
    out["time_s"] = _now(sim)
    st = _field(sim, "household__state")
    if st is not None:
        from emtwin.sim.evacuation.states import HOME, OUT, SHELTERED, STRANDED

        p = np.asarray(sim.state.get("household__people"), dtype=float)
        warned = np.asarray(sim.state.get("household__warned_time"), dtype=float)
        exposed = np.asarray(sim.state.get("household__exposed"), dtype=bool)
        out.update(
            people=int(p.sum()),
            warned=int(p[warned <= now].sum()),
            left=int(p[st != HOME].sum()),
            sheltered=int(p[st == SHELTERED].sum()),
            out=int(p[st == OUT].sum()),
            stranded=int(p[st == STRANDED].sum()),
            exposed=int(p[exposed].sum()),
        )
    calls = _field(sim, "call__table")
    if calls is not None:
        resp = calls["response_s"].to_numpy(float)
        resp = resp[np.isfinite(resp)]
        out.update(
            calls=len(calls),
            calls_waiting=int(sim.state.get("call__waiting")),
            calls_lost=int((calls["state"] == "lost").sum()),
            response_p90_s=round(float(np.percentile(resp, 90)), 1) if resp.size else None,
        )
    if sim.state.roads is not None:
        out["roads_closed"] = int((~sim.state.roads.open).sum())
    score = response_index(index_metrics(sim), sim.scenario.response_index).score
    out["index"] = round(score, 1) if math.isfinite(score) else None
    return out


def index_metrics(sim: Any) -> dict[str, float]:
    """The flattened metrics the response index reads, as they stand now."""
    m: dict[str, float] = {}
    st = _field(sim, "household__state")
    if st is not None:
        from emtwin.sim.evacuation.states import OUT, SHELTERED

        p = np.asarray(sim.state.get("household__people"), dtype=float)
        exposed = np.asarray(sim.state.get("household__exposed"), dtype=bool)
        cls = np.asarray(sim.state.get("household__exposed_class"))
        m["evacuation.people"] = float(p.sum())
        m["evacuation.out"] = float(p[st == OUT].sum())
        m["evacuation.sheltered"] = float(p[st == SHELTERED].sum())
        for k in range(1, 7):
            m[f"evacuation.exposed_by_aidr.{k}"] = float(p[exposed & (cls == k)].sum())
    calls = _field(sim, "call__table")
    if calls is not None:
        m["dispatch.calls"] = float(len(calls))
        m["dispatch.unserved"] = float((calls["state"] == "lost").sum())
        for prio in (1, 2):
            r = calls.loc[calls["priority"] == prio, "response_s"].to_numpy(float)
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
        rs = sim.state.roads
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
        occ = _field(sim, "shelter__occupancy")
        if occ is None:
            return []
        names = [str(n) for n in self.parts["places"]["shelters"]["name"]]
        return [round(float(occ.get(n, 0.0)), 1) for n in names]

    def units(self, sim: Any) -> list[dict[str, Any]]:
        """Each response unit: id, type, state and position (lon, lat) now."""
        units = _field(sim, "unit__table")
        if units is None:
            return []
        units = units[np.isfinite(units["x"]) & np.isfinite(units["y"])]
        if not len(units):
            return []
        lon, lat = to_lonlat(self.crs, units["x"].to_numpy(float), units["y"].to_numpy(float))
        return [{"id": i, "ty": ty, "s": s, "st": st, "pos": [round(float(a), 6),
                                                              round(float(b), 6)]}
                for i, ty, s, st, a, b in zip(units["id"], units["type"], units["state"],
                                              units["station"], lon, lat, strict=True)]  # fmt: skip

    def calls(self, sim: Any, *, keep_done_s: float = 900.0) -> list[dict[str, Any]]:
        """Calls open now (and those closed in the last *keep_done_s* s): id, priority, state."""
        calls = _field(sim, "call__table")
        if calls is None or not len(calls):
            return []
        now = float(sim.env.now)
        end = calls["end_s"].to_numpy(float)
        end = np.where(np.isfinite(end), end, calls["time_s"].to_numpy(float))
        done = calls["state"].isin(["done", "lost"]).to_numpy()
        calls = calls[~(done & (now - end > keep_done_s))]
        if not len(calls):
            return []
        lon, lat = to_lonlat(self.crs, calls["x"].to_numpy(float), calls["y"].to_numpy(float))
        return [{"id": i, "p": int(p), "s": s, "ty": ty, "t": round(float(t), 1),
                 "pos": [round(float(a), 6), round(float(b), 6)]}
                for i, p, s, ty, t, a, b in zip(calls["id"], calls["priority"], calls["state"],
                                                calls["type"], calls["time_s"], lon, lat,
                                                strict=True)]  # fmt: skip

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
