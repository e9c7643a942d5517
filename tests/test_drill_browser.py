"""The drill page in a real headless browser (Playwright driving the system's Chromium, see
tests/pw_browser.py): start a drill, close a road from the page, see it turn red on the
map, end the exercise."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="fastapi (the drill extra) is needed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn (the drill extra) is needed")

from drill_world import drill_scenario, drill_world  # noqa: E402
from pw_browser import browser, chromium, open_page  # noqa: E402, F401 - the fixtures

from emtwin.drill.app import create_app  # noqa: E402
from emtwin.drill.session import DrillSession  # noqa: E402

RED = np.array([215, 25, 28])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _map_only(b, path: Path | None = None) -> np.ndarray:
    """A screenshot of the map alone (the side panels hidden for it, then shown again)."""
    panels = "['left', 'right'].forEach((id) => document.getElementById(id).style.visibility"
    b.js(f"{panels} = 'hidden'); true")
    b.page.wait_for_timeout(500)
    img = b.screenshot(path=path)
    b.js(f"{panels} = ''); true")
    return img


def _red(img: np.ndarray) -> int:
    """Pixels within a few levels of the closed-road red."""
    return int((np.abs(img.astype(int) - RED).max(axis=2) <= 12).sum())


def _serve(s: DrillSession, **kw):
    """Serve drill *s* with uvicorn on a free port; yield (s, the control address)."""
    port = _free_port()
    app = create_app(s, token="ctl", player_token="ply", **kw)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    s.start()
    yield s, f"http://127.0.0.1:{port}/?token=ctl"
    s.stop()
    s.wait(60)
    server.should_exit = True
    th.join(10)


@pytest.fixture()
def served(tmp_path: Path):
    world = drill_world()
    sc = drill_scenario(world, actions=[])
    sc.flood.backend = "cpu"
    s = DrillSession(sc, tmp_path / "out", world=world, speed=30.0, after_action=False)
    yield from _serve(s)


def test_close_a_road_from_the_page_and_see_it_red(open_page, tmp_path: Path,  # noqa: F811
                                                   served) -> None:  # fmt: skip
    s, url = served
    b = open_page()
    b.page.goto(url)
    b.wait("window.emtwin && window.emtwin.ready && window.emtwin.rendered > 0", timeout=90)
    assert b.js("window.emtwin.role") == "control"
    before = _map_only(b)
    roads = s.world.roads
    group = sorted({int(g) for g in s.feed.group[roads.edges_named("v3-3")]})
    assert [b.js(f"window.emtwin.roads[{g}]") for g in group] == [0]
    # a player's way: choose "close a road", type the road, press the button
    b.page.select_option("#kind", "close_road")
    b.page.fill("#a-value", "v3-3")
    b.page.click("#issue")
    b.wait(f"window.emtwin.roads[{group[0]}] === 2", timeout=30)
    b.wait("window.emtwin.latencies.length > 0", timeout=30)
    after = _map_only(b, tmp_path / "closed.png")
    assert s.sim.roads.closed_by_plan[roads.edges_named("v3-3")].all()
    # the road is drawn in the closed colour: a 200 m street in red, wider
    assert _red(after) > _red(before) + 100
    assert "close road v3-3" in b.page.text_content("#log")
    # end the exercise from the page
    b.js("document.getElementById('stop').click(); true")
    assert s.wait(120) and s.state == "done"
    assert (s.folder / "decisions.jsonl").read_text().count("close_road") == 1
    assert b.problems == [] and b.js("window.emtwin.errors") == []


def _warm(img: np.ndarray) -> float:
    """How warm the picture is: the mean of red minus blue (the risk map is yellow to red,
    the water blue), colour levels."""
    return float((img[..., 0].astype(int) - img[..., 2].astype(int)).mean())


@pytest.fixture()
def served_rain(tmp_path: Path):
    """Heavy rain with an uncertain scale (tests/test_drill_forecast.py), members in process."""
    from test_drill_forecast import scenario

    world = drill_world()
    s = DrillSession(scenario(world, actions=[]), tmp_path / "out", world=world, speed=30.0,
                     after_action=False)  # fmt: skip
    s.step_to(1200.0)
    yield from _serve(s, forecast_workers=0)


def test_the_forecast_button_shows_fan_charts_and_the_risk_map(open_page, served_rain,  # noqa: F811
                                                               tmp_path: Path) -> None:  # fmt: skip
    s, url = served_rain
    b = open_page()
    b.page.goto(url)
    b.wait("window.emtwin && window.emtwin.ready && window.emtwin.rendered > 0", timeout=90)
    b.page.click("#pause")  # hold the clock: the map below stays as it is
    b.wait("window.emtwin.state.paused === true", timeout=30)
    before = _map_only(b)
    b.page.fill("#fc-members", "4")
    b.page.fill("#fc-hours", "0.25")
    b.page.click("#fc-run")
    b.wait("window.emtwin.forecast && window.emtwin.forecast.state === 'done'", timeout=300)
    f = b.js("window.emtwin.forecast")
    assert f["members"] == 4 and f["to_s"] - f["at_s"] == 900.0
    # the fan charts of both gauges, and the risk map over the map (as it is uniform here,
    # the whole grid turns warm where it was blue water)
    alts = b.js("[...document.querySelectorAll('#forecast img')].map((i) => i.alt)")
    assert sorted(alts) == ["fan chart corner", "fan chart low"]
    assert b.js("[...document.querySelectorAll('#forecast img')].every((i) => "
                "i.naturalWidth > 100)")  # fmt: skip
    shown = _map_only(b, tmp_path / "risk.png")
    assert _warm(shown) > _warm(before) + 10
    b.page.uncheck("#fc-show")
    b.page.wait_for_timeout(300)
    assert _warm(_map_only(b)) == pytest.approx(_warm(before), abs=2)
    assert "forecast from now: 4 members" in b.page.text_content("#log")
    assert b.problems == [] and b.js("window.emtwin.errors") == []
