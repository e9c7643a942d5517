"""The map in a real headless browser (Debian's chromium, driven over the DevTools protocol).

The set-up installs chromium with apt-get when it is missing and we are root;
the tests are skipped, with the reason, only when it cannot be had.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emtwin.viz import write_map

websocket = pytest.importorskip("websocket", reason="websocket-client (the test extra) is needed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1280,800",
         "--remote-debugging-port=0"]  # fmt: skip


def _install_chromium() -> str | None:
    """Install Debian's chromium with apt-get (root only); its path, or None with the reason."""
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


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or _install_chromium()
    if path is None:
        pytest.skip(
            "chromium is not installed and could not be installed with apt-get "
            "(needs root, apt-get and network access to Debian's mirrors)"
        )
    return path


class Browser:
    """One headless chromium with one page, and a minimal DevTools protocol client."""

    def __init__(self, exe: str, tmp: Path) -> None:
        profile = tmp / "profile"
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
        url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(url, timeout=None, suppress_origin=True)
        self.replies: queue.Queue = queue.Queue()
        self.problems: list[str] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")

    def _read(self) -> None:
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except Exception:  # noqa: BLE001 - the socket closed
                return
            if "id" in msg:
                self.replies.put(msg)
                continue
            method, p = msg.get("method"), msg.get("params", {})
            if method == "Runtime.exceptionThrown":
                self.problems.append("exception: " + json.dumps(p["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                self.problems.append("console.error: " + json.dumps(p.get("args"))[:500])
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                self.problems.append("log: " + p["entry"].get("text", "")[:500])
            elif method == "Inspector.targetCrashed":
                self.problems.append("the page crashed")

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = self.replies.get(timeout=timeout)
            if msg["id"] == self.next_id:
                break
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression}")
            time.sleep(0.1)

    def screenshot(self) -> np.ndarray:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory):
    b = Browser(chromium, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def _after(b: Browser, action: str) -> np.ndarray:
    """Run the JavaScript *action*, wait until the map has drawn again, and take a screenshot."""
    n = b.js("window.emtwin.rendered")
    b.js(action + "; true")
    b.wait(f"window.emtwin.rendered > {n}", timeout=30)
    time.sleep(0.3)
    return b.screenshot()


def _blue(img: np.ndarray) -> int:
    """Pixels of a depth colour (blended over the ground: blue clearly above red)."""
    r, g, bl = (img[..., i].astype(int) for i in range(3))
    return int(((bl - r > 40) & (bl > 120)).sum())


def test_map_plays_in_a_browser(browser: Browser, small_world, tmp_path: Path) -> None:
    from test_viz import fake_results

    res = fake_results(small_world)
    page = write_map(res, tmp_path / "map.html")
    browser.call("Page.navigate", url=page.resolve().as_uri())
    browser.wait("window.emtwin && window.emtwin.ready", timeout=90)
    browser.js(
        "document.getElementById('panel').style.visibility = 'hidden';"
        "document.getElementById('timebar').style.visibility = 'hidden'; true"
    )
    start = _after(browser, "window.emtwin.show(0)")
    assert browser.problems == [] and browser.js("window.emtwin.errors") == []
    assert start.std() > 10, "the map canvas is blank"
    assert len(np.unique(start.reshape(-1, 3), axis=0)) > 20
    # move the slider as a user would (an input event), to the end of the run
    end = _after(
        browser,
        "const s = document.getElementById('slider'); s.value = s.max;"
        "s.dispatchEvent(new Event('input'))",
    )
    assert browser.js("window.emtwin.t") == 3600.0
    assert browser.js("document.getElementById('clock').textContent") == "T+1:00"
    assert np.abs(end.astype(int) - start.astype(int)).mean() > 1.0, "the picture did not change"
    # at 0 s the ground is dry; at 1 h water 0.6 m deep covers 18 of the 20 columns
    assert _blue(start) < 0.01 * start[..., 0].size < _blue(end)
    # a tooltip names a road, its state now and its first closure
    tip = browser.js("""(() => { const d = window.emtwin.deck;
        const l = d.props.layers.find((x) => x.id === 'roads');
        const o = l.props.data.find((x) => x.i === 'north');
        return d.props.getTooltip({object: o, layer: l}).html; })()""")
    assert "north street" in tip and "first closed: T+0:20" in tip and "now: slowed" in tip
    Image.fromarray(start).save(tmp_path / "start.png")
    Image.fromarray(end).save(tmp_path / "end.png")
    assert browser.problems == [] and browser.js("window.emtwin.errors") == []


def test_flood_only_map_in_a_browser(browser: Browser, small_world, tmp_path: Path) -> None:
    from test_viz import fake_results

    res = fake_results(small_world, evacuation=False, dispatch=False)
    page = write_map(res, tmp_path / "map.html")
    browser.call("Page.navigate", url=page.resolve().as_uri())
    browser.wait("window.emtwin && window.emtwin.ready", timeout=90)
    img = _after(browser, "window.emtwin.show(1800)")
    assert img.std() > 10
    labels = browser.js("[...document.querySelectorAll('#layers label')].map(l => l.textContent)")
    assert [s.strip() for s in labels] == [
        "Terrain",
        "Max depth (whole run)",
        "Flood depth",
        "Roads",
        "Shelters",
        "Stations & hospitals",
    ]
    # hide the flood: the picture loses its water
    dry = _after(browser, "document.querySelectorAll('#layers input')[2].click()")
    assert _blue(dry) < _blue(img)
    assert browser.problems == [] and browser.js("window.emtwin.errors") == []


def test_typhoon_map_in_a_browser(browser: Browser, small_world, tmp_path: Path) -> None:
    from test_typhoon_map import _scenario

    from emtwin.sim import Simulation
    from emtwin.viz.storm import arrow_path

    res = Simulation(_scenario(tmp_path, typhoon=True), world=small_world).run()
    page = write_map(res, tmp_path / "map.html")
    browser.call("Page.navigate", url=page.resolve().as_uri())
    browser.wait("window.emtwin && window.emtwin.ready", timeout=90)
    start = _after(browser, "window.emtwin.show(0)")
    end = _after(browser, "window.emtwin.show(3600)")
    assert np.abs(end.astype(int) - start.astype(int)).mean() > 0.5, "the wind did not change"
    labels = browser.js("[...document.querySelectorAll('#layers label')].map(l => l.textContent)")
    assert {"Wind", "Wind arrows", "Storm track"} <= {s.strip() for s in labels}
    # the script draws the arrow of the last output time as the Python construction does
    got = browser.js("""(() => { const d = window.emtwin.deck;
        const l = d.props.layers.find((x) => x.id === 'wind-arrows');
        const o = l.props.data[0]; return [o, l.props.getPath(o)]; })()""")
    datum, path = got
    k = json.loads(page.read_text().split('id="emtwin-config">')[1].split("</script>")[0])
    k = k["anim"]["wind-arrows"]["k"]
    want = arrow_path(datum["c"][0], datum["c"][1], datum["b"][-1], k * datum["v"][-1])
    np.testing.assert_allclose(path, want, rtol=0, atol=1e-9)
    tip = browser.js("""(() => { const d = window.emtwin.deck;
        const l = d.props.layers.find((x) => x.id === 'storm-track-points');
        return d.props.getTooltip({object: l.props.data[1], layer: l}).html; })()""")
    assert "T+0:30" in tip and "962 hPa" in tip
    assert browser.problems == [] and browser.js("window.emtwin.errors") == []
