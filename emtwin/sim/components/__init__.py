"""The simulation components, in the order the engine starts them.

To add one: subclass :class:`emtwin.sim.component.Component`, declare its
``name``, ``requires``, ``actions`` and ``samples``, and append the class to
:data:`REGISTRY`. See docs/engine.md.
"""

from emtwin.sim.component import Component
from emtwin.sim.components.dispatch import DispatchComponent
from emtwin.sim.components.evacuation import EvacuationComponent
from emtwin.sim.components.hazard import HazardComponent
from emtwin.sim.components.incidents import IncidentsComponent
from emtwin.sim.components.roads import RoadsComponent

#: Registered component classes, in start order (the flood first: others read its state).
REGISTRY: list[type[Component]] = [HazardComponent, RoadsComponent, EvacuationComponent]
REGISTRY += [IncidentsComponent, DispatchComponent]

__all__ = ["REGISTRY", "HazardComponent", "RoadsComponent", "EvacuationComponent"]
__all__ += ["IncidentsComponent", "DispatchComponent"]
