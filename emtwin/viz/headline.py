"""A run's headline figures in words: for ``emtwin summary`` and the last line of ``emtwin run``.

Reads ``summary.json`` only. Times (keys ending in ``_s`` that count simulated
time: t50, t90, clearance, response and wait times) are shown as h:mm; the
compute times ``wall_s`` and ``kernel_wall_s`` stay in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from emtwin.errors import EmtwinError

__all__ = ["read_summary", "hmm", "headline_rows", "one_line", "fmt_value"]

#: ``_s`` keys that are compute (wall-clock) time, not simulated time: shown in seconds.
WALL_KEYS = frozenset({"wall_s", "kernel_wall_s"})
#: Keys shown besides the headline keys of ``emtwin.sim.engine.SUMMARY_KEYS``.
EXTRA_KEYS = {"flood": ("max_depth_m",)}
#: How the items of a mapping value are formatted (as which key).
_ITEM_KEY = {"max_depth_by_gauge": "max_depth_m"}


def read_summary(folder: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a run folder.

    Raises
    ------
    EmtwinError
        When *folder* is not a folder, holds no ``summary.json`` (not a run
        folder) or the file is not a JSON object.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EmtwinError(f"{folder}: no such folder (give an output folder of `emtwin run`)")
    path = folder / "summary.json"
    if not path.is_file() and (folder / "results.parquet").is_file():
        raise EmtwinError(f"{folder}: a batch folder, not a run folder; its runs are the rows "
                          f"of {folder / 'results.parquet'} (`emtwin batch` printed their "
                          "means)")  # fmt: skip
    if not path.is_file():
        raise EmtwinError(f"{folder}: not a run folder (it holds no summary.json); give an "
                          "output folder of `emtwin run`, such as out/riverside")  # fmt: skip
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmtwinError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EmtwinError(f"{path}: expected a JSON object of sections, got {type(data).__name__}")
    return data


def hmm(seconds: float) -> str:
    """Seconds as ``h:mm`` (rounded to the nearest minute): 5400 -> ``1:30``."""
    minutes = int(round(float(seconds) / 60.0))
    sign = "-" if minutes < 0 else ""
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h}:{m:02d}"


def _is_time(key: str) -> bool:
    return key.endswith("_s") and key.split(".")[-1] not in WALL_KEYS


def fmt_value(key: str, value: Any) -> str:
    """One figure as text: h:mm for times, seconds for wall times, units from the key's suffix."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    last = key.split(".")[-1]
    if _is_time(last):
        return hmm(value)
    if last in WALL_KEYS:
        return f"{value:.1f} s"
    for suffix, unit in (("_m2", " m²"), ("_m3", " m³"), ("_m", " m")):
        if last.endswith(suffix):
            return f"{value:,.3g}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def headline_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(section, figure, text)`` of the headline keys, in the order of ``SUMMARY_KEYS``.

    Sections the run did not have (null, missing, or every headline key null)
    are left out; a mapping
    value (max depth by gauge) gives one row per item, ``key.item``.
    """
    from emtwin.sim.engine import SUMMARY_KEYS

    rows: list[tuple[str, str, str]] = []
    for section, keys in SUMMARY_KEYS.items():
        data = summary.get(section)
        if not isinstance(data, dict) or all(data.get(k) is None for k in keys):
            continue
        for key in (*keys, *EXTRA_KEYS.get(section, ())):
            if key not in data:
                continue
            value = data[key]
            if isinstance(value, dict):
                for item, v in value.items():
                    rows.append((section, f"{key}.{item}", fmt_value(_ITEM_KEY.get(key, key), v)))
            else:
                rows.append((section, key, fmt_value(key, value)))
    return rows


def one_line(summary: dict[str, Any]) -> str:
    """The few figures that say how a run went, on one line (``emtwin run --quiet``)."""
    parts: list[str] = []
    fl, ev, dp = (summary.get(k) if isinstance(summary.get(k), dict) else None
                  for k in ("flood", "evacuation", "dispatch"))  # fmt: skip
    if fl:
        area = fl.get("peak_flooded_area_m2")
        if area is not None:
            parts.append(f"flooded land {area / 1e6:.2f} km²")
        if fl.get("roads_closed") is not None:
            parts.append(f"{fl['roads_closed']} roads closed")
    if ev:
        for key in ("sheltered", "out", "stranded"):
            if ev.get(key) is not None:
                parts.append(f"{ev[key]:,} {key}")
        if ev.get("t90_s") is not None:
            parts.append(f"t90 {hmm(ev['t90_s'])}")
    if dp:
        if dp.get("calls") is not None:
            parts.append(f"{dp.get('served', 0)}/{dp['calls']} calls served")
        if dp.get("response_p90_s") is not None:
            parts.append(f"p90 response {hmm(dp['response_p90_s'])}")
    return ", ".join(parts) or "no hazard, evacuation or response in this run"
