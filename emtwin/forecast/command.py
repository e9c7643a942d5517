"""What ``emtwin forecast`` does: one forecast, or a watch that re-forecasts on new files.

Kept out of :mod:`emtwin.cli` (which only parses the options) so that the
watch loop can be tested and reused by a service.

Watch mode (``--watch DIR``): every new observation file in DIR (see
:mod:`emtwin.forecast.watch` for what counts as new and complete) is added to
the observations, and the forecast is made again from "now" = the later of
``--at`` and the last gauge reading. The latest forecast is at the top of the
output folder; each one is also copied to ``history/tNNNNNNN/`` (its "now" in
seconds). A bad file is reported and left out; the watch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emtwin.errors import EmtwinError
from emtwin.forecast import watch as watchmod
from emtwin.forecast.runner import ForecastResult, forecast, read_observations

__all__ = ["latest_reading_s", "run_watch"]

log = logging.getLogger(__name__)


def latest_reading_s(files: Sequence[str | Path], scenario: Any) -> float | None:
    """The time of the last gauge reading in *files* (s since t = 0), None without readings."""
    gauges, _ = read_observations(files, scenario)
    times = [float(g.table["time_s"].max()) for g in gauges if len(g.table)]
    return max(times) if times else None


def run_watch(
    scenario: str | Path,
    folder: str | Path,
    *,
    observations: Sequence[str | Path],
    at_s: float,
    out_dir: str | Path,
    interval_s: float = 5.0,
    max_polls: int | None = None,
    sleep: Callable[[float], None] | None = None,
    on_forecast: Callable[[ForecastResult], None] | None = None,
    **kwargs: Any,
) -> int:
    """Forecast now from *observations*, then again whenever files land in *folder*.

    Parameters
    ----------
    scenario
        The scenario file or built-in name.
    folder
        The watched folder.
    observations
        The files given at start (``--observations``).
    at_s
        The earliest "now", s; each forecast starts at the later of this and
        the last gauge reading.
    out_dir
        The output folder: the latest forecast on top, earlier ones in ``history/``.
    interval_s, max_polls, sleep
        As for :func:`emtwin.forecast.watch.watch`.
    on_forecast
        Called with each finished forecast (the CLI prints a line).
    kwargs
        Passed on to :func:`emtwin.forecast.runner.forecast` (horizon_s, members ...).

    Returns
    -------
    int
        The number of forecasts made (the first included).
    """
    from emtwin.batch.ensemble import load_plan

    spec = load_plan(scenario)
    files: list[Path] = [Path(f) for f in observations]
    made = 0

    def once(candidates: list[Path]) -> None:
        nonlocal made
        now = latest_reading_s(candidates, spec.scenario) if candidates else None
        t = max(at_s, now or 0.0)
        res = forecast(spec, candidates, at_s=t, out_dir=out_dir, **kwargs)
        watchmod.keep_history(out_dir, res.files, watchmod.history_stamp(t))
        made += 1
        if on_forecast is not None:
            on_forecast(res)

    if files:
        once(files)
    obs = watchmod.ObservationFolder(Path(folder))
    obs.mark_taken([p for p in files if Path(p).parent.resolve() == Path(folder).resolve()])

    def on_new(new: list[Path]) -> None:
        good = []
        for p in new:
            try:  # a bad delivery is reported and left out; the others are used
                read_observations([p], spec.scenario)
            except EmtwinError as exc:
                log.error("%s: left out: %s", p.name, exc)
                continue
            good.append(p)
        if good:
            files.extend(q for q in good if q not in files)
            once(files)

    kw: dict[str, Any] = {"interval_s": interval_s, "max_polls": max_polls}
    if sleep is not None:
        kw["sleep"] = sleep
    _watch_folder(obs, on_new, **kw)
    return made


def _watch_folder(obs: watchmod.ObservationFolder, on_new: Callable[[list[Path]], None],
                  **kw: Any) -> None:  # fmt: skip
    """:func:`emtwin.forecast.watch.watch` on an ObservationFolder already primed."""
    import time

    interval, max_polls = float(kw["interval_s"]), kw.get("max_polls")
    sleep = kw.get("sleep", time.sleep)
    polls = 0
    while max_polls is None or polls < max_polls:
        new = obs.poll()
        polls += 1
        if new:
            try:
                on_new(new)
            except Exception:  # a failed re-forecast must not end a live watch
                log.exception("re-forecast on %s failed", ", ".join(p.name for p in new))
        if max_polls is None or polls < max_polls:
            sleep(interval)

