"""Statistics of a plan comparison: means with 95 % intervals and paired differences.

Every plan runs on the same seeds and the same sampled uncertainties as the base
(common random numbers), so plan *p*'s run *i* and the base's run *i* differ only by
the plan. For each metric the difference is taken run by run, ``d_i = x_p,i - x_base,i``,
and summarised with the paired t interval (Student 1908):
``mean(d) +- t(0.975, n-1) * sd(d) / sqrt(n)``, over the runs where both plans finished
and have the metric. A difference is *significant* when its 95 % interval excludes 0
(two-sided p < 0.05). Each comparison is tested on its own: with many metrics and
plans some differences are significant by chance (no multiplicity correction).
Each plan's own mean has the one-sample t interval. The intervals assume the mean
(of the differences) is close to normal, which holds for a few dozen runs or more.

Bounded metrics (:func:`metric_bounds`: index scores 0-100, shares 0-1, people counts
0 to the residents, counts, times, areas and volumes >= 0) have their intervals clipped
to what the mean can take, ``[low, high]`` for a mean and ``[low - high, high - low]``
for a difference: a t interval of a few runs of counts near 0 would reach below 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from emtwin.sim.components import declared_metrics

__all__ = [
    "comparison_table",
    "headline",
    "outcome_metrics",
    "better_direction",
    "t_interval",
    "metric_bounds",
    "LEVEL",
]

#: Confidence level of every interval.
LEVEL = 0.95

#: Which way is better, per ``section.key`` and per key alone (for nested figures such as
#: ``dispatch.by_priority.1.response_p90_s``), from the components' metric declarations.
_BETTER = {f"{sec}.{m.key}": m.better for sec, ms in declared_metrics().items() for m in ms
           if m.better is not None}  # fmt: skip
_BETTER_BY_KEY = {k.split(".", 1)[1]: b for k, b in reversed(list(_BETTER.items()))}
_NOT_OUTCOMES = ("param.", "scale.", "run.", "world.")
_META = frozenset({"plan", "run", "seed", "status", "wall_s", "error"})


def better_direction(metric: str) -> str | None:
    """``higher`` or ``lower`` where a metric has a better direction, else None."""
    if metric.startswith("index."):
        if not metric.endswith(".value"):
            return "higher"
        return "higher" if metric == "index.safe.value" else "lower"
    parts = metric.split(".")
    # a mapping value flattens to section.key.NAME: it shares its key's direction
    found = _BETTER.get(".".join(parts[:2]))
    return found if found is not None else _BETTER_BY_KEY.get(parts[-1])


def outcome_metrics(table: pd.DataFrame) -> list[str]:
    """The numeric outcome columns of a results table that hold a value (not inputs, timings,
    run or world counts)."""
    out = []
    for c in table.columns:
        if c in _META or c.startswith(_NOT_OUTCOMES) or c.endswith("wall_s"):
            continue
        col = table[c]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if numeric and col.notna().any():
            out.append(c)
    return out


#: Index parts whose ``.value`` is a share (0-1); the others are times (s).
_SHARE_PARTS = ("safe", "exposed", "unserved", "damage", "life_loss")
#: Evacuation keys counting people (0 to ``evacuation.people``), by their dotted start.
_PEOPLE = ("sheltered", "out", "stranded", "never_left", "travelling", "warned", "exposed",
           "exposed_by_aidr.", "exposed_by_peak_aidr.", "stayed_exposed_by_peak_aidr.")
#: Evacuation keys counting households (0 to ``evacuation.households``).
_HOUSEHOLDS = ("exposed_households", "on_foot_households", "trips_of_households",
               "households_by_state.")
#: Name endings of quantities that cannot be negative: times, lengths, areas, volumes,
#: counts, rates.
_NON_NEGATIVE = ("_s", "_m", "_m2", "_m3", "_h", "_mm", "calls", "served", "units", "people",
                 "households", "vehicles", "cells", "count", "roads_closed", "turned_away",
                 "rerouted", "replans", "exits", "shelters", "capacity", "utilisation_mean")


def metric_bounds(metric: str, table: pd.DataFrame | None = None) -> tuple[float, float]:
    """The values a metric can take, ``(low, high)``: ``(0, 100)`` for the index and its part
    scores, ``(0, 1)`` for shares, ``(0, N)`` for evacuation counts of people (N: the
    largest ``evacuation.people`` in *table*; households alike) and dispatch's served and
    unserved calls (N: ``dispatch.calls``), ``(0, inf)`` for other counts, times, lengths,
    areas and volumes, ``(-inf, inf)`` when unknown."""
    inf = math.inf

    def most(col: str) -> float:
        if table is None or col not in table or not table[col].notna().any():
            return inf
        return float(table[col].max())

    if metric.startswith("index."):
        part = metric.removeprefix("index.")
        if part.endswith(".value"):
            return (0.0, 1.0) if part.removesuffix(".value") in _SHARE_PARTS else (0.0, inf)
        return 0.0, 100.0
    section, _, rest = metric.partition(".")
    if metric.endswith(("utilisation_mean", "_share")):
        return 0.0, 1.0
    if section == "evacuation" and (rest in _PEOPLE or rest.startswith(_PEOPLE[-3:])):
        return 0.0, most("evacuation.people")
    if section == "evacuation" and (rest in _HOUSEHOLDS or rest.startswith(_HOUSEHOLDS[-1])):
        return 0.0, most("evacuation.households")
    if section == "dispatch" and rest in ("served", "unserved"):
        return 0.0, most("dispatch.calls")
    if metric.endswith(_NON_NEGATIVE) or better_direction(metric):
        return 0.0, inf
    return -inf, inf


def t_interval(
    x: np.ndarray, level: float = LEVEL, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[float, float, float, float]:
    """(mean, low, high, two-sided p of mean = 0) of the t interval of *x*'s mean.

    NaN bounds for fewer than two values; a zero spread gives a zero-width
    interval (and p = 1 for a mean of 0, else 0). The interval is clipped to
    *bounds*, the values the mean can take (the p-value is not changed).
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n == 0:
        return (math.nan,) * 4
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        return m, m, m, 1.0 if m == 0 else 0.0
    se = sd / math.sqrt(n)
    h = float(_st.t.ppf(0.5 + level / 2, n - 1)) * se
    p = float(2 * _st.t.sf(abs(m) / se, n - 1))
    return m, max(m - h, bounds[0]), min(m + h, bounds[1]), p


