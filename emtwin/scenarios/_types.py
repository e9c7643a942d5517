"""Value types of the scenario file: durations, rates, coordinates, paths, series.

Each parser takes what a person writes in YAML and returns SI values:
durations in seconds, rates per second, coordinates as (x, y) floats in the
file's ``crs``. Parsers raise ``ValueError`` with a message that says what was
expected; pydantic adds the key path and the loader adds the file and line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WrapValidator

__all__ = [
    "parse_duration",
    "parse_rate",
    "parse_point",
    "Duration",
    "NonNegDuration",
    "PosDuration",
    "Rate",
    "Point",
    "Line",
    "Series",
    "DataPath",
    "resolve_path",
]

_UNIT_S = {
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0, "m": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip
_PART = re.compile(r"\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*([a-zA-Z]+)\s*")
#: hours:minutes or hours:minutes:seconds (``3:00`` is 3 h, ``1:30:00`` 1.5 h)
_CLOCK = re.compile(r"^(\d+):([0-5]\d)(?::([0-5]\d(?:\.\d*)?))?$")


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as "90s", "15min", "2h", "1h30min".

    ``H:MM`` and ``H:MM:SS`` are hours and minutes (and seconds): ``3:00`` is
    3 h and ``1:30:00`` 1.5 h (the loader keeps YAML 1.1 from reading them as
    base-60 numbers).

    Raise ``ValueError`` for anything else (booleans, units other than s, min,
    h, d, or a string that is not a duration).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, 15min or 2h, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        clock = _CLOCK.match(text)
        if clock:
            h, m, sec = clock.groups()
            return int(h) * 3600.0 + int(m) * 60.0 + float(sec or 0.0)
        pos, total, seen = 0, 0.0, False
        while pos < len(text):
            m = _PART.match(text, pos)
            if not m or m.group(2).lower() not in _UNIT_S:
                raise ValueError(
                    "expected a duration such as 90s, 15min, 2h, 1h30min or 1:30 (h:mm), "
                    f"got {value!r}"
                )
            total += float(m.group(1)) * _UNIT_S[m.group(2).lower()]
            pos, seen = m.end(), True
        if seen:
            return total
    raise ValueError(f"expected a duration such as 90s, 15min or 2h, got {value!r}")


def _nonneg_duration(value: Any) -> float:
    s = parse_duration(value)
    if s < 0:
        raise ValueError(f"a duration must not be negative, got {value!r}")
    return s


def _pos_duration(value: Any) -> float:
    s = parse_duration(value)
    if s <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return s


def parse_rate(value: Any) -> float:
    """Events per second from a string such as "4/h", "0.5/min", "12/day".

    A bare 0 is accepted; other bare numbers are refused, since their unit
    would be a guess.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a rate such as 4/h, got {value!r}")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"give the rate with its time unit, such as '{value}/h', got {value!r}")
    if isinstance(value, str) and "/" in value:
        num, _, unit = value.partition("/")
        unit = unit.strip()
        try:
            n = float(num.strip())
        except ValueError:
            raise ValueError(f"expected a rate such as 4/h, got {value!r}") from None
        try:
            per = parse_duration(unit if unit[:1].isdigit() else "1" + unit)
        except ValueError:
            raise ValueError(
                f"expected a rate such as 4/h (units s, min, h, day), got {value!r}"
            ) from None
        if n < 0 or not math.isfinite(n):
            raise ValueError(f"a rate must be a non-negative number, got {value!r}")
        return n / per
    raise ValueError(f"expected a rate such as 4/h, got {value!r}")


def parse_point(value: Any) -> tuple[float, float]:
    """(x, y) from a pair of numbers, in the file's ``crs``."""
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(v) for v in value)
    ):
        return (float(value[0]), float(value[1]))
    raise ValueError(f"expected a coordinate pair [x, y], got {value!r}")


def _parse_line(value: Any) -> list[tuple[float, float]]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise ValueError(f"expected a list of at least two [x, y] pairs, got {value!r}")
    return [parse_point(v) for v in value]


def _parse_series(value: Any) -> list[tuple[float, float]]:
    """A time series [[t, value], ...] with t as durations, sorted and non-negative."""
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected a list of [time, value] pairs, got {value!r}")
    out: list[tuple[float, float]] = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"entry {i}: expected [time, value], got {pair!r}")
        t = _nonneg_duration(pair[0])
        v = pair[1]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"entry {i}: expected a number as value, got {v!r}")
        if out and t <= out[-1][0]:
            raise ValueError(
                f"entry {i}: times must increase, got {pair[0]!r} after {out[-1][0]:g} s"
            )
        out.append((t, float(v)))
    return out


def resolve_path(value: str, base: Path | None) -> str:
    """Resolve a data path written in a scenario file against the file's folder.

    ``builtin:NAME`` is left as it is; ``GPKG:path:layer`` and ``path.gpkg:layer``
    keep their layer part.
    """
    if value.startswith("builtin:") or base is None:
        return value
    if value.upper().startswith("GPKG:"):
        rest = value[5:]
        path, sep, layer = rest.rpartition(":")
        if not sep:
            path, layer = rest, ""
        full = str((base / path).resolve()) if not Path(path).is_absolute() else path
        return f"GPKG:{full}" + (f":{layer}" if layer else "")
    m = re.match(r"^(.*\.gpkg):([^/\\]+)$", value, flags=re.IGNORECASE)
    if m:
        path, layer = m.group(1), m.group(2)
        full = str((base / path).resolve()) if not Path(path).is_absolute() else path
        return f"{full}:{layer}"
    p = Path(value)
    return str(p if p.is_absolute() else (base / p).resolve())


def data_file_of(value: str) -> Path | None:
    """The file on disk behind a resolved data path (None for ``builtin:``)."""
    if value.startswith("builtin:"):
        return None
    if value.upper().startswith("GPKG:"):
        path = value[5:].rpartition(":")[0] or value[5:]
        return Path(path)
    m = re.match(r"^(.*\.gpkg):([^/\\]+)$", value, flags=re.IGNORECASE)
    return Path(m.group(1)) if m else Path(value)


def _data_path(value: Any, handler: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a file path (relative to the scenario file), got {value!r}")
    ctx = info.context or {}
    base = ctx.get("base_dir")
    resolved = resolve_path(value.strip(), Path(base) if base else None)
    if ctx.get("check_files", True) and base is not None:
        f = data_file_of(resolved)
        if f is not None and not f.exists():
            raise ValueError(f"file not found: {value!r} (looked for {f})")
    return handler(resolved)


Duration = Annotated[float, BeforeValidator(parse_duration)]
NonNegDuration = Annotated[float, BeforeValidator(_nonneg_duration)]
PosDuration = Annotated[float, BeforeValidator(_pos_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Point = Annotated[tuple[float, float], BeforeValidator(parse_point)]
Line = Annotated[list[tuple[float, float]], BeforeValidator(_parse_line)]
Series = Annotated[list[tuple[float, float]], BeforeValidator(_parse_series)]
DataPath = Annotated[str, WrapValidator(_data_path)]
