"""Consequences of a flood: building damage, life loss, loss of critical facilities.

Pure array modules, called by a simulation component each coupling step and
at the end of a run:

- :mod:`emtwin.consequences.defaults`: every default, with its source;
- :mod:`emtwin.consequences.curves`: depth-damage curves (JRC built in, CSV);
- :mod:`emtwin.consequences.damage`: maximum depth over footprints, damage;
- :mod:`emtwin.consequences.life_loss`: Jonkman (2008) and LifeSim zones;
- :mod:`emtwin.consequences.facilities`: loss of function by depth.

Buildings are read by :mod:`emtwin.geo.buildings`.
"""
