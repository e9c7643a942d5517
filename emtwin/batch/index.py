"""The response index: one 0-100 score per run, always shown beside its parts.

Each part is a metric of the run mapped linearly onto 0-100 between a *best* value
(100) and a *worst* value (0), clipped; the index is the weighted mean of the parts
the run has. A part whose metric the run lacks (no evacuation component, no calls)
is left out and the weights of the others are renormalised; :class:`IndexScore`
says which parts were used.

Parts (weights and [best, worst] by default; the scenario's ``response_index``
section changes them):

============ ========================================================= ====== ===============
part         metric                                                    weight best, worst
============ ========================================================= ====== ===============
safe         share of residents out or sheltered at the end: people      0.30 1, 0
             whose roads closed before they got away are stranded or
             still at home and do not count (evacuation.out +
             evacuation.sheltered) / evacuation.people
exposed      share of residents who met AIDR hazard class H3 or worse    0.30 0, 0.05
             while exposed at home, by the worst class each met
             (evacuation.exposed_by_peak_aidr.3..6 / people; runs
             without that key: exposed_by_aidr, the class at first
             exposure, which can only be lower)
response_p1  90th percentile response time of priority-1 calls, s        0.15 15 min, 60 min
response_p2  90th percentile response time of priority-2 calls, s        0.10 40 min, 160 min
unserved     share of calls no unit reached (dispatch.unserved / calls)  0.15 0, 0.2
damage       share of the buildings' value damaged                       0.10 0, 0.05
             (consequences.damage_total / consequences.value_total)
life_loss    expected deaths per resident (consequences.life_loss_mean   0.20 0, 0.001
             / consequences.people)
============ ========================================================= ====== ===============

The response-time targets are the 90th-centile standards of the NHS England
Ambulance Response Programme (category 1: 15 min, category 2: 40 min), with zero
at four times the standard. The damage and life-loss targets are planning
assumptions (zero at 5 % of the building stock's value, and at one expected death
per thousand residents), to be set per study in ``response_index.targets``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from emtwin.scenarios.models import ResponseIndex, _si_value

__all__ = [
    "PARTS", "Part", "IndexScore", "part_values", "response_index", "index_columns", "settings",
    "describe",
]


@dataclass(frozen=True)
class Part:
    """One part of the index: what it measures, its unit, default weight and targets."""

    label: str
    unit: str
    weight: float
    best: float
    worst: float


#: The parts of the index, in report order.
PARTS: dict[str, Part] = {
    "safe": Part("residents out or sheltered", "share", 0.30, 1.0, 0.0),
    "exposed": Part("residents exposed to AIDR H3 or worse", "share", 0.30, 0.0, 0.05),
    "response_p1": Part("p90 response, priority 1", "s", 0.15, 900.0, 3600.0),
    "response_p2": Part("p90 response, priority 2", "s", 0.10, 2400.0, 9600.0),
    "unserved": Part("calls never reached", "share", 0.15, 0.0, 0.2),
    "damage": Part("share of the building value damaged", "share", 0.10, 0.0, 0.05),
    "life_loss": Part("expected deaths per resident", "share", 0.20, 0.0, 1e-3),
}


def settings(spec: ResponseIndex | None) -> dict[str, tuple[float, float, float]]:
    """Each part's (weight, best, worst): the defaults with the scenario's values laid over."""
    out = {}
    for name, p in PARTS.items():
        w, best, worst = p.weight, p.best, p.worst
        if spec is not None:
            w = float(spec.weights.get(name, w))
            if name in spec.targets:
                best, worst = (_si_value(x) for x in spec.targets[name])
        out[name] = (w, best, worst)
    return out


def _get(m: Mapping[str, float], key: str) -> float:
    v = m.get(key)
    return float(v) if v is not None and math.isfinite(float(v)) else math.nan


def _exposure_key(metrics: Mapping[str, float]) -> str:
    """``exposed_by_peak_aidr`` where the run has it, else (older runs) ``exposed_by_aidr``."""
    peak = (_get(metrics, f"evacuation.exposed_by_peak_aidr.{k}") for k in range(1, 7))
    return "exposed_by_peak_aidr" if any(math.isfinite(v) for v in peak) \
        else "exposed_by_aidr"  # fmt: skip


def part_values(metrics: Mapping[str, float]) -> dict[str, float]:
    """Each part's metric from a run's flattened metrics (NaN where the run lacks it)."""
    people = _get(metrics, "evacuation.people")
    if not people > 0:  # also NaN: no evacuation in the run
        people = math.nan
    safe = (_get(metrics, "evacuation.out") + _get(metrics, "evacuation.sheltered")) / people
    exposed = sum(_get(metrics, f"evacuation.{_exposure_key(metrics)}.{k}")
                  for k in range(3, 7)) / people  # fmt: skip
    calls = _get(metrics, "dispatch.calls")
    unserved = _get(metrics, "dispatch.unserved") / calls if calls > 0 else math.nan
    value = _get(metrics, "consequences.value_total")
    damage = _get(metrics, "consequences.damage_total") / value if value > 0 else math.nan
    residents = _get(metrics, "consequences.people")
    life = (_get(metrics, "consequences.life_loss_mean") / residents if residents > 0
            else math.nan)  # fmt: skip
    return {
        "safe": safe,
        "exposed": exposed,
        "response_p1": _get(metrics, "dispatch.by_priority.1.response_p90_s"),
        "response_p2": _get(metrics, "dispatch.by_priority.2.response_p90_s"),
        "unserved": unserved,
        "damage": damage,
        "life_loss": life,
    }


@dataclass
class IndexScore:
    """A run's index: ``score`` (0-100, NaN when no part is available) and its parts.

    ``values`` holds each part's metric, ``scores`` its 0-100 score, ``weights`` the
    weight it carried after renormalisation (0 when left out), ``left_out`` the parts
    the run lacked.
    """

    score: float
    values: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


def response_index(metrics: Mapping[str, float], spec: ResponseIndex | None = None) -> IndexScore:
    """The response index of one run from its flattened metrics (see the module notes)."""
    cfg = settings(spec)
    values = part_values(metrics)
    scores, used = {}, {}
    for name, (w, best, worst) in cfg.items():
        v = values[name]
        s = float(np.clip((v - worst) / (best - worst), 0.0, 1.0)) * 100 if math.isfinite(v) \
            else math.nan
        scores[name] = s
        if w > 0 and math.isfinite(s):
            used[name] = w
    total = sum(used.values())
    weights = {n: (used.get(n, 0.0) / total if total else 0.0) for n in cfg}
    score = sum(weights[n] * scores[n] for n in used) if total else math.nan
    left = [n for n, (w, _, _) in cfg.items() if w > 0 and n not in used]
    return IndexScore(score, values, scores, weights, left)


def index_columns(metrics: pd.DataFrame, spec: ResponseIndex | None = None) -> pd.DataFrame:
    """Index columns for a table of flattened metrics (one row per run).

    Columns: ``index.score``, and per part ``index.PART`` (its 0-100 score) and
    ``index.PART.value`` (its metric); NaN where a run lacks the part.
    """
    rows: list[dict[str, Any]] = []
    for rec in metrics.to_dict("records"):
        ix = response_index({k: v for k, v in rec.items() if isinstance(v, int | float)}, spec)
        row = {"index.score": ix.score}
        for n in PARTS:
            row[f"index.{n}"] = ix.scores[n]
            row[f"index.{n}.value"] = ix.values[n]
        rows.append(row)
    cols = ["index.score"] + [c for n in PARTS for c in (f"index.{n}", f"index.{n}.value")]
    return pd.DataFrame(rows, columns=cols, index=metrics.index, dtype=float)


def describe(metrics: pd.DataFrame, spec: ResponseIndex | None = None) -> str:
    """One line saying which parts the index of these runs was built from, and which not."""
    cfg = settings(spec)
    have = {n for n in PARTS if f"index.{n}" in metrics and metrics[f"index.{n}"].notna().any()}
    active = [n for n, (w, _, _) in cfg.items() if w > 0]
    used = [n for n in active if n in have]
    left = [n for n in active if n not in have]
    if not used:
        return ("response index: not available (the runs have none of its parts: "
                + ", ".join(active) + ")")  # fmt: skip
    w = sum(cfg[n][0] for n in used)
    text = "response index (0-100) from " + ", ".join(
        f"{n} {100 * cfg[n][0] / w:.0f}%" for n in used
    )
    if left:
        text += "; left out (not in these runs), weights renormalised: " + ", ".join(left)
    return text
