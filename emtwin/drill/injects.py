"""The master schedule of events list (MSEL): injects released to the players at their times.

A CSV file with a header row and the columns ``at`` (a duration since the start:
``14:20`` is not accepted, write ``2h20min`` or seconds), ``to`` (who receives it:
``players``, ``all``, ``control`` or a team name), ``message``, and an optional
``action``: an action as in a scenario's timeline, without ``at``, written
``close_road: bridge-west`` or as JSON (``{"close_road": "bridge-west"}``).
The action is carried out when the inject is released.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emtwin.errors import ScenarioError

__all__ = ["Inject", "read_injects", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("at", "to", "message")


@dataclass
class Inject:
    """One inject: released at ``at_s`` (s since the start) to ``to``."""

    at_s: float
    to: str
    message: str
    action: dict[str, Any] | None = None
    row: int = 0
    released: bool = field(default=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        """The inject as the page shows it."""
        return {"at_s": self.at_s, "to": self.to, "message": self.message,
                "action": self.action, "row": self.row}  # fmt: skip


def _duration(text: str) -> float:
    """Seconds of a duration cell (``90``, ``20min``, ``1h30min``); ValueError when not one."""
    from emtwin.scenarios._types import parse_duration

    out = float(parse_duration(text.strip()))
    if not out >= 0:  # NaN or negative
        raise ValueError(text)
    return out


def read_injects(path: str | Path) -> list[Inject]:
    """The injects of the CSV file *path*, in time order.

    Raises
    ------
    ScenarioError
        Naming the file, the row and the column, when a column is missing, a
        time is not a duration, or an action is not ``kind: value``.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: the injects file does not exist")
    problems: list[str] = []
    out: list[Inject] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        if missing:
            need = ", ".join(REQUIRED_COLUMNS)
            raise ScenarioError(f"{path}: the header needs the columns {need} (and optionally "
                                f"action); missing: {', '.join(missing)}")
        for n, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            try:
                at = _duration(row["at"])
            except (ValueError, TypeError):
                problems.append(f"{path}:{n}: at: expected a duration (seconds or e.g. 2h20min), "
                                f"got {row['at']!r}")  # fmt: skip
                continue
            action = None
            if row.get("action"):
                try:
                    action = yaml.safe_load(row["action"])
                except yaml.YAMLError:
                    action = None
                if not (isinstance(action, dict) and len(action) == 1):
                    problems.append(f"{path}:{n}: action: expected one action as 'kind: value' "
                                    f"(e.g. close_road: bridge-west), got {row['action']!r}")
                    continue
                action = {str(k): v for k, v in action.items()}
            out.append(Inject(at, row["to"] or "players", row["message"], action, n))
    if problems:
        raise ScenarioError(problems, file=str(path))
    return sorted(out, key=lambda i: (i.at_s, i.row))
