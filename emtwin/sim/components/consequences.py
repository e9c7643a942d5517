"""The Consequences component: building damage, life loss and critical facilities.

Enabled by the scenario's ``consequences:`` section; it needs a flood
(``water__depth``, ``water__speed``). At every ``advance_to(t)`` (each
coupling step, and whenever the engine brings the components to an off-step
time) it

1. takes the water depth over every building's footprint into a running
   maximum, with the time it was reached (:class:`FootprintMaxDepth`);
2. updates the life-loss tracker with the hazard where each person is: the
   evacuation's ``household__cell`` / ``household__location`` /
   ``household__people`` when an evacuation runs, else the World's population
   points at home; the rise rate is that of the water since the previous step;
3. checks the World's hospitals, shelters and stations, and the substations
   and pumps of ``consequences.sites`` / ``sites_from``, against their fail
   depth: the first time the water at one exceeds it, a ``facility_lost``
   event is recorded (entity: the facility's name; ``facility``: its type;
   ``depth_m``; ``cause: water``), and every facility a lost substation feeds
   is lost with it (``cause: power``, ``fed_by``: the substation). Each lost
   facility enters the shared field ``facility__lost`` (``{type: {name: time
   lost, s}}``), which the dispatch reads (no patient is taken to a lost
   hospital; a unit on its way there turns to the next one) and the evacuation
   reads (a lost shelter takes nobody more).

At the end it assesses every building on its depth-damage curve
(``buildings`` table, written as ``buildings.parquet``) and reports the
``consequences`` section of ``summary.json``. See docs/consequences.md.

All state is plain arrays and dicts (picklable); the component starts no
SimPy process, so a checkpoint needs nothing to rebuild.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from emtwin.consequences.curves import DamageCurve, builtin_curve, continent_of, read_curve_csv
from emtwin.consequences.damage import FootprintMaxDepth, assess_buildings, damage_summary
from emtwin.consequences.defaults import OCCUPANCIES
from emtwin.consequences.facilities import FacilityWatch
from emtwin.consequences.life_loss import LifeLossTracker
from emtwin.consequences.sites import resolve_feeds, sites_table
from emtwin.errors import InputDataError, ScenarioError
from emtwin.scenarios.models import Scenario
from emtwin.sim.component import Component
from emtwin.sim.metric import Metric

__all__ = ["ConsequencesComponent", "FACILITY_LAYERS"]

log = logging.getLogger(__name__)

#: Facility types watched, and the World place layer each comes from.
FACILITY_LAYERS: dict[str, str] = {"hospital": "hospitals", "shelter": "shelters",
                                   "station": "stations"}  # fmt: skip


class ConsequencesComponent(Component):
    """Damage to buildings, expected loss of life, loss of critical facilities."""

    name: ClassVar[str] = "consequences"
    reads: ClassVar[dict[str, bool]] = {
        "water__depth": True, "water__speed": True, "household__cell": False,
        "household__location": False, "household__people": False,
    }  # fmt: skip
    writes: ClassVar[tuple[str, ...]] = ("facility__lost",)
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("buildings", "Buildings"),
        Metric("buildings_damaged", "Buildings damaged", better="lower", shown=True),
        Metric("damage_total", "Damage to buildings (currency)", better="lower", shown=True),
        Metric("life_loss_mean", "Expected loss of life", better="lower", shown=True),
        Metric("life_loss_p5", "Loss of life, 5th percentile", better="lower"),
        Metric("life_loss_p95", "Loss of life, 95th percentile", better="lower"),
        Metric("people_exposed", "People exposed to water", better="lower"),
        Metric("facilities_lost", "Critical facilities lost", better="lower", shown=True),
        Metric("value_total", "Value of the buildings (currency)", headline=False),
        Metric("people", "People tracked for life loss", headline=False),
        Metric("content_damage_total", "Damage to contents (currency)", better="lower",
               headline=False),
        Metric("facilities_lost_by_type", "Facilities lost by type", better="lower",
               headline=False),
    )  # fmt: skip
    samples: ClassVar[dict[str, str]] = {
        "buildings_wet": "buildings whose footprint has held water so far",
        "facilities_lost": "critical facilities out of function so far",
    }

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Enabled when the scenario has a ``consequences`` section."""
        return scenario.consequences is not None

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.cfg = self.scenario.consequences
        b = self.buildings = self.world.buildings
        if b is None:  # life loss and facilities only
            log.warning("consequences: this World has no buildings (give consequences.buildings: "
                        "a file or builtin:NAME); no building damage is assessed")  # fmt: skip
        t = self.world.terrain
        self._ncols = t.shape[1]
        self._fmax = (FootprintMaxDepth(b.indptr, b.cells) if b is not None
                      else FootprintMaxDepth(np.zeros(1, np.int64), np.zeros(0, np.int64)))
        self._curves, self._content = self._load_curves()
        self._facilities()
        self._lost: dict[str, dict[str, float]] = {}
        # people: households of the evacuation (set on the first step), else population points
        self._life: LifeLossTracker | None = None
        self._home_cell = np.zeros(0, np.int64)
        self._prev_depth: np.ndarray | None = None
        self._t = -1.0
        self.fields.provide("facility__lost", self._facility_lost, writer=self.name)

    def _facilities(self) -> None:
        """Every hospital, shelter and station of the World, then the sites, and their feeds."""
        t = self.world.terrain
        kinds, names, cells, nodes, where = [], [], [], [], []
        for kind, layer in FACILITY_LAYERS.items():
            pts = getattr(self.world.places, layer)
            if not len(pts):
                continue
            r, c = t.cell_of(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
            kinds += [kind] * len(pts)
            names += [str(n) for n in pts["name"]]
            cells += np.where(r >= 0, r * self._ncols + c, -1).tolist()
            nodes += [int(n) for n in pts["node"]]
            where += [f"world.{layer}"] * len(pts)
        cfg, sc = self.cfg, self.scenario
        try:
            sites = sites_table(cfg.sites, cfg.sites_from, scenario_crs=sc.crs,
                                world_crs=self.world.crs,
                                where=lambda i: sc.where("consequences", "sites", i))  # fmt: skip
        except InputDataError as exc:
            raise ScenarioError(str(exc), file=sc.source) from None
        n0 = len(kinds)
        if len(sites):
            r, c = t.cell_of(sites["x"].to_numpy(float), sites["y"].to_numpy(float))
            inside = r >= 0
            inside[inside] = t.mask[r[inside], c[inside]]
            x0, y0, x1, y1 = t.bounds
            rows = zip(sites["where"], sites["name"], sites["x"], sites["y"], inside, strict=True)
            off = [f"{w}: {n!r} at ({x:.1f}, {y:.1f}) in {self.world.crs.to_string()} is off the "
                   f"World (its grid spans x {x0:.1f} to {x1:.1f}, y {y0:.1f} to {y1:.1f}, "
                   "cells in its domain only)" for w, n, x, y, ok in rows if not ok]  # fmt: skip
            if off:
                raise ScenarioError(off, file=sc.source)
            kinds += sites["kind"].tolist()
            names += sites["name"].astype(str).tolist()
            cells += (r * self._ncols + c).tolist()
            nodes += [-1] * len(sites)
            where += sites["where"].tolist()
        feeds = [[] for _ in range(n0)] + list(sites["feeds"])
        try:
            fed = resolve_feeds(kinds, names, feeds, where)
        except InputDataError as exc:
            raise ScenarioError(str(exc), file=sc.source) from None
        limits = np.full(len(kinds), np.nan)
        limits[n0:] = sites["fail_depth_m"].to_numpy(float)
        self._fac_kind = np.array(kinds, dtype=object)
        self._fac_name = np.array(names, dtype=object)
        self._fac_cell = np.array(cells, dtype=np.int64)
        self._fac_node = np.array(nodes, dtype=np.int64)
        self._watch = FacilityWatch(self._fac_kind, cfg.fail_depths_m(), limits_m=limits,
                                    feeds=fed)  # fmt: skip

    def _load_curves(self) -> tuple[dict[str, DamageCurve], dict[str, DamageCurve] | None]:
        cfg = self.cfg
        t = self.world.terrain
        continent = cfg.continent
        if continent is None:
            x0, y0, x1, y1 = t.bounds  # (minx, miny, maxx, maxy), m
            continent = continent_of(self.world.crs, (x0 + x1) / 2.0, (y0 + y1) / 2.0)
        curves = {o: builtin_curve(o, continent) for o in OCCUPANCIES}
        for occ, path in cfg.curves.items():
            curves[occ] = read_curve_csv(path, file_label=f"consequences.curves.{occ}")
        content = None
        if cfg.content is not None:
            content = dict(curves)
            for occ, path in cfg.content.items():
                content[occ] = read_curve_csv(path, file_label=f"consequences.content.{occ}")
        return curves, content

    # ------------------------------------------------------------------ fields

    def _facility_lost(self) -> dict[str, dict[str, float]]:
        """``facility__lost``: ``{type: {name: time lost, s}}``."""
        return self._lost

    # ------------------------------------------------------------------ stepping

    def _people(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(people, flat cell, location code) of every tracked agent now."""
        f = self.fields
        if f.has("household__cell") and f.has("household__people"):
            return (np.asarray(f.get("household__people"), float),
                    np.asarray(f.get("household__cell"), np.int64),
                    np.asarray(f.get("household__location"), np.int64))  # fmt: skip
        pop = self.world.places.population
        if not self._home_cell.size and len(pop):
            t = self.world.terrain
            r, c = t.cell_of(pop.geometry.x.to_numpy(), pop.geometry.y.to_numpy())
            self._home_cell = np.where(r >= 0, r * self._ncols + c, -1)
        people = pop["people"].to_numpy(float) if len(pop) else np.zeros(0)
        cell = self._home_cell
        return people, cell, np.where(cell >= 0, 0, -1)

    def advance_to(self, time_s: float) -> None:
        """Take the water at *time_s* into the building maxima, life loss and facilities."""
        if time_s <= self._t:
            return
        depth = np.asarray(self.fields.get("water__depth"), float)
        speed = np.asarray(self.fields.get("water__speed"), float)
        flat_d = depth.ravel()
        self._fmax.update(depth, time_s)
        people, cell, loc = self._people()
        if self._life is None:
            self._life = LifeLossTracker(people, method=self.cfg.life_loss.method)
        if people.size:
            ok = cell >= 0
            c = np.where(ok, cell, 0)
            d = np.where(ok, flat_d[c], 0.0)
            v = np.where(ok, speed.ravel()[c], 0.0)
            if self._prev_depth is not None and time_s > self._t:
                rise = (d - np.where(ok, self._prev_depth[c], 0.0)) * 3600.0 / (time_s - self._t)
                w = np.maximum(rise, 0.0)
            else:
                w = np.zeros_like(d)
            self._life.update(d, v, w, np.where(ok, loc, -1))
        if self._fac_cell.size:
            fc = self._fac_cell
            d_fac = np.where(fc >= 0, flat_d[np.maximum(fc, 0)], 0.0)
            w = self._watch
            new = w.update(d_fac, time_s).tolist()
            for i in new:  # every loss of this step is in the field before any event
                self._lost.setdefault(str(self._fac_kind[i]), {})[str(self._fac_name[i])] = \
                    float(time_s)
            for i in new:
                kind, name = str(self._fac_kind[i]), str(self._fac_name[i])
                why: dict[str, Any] = {"cause": str(w.cause[i])}
                if w.fed_by[i] >= 0:
                    why["fed_by"] = str(self._fac_name[w.fed_by[i]])
                self.sim.recorder.event(float(time_s), "facility_lost", name,
                                        node=int(self._fac_node[i]), facility=kind,
                                        depth_m=round(float(d_fac[i]), 3), **why)  # fmt: skip
                log.info("consequences: %s %s lost at %.0f s (%.2f m of water; %s%s)",
                         kind, name, time_s, d_fac[i], why["cause"],
                         f" from {why['fed_by']}" if "fed_by" in why else "")  # fmt: skip
        self._prev_depth = flat_d.copy()
        self._t = float(time_s)

    # ------------------------------------------------------------------ results

    def sample(self) -> dict[str, float]:
        """Buildings wet so far and facilities lost so far."""
        return {"buildings_wet": float(np.isfinite(self._fmax.time_of_max_s).sum()),
                "facilities_lost": float(self._watch.failed.sum())}  # fmt: skip

    def table(self) -> pd.DataFrame:
        """One row per building: depth, time of the maximum, damage ratio and damage."""
        if self.buildings is None:
            return pd.DataFrame({"building": [], "occupancy": [], "kind": [], "value": [],
                                 "max_depth_m": [], "time_of_max_s": [], "damage_ratio": [],
                                 "damage": []})  # fmt: skip
        out = assess_buildings(self.buildings.table, self._fmax.max_depth_m, curves=self._curves,
                               time_of_max_s=self._fmax.time_of_max_s,
                               content_curves=self._content)  # fmt: skip
        tb = self.buildings.table
        out.insert(2, "kind", tb["kind"].to_numpy())
        return out

    def summary(self) -> dict[str, Any]:
        """The ``consequences`` section of summary.json (currency, persons, counts)."""
        out: dict[str, Any] = dict(damage_summary(self.table()))
        if self._life is not None and self._life.people.size:
            out.update(self._life.summary())
        else:
            out.update(life_loss_mean=0.0, life_loss_p5=0.0, life_loss_p95=0.0,
                       people_exposed=0.0)  # fmt: skip
        out["value_total"] = (float(self.buildings.table["value"].sum())
                              if self.buildings is not None else 0.0)
        out["people"] = float(self._life.people.sum()) if self._life is not None else 0.0
        out["facilities_lost"] = int(self._watch.failed.sum())
        out["facilities_lost_by_type"] = {k: len(v) for k, v in sorted(self._lost.items())}
        return out

    def outputs(self) -> dict[str, Any]:
        """The ``buildings`` table (written as ``buildings.parquet``)."""
        return {"buildings": self.table()}
