"""The comparison report: several plans, each run on one or more seeds, side by side.

The batch runner feeds :func:`render_comparison` with, per plan, its runs:
``RunRecord`` objects, summary dicts (as ``summary.json``), or output folders.
The page shows, for every headline metric, each plan's mean and range over its
runs and the difference from the baseline plan, bar charts of the same, and
time series of every plan overlaid (median over runs, band from min to max).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from emtwin.batch.compare import metric_bounds
from emtwin.errors import EmtwinError
from emtwin.viz._html import HEADLINES, data_value, esc, fmt_value, img, page, table
from emtwin.viz.charts import png_bytes

__all__ = [
    "RunRecord",
    "load_run",
    "metric_stats",
    "comparison_html",
    "render_comparison",
    "DEFAULT_METRICS",
    "COMPARE_SERIES",
]

#: Metrics compared by default (dotted summary keys), when any run has them.
DEFAULT_METRICS: tuple[str, ...] = (
    "flood.peak_flooded_area_m2", "flood.peak_volume_m3", "flood.roads_closed",
    "evacuation.sheltered", "evacuation.out", "evacuation.stranded", "evacuation.never_left",
    "evacuation.t50_s", "evacuation.t90_s", "evacuation.clearance_s",
    "dispatch.calls", "dispatch.served", "dispatch.unserved", "dispatch.response_p50_s",
    "dispatch.response_p90_s", "dispatch.wait_mean_s", "dispatch.utilisation_mean",
)  # fmt: skip
#: Time-series columns overlaid by default, when any run has them: column -> label.
COMPARE_SERIES: dict[str, str] = {
    "sheltered": "in shelters",
    "on_road": "on the road",
    "stranded": "stranded",
    "calls_waiting": "calls waiting",
    "units_busy": "units busy",
    "flooded_area_m2": "flooded land, m²",
    "roads_closed": "road edges closed",
}
_LABELS = {f"{s}.{k}": (label, unit) for s, keys in HEADLINES.items() for k, label, unit in keys}


@dataclass
class RunRecord:
    """One run of a plan: its summary (nested as summary.json) and, if known, its time series."""

    summary: dict[str, Any]
    timeseries: pd.DataFrame | None = None
    name: str = ""


def load_run(folder: str | Path) -> RunRecord:
    """A run's record from its output folder (``summary.json``, ``timeseries.parquet``)."""
    folder = Path(folder)
    path = folder / "summary.json"
    if not path.is_file():
        raise EmtwinError(f"{folder}: no summary.json; expected an emtwin output folder")
    summary = json.loads(path.read_text(encoding="utf-8"))
    ts_path = folder / "timeseries.parquet"
    ts = pd.read_parquet(ts_path) if ts_path.is_file() else None
    return RunRecord(summary, ts, folder.name)


def _record(x: Any, plan: str, i: int) -> RunRecord:
    if isinstance(x, RunRecord):
        return x
    if isinstance(x, str | Path):
        return load_run(x)
    if isinstance(x, Mapping):
        return RunRecord(dict(x))
    if hasattr(x, "summary"):  # a Results
        return RunRecord(x.summary, getattr(x, "timeseries", None))
    raise EmtwinError(f"render_comparison: runs[{plan!r}][{i}] must be a RunRecord, a summary "
                      f"dict, an output folder or Results, got {type(x).__name__}")  # fmt: skip


