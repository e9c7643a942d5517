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


@pytest.fixture()
def served(tmp_path: Path):
    world = drill_world()
    sc = drill_scenario(world, actions=[])
    sc.flood.backend = "cpu"
    s = DrillSession(sc, tmp_path / "out", world=world, speed=30.0, after_action=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(s, token="ctl", player_token="ply"),
                                           host="127.0.0.1", port=port, log_level="warning"))
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
