"""Where a key of a scenario was written: ``file:line: key.path``."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["locate_key"]


def locate_key(loc: Iterable, origins: list[tuple[str, dict]]) -> str:
    """``file:line: key.path`` for key path *loc* (``file: key.path`` without a line).

    The longest prefix of *loc* that a file or plan wrote wins, the last one
    merged first among equals (plans replace lists whole, so a list item is
    always in the file that set the list).
    """
    loc = tuple(loc)
    keypath = ".".join(str(x) for x in loc) or "(top)"
    for n in range(len(loc), 0, -1):
        for label, lines in reversed(origins):
            if loc[:n] in lines:
                return f"{label}:{lines[loc[:n]]}: {keypath}"
    label = origins[-1][0] if origins else ""
    return f"{label}: {keypath}" if label else keypath