def _get(summary: Mapping[str, Any], key: str) -> float | None:
    section, _, name = key.partition(".")
    v = (summary.get(section) or {}).get(name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def metric_stats(runs: Mapping[str, Sequence[RunRecord]], key: str) -> dict[str, dict[str, Any]]:
    """Per plan: ``n`` runs with a value, and ``mean``, ``min``, ``max`` of metric *key*.

    The statistics are None for a plan where no run has the metric (n = 0).
    """
    out = {}
    for plan, recs in runs.items():
        vals = np.array([v for r in recs if (v := _get(r.summary, key)) is not None])
        out[plan] = ({"n": int(vals.size), "mean": float(vals.mean()), "min": float(vals.min()),
                      "max": float(vals.max())} if vals.size
                     else {"n": 0, "mean": None, "min": None, "max": None})  # fmt: skip
    return out


def _cell(st: dict[str, Any], unit: str, base: dict[str, Any] | None) -> tuple[str, str]:
    if st["n"] == 0:
        return ("html", '<span class="none">–</span>')
    u = "s" if unit == "s" else unit
    text = fmt_value(st["mean"], u)
    if st["n"] > 1 and st["max"] > st["min"]:
        text += f"<br><small>range {fmt_value(st['min'], u)} – {fmt_value(st['max'], u)}</small>"
    if base is not None and base["n"] and base["mean"] is not None:
        d = st["mean"] - base["mean"]
        rel = f" ({100 * d / abs(base['mean']):+.1f} %)" if base["mean"] else ""
        text += f"<br><small>vs baseline {d:+,.4g}{rel}</small>"
    return ("html", f'<span data-mean="{data_value(st["mean"])}" data-n="{st["n"]}">{text}</span>')


def _bars(runs: Mapping[str, Sequence[RunRecord]], keys: list[str], title: str) -> bytes:
    ncol = 3
    nrow = math.ceil(len(keys) / ncol)
    fig = Figure(figsize=(10, 2.6 * nrow), dpi=100, layout="constrained")
    fig.suptitle(title + " (bars: mean over runs; whiskers: min to max)", fontsize=11)
    plans = list(runs)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        st = metric_stats(runs, key)
        mean = [st[p]["mean"] if st[p]["n"] else np.nan for p in plans]
        lo = [max(m - st[p]["min"], 0.0) if st[p]["n"] else 0.0
              for p, m in zip(plans, mean, strict=True)]  # fmt: skip
        hi = [max(st[p]["max"] - m, 0.0) if st[p]["n"] else 0.0
              for p, m in zip(plans, mean, strict=True)]  # fmt: skip
        ax.bar(range(len(plans)), mean, yerr=[lo, hi], color=[f"C{j % 10}" for j in
               range(len(plans))], capsize=3)  # fmt: skip
        ax.set_xticks(range(len(plans)), plans, fontsize=8, rotation=20)
        label, unit = _LABELS.get(key, (key, ""))
        ax.set_title(f"{label}" + (f", {unit}" if unit else ""), fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    return png_bytes(fig)


def _series(runs: Mapping[str, Sequence[RunRecord]], col: str, label: str) -> bytes | None:
    fig = Figure(figsize=(7.2, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    drawn = False
    for j, (plan, recs) in enumerate(runs.items()):
        tss = [
            r.timeseries
            for r in recs
            if r.timeseries is not None and col in r.timeseries and len(r.timeseries)
        ]
        if not tss:
            continue
        grid = np.unique(np.concatenate([t["time_s"].to_numpy(dtype=float) for t in tss]))
        ys = np.array([np.interp(grid, t["time_s"].to_numpy(dtype=float),
                                 t[col].to_numpy(dtype=float)) for t in tss])  # fmt: skip
        h = grid / 3600.0
        ax.plot(h, np.median(ys, axis=0), color=f"C{j % 10}", lw=2, label=f"{plan} (n={len(tss)})")
        if len(tss) > 1:
            ax.fill_between(h, ys.min(axis=0), ys.max(axis=0), color=f"C{j % 10}", alpha=0.2)
        drawn = True
    if not drawn:
        return None
    ax.set_title(f"{label}: median over runs, band min to max", fontsize=11, loc="left")
    ax.set_xlabel("time since start, h")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return png_bytes(fig)


def comparison_html(
    runs: Mapping[str, Sequence[RunRecord | Mapping[str, Any] | str | Path]],
    *,
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    title: str = "Plan comparison",
    paired: Any = None,
    headline: str = "",
    note: str = "",
) -> str:
    """The comparison page as a string; arguments as for :func:`render_comparison`.

    *paired*, when given, is the paired-statistics table of a comparison
    (``emtwin.batch.compare``: columns ``metric, plan, n, mean, ci_low,
    ci_high, diff_mean, diff_ci_low, diff_ci_high, p_value, verdict``); its rows
    for the shown metrics become a "Paired differences" section above the
    headline figures, with *headline* and *note* as its text.
    """
    if not runs or any(len(v) == 0 for v in runs.values()):
        raise EmtwinError("render_comparison: runs must map each plan name to at least one run")
    recs = {str(p): [_record(x, str(p), i) for i, x in enumerate(v)] for p, v in runs.items()}
    if baseline is not None and baseline not in recs:
        raise EmtwinError(f"render_comparison: baseline {baseline!r} is not one of the plans "
                          f"{sorted(recs)}")  # fmt: skip
    base = baseline if baseline is not None else next(iter(recs))
    keys = list(metrics) if metrics is not None else [
        k for k in DEFAULT_METRICS if any(_get(r.summary, k) is not None
                                          for rs in recs.values() for r in rs)
    ]  # fmt: skip
    parts = [f"<h1>{esc(title)}</h1>"]
    seeds = {p: sorted({(r.summary.get("run") or {}).get("seed") for r in rs} - {None})
             for p, rs in recs.items()}  # fmt: skip
    parts.append(table(["plan", "runs", "seeds", "scenario"], [
        [p, len(rs), ", ".join(map(str, seeds[p])) or "–",
         ", ".join(sorted({str((r.summary.get("run") or {}).get("scenario")) for r in rs}))]
        for p, rs in recs.items()], numeric=[False, True]))  # fmt: skip
    parts.append(
        f'<p class="sub">baseline: <b>{esc(base)}</b>; each cell: mean over the '
        "plan's runs, its range, and the difference of the means from the baseline</p>"
    )
    if paired is not None:
        parts.append(_paired_section(paired, keys, headline, note))
    rows = []
    stats = {k: metric_stats(recs, k) for k in keys}
    for k in keys:
        label, unit = _LABELS.get(k, (k, ""))
        row: list[Any] = [("html", f'<span data-key="{esc(k)}">{esc(label)}</span>')]
        for p in recs:
            row.append(_cell(stats[k][p], unit, None if p == base else stats[k][base]))
        rows.append(row)
    parts.append(
        "<h2>Headline figures</h2>"
        + table(["metric", *recs], rows, numeric=[False] + [True] * len(recs))
    )
    parts.append("<h2>Charts</h2>")
    for section in ("flood", "evacuation", "dispatch"):
        sk = [k for k in keys if k.startswith(section + ".")
              and any(stats[k][p]["n"] for p in recs)]  # fmt: skip
        if sk:
            parts.append(img(_bars(recs, sk, section), f"{section}: headline figures by plan",
                             name=f"bars-{section}", wide=True))  # fmt: skip
    for col, label in COMPARE_SERIES.items():
        png = _series(recs, col, label)
        if png is not None:
            parts.append(img(png, f"{label} over time, by plan", name=f"series-{col}"))
    return page(title, "\n".join(parts))


def _paired_section(paired: Any, keys: Sequence[str], headline: str, note: str) -> str:
    """HTML of the paired-differences table (mean [95% CI], difference [95% CI], verdict)."""
    st = paired[paired["metric"].isin(list(keys)) & (paired["n"] > 0)]
    rows = []
    for r in st.itertuples(index=False):
        label, _unit = _LABELS.get(r.metric, (r.metric, ""))
        lo, hi = metric_bounds(r.metric)  # the table's own bounds may be tighter still
        mean = f"{r.mean:.4g} [{max(r.ci_low, lo):.4g}, {min(r.ci_high, hi):.4g}]"
        diff = (f"{r.diff_mean:+.4g} [{max(r.diff_ci_low, lo - hi):+.4g}, "
                f"{min(r.diff_ci_high, hi - lo):+.4g}]")  # fmt: skip
        if r.verdict == "base":
            diff = ""
        pv = "" if r.p_value is None or r.p_value != r.p_value else f"{r.p_value:.3g}"
        rows.append([label, r.plan, int(r.n), mean, diff, pv, r.verdict])
    text = (
        "<h2>Paired differences against the base</h2>"
        + (f"<p><b>{esc(headline)}</b></p>" if headline else "")
        + "<p>Mean and 95% interval per plan; the difference from the base run by run "
        "(same seeds and draws) with its 95% paired t interval; <i>better</i>/<i>worse</i> "
        "when the interval excludes 0. Intervals are clipped to the values a metric can "
        "take (the index and its parts 0-100, shares 0-1, counts of people from 0 to the "
        f"residents, other counts and times from 0). {esc(note)} All metrics: "
        "comparison.csv.</p>"
    )
    head = ["metric", "plan", "runs", "mean [95% CI]", "difference [95% CI]", "p", "verdict"]
    return text + table(head, rows, numeric=[False, False, True])


def render_comparison(
    runs: Mapping[str, Sequence[RunRecord | Mapping[str, Any] | str | Path]],
    out_path: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    title: str = "Plan comparison",
) -> Path:
    """Write the comparison report of several plans to *out_path* (one HTML file); return it.

    Parameters
    ----------
    runs
        Plan name -> its runs (one per seed): each a :class:`RunRecord`, a summary
        dict as in ``summary.json``, an output folder, or a Results.
        Time-series charts need RunRecords with time series, folders or Results.
    out_path
        The HTML file to write (charts embedded; readable without a server).
    metrics
        Dotted summary keys to compare (default :data:`DEFAULT_METRICS` that any run has).
    baseline
        The plan the others are compared with (default: the first).
    title
        The page title.

    Raises
    ------
    EmtwinError
        When a plan has no runs, a run is of an unknown kind, or the baseline is unknown.
    """
    out = Path(out_path)
    out.write_text(comparison_html(runs, metrics=metrics, baseline=baseline, title=title),
                   encoding="utf-8")  # fmt: skip
    return out
