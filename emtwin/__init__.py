"""emtwin: an emergency-management digital-twin simulation engine.

A scenario file describes a place (terrain, roads, people, facilities), a hazard
and a response plan; :class:`emtwin.sim.Simulation` plays it forward in simulated
time (seconds since the scenario start) and returns Results.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
