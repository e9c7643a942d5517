"""Checks of a run's make-up told before it plays: components, fields, actions, clock."""

from __future__ import annotations

from typing import Any

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Scenario
from emtwin.sim.component import Component
from emtwin.sim.components import REGISTRY
from emtwin.sim.triggers import check_triggers

__all__ = ["component_classes", "check_actions", "check_fields", "coupling_step",
           "DEFAULT_COUPLING_S", "all_actions"]

#: The coupling step when the scenario sets none, s.
DEFAULT_COUPLING_S = 60.0


def component_classes() -> list[type[Component]]:
    """Every registered component class, in the order they are started."""
    return list(REGISTRY)


def check_actions(scenario: Scenario) -> list[str]:
    """Problems with the plan timeline that can be told without building the World.

    Each action kind must be carried out by a component the scenario enables.
    """
    enabled = [c for c in component_classes() if c.enabled(scenario)]
    handled = {k: c for c in enabled for k in c.actions}
    problems = []
    written = {f for c in enabled for f in c.writes}
    for where, a in all_actions(scenario):
        if a.when is not None and a.when.rain is not None and a.when.rain.field not in written:
            problems.append(f"{where}: the rain trigger reads the field {a.when.rain.field!r}, "
                            "which no hazard in this scenario writes (a typhoon writes "
                            "rain__rate when the scenario also has a flood)")  # fmt: skip
        if a.kind not in handled:
            who = [c for c in component_classes() if a.kind in c.actions]
            hint = (
                f"it is carried out by the {who[0].name} component, which this scenario does "
                f"not enable ({_enable_hint(who[0].name)})"
                if who
                else "no component of this version carries it out"
            )
            problems.append(f"{where}: {a.kind}: {hint}")
    return problems + check_triggers(scenario)


def all_actions(scenario: Scenario) -> list[tuple[str, Any]]:
    """(where, action) of the plan's actions and of its warning rules."""
    out = [(scenario.where("actions", i), a) for i, a in enumerate(scenario.actions)]
    return out + [(scenario.where("warning_rules", k, "then"), r.action())
                  for k, r in enumerate(scenario.warning_rules)]  # fmt: skip


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
