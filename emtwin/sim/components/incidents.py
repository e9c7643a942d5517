"""The Incidents component: calls for help, from a background stream and from the hazard.

Calls are published as ``call`` events (entity: the call id, node: its road
node) which the dispatch component hears; every random draw of a call (its
time, place, type, on-scene time and whether it needs a hospital) comes from
this component's own generator, so two plans on one seed get the same calls.

Sources (``response.incidents``):

- ``background``: a Poisson stream at ``background_rate`` with the type mix
  ``types`` (shares), placed at population points drawn in proportion to
  their people (at road nodes, uniformly, when the World has no population);
- ``stranded`` and ``exposed``: the evacuation's events of those names (one
  call per household, with probability ``hazard_share``);
- ``flooded``: when no evacuation runs, people at home in cells whose AIDR
  hazard class (depth and speed of the flood) reaches ``hazard_class``: each
  population point calls once, with probability ``hazard_share``, checked at
  every flood coupling step.

Hazard calls take their type from ``hazard_types`` (stranded, exposed, flooded).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np

from emtwin import distributions as dists
from emtwin.errors import ScenarioError
from emtwin.kernels.hazard_rating import aidr_class
from emtwin.scenarios.models import Distribution, IncidentType, Scenario
from emtwin.sim.component import Component
from emtwin.sim.timers import tagged

__all__ = ["IncidentsComponent", "draw_duration", "duration_law"]

log = logging.getLogger(__name__)


def duration_law(dist: Distribution) -> dists.Law:
    """The law of a ``Distribution`` (durations, s), from :mod:`emtwin.distributions`.

    ``exponential`` (mean), ``lognormal`` (mean and sd of the duration itself, not
    of its log), ``normal`` (mean, sd; truncated at 0), ``uniform`` [low, high],
    ``triangular`` [low, mode, high] or ``fixed``.
    """
    kind = dist.kind
    if kind == "exponential":
        return dists.exponential(float(dist.exponential))
    if kind == "lognormal":
        return dists.lognormal(float(dist.lognormal["mean"]), float(dist.lognormal["sd"]))
    if kind == "normal":
        return dists.normal(float(dist.normal["mean"]), float(dist.normal["sd"]), low=0.0)
    if kind == "uniform":
        return dists.uniform(*(float(v) for v in dist.uniform))
    if kind == "triangular":
        return dists.triangular(*(float(v) for v in dist.triangular))
    return dists.fixed(float(dist.fixed))


def draw_duration(
    dist: Distribution, rng: np.random.Generator, size: int | None = None
) -> float | np.ndarray:
    """Draw durations from *dist*, s.

    Parameters
    ----------
    dist
        The duration's distribution (see :func:`duration_law`); a normal is
        truncated at 0 by redrawing negative values.
    rng
        The generator to draw from (stream-stable sampling: the Generator's own
        method of each family, see :mod:`emtwin.distributions`).
    size
        Number of draws; None for one float.

    Returns
    -------
    float or numpy.ndarray
        Durations, s, all >= 0.
    """
    out = duration_law(dist).draw(rng, 1 if size is None else int(size))
    return float(out[0]) if size is None else out


class IncidentsComponent(Component):
    """Generates calls and publishes them as ``call`` events."""

    name: ClassVar[str] = "incidents"
    requires: ClassVar[tuple[str, ...]] = ("roads",)
    reads: ClassVar[dict[str, bool]] = {"water__depth": False, "water__speed": False}
    samples: ClassVar[dict[str, str]] = {"calls_total": "calls made so far"}

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Enabled when the scenario has a response section."""
        return scenario.response is not None

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.spec = self.scenario.response.incidents
        if self.spec.background_rate > 0 and not self.spec.types:
            raise ScenarioError(
                "response.incidents.types: background_rate is set but no call types are "
                "given; add e.g. {name: medical, share: 1, needs: ambulance}",
                file=self.scenario.source,
            )
        shares = np.array([t.share for t in self.spec.types], dtype=float)
        self._type_p = shares / shares.sum() if shares.size else shares
        pop = self.world.places.population
        roads = self.world.roads
        if len(pop) and float(pop["people"].sum()) > 0:
            self._px = pop.geometry.x.to_numpy()
            self._py = pop.geometry.y.to_numpy()
            self._pnode = pop["node"].to_numpy().astype(np.int64)
            self._ppeople = pop["people"].to_numpy().astype(float)
            self._pw = self._ppeople / self._ppeople.sum()
        else:
            core = roads.core_nodes  # not the one-way dead ends (units could not get back)
            self._px, self._py = roads.node_x[core], roads.node_y[core]
            self._pnode = core
            self._ppeople = np.ones(core.size)
            self._pw = np.full(core.size, 1.0 / core.size)
        self._pcdf = np.cumsum(self._pw)
        self._nplace = self._pw.shape[0] - 1
        t = self.world.terrain
        rows, cols = t.cell_of(self._px, self._py)
        self._pcell = np.where(rows >= 0, rows * t.shape[1] + cols, -1)
        self._has_hospital = len(self.world.places.hospitals) > 0
        self._called = np.zeros(self._px.shape[0], dtype=bool)
        self._heard: set[tuple[str, str]] = set()
        self.n = 0
        self.by_source: dict[str, int] = {}
        self._watching = False
        self._watched_s = 0.0
        if self.spec.from_hazard:
            self.sim.recorder.subscribe("stranded", self._on_stranded)
            self.sim.recorder.subscribe("exposed", self._on_exposed)

    # ------------------------------------------------------------------ processes

    def start(self) -> None:
        """Start the background stream; without an evacuation, watch the water."""
        if self.spec.background_rate > 0:
            tagged(self.env.process(self._background()), self.name, "background")
        self._watching = (self.spec.from_hazard and self.fields.has("water__depth")
                          and self.scenario.evacuation is None)  # fmt: skip
        if self._watching:
            ok = self._pcell >= 0
            self._watch_cells = self._pcell[ok]
            self._watch_idx = np.flatnonzero(ok)

    def advance_to(self, time_s: float) -> None:
        """At every coupling step after the start, the flood watch (when it runs)."""
        if not self._watching or time_s <= self._watched_s:
            return
        self._watched_s = float(time_s)
        self._flood_watch()

    def _background(self, first: Any = None) -> Generator[Any, Any, None]:
        mean_gap = 1.0 / self.spec.background_rate
        if first is not None:  # resumed from a checkpoint: the next call's time was drawn
            yield first
            self._background_call()
        while True:
            yield self.env.timeout(self.rng.exponential(mean_gap))
            self._background_call()

    def _background_call(self) -> None:
        k = min(int(np.searchsorted(self._pcdf, self.rng.random(), side="right")), self._nplace)
        ti = int(self.rng.choice(self._type_p.shape[0], p=self._type_p))
        self._call(self.spec.types[ti], "background", int(self._pnode[k]),
                   float(self._px[k]), float(self._py[k]), int(self._pcell[k]), 1)  # fmt: skip

    def resume(self, tag: tuple, event: Any) -> None:
        """Rebuild the background stream waiting for its next call at *event* (a checkpoint)."""
        tagged(self.env.process(self._background(first=event)), *tag)

    def _flood_watch(self) -> None:
        """Places whose hazard class reaches ``hazard_class`` now call, once each."""
        cells, idx = self._watch_cells, self._watch_idx
        h = self.fields.get("water__depth").reshape(-1)[cells]
        wet = h > 0
        if not wet.any():
            return
        v = self.fields.get("water__speed").reshape(-1)[cells]
        cls = aidr_class(h, v)
        sel = np.flatnonzero((cls >= self.spec.hazard_class) & ~self._called[idx])
        ctype = self.spec.hazard_type("flooded")
        for k, d in zip(idx[sel].tolist(), h[sel].tolist(), strict=True):
            self._called[k] = True
            if self.rng.random() < self.spec.hazard_share:
                self._call(ctype, "flooded", int(self._pnode[k]), float(self._px[k]),
                           float(self._py[k]), int(self._pcell[k]),
                           max(1, round(float(self._ppeople[k]))),
                           depth_m=round(d, 3))  # fmt: skip

    # ------------------------------------------------------------------ hazard events

    def _on_stranded(self, time_s: float, entity: str, **kw: Any) -> None:
        self._from_event("stranded", entity, kw)

    def _on_exposed(self, time_s: float, entity: str, **kw: Any) -> None:
        self._from_event("exposed", entity, kw)

    def _from_event(self, source: str, entity: str, kw: dict[str, Any]) -> None:
        key = (source, str(entity))
        if key in self._heard:
            return
        self._heard.add(key)
        if self.rng.random() >= self.spec.hazard_share:
            return
        node = int(kw.get("node", -1))
        roads = self.world.roads
        if node < 0 and "x" not in kw:
            log.warning("%s event for %s has neither node nor x, y: no call", source, entity)
            return
        x = float(kw.get("x", roads.node_x[node] if node >= 0 else 0.0))
        y = float(kw.get("y", roads.node_y[node] if node >= 0 else 0.0))
        if node < 0:
            node = int(roads.nearest_node(x, y)[0][0])
        t = self.world.terrain
        r, c = t.cell_of(x, y)
        cell = int(r * t.shape[1] + c) if int(r) >= 0 else -1
        extra = {k: kw[k] for k in ("depth_m", "aidr", "vehicle") if k in kw}
        self._call(self.spec.hazard_type(source), source, node, x, y, cell,
                   max(1, int(kw.get("people", 1))), household=str(entity), **extra)  # fmt: skip

    # ------------------------------------------------------------------ calls

    def _call(self, ctype: IncidentType, source: str, node: int, x: float, y: float,
              cell: int, people: int, **extra: Any) -> None:  # fmt: skip
        """Draw the call's on-scene time and hospital need; publish it."""
        self.n += 1
        self.by_source[source] = self.by_source.get(source, 0) + 1
        on_scene = draw_duration(ctype.on_scene, self.rng)
        to_hospital = bool(self.rng.random() < ctype.to_hospital)
        self.sim.recorder.event(
            self.env.now, "call", f"call-{self.n}", node=node,
            type=ctype.name, priority=ctype.priority, needs=list(ctype.needs_types),
            source=source, x=round(x, 2), y=round(y, 2), cell=cell, people=people,
            on_scene_s=round(on_scene, 3), to_hospital=to_hospital and self._has_hospital,
            handover_s=float(ctype.handover), **extra,
        )  # fmt: skip

    def sample(self) -> dict[str, float]:
        """Calls made so far."""
        return {"calls_total": self.n}

    def summary(self) -> dict[str, Any]:
        """The ``incidents`` section: calls by source."""
        return {"calls": self.n, "by_source": dict(sorted(self.by_source.items()))}
