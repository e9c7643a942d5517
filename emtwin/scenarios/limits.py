"""Limits that keep a run's memory, time and output bounded, whatever the scenario says.

Each limit is named in docs/scenario.md. A scenario over one is refused at load
with the file, line and key, and the value that would fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emtwin.scenarios.models import Scenario

__all__ = ["MAX_DURATION_S", "MAX_OUTPUT_STEPS", "MAX_BACKGROUND_CALLS", "limit_problems"]

#: Longest simulated time, s (7 days).
MAX_DURATION_S = 7 * 86400.0
#: Most output times (``duration / outputs.every``) of a run: rows of the time
#: series and candidate map frames.
MAX_OUTPUT_STEPS = 10_000
#: Most background calls a run may expect (``background_rate x duration``).
MAX_BACKGROUND_CALLS = 100_000


def _hm(seconds: float) -> str:
    """A duration for messages: ``2.5 s``, ``15 min``, ``3 h`` or ``7 d``."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def limit_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """(key path, message) for each limit *sc* goes over; empty when it fits."""
    out: list[tuple[tuple, str]] = []
    if sc.duration > MAX_DURATION_S:
        out.append((("duration",), f"{_hm(sc.duration)} is longer than the limit of "
                    f"{_hm(MAX_DURATION_S)} of simulated time"))  # fmt: skip
        return out
    steps = sc.duration / sc.outputs.every
    if steps > MAX_OUTPUT_STEPS:
        fit = sc.duration / MAX_OUTPUT_STEPS
        out.append((("outputs", "every"), (
            f"every {_hm(sc.outputs.every)} over {_hm(sc.duration)} is {steps:,.0f} output "
            f"times (limit {MAX_OUTPUT_STEPS:,}); use every: {_hm(fit)} or more")))  # fmt: skip
    if sc.response is not None:
        rate = sc.response.incidents.background_rate
        calls = rate * sc.duration
        if calls > MAX_BACKGROUND_CALLS:
            fit = MAX_BACKGROUND_CALLS / sc.duration * 3600
            out.append((("response", "incidents", "background_rate"), (
                f"{rate * 3600:.4g}/h over {_hm(sc.duration)} is {calls:,.0f} calls expected "
                f"(limit {MAX_BACKGROUND_CALLS:,}); use {fit:.4g}/h or less")))  # fmt: skip
    return out
