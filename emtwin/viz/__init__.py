"""emtwin.viz: maps, charts and reports of a run (they read Results only).

- :func:`build_map` / :func:`write_map`: the animated pydeck map (``map.html``);
- :func:`render_charts` / :func:`write_charts`: matplotlib PNG charts;
- :func:`render_report` / :func:`write_report`: the run report (``report.html``);
- :func:`render_comparison`: several plans side by side (fed by the batch runner);
- :func:`run_writers`: the writers ``emtwin run`` hands to ``write_results``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from emtwin.viz.charts import render_charts, write_charts
from emtwin.viz.compare import RunRecord, load_run, render_comparison
from emtwin.viz.map import build_map, write_map
from emtwin.viz.report import render_report, write_report

__all__ = [
    "build_map",
    "write_map",
    "render_charts",
    "write_charts",
    "render_report",
    "write_report",
    "render_comparison",
    "RunRecord",
    "load_run",
    "run_writers",
]


def run_writers(
    results: Any,
    *,
    map: bool | None = None,  # noqa: A002 - the scenario key's name
    report: bool | None = None,
    basemap: str | None = None,
) -> dict[str, Callable[[Path], None]]:
    """Writers of ``charts/``, ``map.html`` and ``report.html`` for ``write_results(extra=...)``.

    Parameters
    ----------
    results
        A run's Results.
    map, report
        Whether to write the map and the report (with its charts); default:
        the scenario's ``outputs.map`` and ``outputs.report`` (True without a scenario).
    basemap
        Passed to :func:`build_map` (None: offline, no tiles).
    """
    outputs = getattr(getattr(results, "scenario", None), "outputs", None)
    want_map = map if map is not None else bool(getattr(outputs, "map", True))
    want_report = report if report is not None else bool(getattr(outputs, "report", True))
    writers: dict[str, Callable[[Path], None]] = {}
    if getattr(results, "grid", None) is not None and want_map:

        def map_page(p: Path) -> None:
            write_map(results, p, basemap=basemap)

        writers["map.html"] = map_page
    if want_report:
        cache: dict[str, dict[str, bytes]] = {}

        def charts(p: Path) -> None:
            cache["png"] = render_charts(results)
            write_charts(results, p, charts=cache["png"])

        def report(p: Path) -> None:
            write_report(results, p, charts=cache.get("png"),
                         map_href="map.html" if "map.html" in writers else None)  # fmt: skip

        writers["charts"] = charts
        writers["report.html"] = report
    return writers
