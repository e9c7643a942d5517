"""Watching a folder for new observation files, and keeping a history of forecasts.

A live gauge feed plugs in by writing files into the watched folder: one CSV or
Parquet table per delivery (``time_s, gauge, level_m``, as for
``--observations``). A writer should write to a hidden or temporary name
(``.part-17.csv``, ``17.csv.tmp``) and rename it when complete; as a second
guard, a file is only taken once its size and modification time are the same
on two polls in a row. A file that changes later (a feed appending to one
file) is taken again.

:class:`ObservationFolder` finds the files; :func:`watch` calls back with them
(the runner re-forecasts there); :func:`keep_history` copies a finished
forecast's files into ``history/STAMP/`` beside the latest ones.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OBSERVATION_PATTERNS", "ObservationFolder", "watch", "history_stamp", "keep_history"]

log = logging.getLogger(__name__)

#: File names a watched folder takes as observations.
OBSERVATION_PATTERNS = ("*.csv", "*.parquet", "*.pq")
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass
class ObservationFolder:
    """New, complete observation files in *folder*, poll by poll.

    Attributes
    ----------
    folder
        The watched folder (created if missing).
    patterns
        Glob patterns of the files taken.
    """

    folder: Path
    patterns: tuple[str, ...] = OBSERVATION_PATTERNS
    _taken: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    _pending: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _candidates(self) -> Iterable[Path]:
        for pattern in self.patterns:
            for p in self.folder.glob(pattern):
                if p.name.startswith(".") or p.name.lower().endswith(_PARTIAL_SUFFIXES):
                    continue
                if p.is_file():
                    yield p

    def poll(self) -> list[Path]:
        """Files that are new or changed and unchanged since the previous poll.

        Returns them oldest first (modification time, then name). A file seen
        for the first time, or changed since, waits one poll.
        """
        ready: list[tuple[int, str, Path]] = []
        pending: dict[str, tuple[int, int]] = {}
        for p in self._candidates():
            try:
                st = p.stat()
            except FileNotFoundError:  # removed between glob and stat
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if self._taken.get(p.name) == sig:
                continue
            if self._pending.get(p.name) == sig:
                self._taken[p.name] = sig
                ready.append((st.st_mtime_ns, p.name, p))
            else:
                pending[p.name] = sig
        self._pending = pending
        return [p for _, _, p in sorted(ready)]

    def mark_taken(self, paths: Iterable[Path]) -> None:
        """Count *paths* as already taken (e.g. the files given at start-up)."""
        for p in paths:
            st = Path(p).stat()
            self._taken[Path(p).name] = (st.st_size, st.st_mtime_ns)


def watch(
    folder: str | Path,
    on_new: Callable[[list[Path]], None],
    *,
    interval_s: float = 5.0,
    stop: Callable[[], bool] | None = None,
    max_polls: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Poll *folder* every *interval_s* seconds and call *on_new* with each batch of files.

    Parameters
    ----------
    folder
        The watched folder.
    on_new
        Called with the new files (oldest first); an exception in it is
        logged and the watch goes on (the next delivery retries).
    interval_s
        Seconds between polls (wall clock), > 0.
    stop
        Checked before each poll; True ends the watch.
    max_polls
        End after this many polls (None: until *stop* or Ctrl-C).
    sleep
        The wait between polls (a test passes a no-op).

    Returns
    -------
    int
        How many times *on_new* was called.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    obs = ObservationFolder(Path(folder))
    calls = polls = 0
    while (stop is None or not stop()) and (max_polls is None or polls < max_polls):
        new = obs.poll()
        polls += 1
        if new:
            calls += 1
            try:
                on_new(new)
            except Exception:  # a bad delivery must not end a live watch
                log.exception("re-forecast on %s failed", ", ".join(p.name for p in new))
        if max_polls is None or polls < max_polls:
            sleep(interval_s)
    return calls


def history_stamp(at_s: float) -> str:
    """A sortable folder name for a forecast made at *at_s* (s): ``t0003600``."""
    return f"t{int(round(at_s)):07d}"


def keep_history(out_dir: str | Path, files: Iterable[str | Path], stamp: str) -> Path:
    """Copy a finished forecast's *files* into ``out_dir/history/stamp/``; return that folder.

    The latest forecast stays at the top of *out_dir*; earlier ones are kept
    by stamp. A stamp already in the history is replaced.
    """
    target = Path(out_dir) / "history" / stamp
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, target / Path(f).name)
    return target
