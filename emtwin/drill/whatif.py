"""What-if from now: two forks of the drill's current state, played side by side.

Both forks continue from one checkpoint on the same random streams (common
random numbers), so their difference is due to the decisions alone: fork A
keeps the current decisions (and the scripted actions still to come), fork B
lays an alternative plan over them (a plan file, or ``actions: []``, "no
further action").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from emtwin.drill.live import HEADLINE_LABELS, headline
from emtwin.sim.engine import Simulation

__all__ = ["run_whatif", "COMPARED"]

#: The figures compared, and whether more is better (True), worse (False).
COMPARED: dict[str, bool] = {
    "warned": True, "left": True, "sheltered": True, "out": True, "stranded": False,
    "exposed": False, "calls_waiting": False, "calls_lost": False, "response_p90_s": False,
    "roads_closed": False, "index": True,
}  # fmt: skip


def run_whatif(checkpoint: Any, plan: str | Path, until_s: float, *, label: str = "",
               world: Any = None, allow_code: bool = False) -> dict[str, Any]:  # fmt: skip
    """Play fork A (as is) and fork B (*plan* laid over) from *checkpoint* to *until_s* (s).

    Returns
    -------
    dict
        ``state`` ("done"), ``from_s``, ``to_s``, ``alternative``, and ``rows``:
        for each compared figure its label, A's and B's values, B - A and which is better.
    """
    a = Simulation.from_checkpoint(checkpoint, world=world, allow_code=allow_code)
    b = Simulation.from_checkpoint(checkpoint, plans=[plan], world=world, allow_code=allow_code)
    a.run_until(until_s)
    b.run_until(until_s)
    ha, hb = headline(a), headline(b)
    rows = []
    for key, more_better in COMPARED.items():
        va, vb = ha.get(key), hb.get(key)
        if va is None and vb is None:
            continue
        diff = vb - va if va is not None and vb is not None else None
        better = None
        if diff is not None and not math.isclose(diff, 0.0, abs_tol=1e-9):
            better = "B" if (diff > 0) == more_better else "A"
        rows.append({"key": key, "label": HEADLINE_LABELS[key], "a": va, "b": vb, "diff": diff,
                     "better": better})  # fmt: skip
    return {"state": "done", "from_s": float(checkpoint.time_s), "to_s": float(until_s),
            "alternative": label or str(plan), "rows": rows}  # fmt: skip
