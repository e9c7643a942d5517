"""Helpers of the evacuation component (:mod:`emtwin.sim.components.evacuation`).

- :mod:`~emtwin.sim.evacuation.departure`: warning-reach and departure delay curves;
- :mod:`~emtwin.sim.evacuation.households`: households, zones, mode of travel;
- :mod:`~emtwin.sim.evacuation.shelters`: shelter occupancy and exits;
- :mod:`~emtwin.sim.evacuation.walkers`: pedestrians on shortest walking paths;
- :mod:`~emtwin.sim.evacuation.records`: events, trips, tables and the summary.
"""
