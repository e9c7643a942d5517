"""The engine: a SimPy clock shared by the components, the plan timeline, the results.

``Simulation(scenario).run()`` builds the World, one random generator per
component (spawned from the scenario seed), the components the scenario
enables, schedules the plan's actions, samples the time series every
``outputs.every`` and returns :class:`Results`. One SimPy time unit is one
second since the scenario start.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Action, Scenario
from emtwin.sim.component import Component
from emtwin.sim.recorder import Recorder
from emtwin.sim.state import RoadState, State
from emtwin.sim.triggers import TriggerWatch, check_trigger_places, check_triggers, describe

if TYPE_CHECKING:
    import pandas as pd

    from emtwin.geo.world import World

__all__ = [
    "Simulation", "Results", "Frames", "SUMMARY_KEYS", "component_classes", "check_actions",
    "check_fields", "coupling_step", "DEFAULT_COUPLING_S",
]

log = logging.getLogger(__name__)

#: The coupling step when the scenario sets none, s.
DEFAULT_COUPLING_S = 60.0

#: The headline keys of ``summary.json`` (scenario-format.md), by section.
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "flood": (
        "peak_flooded_area_m2", "peak_volume_m3", "roads_closed", "mass_error_rel",
        "max_depth_by_gauge", "cells", "steps", "kernel_wall_s",
    ),
    "evacuation": (
        "households", "people", "sheltered", "out", "stranded", "never_left",
        "t50_s", "t90_s", "clearance_s",
    ),
    "dispatch": (
        "calls", "served", "unserved", "response_p50_s", "response_p90_s",
        "wait_mean_s", "utilisation_mean",
    ),
    "run": ("wall_s", "seed", "scenario"),
}  # fmt: skip


def component_classes() -> list[type[Component]]:
    """Every registered component class, in the order they are started."""
    from emtwin.sim.components import REGISTRY

    return list(REGISTRY)


def check_actions(scenario: Scenario) -> list[str]:
    """Problems with the plan timeline that can be told without building the World.

    Each action kind must be carried out by a component the scenario enables.
    """
    enabled = [c for c in component_classes() if c.enabled(scenario)]
    handled = {k: c for c in enabled for k in c.actions}
    problems = []
    for i, a in enumerate(scenario.actions):
        if a.kind not in handled:
            who = [c for c in component_classes() if a.kind in c.actions]
            hint = (
                f"it is carried out by the {who[0].name} component, which this scenario does "
                f"not enable ({_enable_hint(who[0].name)})"
                if who
                else "no component of this version carries it out"
            )
            problems.append(f"{scenario.where('actions', i)}: {a.kind}: {hint}")
    return problems + check_triggers(scenario)


def check_fields(classes: list[type[Component]], *, file: str | None = None) -> None:
    """Check that every required field read by *classes* is written by one of them.

    Raises
    ------
    ScenarioError
        Naming each component, the field it reads and who could write it.
    """
    written = {f for c in classes for f in c.writes}
    problems = []
    for c in classes:
        for name, required in c.reads.items():
            if required and name not in written:
                could = [k.name for k in component_classes() if name in k.writes]
                hint = (f"it is written by the {' or '.join(could)} component, which this run "
                        "does not have" if could else "no registered component writes it")
                problems.append(f"the {c.name} component reads the field {name!r}, but no "
                                f"component in this run writes it ({hint})")  # fmt: skip
    if problems:
        raise ScenarioError(problems, file=file)


def coupling_step(scenario: Scenario) -> float:
    """The engine's coupling step, s: ``coupling`` (default 60 s), at most ``outputs.every``.

    A flood's own ``coupling`` key (round 1) still sets it when the top-level
    key is not given.
    """
    step = scenario.coupling
    if step is None:
        flood = scenario.flood
        step = flood.coupling if flood is not None else DEFAULT_COUPLING_S
    return min(float(step), float(scenario.outputs.every))


def _enable_hint(name: str) -> str:
    hazard = next((c.hazard_type for c in component_classes() if c.name == name), None)
    if hazard is not None:
        return f"add a {hazard} under hazards"
    return {
        "roads": "give world.roads",
        "hazard": "add a flood under hazards",
        "evacuation": "add an evacuation section and world.roads",
        "dispatch": "add a response section and world.roads",
    }.get(name, "see the docs")


def _component_seed(seed: int, name: str) -> np.random.SeedSequence:
    """A SeedSequence for component *name* that does not depend on which others run.

    Two plans on the same seed therefore share the same rain, households and
    calls (common random numbers).
    """
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))


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


class Simulation:
    """One run of a scenario.

    Parameters
    ----------
    scenario
        A validated scenario.
    world
        A World already built for it (built from the scenario when None).
    allow_code
        Whether Python code named in the scenario (user dispatch policies) may run.

    Raises
    ------
    ScenarioError
        When the plan's actions name things the World lacks or no component
        carries them out, or a component lacks a World part it requires.
    """

    def __init__(
        self, scenario: Scenario, *, world: World | None = None, allow_code: bool = False
    ) -> None:
        problems = check_actions(scenario)
        if problems:
            raise ScenarioError(problems, file=scenario.source)
        self.scenario = scenario
        self.allow_code = allow_code
        if world is None:
            from emtwin.geo.build import build_world

            world = build_world(scenario)
        self.world = world
        self.env = simpy.Environment()
        self.recorder = Recorder()
        self.state = State(self.world.roads)
        #: the edge fields (kept under their round-1 name)
        self.roads = self.state.roads
        #: the coupling step of the engine's clock, s
        self.coupling_s = coupling_step(scenario)
        self.components: list[Component] = []
        enabled = [cls for cls in component_classes() if cls.enabled(scenario)]
        for cls in enabled:
            missing = [r for r in cls.requires if not self._has(r)]
            if missing:
                raise ScenarioError(
                    f"the {cls.name} component needs world.{', world.'.join(missing)}",
                    file=scenario.source,
                )
        check_fields(enabled, file=scenario.source)
        for cls in enabled:
            rng = np.random.default_rng(_component_seed(scenario.seed, cls.name))
            self.components.append(cls(self, rng))
        self._handlers = {k: c for c in self.components for k in c.actions}
        problems = check_trigger_places(scenario, self.world)
        for i, a in enumerate(scenario.actions):
            msg = self._handlers[a.kind].check_action(a)
            if msg:
                problems.append(f"{scenario.where('actions', i)}: {a.kind}: {msg}")
        if problems:
            raise ScenarioError(problems, file=scenario.source)

    def _has(self, part: str) -> bool:
        w = self.world
        if part == "roads":
            return w.roads is not None
        if part == "population":
            return len(w.places.population) > 0
        return len(getattr(w.places, part)) > 0

    def component(self, name: str) -> Component | None:
        """The running component called *name*, or None (for the engine, tests and tools;
        components never use it to reach one another)."""
        return next((c for c in self.components if c.name == name), None)

    def advance_all(self, time_s: float) -> None:
        """Bring every component to *time_s*, in registry order (hazards first)."""
        for c in self.components:
            c.advance_to(time_s)

    def bring_upstream(self, component: Component) -> None:
        """Bring the components before *component* in registry order to ``env.now``.

        A component that acts off the coupling clock (an action, a timer)
        calls this first, so the fields it reads are current.
        """
        now = float(self.env.now)
        for c in self.components:
            if c is component:
                return
            c.advance_to(now)

    # ------------------------------------------------------------------ processes

    def _action(self, action: Action) -> Any:
        yield self.env.timeout(action.at)
        self.apply(action)

    def apply(self, action: Action, **why: Any) -> None:
        """Carry out *action* now: record an ``action`` event, call its component.

        *why* adds details to the event (a trigger records what fired it).
        """
        value = action.value
        shown = value.model_dump(by_alias=True) if hasattr(value, "model_dump") else value
        self.recorder.event(self.env.now, "action", action.kind, value=shown, **why)
        self._handlers[action.kind].on_action(action)

    def _clock(self, end_s: float) -> Any:
        """The coupling clock: every ``coupling_s``, advance each component in order."""
        while True:
            self.advance_all(float(self.env.now))
            self._after_step(float(self.env.now))
            if self.env.now >= end_s:
                return
            yield self.env.timeout(min(self.coupling_s, end_s - self.env.now))

    def _after_step(self, time_s: float) -> None:
        """Once every component is at *time_s*: fire the triggered actions whose condition holds."""
        if self._watch is None:
            return
        for _, action in self._watch.due(time_s):
            self.apply(action, trigger=describe(action.when))

    def _sampler(self, every_s: float, end_s: float) -> Any:
        t = 0.0
        while True:
            self.advance_all(float(self.env.now))
            row: dict[str, float] = {"time_s": float(self.env.now)}
            for c in self.components:
                row.update(c.sample())
            self.recorder.sample(row)
            if t >= end_s:
                return
            t = min(t + every_s, end_s)
            yield self.env.timeout(t - self.env.now)

    # ------------------------------------------------------------------ run

    def run(self, *, progress: bool = False) -> Results:
        """Play the scenario to its end and return the Results.

        Parameters
        ----------
        progress
            Show a rich progress bar of simulated time (on a terminal only).
        """
        t0 = time.perf_counter()
        end = float(self.scenario.duration)
        triggered = [(i, a) for i, a in enumerate(self.scenario.actions) if a.when is not None]
        self._watch = (TriggerWatch(triggered, self.state, self.world, self.recorder)
                       if triggered else None)  # fmt: skip
        self.env.process(self._clock(end))
        for c in self.components:
            c.start()
        for i, a in enumerate(self.scenario.actions):
            if a.at is None:
                continue
            if a.at > end:
                log.warning("actions.%d (%s at %g s) is after the end of the run (%g s); "
                            "it will not happen", i, a.kind, a.at, end)  # fmt: skip
                continue
            self.env.process(self._action(a))
        self.env.process(self._sampler(float(self.scenario.outputs.every), end))
        self._advance(end, progress)
        wall = time.perf_counter() - t0
        return self._results(wall)

    def _advance(self, end: float, progress: bool) -> None:
        step = max(float(self.scenario.outputs.every), end / 200.0)
        bar = None
        if progress:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(stderr=True)
            if console.is_terminal:
                bar = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    TextColumn("{task.fields[clock]}"),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                )
        if bar is None:
            self.env.run(until=end + 1e-9)
            return
        with bar:
            task = bar.add_task(self.scenario.name, total=end, clock="0:00:00")
            t = 0.0
            while t < end:
                t = min(t + step, end)
                self.env.run(until=t + (1e-9 if t >= end else 0.0))
                h, rem = divmod(int(t), 3600)
                bar.update(task, completed=t, clock=f"{h}:{rem // 60:02d}:{rem % 60:02d}")

    def _results(self, wall_s: float) -> Results:
        summary: dict[str, Any] = {k: dict.fromkeys(v) for k, v in SUMMARY_KEYS.items()}
        rasters: dict[str, np.ndarray] = {}
        tables: dict[str, Any] = {}
        frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        transforms: dict[str, Any] = {}
        for c in self.components:
            part = c.summary()
            if part:
                summary.setdefault(c.name, {}).update(part)
            for k, v in c.outputs().items():
                if isinstance(v, np.ndarray):
                    rasters[k] = v
                elif isinstance(v, Frames):
                    frames[k] = (v.times_s, v.stack)
                    transforms[k] = v.transform
                else:
                    tables[k] = v
        summary["run"].update(
            wall_s=round(wall_s, 3),
            seed=int(self.scenario.seed),
            scenario=self.scenario.name,
            duration_s=float(self.scenario.duration),
            components=[c.name for c in self.components],
            events=self.recorder.n_events,
        )
        summary["world"] = self.world.summary()
        return Results(
            summary=summary,
            events=self.recorder.events(),
            timeseries=self.recorder.timeseries(),
            rasters=rasters,
            tables=tables,
            frames=frames,
            frame_transforms=transforms,
            world=self.world,
            scenario=self.scenario,
            road_state=self.roads,
        )

