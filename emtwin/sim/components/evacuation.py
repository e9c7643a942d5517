"""The Evacuation component: warnings, departures, queue traffic and shelters on the SimPy clock.

One SimPy process drives the time-stepped queue-model kernel
(:class:`emtwin.kernels.traffic.QueueNetwork`, every vehicle individually) and
the pedestrian model (:class:`emtwin.sim.evacuation.walkers.Walkers`). Every
coupling step (the flood's, else 60 s, at most ``outputs.every``) it

1. plays the walkers' departures and arrivals up to ``env.now``;
2. advances the traffic kernel to ``env.now`` and turns its events into
   recorder events (``departed``, ``sheltered``, ``out``, ``rerouted``,
   ``turned_away``, ``stranded``);
3. pushes the shared road state (closures, flood speed factors) into the
   kernel when ``sim.roads.version`` changed, and stalls the vehicles on
   edges under water (``stranded``);
4. records the households still at home whose cell is deeper than
   ``exposure_depth`` (``exposed``, once each, with the AIDR class).

Households are built from the World's population (see
:mod:`emtwin.sim.evacuation.households`); their warning and departure delays
are drawn once, at the start, with the component's generator, by inverse
transform (:mod:`emtwin.sim.evacuation.departure`). See docs/evacuation.md.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np

from emtwin.errors import ScenarioError, SimulationError
from emtwin.kernels import traffic as tk
from emtwin.kernels.hazard_rating import aidr_class
from emtwin.scenarios.models import Action, Scenario
from emtwin.sim.component import Component
from emtwin.sim.evacuation.departure import departure_curve, reach_curve
from emtwin.sim.evacuation.households import (
    assign_zones,
    build_households,
    walk_share,
    zone_polygons,
)
from emtwin.sim.evacuation.records import EvacuationRecords
from emtwin.sim.evacuation.replay import Replay, read_households_table, replay_households
from emtwin.sim.evacuation.shelters import Shelters, exit_nodes
from emtwin.sim.evacuation.states import (
    HOME,
    OUT,
    RESCUED,
    SHELTERED,
    STATE_NAMES,
    STRANDED,
    TRAVELLING,
)
from emtwin.sim.evacuation.walkers import (
    W_ARRIVED,
    W_STRANDED,
    W_WAITING,
    Walkers,
    WalkEvent,
)
from emtwin.sim.metric import Metric
from emtwin.sim.timers import tagged

__all__ = ["EvacuationComponent", "HOME", "TRAVELLING", "SHELTERED", "OUT", "STRANDED",
           "RESCUED"]

log = logging.getLogger(__name__)

#: Hazard class at a stranded household's position up to which its occupants walk out
#: (AIDR H1: depth <= 0.3 m, depth x speed <= 0.3 m2/s, speed <= 2 m/s; 0 is dry).
WALK_OUT_MAX_AIDR = 1
WADE_DEPTH_M = 0.3  # the H1 depth limit


class EvacuationComponent(Component):
    """Warnings, departures, routing, queue traffic, shelters, exits, exposure."""

    name: ClassVar[str] = "evacuation"
    requires: ClassVar[tuple[str, ...]] = ("roads", "population")
    actions: ClassVar[frozenset[str]] = frozenset(
        {"warn", "open_shelter", "close_shelter", "contraflow"}
    )
    reads: ClassVar[dict[str, bool]] = {
        "water__depth": False, "water__speed": False, "hazard__max_class": False,
        "road__closed": False, "road__speed_factor": False, "facility__lost": False,
    }  # fmt: skip
    writes: ClassVar[tuple[str, ...]] = (
        "road__closed", "household__cell", "household__location", "household__people",
        "household__state", "household__warned_time", "household__exposed",
        "household__exposed_class", "shelter__occupancy",
    )
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("households", "Households"),
        Metric("people", "People"),
        Metric("sheltered", "Sheltered", better="higher", shown=True),
        Metric("out", "Out of the area", better="higher", shown=True),
        Metric("stranded", "Stranded", better="lower", shown=True),
        Metric("never_left", "Never left", better="lower"),
        Metric("t50_s", "Half evacuated by (t50)", "s", "lower"),
        Metric("t90_s", "90% evacuated by (t90)", "s", "lower", shown=True),
        Metric("clearance_s", "Clearance time", "s", "lower"),
        Metric("exposed", "Exposed at home", better="lower", headline=False),
        Metric("exposed_households", "Households exposed at home", better="lower",
               headline=False),
        Metric("exposed_by_aidr", "Exposed at home by AIDR class", better="lower",
               headline=False),
        Metric("exposed_by_peak_aidr", "Exposed at home by worst AIDR class", better="lower",
               headline=False),
        Metric("stayed_exposed_by_peak_aidr", "Stayed home, by worst AIDR class",
               better="lower", headline=False),
        Metric("turned_away", "Turned away at full shelters", better="lower", headline=False),
        Metric("travelling", "Still travelling at the end", better="lower", headline=False),
    )  # fmt: skip
    samples: ClassVar[dict[str, str]] = {
        "warned": "people who have received the warning",
        "departed": "people who have left home",
        "on_road": "people travelling (in vehicles on the road or walking)",
        "sheltered": "people in shelters",
        "out": "people who left the area through an exit",
        "stranded": "people stranded on the way (no route left, or stalled in water)",
        "rescued": "people reached by a rescue unit while stranded",
        "exposed": "people exposed at home (water above exposure_depth)",
        "vehicles_on_road": "evacuation vehicles on road links",
        "walking": "people on foot on their way",
    }

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Enabled when the scenario has an ``evacuation`` section."""
        return scenario.evacuation is not None

    # ------------------------------------------------------------------ set-up

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        try:
            self._build(rng)
        except ScenarioError as err:
            if err.file is not None:
                raise
            raise ScenarioError(err.errors, file=self.scenario.source) from None

    def _build(self, rng: np.random.Generator) -> None:
        """Households, draws, zones, destinations, the traffic kernel and the walkers."""
        spec = self.spec = self.scenario.evacuation
        roads = self.world.roads
        pop_spec = self.scenario.world.population
        size = pop_spec.household_size if pop_spec is not None else 2.5
        cars = pop_spec.vehicles_per_household if pop_spec is not None else 1.0
        # destinations (no random draw): shelters and named exits
        opened_later = {str(a.value) for a in self.scenario.actions if a.kind == "open_shelter"}
        self.shelters = Shelters.from_world(self.world, opened_later)
        self.exits = exit_nodes([e.at for e in spec.exits], self.world, self.scenario.crs)
        self.exit_names = [str(e.name) for e in spec.exits]
        self._check_destinations()
        hh = build_households(self.world.places.population, self.world.terrain, size)
        self.replay: Replay | None = None
        if spec.households is not None:
            hh, self.replay = replay_households(
                read_households_table(spec.households), path=str(spec.households), built=hh,
                world=self.world, scenario_crs=self.scenario.crs,
                destinations=[str(x) for x in self.shelters.names] + self.exit_names,
            )  # fmt: skip
        self.hh = hh
        n = len(hh)
        if n == 0:
            raise ScenarioError("world.population: no household to evacuate (0 people)")
        # every random draw happens here, in a fixed order (common random numbers)
        u_walk, self._u_never, self._u_reach, self._u_depart = rng.random((4, n))
        kernel_seed = int(rng.integers(2**31 - 1))
        self.rec = EvacuationRecords(self, rng)
        self.on_foot = u_walk < walk_share(spec.on_foot_share, cars)
        if self.replay is not None:
            self.on_foot = np.where(self.replay.mode >= 0, self.replay.mode == 1, self.on_foot)
        # zones: index per household, len(zones) for "outside every zone"
        self.zone_names = [str(z.name) for z in spec.zones]
        polys = zone_polygons(spec.zones, self.world, self.scenario.crs)
        zone = assign_zones(hh.x, hh.y, polys, self.zone_names)
        self.zone = np.where(zone < 0, len(spec.zones), zone)
        self._curve = departure_curve(spec.departure)
        # reach curve and never-share per zone; the last entry: outside every zone
        own = [(z.warning, f"evacuation.zones.{i}.warning") for i, z in enumerate(spec.zones)]
        own = [(w, key) if w is not None else (spec.warning, "evacuation.warning")
               for w, key in own] + [(spec.warning, "evacuation.warning")]  # fmt: skip
        self._reach = [reach_curve(w, key) for w, key in own]
        self._never = [w.never for w, _ in own]
        self._is_exit = np.zeros(roads.n_nodes, bool)
        self._is_exit[self.exits] = True
        self._refused = np.zeros(roads.n_nodes, bool)
        # the traffic kernel
        self.net = tk.QueueNetwork(
            roads.edge_u, roads.edge_v, roads.length_m, roads.speed_m_s,
            np.maximum(roads.lanes.astype(float), 1.0), roads.capacity_veh_h, roads.n_nodes,
            stuck_time_s=float(spec.stuck_time), reroute_every_s=float(spec.reroute_every),
            record_link_entries=True, seed=kernel_seed,
        )  # fmt: skip
        all_dest = np.union1d(self.shelters.node_list, self.exits)
        self._g_all = self.net.add_destination_group(all_dest)
        self.walk = Walkers(roads.edge_u, roads.edge_v, roads.length_m, roads.n_nodes,
                            float(spec.walk_speed))  # fmt: skip
        self._w_all = self.walk.add_group(all_dest)
        self._group_of_zone = self._assigned_groups()
        self._hh_group = self._group_of_zone[self.zone]  # (kernel, walker) group per household
        if self.replay is not None:
            self._replay_groups(self.replay)
        for node in self.shelters.node_list:
            self._push_node_cap(int(node))
        self._contraflow = [self._resolve_contraflow(c.road, f"evacuation.contraflow.{i}.road")
                            for i, c in enumerate(spec.contraflow)]  # fmt: skip
        self._cf_done: set[int] = set()
        # household state
        self.state = np.full(n, HOME, np.int8)
        self.issued = np.zeros(len(spec.zones) + 1, bool)
        self.warned_t = np.full(n, np.inf)
        self.depart_t = np.full(n, np.inf)
        if self.replay is not None:
            self.warned_t = self.replay.warned_s.copy()
            self.depart_t = self.replay.depart_s.copy()
        self.arrive_t = np.full(n, np.nan)
        self.entered_t = np.full(n, np.nan)  # first time on the road (or on foot), s
        self.arrived_at = np.full(n, "", dtype=object)  # shelter or exit name
        self.strand_node = np.full(n, -1, np.int64)  # where it was stranded last
        self.strand_xy = np.full((n, 2), np.nan)
        self.walked_out = np.zeros(n, np.int64)  # times its occupants walked out
        self._rescue_call: dict[str, int] = {}  # call id -> stranded household
        self.vehicle = np.full(n, -1, np.int64)
        self.walker = np.full(n, -1, np.int64)
        self.transferred = np.zeros(n, bool)
        self.exposed = np.zeros(n, bool)
        self.exposed_aidr = np.zeros(n, np.int8)
        self._veh_hh = np.zeros(0, np.int64)
        self._veh_assigned = np.zeros(0, bool)
        self._rs_version = -1
        self._t = -1.0
        self._seats: dict[int, list[tuple[int, float]]] = {}
        self.step_s = self.sim.coupling_s
        self._walker_network()
        self.fields.provide("household__cell", self._household_cell, writer=self.name)
        self.fields.provide("household__location", self._household_location, writer=self.name)
        self.fields.provide("household__people", self._household_people, writer=self.name)
        for name, fn in (("household__state", self._household_state),
                         ("household__warned_time", self._household_warned),
                         ("household__exposed", self._household_exposed),
                         ("household__exposed_class", self._household_exposed_class),
                         ("shelter__occupancy", self._shelter_occupancy)):  # fmt: skip
            self.fields.provide(name, fn, writer=self.name)
        self.sim.recorder.subscribe("call", self._on_call)
        self.sim.recorder.subscribe("arrival", self._on_rescue)
        log.info(
            "evacuation: %d households (%d people), %d on foot, %d shelters (%.0f places), "
            "%d exits, %d zones", n, int(hh.people.sum()), int(self.on_foot.sum()),
            len(self.shelters), float(self.shelters.capacity.sum()), self.exits.size,
            len(spec.zones),
        )  # fmt: skip

    def _check_destinations(self) -> None:
        if len(self.shelters) == 0 and self.exits.size == 0:
            raise ScenarioError(
                "evacuation: there is nowhere to go; give world.shelters (with capacity) "
                "or evacuation.exits (points where people leave the area)"
            )
        clash = sorted(set(map(str, self.shelters.names)) & set(self.exit_names))
        if clash:
            i = self.exit_names.index(clash[0])
            raise ScenarioError(f"evacuation.exits.{i}.name: {clash[0]!r} is also a shelter's "
                                "name; destinations need distinct names")  # fmt: skip
        if len(set(self.exit_names)) < len(self.exit_names):
            raise ScenarioError("evacuation.exits: two exits have the same name")
        both = np.intersect1d(self.shelters.node_list, self.exits)
        if both.size:
            i = int(np.flatnonzero(np.isin(self.exits, both))[0])
            raise ScenarioError(
                f"evacuation.exits.{i}: snaps to road node {int(both[0])}, where a shelter "
                f"({self.shelters.names[self.shelters.at(int(both[0]))[0]]}) is; move the exit"
            )

    def _assigned_groups(self) -> np.ndarray:
        """Kernel and walker group per zone (the last entry: outside every zone)."""
        spec = self.spec
        groups = np.full((len(spec.zones) + 1, 2), [self._g_all, self._w_all], np.int64)
        if spec.shelter_choice != "assigned":
            return groups
        for i, z in enumerate(spec.zones):
            if z.shelter is None:
                continue
            j = self.shelters.index.get(str(z.shelter))
            if j is None:
                raise ScenarioError(
                    f"evacuation.zones.{i}.shelter: no shelter named {z.shelter!r}; the "
                    f"shelters are {', '.join(self.shelters.names)}"
                )
            node = int(self.shelters.nodes[j])
            groups[i] = (self.net.add_destination_group([node]),
                         self.walk.add_group([node], fallback=self._w_all))  # fmt: skip
        return groups

    def _replay_groups(self, rep: Replay) -> None:
        """Kernel and walker groups of the households the table sends somewhere named."""
        where = {str(nm): int(nd) for nm, nd in zip(self.shelters.names, self.shelters.nodes,
                                                     strict=True)}  # fmt: skip
        where.update(zip(self.exit_names, self.exits.tolist(), strict=True))
        made: dict[int, tuple[int, int]] = {}
        for h in np.flatnonzero(rep.destination != ""):
            node = where[str(rep.destination[h])]
            if node not in made:
                made[node] = (self.net.add_destination_group([node]),
                              self.walk.add_group([node], fallback=self._w_all))  # fmt: skip
            self._hh_group[h] = made[node]

    def _contraflow_pairs(self, road: str) -> list[tuple[int, int]] | str:
        """(outbound edge, opposite edge) pairs of a road, or what is wrong with it.

        Of each two-way section, the direction whose head is nearer (by
        free-flow time) to a shelter or exit is outbound.
        """
        roads = self.world.roads
        edges = roads.edges_named(str(road))
        if edges.size == 0:
            return f"no road with id or name {road!r} in the network"
        tt = self.net.travel_time_to(self._g_all)
        pairs = []
        for e in edges:
            u, v = roads.edge_u[e], roads.edge_v[e]
            opp = edges[(roads.edge_u[edges] == v) & (roads.edge_v[edges] == u)]
            if opp.size and tt[v] < tt[u]:
                pairs.append((int(e), int(opp[0])))
        if not pairs:
            return (f"road {road!r} has no two-way section leading towards a shelter or exit, "
                    "so there is nothing to reverse")  # fmt: skip
        return pairs

    def _resolve_contraflow(self, road: str, key: str) -> list[tuple[int, int]]:
        pairs = self._contraflow_pairs(road)
        if isinstance(pairs, str):
            raise ScenarioError(f"{key}: {pairs}")
        return pairs

    # ------------------------------------------------------------------ actions

    def check_action(self, action: Action) -> str | None:
        """Zones, shelters and roads named by actions must exist."""
        v = str(action.value)
        if action.kind == "warn" and v != "all" and v not in self.zone_names:
            known = ", ".join(self.zone_names) or "none"
            return f"no evacuation zone named {v!r} (zones: {known}; or 'all')"
        if action.kind in ("open_shelter", "close_shelter") and v not in self.shelters.index:
            return f"no shelter named {v!r} (shelters: {', '.join(self.shelters.names)})"
        if action.kind == "contraflow":
            pairs = self._contraflow_pairs(v)
            return pairs if isinstance(pairs, str) else None
        return None

    def on_action(self, action: Action) -> None:
        """Warn a zone (or all), open or close a shelter, reverse a road."""
        self.sim.bring_upstream(self)
        self._sync()
        v = str(action.value)
        if action.kind == "warn":
            zones = range(len(self.issued)) if v == "all" else [self.zone_names.index(v)]
            self._issue(list(zones), v)
        elif action.kind == "contraflow":
            self._apply_contraflow(self._resolve_contraflow(v, "contraflow"), v)
        else:
            self._set_shelter(self.shelters.index[v], action.kind == "open_shelter")

    def _set_shelter(self, i: int, opening: bool, **why: Any) -> None:
        """Open or close shelter *i* to new arrivals now (its occupants stay)."""
        self.shelters.is_open[i] = opening
        node = int(self.shelters.nodes[i])
        if opening:
            self._refused[node] = False
            self.shelters.full_reported[i] = False
        self._push_node_cap(node)
        self.sim.recorder.event(self.env.now, "shelter_opened" if opening else "shelter_closed",
                                str(self.shelters.names[i]), node=node,
                                occupancy=float(self.shelters.occupancy[i]), **why)
        self._walker_network()

    def _close_flooded_shelters(self) -> None:
        """Close the open shelters the consequences component reports lost (``facility__lost``).

        Rule: a flooded shelter takes nobody more (vehicles and walkers bound
        for it go to the next open one); the people already inside stay, and
        the life-loss model counts them with the water at the shelter.
        """
        lost = self.fields.get("facility__lost") or {}
        for name in lost.get("shelter", {}):
            i = self.shelters.index.get(str(name))
            if i is not None and self.shelters.is_open[i]:
                self._set_shelter(i, False, reason="flooded")

    # ------------------------------------------------------------------ where people are

    def _node_cells(self) -> np.ndarray:
        """Flat cell index of every road node (-1 off the grid), cached."""
        nc = getattr(self, "_node_cell", None)
        if nc is None:
            t = self.world.terrain
            r, c = t.cell_of(self.world.roads.node_x, self.world.roads.node_y)
            nc = self._node_cell = np.where(r >= 0, r * t.shape[1] + c, -1)
        return nc

    def _where(self) -> tuple[np.ndarray, np.ndarray]:
        """(flat cell, location code) of every household now; see ``household__location``."""
        hh, t = self.hh, self.world.terrain
        ncols = t.shape[1]
        cell = np.where(hh.row >= 0, hh.row * ncols + hh.col, -1).astype(np.int64)
        loc = np.zeros(len(hh), np.int8)  # at home
        node_cell = self._node_cells()
        gone = (self.state == OUT) | (self.state == RESCUED)
        cell[gone], loc[gone] = -1, -1
        shel = np.flatnonzero(self.state == SHELTERED)
        if shel.size:
            by_name = getattr(self, "_shelter_cell", None)
            if by_name is None:
                pts = self.world.places.shelters
                r, c = t.cell_of(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
                by_name = self._shelter_cell = dict(zip(
                    pts["name"].astype(str), np.where(r >= 0, r * ncols + c, -1).tolist(),
                    strict=True))  # fmt: skip
            # one look-up per distinct shelter name, not per household (a city has
            # tens of thousands sheltered, read every coupling step)
            names, inv = np.unique(self.arrived_at[shel].astype(str), return_inverse=True)
            lut = np.fromiter((by_name.get(n.split("+")[0], -1) for n in names.tolist()),
                              np.int64, names.size)  # fmt: skip
            cell[shel] = lut[inv.reshape(-1)]
            loc[shel] = np.where(cell[shel] >= 0, 0, -1)
        moving = np.flatnonzero((self.state == TRAVELLING) | (self.state == STRANDED))
        if moving.size:
            w = self.walker[moving]
            foot = w >= 0
            loc[moving] = np.where(foot, 2, 1)
            fw = moving[foot]
            if fw.size:
                cell[fw] = node_cell[self.walk.leg_node[self.walker[fw]]]
            car = moving[~foot & (self.vehicle[moving] >= 0)]
            if car.size:
                link = self.net.vehicle_link[self.vehicle[car]]
                on = link >= 0
                edge_v = self.world.roads.edge_v
                cell[car[on]] = node_cell[edge_v[link[on]]]
            st = moving[self.state[moving] == STRANDED]
            if st.size:
                r, c = t.cell_of(self.strand_xy[st, 0], self.strand_xy[st, 1])
                cell[st] = np.where(r >= 0, r * ncols + c, cell[st])
        return cell, loc

    def _household_people(self) -> np.ndarray:
        """``household__people``: persons per household."""
        return self.hh.people

    def _household_state(self) -> np.ndarray:
        """``household__state``: each household's state code (see ``evacuation.states``)."""
        return self.state

    def _household_warned(self) -> np.ndarray:
        """``household__warned_time``: when each household was warned, s (inf: not yet)."""
        return self.warned_t

    def _household_exposed(self) -> np.ndarray:
        """``household__exposed``: whether each household was exposed at home."""
        return self.exposed

    def _household_exposed_class(self) -> np.ndarray:
        """``household__exposed_class``: the AIDR class each was exposed to (0: never)."""
        return self.exposed_aidr

    def _shelter_occupancy(self) -> dict[str, float]:
        """``shelter__occupancy``: people in each shelter now, by name."""
        return {str(n): float(o) for n, o in zip(self.shelters.names, self.shelters.occupancy,
                                                   strict=True)}  # fmt: skip

    def _household_cell(self) -> np.ndarray:
        """``household__cell``: flat cell index where each household is now, -1 when out."""
        return self._where()[0]

    def _household_location(self) -> np.ndarray:
        """``household__location``: 0 home/building, 1 vehicle, 2 on foot, -1 out of the hazard."""
        return self._where()[1]

    def _apply_contraflow(self, pairs: list[tuple[int, int]], road: str) -> None:
        rs = self.sim.roads
        done = [(e, o) for e, o in pairs if e not in self._cf_done]
        for e, o in done:
            self.net.contraflow(e, o)
            self._cf_done.add(e)
            rs.closed_contraflow[o] = True
            rs.capacity_veh_h[e] = self.net.capacity_veh_h[e]
        if done:
            rs.mark_changed()
            self.sim.recorder.event(self.env.now, "contraflow", road, edge=done[0][0],
                                    edges=len(done))  # fmt: skip

    # ------------------------------------------------------------------ warnings

    def _issue(self, zones: list[int], label: str) -> None:
        """Issue the warning in *zones* now: draw who gets it when, and when they leave.

        Zones already warned are skipped (the first order counts): a scheduled
        ``warning.at`` after an earlier ``warn`` action, or a second action,
        changes nothing and records no ``warning`` event.
        """
        zones = [z for z in zones if not self.issued[z]]
        if not zones:
            return
        now = float(self.env.now)
        self.issued[zones] = True
        sel = np.flatnonzero(np.isin(self.zone, zones))
        if self.replay is not None:  # the table says who leaves when
            self.sim.recorder.event(now, "warning", label, households=int(sel.size),
                                    people=int(self.hh.people[sel].sum()))  # fmt: skip
            return
        for z in zones:
            m = sel[self.zone[sel] == z]
            reach = self._reach[z].ppf(self._u_reach[m])
            reach[self._u_never[m] < self._never[z]] = np.inf
            self.warned_t[m] = now + reach
        self.depart_t[sel] = self.warned_t[sel] + self._curve.ppf(self._u_depart[sel])
        leaving = sel[self.depart_t[sel] <= float(self.scenario.duration)]
        self.sim.recorder.event(now, "warning", label, households=int(sel.size),
                                people=int(self.hh.people[sel].sum()))  # fmt: skip
        self._launch(leaving)

    def _launch(self, leaving: np.ndarray) -> None:
        """Put households *leaving* on the road (by car) or on foot at their ``depart_t``."""
        cars = leaving[~self.on_foot[leaving]]
        feet = leaving[self.on_foot[leaving]]
        if cars.size:
            self._add_vehicles(cars, self.hh.node[cars], self.depart_t[cars],
                               self._hh_group[cars, 0])  # fmt: skip
        if feet.size:
            self.walker[feet] = np.arange(len(self.walk), len(self.walk) + feet.size)
            self.walk.add(feet, self.hh.node[feet], self.depart_t[feet],
                          self._hh_group[feet, 1], self.rec.sampled[feet])

    def _add_vehicles(self, hh: np.ndarray, origin: np.ndarray, depart: np.ndarray,
                      group: np.ndarray) -> None:  # fmt: skip
        ids = self.net.add_vehicles(origin, depart, group=group, weight=self.hh.people[hh])
        self.vehicle[hh] = ids
        self._veh_hh = np.concatenate([self._veh_hh, hh])
        self._veh_assigned = np.concatenate([self._veh_assigned, group != self._g_all])

    # ------------------------------------------------------------------ the process

    def run(self) -> Generator[Any, Any, None]:
        """Start the timers of the scheduled warnings and contraflows.

        The traffic itself is stepped by the engine's clock (:meth:`advance_to`).
        """
        self._timers: list[tuple[float, str, int]] = [
            (t, "warn", z) for z, t in self._warning_schedule()
        ] + [(float(c.at), "contraflow", i) for i, c in enumerate(self.spec.contraflow)]
        for k, (t, _, _) in enumerate(self._timers):
            if t <= float(self.scenario.duration):
                tagged(self.env.process(self._at(k)), self.name, "at", k)
        if self.replay is not None:
            end = float(self.scenario.duration)
            self._launch(np.flatnonzero(self.replay.listed & (self.depart_t <= end)))
        yield self.env.timeout(0)

    def _fire(self, k: int) -> None:
        _, kind, i = self._timers[k]
        if kind == "warn":
            label = self.zone_names[i] if i < len(self.zone_names) else "outside zones"
            self._issue([i], label)
        else:
            self._apply_contraflow(self._contraflow[i], self.spec.contraflow[i].road)

    def resume(self, tag: tuple, event: Any) -> None:
        """Rebuild a warning or contraflow timer waiting on *event* (a checkpoint)."""
        tagged(self.env.process(self._at(int(tag[2]), first=event)), *tag)

    def advance_to(self, time_s: float) -> None:
        """Bring walkers, traffic, road state and exposure to *time_s* (idempotent)."""
        self._sync(time_s)

    def _warning_schedule(self) -> list[tuple[int, float]]:
        """(zone, time) of the warnings issued without an action.

        A zone with its own ``warning`` is warned at its ``at``; a zone without
        one is warned at the top-level ``warning.at`` unless a ``warn`` action
        names it (then only the action warns it); households outside every zone
        (index ``len(zones)``) at the top-level ``warning.at``. Actions may warn
        earlier; the first warning counts.
        """
        named = {str(a.value) for a in self.scenario.actions if a.kind == "warn"}
        out = []
        for i, z in enumerate(self.spec.zones):
            if z.warning is not None:
                out.append((i, float(z.warning.at)))
            elif self.zone_names[i] not in named:
                out.append((i, float(self.spec.warning.at)))
        out.append((len(self.spec.zones), float(self.spec.warning.at)))
        return out

    def _at(self, k: int, first: Any = None) -> Generator[Any, Any, None]:
        t = self._timers[k][0]
        if first is not None:
            yield first
        elif t > self.env.now:
            yield self.env.timeout(t - self.env.now)
        self.sim.bring_upstream(self)
        self._sync()
        self._fire(k)

    def _sync(self, time_s: float | None = None) -> None:
        """Bring walkers, traffic, road state and exposure to *time_s* (default
        ``env.now``; idempotent). The fields read must already be at that time."""
        now = float(self.env.now if time_s is None else time_s)
        if now <= self._t:
            return
        self._walk_events(self.walk.advance(now, self._admit_walker))
        self._kernel_events(self.net.advance(now))
        self._push_roads()
        self._walker_network()
        if self.fields.has("water__depth"):
            self._walk_out()
            self._exposure()
        if self.fields.has("facility__lost"):
            self._close_flooded_shelters()
        for i in self.shelters.newly_full():
            self.sim.recorder.event(now, "shelter_full", str(self.shelters.names[i]),
                                    node=int(self.shelters.nodes[i]),
                                    occupancy=float(self.shelters.occupancy[i]))  # fmt: skip
        self._t = now

    # ------------------------------------------------------------------ shelters

    def _push_node_cap(self, node: int) -> None:
        """Tell the kernel how many more persons arriving by car *node* admits."""
        load = float(self.net.node_load[node])
        space = 0.0 if self._refused[node] else self.shelters.space(node)
        self.net.set_node_capacity(node, load + max(space, 0.0))

    def _admit_walker(self, w: int, node: int, t: float) -> bool:
        h = int(self.walk.hh[w])
        if self._is_exit[node]:
            return True
        people = float(self.hh.people[h])
        if self._refused[node] or self.shelters.space(node) + 1e-9 < people:
            self._refused[node] = True  # closes at its first refusal, as in the kernel
            self._push_node_cap(node)
            return False
        self._seats[h] = self.shelters.admit(node, people)
        self._push_node_cap(node)
        return True

    def _walker_network(self) -> None:
        rs = self.sim.roads
        sink = self._is_exit.copy()
        for node in self.shelters.node_list:
            sink[node] = not self._refused[node] and self.shelters.space(int(node)) >= 1.0
        walkable = rs.walkable
        events: list[WalkEvent] = []
        self.walk.set_network(walkable, sink, float(self.env.now), events)
        self._walk_events(events)

    # ------------------------------------------------------------------ events

    def _arrive(self, h: int, node: int, t: float, vehicle: bool) -> None:
        people = int(self.hh.people[h])
        self.arrive_t[h] = t
        if self._is_exit[node]:
            self.state[h] = OUT
            self.arrived_at[h] = self.exit_names[int(np.flatnonzero(self.exits == node)[0])]
            self.rec.event(t, "out", h, node=node, people=people, vehicle=vehicle)
            return
        self.state[h] = SHELTERED
        seats = self.shelters.admit(node, people) if vehicle else self._seats.pop(h)
        names = [str(self.shelters.names[i]) for i, _ in seats]
        self.arrived_at[h] = "+".join(names)
        self.rec.event(t, "sheltered", h, node=node, people=people, vehicle=vehicle,
                       shelter=names[0] if len(names) == 1 else names)  # fmt: skip

    def _kernel_events(self, ev: tk.Events) -> None:
        roads = self.world.roads
        entered = ev.kind == tk.ENTERED
        if entered.any():
            self.rec.link_entries(self._veh_hh[ev.vehicle[entered]], ev.time_s[entered],
                                  roads.edge_u[ev.where[entered]])  # fmt: skip
        rest = np.flatnonzero(~entered)
        transfer: list[tuple[int, int]] = []
        cols = (ev.vehicle[rest], ev.time_s[rest], ev.kind[rest], ev.where[rest])
        for v, t, k, w in zip(*(a.tolist() for a in cols), strict=True):
            h = int(self._veh_hh[v])
            if k == tk.DEPARTED:
                self.state[h] = TRAVELLING
                if np.isnan(self.entered_t[h]):
                    self.entered_t[h] = t
                self.rec.event(t, "departed", h, node=w, people=int(self.hh.people[h]),
                               vehicle=True)  # fmt: skip
            elif k == tk.ARRIVED:
                self._arrive(h, w, t, vehicle=True)
            elif k == tk.REROUTED:
                self.rec.event(t, "rerouted", h, edge=w, vehicle=True)
            elif k == tk.TURNED_AWAY:
                self._refused[w] = True
                shelters = [str(self.shelters.names[i]) for i in self.shelters.at(w)]
                self.rec.event(t, "turned_away", h, node=w, people=int(self.hh.people[h]),
                               vehicle=True, shelter=shelters[0] if shelters else "")  # fmt: skip
                for i in self.shelters.at(w):
                    if not self.shelters.full_reported[i]:
                        self.shelters.full_reported[i] = True
                        self.sim.recorder.event(t, "shelter_full", shelters[0], node=w,
                                                occupancy=float(self.shelters.occupancy[i]))
            elif k == tk.STRANDED:
                if self._veh_assigned[v] and not self.transferred[h]:
                    transfer.append((h, w))  # its shelter is full or cut off: try the others
                else:
                    self._strand(h, w, t, vehicle=True)
        if transfer:
            hs = np.array([h for h, _ in transfer])
            self.transferred[hs] = True
            for h, w in transfer:
                self.rec.event(self.net.time_s, "rerouted", h, node=w, vehicle=True,
                               reason="assigned shelter full or cut off")  # fmt: skip
            self._add_vehicles(hs, np.array([w for _, w in transfer]),
                               np.full(hs.size, self.net.time_s), np.full(hs.size, self._g_all))

    def _strand(self, h: int, node: int, t: float, *, vehicle: bool,
                xy: tuple[float, float] | None = None) -> None:  # fmt: skip
        roads = self.world.roads
        self.state[h] = STRANDED
        x, y = xy if xy is not None else (roads.node_x[node], roads.node_y[node])
        self.strand_node[h] = node
        self.strand_xy[h] = (x, y)
        self.rec.event(t, "stranded", h, node=node, people=int(self.hh.people[h]),
                       vehicle=vehicle, x=float(x), y=float(y))  # fmt: skip

    def _walk_events(self, events: list[WalkEvent]) -> None:
        for e in events:
            h = int(self.walk.hh[e.walker])
            people = int(self.hh.people[h])
            if e.kind == "departed":
                self.state[h] = TRAVELLING
                if np.isnan(self.entered_t[h]):
                    self.entered_t[h] = e.time_s
                self.rec.event(e.time_s, "departed", h, node=e.node, people=people, vehicle=False)
            elif e.kind == "arrived":
                self._arrive(h, e.node, e.time_s, vehicle=False)
            elif e.kind == "stranded":
                self._strand(h, e.node, e.time_s, vehicle=False)
            else:
                self.rec.event(e.time_s, e.kind, h, node=e.node, people=people, vehicle=False)

    # ------------------------------------------------------------------ roads and water

    def _push_roads(self) -> None:
        rs = self.sim.roads
        if rs.version == self._rs_version:
            return
        self._rs_version = rs.version
        closed = ~rs.open
        if not np.array_equal(closed, self.net.closed):
            self.net.set_closed(closed)
        factor = np.clip(rs.flood_factor, 0.0, 1.0)
        if not np.array_equal(factor, self.net.speed_factor):
            self.net.set_speed_factor(factor)
        if rs.closed_by_flood.any():
            ids, links, ready = self.net.strand_on_links(rs.closed_by_flood)
            self._stall(ids, links, ready)

    def _stall(self, ids: np.ndarray, links: np.ndarray, ready: np.ndarray) -> None:
        """Record vehicles stalled in water on their links, placed along the link."""
        roads = self.world.roads
        now = float(self.env.now)
        for v, e, r in zip(ids.tolist(), links.tolist(), ready.tolist(), strict=True):
            tt = roads.length_m[e] / roads.speed_m_s[e]
            frac = float(np.clip(1.0 - (r - now) / tt, 0.0, 1.0))
            p = roads.geometry[e].interpolate(frac, normalized=True)
            node = int(roads.edge_v[e] if frac >= 0.5 else roads.edge_u[e])
            self._strand(int(self._veh_hh[v]), node, now, vehicle=True, xy=(p.x, p.y))

    def _walk_out(self) -> None:
        """Stranded occupants walk out once the water where they wait is wadeable.

        A stranded household whose position (its stalled car, or the node where it
        stopped) has a hazard class of at most :data:`WALK_OUT_MAX_AIDR` (H1, or
        dry) and an open walking route to a shelter or exit sets off on foot from
        its node now (event ``walked_out``): the car is left where it is.
        """
        cand = np.flatnonzero(self.state == STRANDED)
        if cand.size == 0:
            return
        r, c = self.world.terrain.cell_of(self.strand_xy[cand, 0], self.strand_xy[cand, 1])
        r, c = np.asarray(r), np.asarray(c)
        inside = r >= 0
        rr, cc = np.where(inside, r, 0), np.where(inside, c, 0)
        d = np.asarray(self.fields.get("water__depth")[rr, cc], float)
        shallow = inside & (d <= WADE_DEPTH_M)  # no deeper water is H1 (spares speed())
        if not shallow.any():
            return
        cls = np.atleast_1d(aidr_class(d, self.fields.get("water__speed")[rr, cc]))
        node = self.strand_node[cand]
        ok = shallow & (cls <= WALK_OUT_MAX_AIDR) & self.walk.reachable(self._w_all, node)
        go = cand[ok]
        if go.size == 0:
            return
        now = float(self.env.now)
        self.state[go] = TRAVELLING
        self.walked_out[go] += 1
        self.walker[go] = np.arange(len(self.walk), len(self.walk) + go.size)
        self.walk.add(go, self.strand_node[go], np.full(go.size, now),
                      np.full(go.size, self._w_all), self.rec.sampled[go])  # fmt: skip
        for h in go.tolist():
            self.rec.event(now, "walked_out", h, node=int(self.strand_node[h]),
                           people=int(self.hh.people[h]))  # fmt: skip

    def _on_call(self, time_s: float, entity: str, **kw: Any) -> None:
        """Remember which call is for which stranded household (to hear its rescue)."""
        hh = str(kw.get("household", ""))
        if kw.get("source") == "stranded" and hh.startswith("h"):
            self._rescue_call[str(entity)] = int(hh[1:])

    def _on_rescue(self, time_s: float, entity: str, **kw: Any) -> None:
        """A unit reached a stranded household's call: its occupants are rescued."""
        h = self._rescue_call.get(str(entity))
        if h is None or self.state[h] != STRANDED:
            return  # not a stranded household's call, or it walked out already
        self.state[h] = RESCUED
        self.arrive_t[h] = float(time_s)
        self.arrived_at[h] = str(kw.get("unit", ""))
        self.rec.event(float(time_s), "rescued", h, node=int(self.strand_node[h]),
                       people=int(self.hh.people[h]), call=str(entity),
                       unit=str(kw.get("unit", "")))  # fmt: skip

    def _exposure(self) -> None:
        hh = self.hh
        cand = np.flatnonzero((self.state == HOME) & ~self.exposed & (hh.row >= 0))
        if cand.size == 0:
            return
        h = self.fields.get("water__depth")
        depth = h[hh.row[cand], hh.col[cand]]
        new = cand[depth >= float(self.spec.exposure_depth)]
        if new.size == 0:
            return
        speed = self.fields.get("water__speed")[hh.row[new], hh.col[new]]
        d = h[hh.row[new], hh.col[new]]
        cls = np.atleast_1d(aidr_class(d, speed))
        self.exposed[new] = True
        self.exposed_aidr[new] = cls
        now = float(self.env.now)
        for k, i in enumerate(new.tolist()):
            self.rec.event(now, "exposed", i, node=int(hh.node[i]), people=int(hh.people[i]),
                           depth_m=round(float(d[k]), 3), aidr=int(cls[k]), x=float(hh.x[i]),
                           y=float(hh.y[i]))  # fmt: skip

    # ------------------------------------------------------------------ records

    def sample(self) -> dict[str, float]:
        """People by state now (and vehicles on the road)."""
        self._sync()
        p = self.hh.people
        now = float(self.env.now)
        st = self.state
        walking = (self.walker >= 0) & (st == TRAVELLING)
        self.rec.shelter_rows(now)
        return {
            "warned": int(p[self.warned_t <= now].sum()),
            "departed": int(p[st != HOME].sum()),
            "on_road": int(p[st == TRAVELLING].sum()),
            "sheltered": int(p[st == SHELTERED].sum()),
            "out": int(p[st == OUT].sum()),
            "stranded": int(p[st == STRANDED].sum()),
            "rescued": int(p[st == RESCUED].sum()),
            "exposed": int(p[self.exposed].sum()),
            "vehicles_on_road": int(self.net.state_counts()["on_road"]),
            "walking": int(p[walking].sum()),
        }

    def check_conservation(self) -> dict[str, int]:
        """Households per final state, after checking every household is in exactly one.

        Cross-checks the component's states against the traffic kernel's and
        the walkers' own, and shelter occupancy against the people sheltered.

        Raises
        ------
        SimulationError
            If any household's state disagrees, or people were lost or doubled.
        """
        st = self.state
        problems = []
        if np.any((st < HOME) | (st > RESCUED)):
            problems.append("a household has no valid state")
        counts = np.bincount(st, minlength=len(STATE_NAMES))
        if counts.sum() != len(self.hh):
            problems.append(f"{counts.sum()} states for {len(self.hh)} households")
        want = {tk.VEHICLE_STATES.index("waiting"): (HOME,),
                tk.VEHICLE_STATES.index("on_road"): (TRAVELLING,),
                tk.VEHICLE_STATES.index("arrived"): (SHELTERED, OUT),
                tk.VEHICLE_STATES.index("stranded"): (STRANDED, RESCUED)}  # fmt: skip
        # a car whose occupants walked out stays stranded; the walk is checked below
        car = np.flatnonzero((self.vehicle >= 0) & (self.walked_out == 0))
        vs = self.net.vehicle_state[self.vehicle[car]]
        for code, ok in want.items():
            bad = car[(vs == code) & ~np.isin(st[car], ok)]
            if bad.size:
                problems.append(f"{bad.size} households by car disagree with the traffic model "
                                f"(e.g. h{bad[0]}: {STATE_NAMES[st[bad[0]]]})")  # fmt: skip
        problems += self._check_vehicles()
        foot = np.flatnonzero(self.walker >= 0)
        ws = self.walk.state[self.walker[foot]]
        wmap = np.array([HOME, TRAVELLING, -1, STRANDED])
        # a household that walked out at the last step is travelling, its walker not yet off
        set_off = (ws == W_WAITING) & (st[foot] == TRAVELLING) & (self.walked_out[foot] > 0)
        agree = np.where(ws == W_ARRIVED, np.isin(st[foot], (SHELTERED, OUT)),
                         (st[foot] == wmap[ws]) | ((ws == W_STRANDED) & (st[foot] == RESCUED))
                         | set_off)  # fmt: skip
        walked = np.flatnonzero(self.walked_out > 0)
        if walked.size and np.any(self.state[walked] == HOME):
            problems.append("a household walked out without having left home")
        if not agree.all():
            problems.append(f"{int((~agree).sum())} households on foot disagree with the walkers")
        left = (self.vehicle < 0) & (self.walker < 0) & (st != HOME)
        if left.any():
            problems.append(f"{int(left.sum())} households left home without a vehicle or walk")
        sheltered = float(self.hh.people[st == SHELTERED].sum())
        if abs(float(self.shelters.occupancy.sum()) - sheltered) > 1e-6:
            problems.append(f"shelters hold {self.shelters.occupancy.sum():g} people, households "
                            f"say {sheltered:g}")  # fmt: skip
        over = np.flatnonzero(self.shelters.occupancy > self.shelters.capacity + 1e-9)
        if over.size:
            problems.append(f"shelter {self.shelters.names[over[0]]} is over its capacity")
        if problems:
            raise SimulationError("evacuation: conservation of households failed: "
                                  + "; ".join(problems))  # fmt: skip
        return {STATE_NAMES[i]: int(counts[i]) for i in range(len(STATE_NAMES))}

    def _check_vehicles(self) -> list[str]:
        """What is wrong with the vehicles and walkers per household (empty if nothing).

        Every kernel vehicle belongs to one household and is its current one
        (``self.vehicle``), except the first vehicle of a household transferred
        from its assigned shelter: that one ended ``stranded`` in the kernel, was
        bound for an assigned group, and is the household's only superseded
        vehicle. Every walker is its household's current one (walkers are never
        replaced). A household warned twice, or given a second vehicle by
        mistake, fails here.
        """
        problems = []
        nv = int(self.net.n_vehicles)
        if self._veh_hh.size != nv:
            problems.append(f"{nv} vehicles in the traffic model, {self._veh_hh.size} booked")
            return problems
        ids = np.arange(nv)
        car = np.flatnonzero(self.vehicle >= 0)
        if np.any(self._veh_hh[self.vehicle[car]] != car):
            problems.append("a household's vehicle belongs to another household")
        old = ids[self.vehicle[self._veh_hh] != ids]
        h_old = self._veh_hh[old]
        stranded = tk.VEHICLE_STATES.index("stranded")
        legit = ((self.net.vehicle_state[old] == stranded) & self._veh_assigned[old]
                 & self.transferred[h_old])  # fmt: skip
        if not legit.all():
            h = int(h_old[~legit][0])
            problems.append(f"{int((~legit).sum())} vehicles are neither their household's "
                            f"current one nor left behind by a transfer (e.g. h{h})")  # fmt: skip
        n_old = np.bincount(h_old, minlength=len(self.hh))
        if np.any(n_old != self.transferred):
            h = int(np.flatnonzero(n_old != self.transferred)[0])
            problems.append(f"household h{h} has {int(n_old[h])} superseded vehicles and was "
                            f"{'' if self.transferred[h] else 'not '}transferred")  # fmt: skip
        nw = len(self.walk)
        # a walker superseded by a walk-out was stranded, and its household walked out
        old = np.flatnonzero(self.walker[self.walk.hh] != np.arange(nw)) if nw else old[:0]
        ok = (self.walk.state[old] == W_STRANDED) & (self.walked_out[self.walk.hh[old]] > 0)
        if not ok.all():
            problems.append(f"{int((~ok).sum())} walkers are neither their household's current "
                            "one nor left stranded before a walk-out")  # fmt: skip
        return problems

    def summary(self) -> dict[str, Any]:
        """The ``evacuation`` section of summary.json (people, seconds)."""
        return self.rec.summary()

    def outputs(self) -> dict[str, Any]:
        """Tables ``shelters``, ``trips`` and ``roads`` (peak queue and passed per edge)."""
        return self.rec.outputs()


