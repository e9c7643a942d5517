"""Drill + forecast: how fast does the live riverside drill run while a forecast runs, and
how fast does a decision reach the screen (headless Chromium, Playwright)?

Starts the built-in ``riverside`` drill at ``--speed`` (default 60x) behind the real web
server, plays at full speed to ``--from`` (default 1h20min, the flood rising) and opens
the control page in the system's Chromium (Playwright; ``make chromium``). Then two
phases of ``--phase`` wall seconds each (the second lasts until the forecast is done):

1. the drill alone;
2. the drill while *Run forecast* runs ``--members`` members ``--hours`` ahead
   (``--workers`` worker processes).

In each phase a decision is issued from the page every 2.5 s (closing and opening
``bridge-east`` in turn) and timed from the click to the first frame drawn with it
(the page's own measure, ``window.emtwin.latencies``). Prints, per phase, the speed the
paced clock held, the speed of computing alone and the latencies; and the forecast's
wall time. ``--screenshot FILE`` saves the page with the forecast shown (docs/img).

    python benchmarks/drill_forecast.py [--speed 60] [--members 8] [--hours 3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import threading
import time

import uvicorn
from playwright.sync_api import sync_playwright

from emtwin.drill.app import create_app
from emtwin.drill.session import DrillSession
from emtwin.scenarios import load_scenario
from emtwin.scenarios._types import parse_duration

ARGS = ["--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader", "--no-first-run"]  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _phase(page, s: DrillSession, until, min_s: float) -> dict[str, float | list[float]]:
    """Decide every 2.5 s until *until()* and *min_s* wall s have passed; the figures."""
    n0 = page.evaluate("window.emtwin.latencies.length")
    w0 = len(s.lock_waits)
    wall0, sim0, c0, cs0 = time.perf_counter(), s.time_s, s.compute_s, s.computed_sim_s
    i = 0
    issued = []
    while time.perf_counter() - wall0 < min_s or not until():
        kind = "close_road" if i % 2 == 0 else "open_road"
        issued.append(page.evaluate("performance.now()"))
        page.evaluate(f"window.emtwin.issue({{{kind}: 'bridge-east'}})")
        i += 1
        page.wait_for_timeout(2500)
    wall = time.perf_counter() - wall0
    page.wait_for_timeout(1500)  # the last decision's frame
    lat = page.evaluate(f"window.emtwin.latencies.slice({n0})")
    return {"wall_s": wall, "held": (s.time_s - sim0) / wall,
            "alone": (s.computed_sim_s - cs0) / max(s.compute_s - c0, 1e-9),
            "latencies_ms": lat, "issued_ms": issued[: len(lat)],
            "waits_ms": [1000 * w for w in s.lock_waits[w0:]]}  # fmt: skip


def _report(name: str, r: dict) -> None:
    lat = r["latencies_ms"]
    print(f"{name}: paced clock held {r['held']:.1f}x over {r['wall_s']:.0f} s; computing "
          f"alone {r['alone']:.1f}x")  # fmt: skip
    if lat:
        print(f"  decision -> screen, ms: {[round(x) for x in lat]}; median "
              f"{statistics.median(lat):.0f}, max {max(lat):.0f}, "
              f"{sum(x < 500 for x in lat)} of {len(lat)} under 500 ms")  # fmt: skip
    w = r["waits_ms"]
    if w:
        print(f"  of which waiting for the step under way (server), ms: median "
              f"{statistics.median(w):.0f}, max {max(w):.0f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--from", dest="start", default="1h20min")
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--phase", type=float, default=30.0, help="wall s of the first phase")
    ap.add_argument("--screenshot", default=None)
    args = ap.parse_args()
    sc = load_scenario("riverside")
    sc.flood.backend = "cpu"
    out = tempfile.mkdtemp(prefix="emtwin-drill-")
    s = DrillSession(sc, out, speed=args.speed, after_action=False)
    port = _port()
    app = create_app(s, token="c", player_token="p", forecast_workers=args.workers)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    s.start()
    start = float(parse_duration(args.start))
    s.jump(start)
    while s.time_s < start:
        time.sleep(0.1)
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/?token=c")
        page.wait_for_function("window.emtwin && window.emtwin.ready", timeout=120_000)
        page.wait_for_timeout(2000)
        alone = _phase(page, s, lambda: True, args.phase)
        forecasts = app.state.forecasts
        page.fill("#fc-members", str(args.members))
        page.fill("#fc-hours", str(args.hours))
        page.click("#fc-run")
        page.wait_for_function("window.emtwin.forecastAsked", timeout=60_000)
        during = _phase(page, s, lambda: forecasts.running() is None, 0.0)
        page.wait_for_function("window.emtwin.forecast", timeout=600_000)
        shown = page.evaluate("window.emtwin.forecastShownAfter")
        shown_at = page.evaluate("window.emtwin.forecastAsked") + shown
        job = forecasts.get(forecasts.brief()["id"])
        if args.screenshot:
            page.evaluate("document.getElementById('forecast').parentElement"
                          ".scrollIntoView({block: 'start'})")  # fmt: skip
            page.wait_for_timeout(1500)
            page.screenshot(path=args.screenshot)
        browser.close()
    s.stop()
    s.wait(600)
    _report("drill alone", alone)
    _report("drill while the forecast runs", during)
    print(f"forecast: {job['members']} members, {job['horizon_s'] / 3600:g} h ahead from "
          f"T+{job['at_s'] / 3600:.2f} h, {args.workers} worker(s): members "
          f"{job['members_wall_s']:.1f} s, with the products {job['wall_s']:.1f} s; on the "
          f"page {shown / 1000:.1f} s after the click")  # fmt: skip
    lat, issued = during["latencies_ms"], during["issued_ms"]
    if lat and len(issued) == len(lat):
        k = max(range(len(lat)), key=lat.__getitem__)
        wk = during["waits_ms"][k] if k < len(during["waits_ms"]) else float("nan")
        print(f"  the slowest decision ({lat[k]:.0f} ms, {wk:.0f} ms of it waiting for the "
              f"step under way) was issued {(issued[k] - shown_at) / 1000:+.2f} s from the "
              "forecast's drawing on the page")  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
