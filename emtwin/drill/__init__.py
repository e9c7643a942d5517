"""Interactive drills: a live run played from a web page (``emtwin drill``).

- :mod:`emtwin.drill.session`: the live Simulation, paced in a background thread;
- :mod:`emtwin.drill.live`: what the page shows now (headline figures, map state);
- :mod:`emtwin.drill.injects`: the master schedule of injects (MSEL CSV);
- :mod:`emtwin.drill.decisions`: the decisions log (``decisions.jsonl``);
- :mod:`emtwin.drill.whatif`: forks of the current state, run side by side;
- :mod:`emtwin.drill.forecast`: the ensemble forecast from now (members forked from the
  live checkpoint), and :mod:`emtwin.drill.forecast_view`, its panel on the page;
- :mod:`emtwin.drill.after_action`: the after-action review (``after-action.html``);
- :mod:`emtwin.drill.app` and :mod:`emtwin.drill.page`: the web application and its page.
"""

from __future__ import annotations

__all__: list[str] = []
