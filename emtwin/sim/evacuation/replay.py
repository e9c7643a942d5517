"""Replayed demand: a table giving each household's departure and destination.

``evacuation.households`` names a CSV or Parquet table with one row per
household (see docs/evacuation.md, "Households table"):

- ``household`` (required): an id, unique;
- ``departure_s`` (seconds since the start) or ``departure`` (a duration such
  as ``1h30min``): when it sets off (its delay ends);
- ``destination`` (required column; a cell may be empty): the name of a
  shelter or exit, or empty for the nearest open one with space;
- ``people`` (optional, default 1): members, a whole number >= 1;
- ``x``, ``y`` (in the scenario's ``crs``) or ``node`` (a road node index):
  where it lives. Without either, ``household`` must name the World's own
  households (``h0``, ``h1``, ... as in ``households.parquet``), and those
  the table does not list stay at home;
- ``mode`` (optional): ``car`` or ``foot`` (default: drawn as without a table);
- ``warned_s`` (optional): when it heard the warning, s (default its departure).

Every problem is collected and reported at once, naming the file and rows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emtwin.errors import ScenarioError
from emtwin.sim.evacuation.households import Households

__all__ = ["Replay", "read_households_table", "replay_households"]

KEY = "evacuation.households"
_SHOW = 5  # rows named per problem
MODES = {"car": 0, "foot": 1}


@dataclass
class Replay:
    """The table's demand, per household of the run (arrays of shape (n,)).

    Attributes
    ----------
    listed
        Whether the table lists the household (the others stay at home).
    depart_s, warned_s
        When it sets off and when it heard the warning, s (inf if unlisted).
    destination
        Destination name, "" for the nearest open one with space.
    mode
        -1 drawn as without a table, 0 car, 1 foot.
    input_id
        The table's ``household`` value ("" if unlisted).
    """

    listed: np.ndarray
    depart_s: np.ndarray
    warned_s: np.ndarray
    destination: np.ndarray
    mode: np.ndarray
    input_id: np.ndarray


def read_households_table(path: str | Path) -> pd.DataFrame:
    """The table at *path* (``.csv``/``.txt`` or ``.parquet``), as read."""
    p = Path(path)
    where = f"{KEY}: {p}"
    if not p.exists():
        raise ScenarioError(f"{where}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(p)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(p, dtype={"household": str, "destination": str, "mode": str},
                               keep_default_na=False, na_values=[""])  # fmt: skip
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ScenarioError(f"{where}: cannot read the table: {exc}") from None
    raise ScenarioError(f"{where}: expected a .csv or .parquet table, got {p.suffix!r}; "
                        "large tables belong in CSV or Parquet, not in the YAML")  # fmt: skip


def _rows(mask: np.ndarray) -> str:
    """1-based data rows where *mask* is True, the first few."""
    bad = np.flatnonzero(mask)
    shown = ", ".join(str(int(i) + 1) for i in bad[:_SHOW])
    more = f" and {bad.size - _SHOW} more" if bad.size > _SHOW else ""
    return f"row{'s' if bad.size > 1 else ''} {shown}{more}"


def _number(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def _departures(df: pd.DataFrame, problems: list[str]) -> np.ndarray:
    from emtwin.scenarios._types import parse_duration

    if "departure_s" in df.columns:
        dep = _number(df, "departure_s")
        col = "departure_s"
    elif "departure" in df.columns:
        dep = np.full(len(df), np.nan)
        for i, v in enumerate(df["departure"].tolist()):
            with contextlib.suppress(ValueError, TypeError):
                dep[i] = parse_duration(v)
        col = "departure"
    else:
        problems.append("no `departure_s` (seconds since the start) or `departure` (a "
                        "duration such as 1h30min) column")  # fmt: skip
        return np.full(len(df), np.nan)
    bad = ~np.isfinite(dep) | (dep < 0)
    if bad.any():
        problems.append(f"{_rows(bad)}: `{col}` must be a time >= 0 since the start")
    return dep


def replay_households(
    df: pd.DataFrame,
    *,
    path: str,
    built: Households | None,
    world: Any,
    scenario_crs: str,
    destinations: list[str],
) -> tuple[Households, Replay]:
    """Households of the run and their replayed demand, from the table *df*.

    Parameters
    ----------
    df
        The table (:func:`read_households_table`).
    path
        Its file, for messages.
    built
        The World's households (used when the table gives no location).
    world
        The World (roads, terrain, CRS).
    scenario_crs
        CRS of ``x``, ``y``.
    destinations
        Shelter and exit names a ``destination`` may give.

    Raises
    ------
    ScenarioError
        Every problem found, naming the file, the column and the rows.
    """
    problems: list[str] = []
    n = len(df)
    if n == 0:
        raise ScenarioError(f"{KEY}: {path}: the table has no rows")
    for col in ("household", "destination"):
        if col not in df.columns:
            problems.append(f"no `{col}` column (columns: {', '.join(map(str, df.columns))})")
    if problems:
        raise ScenarioError(f"{KEY}: {path}: " + "; ".join(problems))
    ids = df["household"].astype(str).str.strip().to_numpy(dtype=object)
    missing_id = df["household"].isna().to_numpy() | (ids == "")
    if missing_id.any():
        problems.append(f"{_rows(missing_id)}: `household` is empty")
    dup = pd.Series(ids).duplicated(keep="first").to_numpy() & ~missing_id
    if dup.any():
        problems.append(f"{_rows(dup)}: `household` repeats an earlier row's id")
    dep = _departures(df, problems)
    dest = df["destination"].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    known = set(destinations)
    unknown = (dest != "") & ~np.isin(dest, list(known))
    if unknown.any():
        first = dest[np.flatnonzero(unknown)[0]]
        problems.append(f"{_rows(unknown)}: `destination` {first!r} is no shelter or exit "
                        f"(known: {', '.join(destinations) or 'none'}; or empty for the "
                        "nearest)")  # fmt: skip
    people = np.ones(n)
    if "people" in df.columns:
        people = _number(df, "people")
        bad = ~np.isfinite(people) | (people < 1) | (people != np.round(people))
        if bad.any():
            problems.append(f"{_rows(bad)}: `people` must be a whole number >= 1")
    mode = np.full(n, -1, np.int64)
    if "mode" in df.columns:
        m = df["mode"].fillna("").astype(str).str.strip().str.lower().to_numpy(dtype=object)
        bad = (m != "") & ~np.isin(m, list(MODES))
        if bad.any():
            problems.append(f"{_rows(bad)}: `mode` must be car or foot (or empty)")
        mode = np.array([MODES.get(v, -1) for v in m], np.int64)
    warned = dep.copy()
    if "warned_s" in df.columns:
        w = _number(df, "warned_s")
        bad = ~np.isnan(w) & ((w < 0) | (w > dep))
        if bad.any():
            problems.append(f"{_rows(bad)}: `warned_s` must be >= 0 and not after the departure")
        warned = np.where(np.isnan(w), dep, w)
    hh, index = _where(df, ids, people, built, world, scenario_crs, problems)
    if problems:
        raise ScenarioError(f"{KEY}: {path}: " + "; ".join(problems))
    k = len(hh)
    rep = Replay(listed=np.zeros(k, bool), depart_s=np.full(k, np.inf),
                 warned_s=np.full(k, np.inf), destination=np.full(k, "", dtype=object),
                 mode=np.full(k, -1, np.int64), input_id=np.full(k, "", dtype=object))  # fmt: skip
    rep.listed[index] = True
    rep.depart_s[index] = dep
    rep.warned_s[index] = warned
    rep.destination[index] = dest
    rep.mode[index] = mode
    rep.input_id[index] = ids
    return hh, rep


def _where(
    df: pd.DataFrame, ids: np.ndarray, people: np.ndarray, built: Households | None,
    world: Any, scenario_crs: str, problems: list[str],
) -> tuple[Households, np.ndarray]:  # fmt: skip
    """The run's households and the one each row is: from x/y or node, else by id."""
    roads, terrain = world.roads, world.terrain
    n = len(df)
    has_xy = "x" in df.columns and "y" in df.columns
    if has_xy or "node" in df.columns:
        if has_xy:
            from emtwin.geo.build import to_world_xy

            xy0 = np.column_stack([_number(df, "x"), _number(df, "y")])
            bad = ~np.isfinite(xy0).all(axis=1)
            if bad.any():
                problems.append(f"{_rows(bad)}: `x`, `y` must be numbers")
                xy0[bad] = xy0[~bad][0] if (~bad).any() else 0.0
            xy = to_world_xy(xy0, scenario_crs, world)
            inside = terrain.inside(xy[:, 0], xy[:, 1])
            if (~inside & ~bad).any():
                problems.append(f"{_rows(~inside & ~bad)}: the home lies outside the terrain "
                                f"(x, y in {scenario_crs})")  # fmt: skip
            node = roads.nearest_node(xy[:, 0], xy[:, 1])[0]
        else:
            nd = _number(df, "node")
            bad = ~np.isfinite(nd) | (nd != np.round(nd)) | (nd < 0) | (nd >= roads.n_nodes)
            if not bad.any():
                bad = roads.sink[nd.astype(np.int64)]
                what = "a one-way dead end (homes stand on the core network)"
            else:
                what = f"a road node index in 0..{roads.n_nodes - 1}"
            if bad.any():
                problems.append(f"{_rows(bad)}: `node` must be {what}")
            node = np.where(bad, 0, np.nan_to_num(nd)).astype(np.int64)
            node = np.where(roads.sink[node], 0, node)
            xy = np.column_stack([roads.node_x[node], roads.node_y[node]])
        row, col = terrain.cell_of(xy[:, 0], xy[:, 1])
        hh = Households(people=np.nan_to_num(people, nan=1.0).astype(np.int64), node=node,
                        x=xy[:, 0], y=xy[:, 1], row=np.asarray(row, np.int64),
                        col=np.asarray(col, np.int64), source_row=np.arange(n))  # fmt: skip
        return hh, np.arange(n)
    if built is None or len(built) == 0:
        problems.append("no `x`, `y` or `node` column, and no World households to name")
        return Households(*(np.zeros(0, np.int64) for _ in range(7))), np.zeros(0, np.int64)
    known = {f"h{i}": i for i in range(len(built))}
    index = np.array([known.get(str(v), -1) for v in ids], np.int64)
    bad = index < 0
    if bad.any():
        problems.append(f"{_rows(bad)}: `household` {ids[np.flatnonzero(bad)[0]]!r} is none of "
                        f"the World's households (h0 .. h{len(built) - 1}); without `x`, `y` "
                        "or `node` columns the table names them")  # fmt: skip
    if "people" in df.columns:
        ok = ~bad
        differ = ok & (np.nan_to_num(people) != built.people[np.maximum(index, 0)])
        if differ.any():
            problems.append(f"{_rows(differ)}: `people` differs from the World's household")
    return built, np.maximum(index, 0)
