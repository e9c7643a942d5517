"""The simulation components, in the order the engine advances them.

Hazards come first (they write the fields the others read), then roads,
evacuation, incidents and dispatch. To add a component: subclass
:class:`emtwin.sim.component.Component`, declare its ``name``, ``requires``,
``reads``, ``writes``, ``actions`` and ``samples``, and append the class to
:data:`REGISTRY`. To add a hazard: a scenario model with ``type:
Literal["name"]``, a kernel, a component with ``hazard_type = "name"``, and one
call of :func:`register_hazard`. See docs/engine.md.
"""

from pydantic import BaseModel

from emtwin.scenarios.models import register_hazard_model, unregister_hazard_model
from emtwin.sim.component import Component
from emtwin.sim.components.consequences import ConsequencesComponent
from emtwin.sim.components.dispatch import DispatchComponent
from emtwin.sim.components.evacuation import EvacuationComponent
from emtwin.sim.components.hazard import FloodComponent
from emtwin.sim.components.incidents import IncidentsComponent
from emtwin.sim.components.roads import RoadsComponent
from emtwin.sim.metric import RUN_METRICS, Metric

#: Hazard components, in the order they advance (each writes its own fields).
HAZARDS: list[type[Component]] = [FloodComponent]
#: Registered component classes, in the order they advance: hazards first.
REGISTRY: list[type[Component]] = [*HAZARDS, RoadsComponent, EvacuationComponent]
REGISTRY += [ConsequencesComponent, IncidentsComponent, DispatchComponent]


def declared_metrics() -> dict[str, tuple[Metric, ...]]:
    """Every declared metric by ``summary.json`` section, in registry order, ``run`` last."""
    out = {c.name: c.metrics for c in REGISTRY if c.metrics}
    out["run"] = RUN_METRICS
    return out


def summary_keys() -> dict[str, tuple[str, ...]]:
    """The headline (contract) keys of ``summary.json`` by section."""
    return {s: tuple(m.key for m in ms if m.headline) for s, ms in declared_metrics().items()}


def register_hazard(model: type[BaseModel], component: type[Component], *,
                    before: str | None = None) -> None:
    """Plug a new hazard in: its scenario model (tagged on ``type``) and its component.

    The component advances after the hazards already registered and before
    every other component; with *before* (a hazard type, e.g. ``"flood"``) it
    advances just before that hazard's component instead, because it writes
    fields that hazard reads (the typhoon's rain and sea level feed the
    flood). Registering the same pair again changes nothing.

    Raises
    ------
    ValueError
        If *before* names no registered hazard type.
    """
    register_hazard_model(model)
    if component in HAZARDS:
        return
    at = len(HAZARDS)
    if before is not None:
        types = [h.hazard_type for h in HAZARDS]
        if before not in types:
            raise ValueError(f"register_hazard: no hazard of type {before!r} to go before "
                             f"(registered: {', '.join(map(str, types))})")  # fmt: skip
        at = types.index(before)
    REGISTRY.insert(REGISTRY.index(HAZARDS[at]) if at < len(HAZARDS) else len(HAZARDS), component)
    HAZARDS.insert(at, component)


def unregister_hazard(model: type[BaseModel], component: type[Component]) -> None:
    """Remove a hazard added by :func:`register_hazard` (tests)."""
    if component in HAZARDS and component is not FloodComponent:
        HAZARDS.remove(component)
        REGISTRY.remove(component)
        unregister_hazard_model(model.model_fields["type"].default)


__all__ = ["REGISTRY", "HAZARDS", "register_hazard", "unregister_hazard", "FloodComponent",
           "declared_metrics", "summary_keys"]
__all__ += ["RoadsComponent", "EvacuationComponent", "IncidentsComponent", "DispatchComponent",
            "ConsequencesComponent"]
__all__ += ["TyphoonComponent"]


# ---------------------------------------------------------------------------- built-in hazards
# (the flood is the first entry of HAZARDS; each other hazard is one registry line)

from emtwin.scenarios.typhoon import TyphoonHazard  # noqa: E402
from emtwin.sim.components.typhoon import TyphoonComponent  # noqa: E402

register_hazard(TyphoonHazard, TyphoonComponent, before="flood")
