"""Real-browser tests: Playwright (sync API) driving the system's Chromium.

``playwright install`` downloads its own browsers, which a machine without access to
Playwright's download host cannot do; these tests launch Debian's ``chromium``
(``/usr/bin/chromium``) through ``executable_path`` instead. The session fixture
:func:`chromium` finds it, installs it with ``apt-get`` when it is missing and we are
root (``make chromium`` does the same beforehand), and skips the tests, with the
reason, only when it cannot be had. :func:`browser` is one headless Chromium per test
module; :func:`open_page` opens a page that records the page's errors.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright (the test extra) is needed")  # fmt: skip

#: Chromium's switches: software WebGL (SwiftShader) for deck.gl, no network chatter.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]  # fmt: skip
#: The page's size, CSS pixels.
VIEWPORT = {"width": 1280, "height": 800}


def _install_chromium() -> str | None:
    """Install Debian's chromium with apt-get (root only); its path, or None."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    for attempt in range(2):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
        except subprocess.TimeoutExpired:
            return None
        if done.returncode == 0:
            break
        if attempt == 0:  # stale package lists: refresh once and retry
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300)
    return shutil.which("chromium")


def find_chromium() -> str | None:
    """The system Chromium's path (``$EMTWIN_CHROMIUM``, chromium, chromium-browser), or None."""
    for name in (os.environ.get("EMTWIN_CHROMIUM"), "chromium", "chromium-browser"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of the system Chromium (installed with apt-get when missing and root)."""
    path = find_chromium() or _install_chromium()
    if path is None:
        pytest.skip("chromium is not installed and could not be installed with apt-get "
                    "(needs root, apt-get and network access to Debian's mirrors); "
                    "run `make chromium` or set EMTWIN_CHROMIUM")  # fmt: skip
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """One headless Chromium (Playwright) per test module.

    Per module, not per session: each test module imports the fixture into its own
    namespace, and Playwright's sync API allows one running instance per thread.
    """
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A Playwright page that keeps the page's uncaught errors and console errors."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"exception: {exc}"))
        self.page.on("console", self._console)
        self.page.on("crash", lambda _: self.problems.append("the page crashed"))

    def _console(self, msg: Any) -> None:
        if msg.type in ("error", "assert"):
            self.problems.append(f"console.error: {msg.text}"[:500])

    def js(self, expression: str) -> Any:
        """Evaluate *expression* in the page; its value."""
        return self.page.evaluate(expression)

    def wait(self, expression: str, timeout: float = 60) -> None:
        """Wait until *expression* is true in the page (*timeout* s)."""
        self.page.wait_for_function(expression, timeout=timeout * 1000, polling=100)

    def screenshot(self, path: Any = None) -> np.ndarray:
        """The page as an RGB array (also saved to *path* when given)."""
        data = self.page.screenshot(path=path)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def open_page(browser: Any) -> Iterator[Any]:
    """A factory of :class:`Page` in the session's browser; pages are closed afterwards."""
    pages: list[Page] = []

    def make() -> Page:
        p = Page(browser)
        pages.append(p)
        return p

    yield make
    for p in pages:
        p.close()
