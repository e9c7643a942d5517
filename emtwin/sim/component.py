"""The component protocol: how a process of the twin plugs into the engine.

A component is one process of the event (the flood, the evacuation, the
dispatch ...), in the manner of a Landlab component with a SimPy clock:

- it declares ``name``, the World parts it ``requires`` (checked when the
  Simulation is built), the ``actions`` of the plan timeline it carries out,
  and the time-series columns it ``samples``;
- :meth:`Component.enabled` says from the scenario whether it takes part;
- the engine builds it with the Simulation and one private random generator
  (spawned from the scenario seed), then calls :meth:`start`, where it
  registers its SimPy processes on ``sim.env`` (1 time unit = 1 s);
- it reads the World (never writes it) and exchanges dynamic state only
  through the named fields of ``sim.state`` (:mod:`emtwin.sim.state`), which it
  declares in ``reads`` and ``writes``; it writes events through
  ``sim.recorder.event(...)``; it never imports or calls another component;
- the engine owns the coupling clock: every coupling step it calls
  :meth:`advance_to` on each component in registry order (hazards first), so a
  reader finds the fields it reads already brought to that time;
- at every output time the engine calls :meth:`sample` for its time-series
  values, and at the end :meth:`summary` for its section of ``summary.json``
  and :meth:`outputs` for files (rasters, tables).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from emtwin.errors import CheckpointError, SimulationError
from emtwin.sim.metric import Metric
from emtwin.sim.timers import tagged

if TYPE_CHECKING:
    from emtwin.scenarios.models import Action, Scenario
    from emtwin.sim.engine import Simulation

__all__ = ["Component"]


class Component:
    """Base class of every simulation component.

    Parameters
    ----------
    sim
        The Simulation this component belongs to.
    rng
        The component's own random generator (spawned from the scenario seed).
    """

    #: Short name, also the component's section in ``summary.json`` where it has one.
    name: ClassVar[str] = "component"
    #: World parts that must be present: any of "roads", "population", "shelters",
    #: "stations", "hospitals".
    requires: ClassVar[tuple[str, ...]] = ()
    #: Plan action kinds (keys of ACTION_KINDS) this component carries out.
    actions: ClassVar[frozenset[str]] = frozenset()
    #: Time-series columns this component fills, with their units.
    samples: ClassVar[dict[str, str]] = {}
    #: Fields of ``sim.state`` it reads, each mapped to whether it is required
    #: (a required read with no writer in the run is an error at build time).
    reads: ClassVar[dict[str, bool]] = {}
    #: Fields of ``sim.state`` it writes.
    writes: ClassVar[tuple[str, ...]] = ()
    #: The metrics of its section of ``summary.json`` (see :mod:`emtwin.sim.metric`).
    metrics: ClassVar[tuple[Metric, ...]] = ()
    #: For a hazard component: the ``type`` tag of its scenario model.
    hazard_type: ClassVar[str | None] = None

    def __init__(self, sim: Simulation, rng: np.random.Generator) -> None:
        self.sim = sim
        self.env = sim.env
        self.world = sim.world
        self.scenario = sim.scenario
        self.fields = sim.state
        self.rng = rng

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Whether this component takes part in a run of *scenario*.

        A hazard component (``hazard_type`` set) does when the scenario has a
        hazard of that type; others say so themselves.
        """
        return cls.hazard_type is not None and bool(scenario.hazards_of(cls.hazard_type))

    def start(self) -> None:
        """Register the component's SimPy processes on ``self.env`` (each tagged, see
        :mod:`emtwin.sim.timers`, so that a checkpoint can rebuild it)."""
        tagged(self.env.process(self.run()), self.name, "run")

    def run(self) -> Generator[Any, Any, None]:
        """The component's main SimPy process (default: nothing to do)."""
        yield self.env.timeout(0)

    def resume(self, tag: tuple, event: Any) -> None:
        """Rebuild the process or timer *tag*, whose next event is *event*, from the
        component's saved state (a checkpoint being restored)."""
        raise CheckpointError(f"the {self.name} component cannot resume {tag!r}")

    def advance_to(self, time_s: float) -> None:
        """Bring this component's state, and the fields it writes, to *time_s* (s).

        Called by the engine at every coupling time, in registry order, and
        before an action or a trigger acts at an off-step time. Must be
        idempotent: a second call at the same time changes nothing.
        """

    def check_action(self, action: Action) -> str | None:
        """A message if *action* names something this World lacks, else None."""
        return None

    def on_action(self, action: Action) -> None:
        """Carry out a plan action at ``env.now``."""
        raise SimulationError(f"component {self.name} has no handler for action {action.kind}")

    def sample(self) -> dict[str, float]:
        """Time-series values at ``env.now``, keyed as in ``samples``."""
        return {}

    def summary(self) -> dict[str, Any]:
        """This component's section of ``summary.json`` (SI units)."""
        return {}

    def outputs(self) -> dict[str, Any]:
        """Extra results for the output folder (rasters, tables), by name."""
        return {}
