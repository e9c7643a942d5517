"""The SimPy engine: Simulation, its components, the recorder and output writing."""

from emtwin.sim.component import Component
from emtwin.sim.engine import SUMMARY_KEYS, Results, Simulation

__all__ = ["Component", "Results", "SUMMARY_KEYS", "Simulation"]
