"""The map in a real headless browser: Playwright driving the system's Chromium
(tests/pw_browser.py: installed with apt-get when missing and we are root; the tests are
skipped, with the reason, only when it cannot be had)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pw_browser import Page, browser, chromium  # noqa: F401 - the fixtures

from emtwin.viz import write_map


@pytest.fixture(scope="module")
def page(browser) -> Page:  # noqa: F811 - the fixture
    p = Page(browser)
    yield p
    p.close()


def _after(b: Page, action: str) -> np.ndarray:
    """Run the JavaScript *action*, wait until the map has drawn again, and take a screenshot."""
    n = b.js("window.emtwin.rendered")
    b.js(action + "; true")
    b.wait(f"window.emtwin.rendered > {n}", timeout=30)
    b.page.wait_for_timeout(300)
    return b.screenshot()


def _blue(img: np.ndarray) -> int:
    """Pixels of a depth colour (blended over the ground: blue clearly above red)."""
    r, g, bl = (img[..., i].astype(int) for i in range(3))
    return int(((bl - r > 40) & (bl > 120)).sum())


def test_map_plays_in_a_browser(page: Page, small_world, tmp_path: Path) -> None:
    from test_viz import fake_results

    res = fake_results(small_world)
    html = write_map(res, tmp_path / "map.html")
    page.page.goto(html.resolve().as_uri())
    page.wait("window.emtwin && window.emtwin.ready", timeout=90)
    page.js(
        "document.getElementById('panel').style.visibility = 'hidden';"
        "document.getElementById('timebar').style.visibility = 'hidden'; true"
    )
    start = _after(page, "window.emtwin.show(0)")
    assert page.problems == [] and page.js("window.emtwin.errors") == []
    assert start.std() > 10, "the map canvas is blank"
    assert len(np.unique(start.reshape(-1, 3), axis=0)) > 20
    # move the slider as a user would (an input event), to the end of the run
    end = _after(
        page,
        "const s = document.getElementById('slider'); s.value = s.max;"
        "s.dispatchEvent(new Event('input'))",
    )
    assert page.js("window.emtwin.t") == 3600.0
    assert page.js("document.getElementById('clock').textContent") == "T+1:00"
    assert np.abs(end.astype(int) - start.astype(int)).mean() > 1.0, "the picture did not change"
    # at 0 s the ground is dry; at 1 h water 0.6 m deep covers 18 of the 20 columns
    assert _blue(start) < 0.01 * start[..., 0].size < _blue(end)
    # a tooltip names a road, its state now and its first closure
    tip = page.js("""(() => { const d = window.emtwin.deck;
        const l = d.props.layers.find((x) => x.id === 'roads');
        const o = l.props.data.find((x) => x.i === 'north');
        return d.props.getTooltip({object: o, layer: l}).html; })()""")
    assert "north street" in tip and "first closed: T+0:20" in tip and "now: slowed" in tip
    Image.fromarray(start).save(tmp_path / "start.png")
    Image.fromarray(end).save(tmp_path / "end.png")
    assert page.problems == [] and page.js("window.emtwin.errors") == []


def test_flood_only_map_in_a_browser(page: Page, small_world, tmp_path: Path) -> None:
    from test_viz import fake_results

    res = fake_results(small_world, evacuation=False, dispatch=False)
    html = write_map(res, tmp_path / "map.html")
    page.page.goto(html.resolve().as_uri())
    page.wait("window.emtwin && window.emtwin.ready", timeout=90)
    img = _after(page, "window.emtwin.show(1800)")
    assert img.std() > 10
    labels = page.js("[...document.querySelectorAll('#layers label')].map(l => l.textContent)")
    assert [s.strip() for s in labels] == [
        "Terrain",
        "Max depth (whole run)",
        "Flood depth",
        "Roads",
        "Shelters",
        "Stations & hospitals",
    ]
    # hide the flood: the picture loses its water
    dry = _after(page, "document.querySelectorAll('#layers input')[2].click()")
    assert _blue(dry) < _blue(img)
    assert page.problems == [] and page.js("window.emtwin.errors") == []


def test_typhoon_map_in_a_browser(page: Page, small_world, tmp_path: Path) -> None:
    from test_typhoon_map import _scenario

    from emtwin.sim import Simulation
    from emtwin.viz.storm import arrow_path

    res = Simulation(_scenario(tmp_path, typhoon=True), world=small_world).run()
    html = write_map(res, tmp_path / "map.html")
    page.page.goto(html.resolve().as_uri())
    page.wait("window.emtwin && window.emtwin.ready", timeout=90)
    start = _after(page, "window.emtwin.show(0)")
    end = _after(page, "window.emtwin.show(3600)")
    assert np.abs(end.astype(int) - start.astype(int)).mean() > 0.5, "the wind did not change"
    labels = page.js("[...document.querySelectorAll('#layers label')].map(l => l.textContent)")
    assert {"Wind", "Wind arrows", "Storm track"} <= {s.strip() for s in labels}
    # the script draws the arrow of the last output time as the Python construction does
    got = page.js("""(() => { const d = window.emtwin.deck;
        const l = d.props.layers.find((x) => x.id === 'wind-arrows');
        const o = l.props.data[0]; return [o, l.props.getPath(o)]; })()""")
    datum, path = got
    k = json.loads(html.read_text().split('id="emtwin-config">')[1].split("</script>")[0])
    k = k["anim"]["wind-arrows"]["k"]
    want = arrow_path(datum["c"][0], datum["c"][1], datum["b"][-1], k * datum["v"][-1])
    np.testing.assert_allclose(path, want, rtol=0, atol=1e-9)
    tip = page.js("""(() => { const d = window.emtwin.deck;
        const l = d.props.layers.find((x) => x.id === 'storm-track-points');
        return d.props.getTooltip({object: l.props.data[1], layer: l}).html; })()""")
    assert "T+0:30" in tip and "962 hPa" in tip
    assert page.problems == [] and page.js("window.emtwin.errors") == []
