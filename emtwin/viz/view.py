"""Opening a run's report in a browser, or serving its output folder over HTTP."""

from __future__ import annotations

import functools
import http.server
import webbrowser
from pathlib import Path

from emtwin.errors import EmtwinError

__all__ = ["report_path", "open_report", "make_server"]


def report_path(folder: str | Path) -> Path:
    """The page to open in an output folder: report.html, else map.html.

    Raises
    ------
    EmtwinError
        When *folder* is not a folder or holds neither page.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EmtwinError(f"{folder}: no such output folder")
    for name in ("report.html", "map.html"):
        if (folder / name).is_file():
            return folder / name
    raise EmtwinError(f"{folder}: holds no report.html or map.html (run with outputs.report: "
                      "true or outputs.map: true)")  # fmt: skip


def open_report(folder: str | Path) -> Path:
    """Open the folder's report (or map) in the default web browser; return its path."""
    page = report_path(folder).resolve()
    webbrowser.open(page.as_uri())
    return page


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def make_server(
    folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000
) -> http.server.ThreadingHTTPServer:
    """An HTTP server of *folder* only (nothing above it), bound to *host*:*port*.

    Port 0 picks a free port (``server.server_address[1]``). Call
    ``serve_forever()`` on it; ``shutdown()`` stops it.
    """
    page = report_path(folder)
    handler = functools.partial(_Quiet, directory=str(page.parent.resolve()))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise EmtwinError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
