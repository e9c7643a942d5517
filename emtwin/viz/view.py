"""Opening a run's report in a browser, or serving its output folder over HTTP."""

from __future__ import annotations

import functools
import http.server
import ipaddress
import webbrowser
from pathlib import Path

from emtwin.errors import EmtwinError

__all__ = ["report_path", "open_report", "make_server", "is_loopback"]


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


def open_report(folder: str | Path) -> tuple[Path, bool]:
    """Open the folder's report (or map) in the default web browser.

    Returns the page's path and whether a browser could be started
    (``webbrowser.open`` finds none on a machine without a display).
    """
    page = report_path(folder).resolve()
    return page, bool(webbrowser.open(page.as_uri()))


def is_loopback(host: str) -> bool:
    """True when *host* names this machine only (``localhost``, 127.0.0.0/8, ``::1``).

    Any other name or address (``0.0.0.0``: every interface) may be reachable
    from other machines. Names other than ``localhost`` are not resolved.
    """
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """Serves one folder: ``/`` is its report page; no directory listings, no log lines."""

    page = "report.html"

    def send_head(self):  # type: ignore[no-untyped-def] - stdlib signature
        if self.path.split("?", 1)[0].split("#", 1)[0] in ("", "/"):
            self.path = "/" + self.page
        return super().send_head()

    def list_directory(self, path):  # type: ignore[no-untyped-def] - stdlib signature
        self.send_error(404, "No directory listings here")
        return None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def make_server(
    folder: str | Path, *, host: str = "127.0.0.1", port: int = 8000
) -> http.server.ThreadingHTTPServer:
    """An HTTP server of *folder* only (nothing above it), bound to *host*:*port*.

    ``/`` serves the folder's report.html (else map.html); folders are never
    listed. Port 0 picks a free port (``server.server_address[1]``). Call
    ``serve_forever()`` on it; ``shutdown()`` stops it.
    """
    page = report_path(folder)
    handler_cls = type("_Page", (_Quiet,), {"page": page.name})
    handler = functools.partial(handler_cls, directory=str(page.parent.resolve()))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise EmtwinError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
