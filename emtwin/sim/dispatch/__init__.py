"""Resource dispatch: calls, units, policies and travel (see docs/dispatch.md).

The queueing core (:class:`DispatchCore`) is independent of roads: a travel
model (:class:`WorldTravel` on the World, :class:`MatrixTravel` from a table)
says where units can go and how long it takes.
"""

from emtwin.sim.dispatch.core import DispatchCore
from emtwin.sim.dispatch.legs import Call, Leg, Unit
from emtwin.sim.dispatch.policies import CallView, UnitView, closest, load_policy
from emtwin.sim.dispatch.travel import MatrixTravel, RoadGraph, Travel, WorldTravel

__all__ = [
    "DispatchCore",
    "Call",
    "Leg",
    "Unit",
    "CallView",
    "UnitView",
    "closest",
    "load_policy",
    "MatrixTravel",
    "RoadGraph",
    "Travel",
    "WorldTravel",
]
