"""The engine: a SimPy clock shared by the components, the plan timeline, the results.

``Simulation(scenario).run()`` builds the World, one random generator per
component (spawned from the scenario seed), the components the scenario
enables, schedules the plan's actions, samples the time series every
``outputs.every`` and returns :class:`Results`. One SimPy time unit is one
second since the scenario start.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Action, Scenario
from emtwin.sim.checkpoint import Checkpoint, restore_checkpoint, take_checkpoint
from emtwin.sim.component import Component
from emtwin.sim.components import summary_keys
from emtwin.sim.plan import (
    DEFAULT_COUPLING_S,
    all_actions,
    check_actions,
    check_fields,
    component_classes,
    coupling_step,
)
from emtwin.sim.recorder import Recorder
from emtwin.sim.results import Frames, Results, world_parts
from emtwin.sim.state import State
from emtwin.sim.timers import tagged
from emtwin.sim.triggers import TriggerWatch, check_trigger_places, describe

if TYPE_CHECKING:
    from pathlib import Path

    from emtwin.geo.world import World

__all__ = [
    "Simulation", "Results", "Frames", "SUMMARY_KEYS", "component_classes", "check_actions",
    "check_fields", "coupling_step", "DEFAULT_COUPLING_S",
]

log = logging.getLogger(__name__)


#: The headline keys of ``summary.json`` (scenario-format.md), by section, as declared
#: by the built-in components (:func:`emtwin.sim.components.summary_keys`).
SUMMARY_KEYS: dict[str, tuple[str, ...]] = summary_keys()


def _component_seed(seed: int, name: str) -> np.random.SeedSequence:
    """A SeedSequence for component *name* that does not depend on which others run.

    Two plans on the same seed therefore share the same rain, households and
    calls (common random numbers).
    """
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))


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
    replace
        Component classes to run in place of the registered ones of the same name
        (a batch's replayed flood, :mod:`emtwin.batch.flood_cache`).

    Raises
    ------
    ScenarioError
        When the plan's actions name things the World lacks or no component
        carries them out, or a component lacks a World part it requires.
    """

    def __init__(
        self, scenario: Scenario, *, world: World | None = None, allow_code: bool = False,
        replace: Mapping[str, type[Component]] | None = None,
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
        enabled = [(replace or {}).get(cls.name, cls) for cls in enabled]
        for cls in enabled:
            missing = [r for r in cls.requires if not self._has(r)]
            if missing:
                raise ScenarioError(
                    f"the {cls.name} component needs world.{', world.'.join(missing)}",
                    file=scenario.source,
                )
        check_fields(enabled, file=scenario.source)
        self._started = False
        self._watch: TriggerWatch | None = None
        self._fired: set[int] = set()
        self._sample_t = 0.0
        #: wall time spent playing the run, s (a resumed run adds the part before)
        self.wall_s = 0.0
        for cls in enabled:
            rng = np.random.default_rng(_component_seed(scenario.seed, cls.name))
            self.components.append(cls(self, rng))
        self._handlers = {k: c for c in self.components for k in c.actions}
        problems = check_trigger_places(scenario, self.world)
        for where, a in all_actions(scenario):
            msg = self._handlers[a.kind].check_action(a)
            if msg:
                problems.append(f"{where}: {a.kind}: {msg}")
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

    @property
    def action_kinds(self) -> list[str]:
        """The plan action kinds some running component carries out, sorted."""
        return sorted(self._handlers)

    def check_action(self, action: Action) -> str | None:
        """What is wrong with *action* for this run (no component for its kind, or a name
        the World lacks), or None."""
        handler = self._handlers.get(action.kind)
        if handler is None:
            return (f"no component of this run carries out {action.kind} "
                    f"(kinds: {', '.join(self.action_kinds)})")  # fmt: skip
        return handler.check_action(action)

    def results(self) -> Results:
        """The Results of the run as it stands now (a run stopped before its end)."""
        return self._results(self.wall_s)

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

    def _action(self, action: Action, first: Any = None) -> Any:
        if first is not None:
            yield first
        else:
            yield self.env.timeout(max(float(action.at) - float(self.env.now), 0.0))
        self.apply(action)

    def apply(self, action: Action, **why: Any) -> None:
        """Carry out *action* now: record an ``action`` event, call its component.

        *why* adds details to the event (a trigger records what fired it).
        """
        value = action.value
        shown = value.model_dump(by_alias=True) if hasattr(value, "model_dump") else value
        self.recorder.event(self.env.now, "action", action.kind, value=shown, **why)
        self._handlers[action.kind].on_action(action)

    def _clock(self, first: Any = None) -> Any:
        """The coupling clock: every ``coupling_s``, advance each component in order."""
        end_s = self.end_s
        if first is not None:
            yield first
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
        for i, action in self._watch.due(time_s):
            self._fired.add(i)
            self.apply(action, trigger=describe(action.when))

    def _sampler(self, first: Any = None) -> Any:
        every_s, end_s = float(self.scenario.outputs.every), self.end_s
        if first is not None:
            yield first
        while True:
            self.advance_all(float(self.env.now))
            row: dict[str, float] = {"time_s": float(self.env.now)}
            for c in self.components:
                row.update(c.sample())
            self.recorder.sample(row)
            if self._sample_t >= end_s:
                return
            self._sample_t = min(self._sample_t + every_s, end_s)
            yield self.env.timeout(self._sample_t - self.env.now)

    def resume(self, tag: tuple, event: Any) -> None:
        """Rebuild the engine's own process *tag* waiting on *event* (a checkpoint)."""
        if tag[1] == "clock":
            proc = self.env.process(self._clock(first=event))
        elif tag[1] == "sampler":
            proc = self.env.process(self._sampler(first=event))
        else:
            proc = self.env.process(self._action(self.scenario.actions[tag[2]], first=event))
        tagged(proc, *tag)

    # ------------------------------------------------------------------ run

    @property
    def end_s(self) -> float:
        """The end of the run, s since the start (``duration``)."""
        return float(self.scenario.duration)

    def start(self) -> None:
        """Put the clock, the components' processes, the actions and the sampler on the clock.

        Called once, by :meth:`run` (or by :meth:`run_until` before a checkpoint).
        """
        if self._started:
            return
        self._started = True
        end = self.end_s
        triggered = self.scenario.triggered_actions()
        self._watch = (TriggerWatch(triggered, self.state, self.world, self.recorder,
                                    scenario=self.scenario) if triggered else None)  # fmt: skip
        tagged(self.env.process(self._clock()), "engine", "clock")
        for c in self.components:
            c.start()
        for i, a in enumerate(self.scenario.actions):
            if a.at is None:
                continue
            if a.at > end:
                log.warning("actions.%d (%s at %g s) is after the end of the run (%g s); "
                            "it will not happen", i, a.kind, a.at, end)  # fmt: skip
                continue
            tagged(self.env.process(self._action(a)), "engine", "action", i)
        tagged(self.env.process(self._sampler()), "engine", "sampler")

    def run_until(self, time_s: float) -> None:
        """Play every event at or before *time_s* (s), then stop (for a checkpoint)."""
        self.start()
        t0 = time.perf_counter()
        self.env.run(until=math.nextafter(float(time_s), math.inf))
        self.wall_s += time.perf_counter() - t0

    def run(self, *, progress: bool = False) -> Results:
        """Play the scenario (from where it is) to its end and return the Results.

        Parameters
        ----------
        progress
            Show a rich progress bar of simulated time (on a terminal only).
        """
        self.start()
        t0 = time.perf_counter()
        self._advance(self.end_s, progress)
        self.wall_s += time.perf_counter() - t0
        return self._results(self.wall_s)

    def checkpoint(self) -> Checkpoint:
        """The whole state of the run now (after :meth:`run_until`), to save or fork from.

        Raises
        ------
        CheckpointError
            If a part of the run cannot be saved (e.g. a flood on a GPU).
        """
        return take_checkpoint(self)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint | str | Path, *, plans: Sequence[Any] = (),
                        allow_code: bool = False,
                        world: World | None = None) -> Simulation:  # fmt: skip
        """A Simulation continuing from *checkpoint* (a :class:`Checkpoint` or its file).

        With *plans* it is a fork: the plans' actions replace the actions still
        to come (each must be at or after the checkpoint's time, or triggered);
        the random streams continue those of the original run (common random
        numbers), so a difference from the original is due to the plan alone.
        *world* reuses a World already built from the same scenario (read only by
        the run); without it the World is built again from the scenario's files.
        """
        return restore_checkpoint(cls, checkpoint, plans=plans, allow_code=allow_code,
                                  world=world)

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
            t = float(self.env.now)
            task = bar.add_task(self.scenario.name, total=end, completed=t, clock="0:00:00")
            while t < end:
                t = min(t + step, end)
                self.env.run(until=t + (1e-9 if t >= end else 0.0))
                h, rem = divmod(int(t), 3600)
                bar.update(task, completed=t, clock=f"{h}:{rem // 60:02d}:{rem % 60:02d}")

    def _results(self, wall_s: float) -> Results:
        summary: dict[str, Any] = {k: dict.fromkeys(v) for k, v in summary_keys().items()}
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
            scenario=self.scenario,
            **world_parts(self.world, self.roads),
        )

