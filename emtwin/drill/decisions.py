"""The decisions log of a drill: one JSON object per line in ``decisions.jsonl``.

Each line holds the wall-clock time (UTC, ISO 8601), the simulated time (s since
the start), who decided (``role``: ``control``, ``player``, ``inject``), the
decision in words (``text``) and, for an action, the action itself as the
scenario would write it (without ``at``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Decision", "DecisionLog", "describe_action"]


@dataclass
class Decision:
    """One line of ``decisions.jsonl``."""

    wall: str
    time_s: float
    role: str
    text: str
    action: dict[str, Any] | None = None
    source: str = "page"
    extra: dict[str, Any] = field(default_factory=dict)


def describe_action(action: dict[str, Any]) -> str:
    """A decision in words, e.g. ``close road bridge-east``."""
    kind, value = next(iter(action.items()))
    if isinstance(value, dict):
        if kind == "move_units":
            return (f"move {value.get('count', 1)} {value.get('type')} from "
                    f"{value.get('from')} to {value.get('to')}")  # fmt: skip
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return f"{kind.replace('_', ' ')} {value}"


class DecisionLog:
    """Append-only ``decisions.jsonl`` (every line flushed at once), kept in memory too.

    Parameters
    ----------
    path
        The file; its folder is created. An existing file is replaced.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.items: list[Decision] = []
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    def add(self, time_s: float, role: str, text: str, *, action: dict[str, Any] | None = None,
            source: str = "page", **extra: Any) -> Decision:  # fmt: skip
        """Record one decision at simulated *time_s* (s), now in wall-clock time."""
        d = Decision(datetime.now(UTC).isoformat(timespec="milliseconds"), float(time_s), role,
                     text, action, source, extra)  # fmt: skip
        with self._lock:
            self.items.append(d)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(self.line(d))
        return d

    @staticmethod
    def line(d: Decision) -> str:
        """The JSON line of *d* (no ``extra`` key when it is empty)."""
        row = asdict(d)
        extra = row.pop("extra")
        row.update(extra)
        return json.dumps(row, sort_keys=False) + "\n"

    def text(self) -> str:
        """The whole log as ``decisions.jsonl`` text."""
        with self._lock:
            return "".join(self.line(d) for d in self.items)

    @property
    def actions(self) -> list[Decision]:
        """The decisions that were actions on the event (not pauses or notes)."""
        return [d for d in self.items if d.action is not None]
