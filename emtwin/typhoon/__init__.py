"""The typhoon hazard's models, as pure functions and small state holders.

- :mod:`emtwin.typhoon.wind`: the wind field of a storm track on a grid at a time.
- :mod:`emtwin.typhoon.accumulate`: running max wind, max gust, arrival time.
- :mod:`emtwin.typhoon.rain`: R-CLIPER rain that moves with the storm.
- :mod:`emtwin.typhoon.surge`: sea level from the inverse barometer and wind setup.
- :mod:`emtwin.typhoon.fragility`: road blockage by gusts (lognormal fragility).
- :mod:`emtwin.typhoon.model`: all of these built for one World
  (:class:`~emtwin.typhoon.model.TyphoonModel`, the component's API).

Nothing here knows the engine; the typhoon component calls these each
coupling step (docs/typhoon.md, "API").
"""
