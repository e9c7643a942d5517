"""The after-action review of a drill: ``after-action.html``.

The players' run is compared with the same event re-run twice on the same seed
(common random numbers, so differences are due to decisions alone), each
played to the time the drill stopped:

- *scripted*: the scenario's own timeline of actions (what was planned);
- *no actions*: no actions at all.

With no decisions and no injects the players' run is the scripted run, figure
for figure. The page shows the timeline of injects and decisions, the headline
figures and the response index with its parts for the three runs, and, for the
figures sampled over time, when the players' run first became better or worse
than the scripted one and by how much at the end.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emtwin.batch.index import PARTS, response_index
from emtwin.batch.worker import flatten
from emtwin.drill.decisions import describe_action
from emtwin.sim.engine import Simulation
from emtwin.viz._common import clock
from emtwin.viz._html import esc, fmt_value, img, page, table

__all__ = ["rerun", "compare_runs", "write_after_action", "build_after_action", "SERIES"]

#: Time series compared over time: column, label, more is better.
SERIES: list[tuple[str, str, bool]] = [
    ("warned", "people warned", True),
    ("departed", "people who left home", True),
    ("sheltered", "people sheltered", True),
    ("out", "people out of the area", True),
    ("stranded", "people stranded", False),
    ("exposed", "people exposed at home", False),
    ("calls_waiting", "calls waiting", False),
]
#: Summary figures compared: (section, key, label, unit, more is better).
FIGURES: list[tuple[str, str, str, str, bool]] = [
    ("evacuation", "sheltered", "Sheltered", "", True),
    ("evacuation", "out", "Out of the area", "", True),
    ("evacuation", "stranded", "Stranded", "", False),
    ("evacuation", "never_left", "Never left", "", False),
    ("dispatch", "calls", "Calls", "", False),
    ("dispatch", "served", "Served", "", True),
    ("dispatch", "unserved", "Unserved", "", False),
    ("dispatch", "response_p90_s", "Response time p90", "s", False),
    ("flood", "roads_closed", "Road edges closed at some time", "edges", False),
]


def rerun(scenario: Any, world: Any, until_s: float, *, actions: bool = True,
          allow_code: bool = False) -> Any:  # fmt: skip
    """The event re-run on the same seed to *until_s* (s): with the scenario's scripted
    actions, or with none (*actions* False). Returns its Results."""
    sc = scenario if actions else scenario.model_copy(update={"actions": []})
    sim = Simulation(sc, world=world, allow_code=allow_code)
    sim.run_until(until_s)
    return sim.results()


def _shown(action: Any) -> dict[str, Any]:
    """An Action as the scenario writes it (``{kind: value}``)."""
    v = action.value
    return {action.kind: v.model_dump(by_alias=True) if hasattr(v, "model_dump") else v}


def _index(results: Any) -> Any:
    return response_index(flatten(results.summary), results.scenario.response_index)


def compare_runs(players: Any, other: Any) -> list[dict[str, Any]]:
    """For each sampled figure: when the players' run first differed from *other*, which
    was better then, and the values at the end.

    Returns
    -------
    list of dict
        ``key``, ``label``, ``first_s`` (None when never different), ``then``
        ("better" / "worse" for the players), ``end_players``, ``end_other``, ``end``
        ("better", "worse" or "same").
    """
    a, b = players.timeseries, other.timeseries
    out = []
    if a is None or b is None or "time_s" not in a or "time_s" not in b:
        return out
    m = pd.merge(a, b, on="time_s", suffixes=("_p", "_o"))
    for key, label, more_better in SERIES:
        if f"{key}_p" not in m or f"{key}_o" not in m:
            continue
        d = m[f"{key}_p"].to_numpy(dtype=float) - m[f"{key}_o"].to_numpy(dtype=float)
        nz = np.flatnonzero(np.abs(d) > 1e-9)
        row: dict[str, Any] = {"key": key, "label": label, "first_s": None, "then": None}
        if nz.size:
            i = int(nz[0])
            row["first_s"] = float(m["time_s"].iloc[i])
            row["then"] = "better" if (d[i] > 0) == more_better else "worse"
        end = float(d[-1]) if d.size else 0.0
        row["end_players"] = float(m[f"{key}_p"].iloc[-1]) if len(m) else None
        row["end_other"] = float(m[f"{key}_o"].iloc[-1]) if len(m) else None
        row["end"] = "same" if abs(end) <= 1e-9 else ("better" if (end > 0) == more_better
                                                      else "worse")  # fmt: skip
        out.append(row)
    return out


def _chart(runs: dict[str, Any]) -> bytes | None:
    from matplotlib.figure import Figure

    from emtwin.viz.charts import png_bytes

    keys = [k for k, _, _ in SERIES
            if any(r.timeseries is not None and k in r.timeseries for r in runs.values())]
    keys = [k for k in ("sheltered", "out", "stranded", "calls_waiting") if k in keys]
    if not keys:
        return None
    fig = Figure(figsize=(10, 2.6 * math.ceil(len(keys) / 2)), dpi=100, layout="constrained")
    styles = {"players": "-", "scripted": "--", "no actions": ":"}
    for n, key in enumerate(keys):
        ax = fig.add_subplot(math.ceil(len(keys) / 2), 2, n + 1)
        for name, r in runs.items():
            ts = r.timeseries
            if ts is not None and key in ts:
                ax.plot(ts["time_s"] / 3600.0, ts[key], styles.get(name, "-"), label=name)
        ax.set_title(dict((k, lab) for k, lab, _ in SERIES)[key], fontsize=10, loc="left")
        ax.set_xlabel("hours since the start")
        ax.grid(True, alpha=0.3)
        if n == 0:
            ax.legend(fontsize=8)
    return png_bytes(fig)


def build_after_action(session: Any, players: Any, scripted: Any, none: Any) -> str:
    """The after-action page (HTML) of *session* from the three runs' Results."""
    sc = session.scenario
    runs = {"players": players, "scripted": scripted, "no actions": none}
    stop = float(session.time_s)
    parts = [f"<h1>After-action review: {esc(sc.name)}</h1>",
             f'<div class="sub">seed {sc.seed}; played to {clock(stop)} of '
             f"{clock(float(sc.duration))}; the players' run against the same event re-run on "
             "the same seed with the scenario's scripted plan and with no actions at all, each "
             "to the same time (common random numbers: every difference is due to the "
             "decisions)</div>"]  # fmt: skip
    # timeline
    items = sorted(session.decisions.items, key=lambda d: d.time_s)  # stable: log order kept
    rows = [(clock(d.time_s), d.wall[11:19], d.role, d.source, d.text) for d in items]
    scripted_rows = [(clock(float(a.at)), "", "scenario", "scripted", describe_action(_shown(a)))
                     for a in sc.actions if a.at is not None and a.at <= stop]  # fmt: skip
    parts.append("<h2>Timeline of injects and decisions</h2>")
    parts.append(table(["simulated", "wall (UTC)", "role", "source", "what"], rows)
                 if rows else "<p>No injects or decisions.</p>")
    if scripted_rows:
        parts.append("<p>The scenario's scripted actions (played in all but the no-actions "
                     "run):</p>")
        parts.append(table(["simulated", "", "by", "source", "what"], scripted_rows))
    # headline figures and index
    parts.append("<h2>Headline figures</h2>")
    hrows = []
    for section, key, label, unit, _ in FIGURES:
        vals = [(r.summary.get(section) or {}).get(key) for r in runs.values()]
        if all(v is None for v in vals):
            continue
        hrows.append([label] + [("html", f'<span data-value="{esc(v)}">{fmt_value(v, unit)}'
                                 "</span>") for v in vals])  # fmt: skip
    idx = {name: _index(r) for name, r in runs.items()}
    hrows.append(["Response index (0-100)"]
                 + [("html", f'<b data-index="{esc(name)}">{fmt_value(i.score)}</b>')
                    for name, i in idx.items()])  # fmt: skip
    for part, p in PARTS.items():
        if all(not math.isfinite(i.scores.get(part, math.nan)) for i in idx.values()):
            continue
        hrows.append([f"  index part: {p.label}"]
                     + [fmt_value(i.scores.get(part)) for i in idx.values()])
    parts.append(table(["", "players", "scripted plan", "no actions"], hrows,
                       numeric=[False, True, True, True]))  # fmt: skip
    # where better or worse, and when
    parts.append("<h2>Where the players did better or worse, and when</h2>")
    for other_name in ("scripted", "no actions"):
        cmp = compare_runs(players, runs[other_name])
        crow = [(c["label"], clock(c["first_s"]) if c["first_s"] is not None else "never",
                 c["then"] or "", fmt_value(c["end_players"]), fmt_value(c["end_other"]),
                 c["end"]) for c in cmp]  # fmt: skip
        parts.append(f"<p>Against the <b>{esc(other_name)}</b> run:</p>")
        parts.append(table(["figure", "first different at", "players then", "players at the end",
                            f"{other_name} at the end", "players at the end are"], crow)
                     if crow else "<p>No figures sampled over time.</p>")  # fmt: skip
    png = _chart(runs)
    if png:
        parts.append(img(png, "The three runs over time (players solid, scripted dashed, "
                         "no actions dotted)", name="after-action", wide=True))  # fmt: skip
    return page(f"{sc.name} · after-action review", "\n".join(parts))


def write_after_action(session: Any, players: Any, path: str | Path) -> Path:
    """Re-run the event (scripted plan; no actions) to the drill's time and write the page."""
    stop = float(session.time_s)
    scripted = rerun(session.scenario, session.world, stop, allow_code=session.allow_code)
    none = rerun(session.scenario, session.world, stop, actions=False,
                 allow_code=session.allow_code)  # fmt: skip
    session.reruns = {"scripted": scripted, "no actions": none}
    path = Path(path)
    path.write_text(build_after_action(session, players, scripted, none), encoding="utf-8")
    return path