def comparison_table(
    table: pd.DataFrame, *, base: str, metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per (metric, plan): mean and 95 % interval; paired difference from *base*.

    Parameters
    ----------
    table
        The results table: columns ``plan``, ``run``, ``status`` and the metrics.
    base
        The plan the others are compared with.
    metrics
        Columns to compare (default: :func:`outcome_metrics`).

    Returns
    -------
    DataFrame with ``metric, plan, n, mean, ci_low, ci_high, diff_n, diff_mean,
    diff_ci_low, diff_ci_high, diff_rel, p_value, significant, better, verdict``;
    the base's difference columns are NaN. ``diff_rel`` is the mean difference
    over the base's mean; ``better`` the metric's good direction (``higher``,
    ``lower`` or empty); ``verdict`` one of ``better``, ``worse``, ``differs``
    (significant, no good direction), ``no significant difference`` or ``base``.
    """
    done = table[table["status"] == "done"]
    metrics = list(metrics) if metrics is not None else outcome_metrics(done)
    plans = list(dict.fromkeys(table["plan"]))
    by_plan = {p: done[done["plan"] == p].set_index("run") for p in plans}
    rows: list[dict[str, Any]] = []
    for m in metrics:
        direction = better_direction(m)
        lo_b, hi_b = metric_bounds(m, done)
        diff_b = (lo_b - hi_b, hi_b - lo_b)
        b = by_plan[base][m].dropna() if m in by_plan[base] else pd.Series(dtype=float)
        for p in plans:
            x = by_plan[p][m].dropna() if m in by_plan[p] else pd.Series(dtype=float)
            mean, lo, hi, _ = t_interval(x.to_numpy(), bounds=(lo_b, hi_b))
            row: dict[str, Any] = {"metric": m, "plan": p, "n": int(x.size), "mean": mean,
                                   "ci_low": lo, "ci_high": hi}  # fmt: skip
            if p == base:
                row.update(diff_n=0, diff_mean=math.nan, diff_ci_low=math.nan,
                           diff_ci_high=math.nan, diff_rel=math.nan, p_value=math.nan,
                           significant=False, better=direction or "", verdict="base")  # fmt: skip
            else:
                runs = x.index.intersection(b.index)
                d = (x.loc[runs] - b.loc[runs]).to_numpy(dtype=float)
                dm, dlo, dhi, pv = t_interval(d, bounds=diff_b)
                sig = bool(d.size >= 2 and (dlo > 0 or dhi < 0))
                bm = float(b.loc[runs].mean()) if len(runs) else math.nan
                verdict = "no significant difference"
                if sig:
                    good = (dm > 0) == (direction == "higher")
                    verdict = "differs" if direction is None else ("better" if good else "worse")
                row.update(diff_n=int(d.size), diff_mean=dm, diff_ci_low=dlo, diff_ci_high=dhi,
                           diff_rel=dm / abs(bm) if bm else math.nan, p_value=pv,
                           significant=sig, better=direction or "", verdict=verdict)  # fmt: skip
            rows.append(row)
    cols = ["metric", "plan", "n", "mean", "ci_low", "ci_high", "diff_n", "diff_mean",
            "diff_ci_low", "diff_ci_high", "diff_rel", "p_value", "significant", "better",
            "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


#: Metrics tried, in order, for the headline of a comparison.
HEADLINE_METRICS = ("index.score", "evacuation.stranded", "dispatch.response_p90_s",
                    "evacuation.t90_s", "dispatch.unserved")  # fmt: skip


def _fmt(x: float) -> str:
    return f"{x:+,.4g}"


def headline(stats: pd.DataFrame, *, base: str) -> str:
    """One sentence: which plan won on the headline metric, by how much, with its interval.

    The headline metric is the response index where the runs have one, else the
    first of :data:`HEADLINE_METRICS` they have.
    """
    have = stats[(stats["n"] > 0)]
    metric = next((m for m in HEADLINE_METRICS if (have["metric"] == m).any()), None)
    if metric is None:
        metric = next((m for m in have["metric"] if better_direction(m)), None)
    if metric is None:
        return "no metric with a better direction to compare on"
    rows = stats[(stats["metric"] == metric) & (stats["plan"] != base)]
    if rows.empty:
        return f"{metric}: only the base ran"
    direction = better_direction(metric)
    sign = 1.0 if direction == "higher" else -1.0
    best = rows.loc[(sign * rows["diff_mean"]).fillna(-math.inf).idxmax()]
    what = f"{metric} {'(higher is better)' if sign > 0 else '(lower is better)'}"
    interval = (f"{_fmt(best['diff_mean'])} (95% CI {_fmt(best['diff_ci_low'])} to "
                f"{_fmt(best['diff_ci_high'])}, paired over {best['diff_n']} runs)")  # fmt: skip
    if best["verdict"] == "better":
        return f"{best['plan']} wins on {what}: {interval} against {base}"
    if (rows["verdict"] == "worse").all():
        return f"{base} wins on {what}: every plan is worse; the least bad, {best['plan']}: " \
               f"{interval}"  # fmt: skip
    return f"no plan differs significantly from {base} on {what}; best: {best['plan']} " \
           f"{interval}"  # fmt: skip
