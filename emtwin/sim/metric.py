"""Metric declarations: one list from which every summary, report, table and index reads.

Each component declares the metrics of its section of ``summary.json`` as
:class:`Metric` records (key, label, unit, which way is better, whether it is a
headline of the contract). ``summary.json``'s fixed keys, the console summary,
the run report's headline tables, the comparison's better directions and the
figures ``emtwin batch`` prints are all derived from these declarations
(:func:`emtwin.sim.components.declared_metrics`), so a metric is described once.

Units: ``s`` is simulated time (shown as h:mm), ``wall s`` compute time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Metric", "RUN_METRICS"]


@dataclass(frozen=True)
class Metric:
    """One figure of a section of ``summary.json``.

    Attributes
    ----------
    key
        Its key in the section (``t90_s``); a mapping value (``max_depth_by_gauge``)
        flattens to ``key.NAME`` columns in batch tables, which share its direction.
    label
        What a person reads (``90% evacuated by (t90)``).
    unit
        ``s`` (simulated time), ``wall s`` (compute time), ``m²``, ``m³``, ``m``,
        ``share``, ``edges`` or ``""`` (a count or a number without unit).
    better
        ``lower``, ``higher`` or None (neither: a size, a setting).
    headline
        A fixed key of the contract: always in ``summary.json`` (null when the
        component does not run) and in the report's headline tables.
    shown
        Printed by ``emtwin batch`` and ``compare`` after the response index.
    """

    key: str
    label: str
    unit: str = ""
    better: Literal["lower", "higher"] | None = None
    headline: bool = True
    shown: bool = False


#: The engine's own section, ``run``.
RUN_METRICS: tuple[Metric, ...] = (
    Metric("scenario", "Scenario"),
    Metric("seed", "Seed"),
    Metric("wall_s", "Wall time of the run", "wall s"),
)
