"""Maps, charts and reports: layers from hand-made Results, and a real flood run through the CLI."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point
from typer.testing import CliRunner

from emtwin.cli import app
from emtwin.errors import EmtwinError
from emtwin.sim import SUMMARY_KEYS
from emtwin.sim.engine import Results
from emtwin.sim.outputs import write_results
from emtwin.sim.results import world_parts
from emtwin.sim.state import RoadState
from emtwin.viz import RunRecord, build_map, render_charts, render_comparison, run_writers
from emtwin.viz._common import DEPTH_COLORS, depth_palette_image, grid_corners_lonlat
from emtwin.viz._html import HEADLINES
from emtwin.viz.agents import sample_trips
from emtwin.viz.layers import flood_layer, road_timeline
from emtwin.viz.report import shelters_rows, stations_rows
from emtwin.viz.view import make_server

DURATION = 3600.0
TIMES = np.arange(0.0, DURATION + 1, 600.0)  # 7 output times


# ---------------------------------------------------------------- hand-made Results


def _event(t: float, kind: str, entity: str, edge: int = -1, **details) -> tuple:
    return (t, kind, entity, -1, edge, json.dumps(details, sort_keys=True))


def fake_results(world, *, evacuation: bool = True, dispatch: bool = True) -> Results:
    """Results on the conftest small_world (20 x 20 cells of 10 m, a square of 4 roads).

    Water enters from the west: at output k it covers columns < 3k, 0.1 k m deep.
    North closes by water at 1200 s (both directions) and reopens at 2400 s; the
    plan closes 'east' at 600 s. With ``evacuation``: three households drive to
    the School; with ``dispatch``: two calls and one ambulance from North.
    """
    rows, cols = world.terrain.shape
    stack = np.zeros((len(TIMES), rows, cols), dtype=np.float32)
    for k in range(len(TIMES)):
        stack[k, :, : 3 * k] = 0.1 * k
    rs = RoadState(world.roads)
    rs.first_closed_s[[0, 1]] = 1200.0
    rs.first_closed_s[[2, 3]] = 600.0
    rs.max_depth_m[[0, 1]] = 0.6
    rs.max_depth_m[[6, 7]] = 0.6
    events = [
        _event(600.0, "road_closed", "east", 2, edges=2, cause="plan"),
        _event(1200.0, "road_closed", "north", 0, cause="flood", depth_m=0.4),
        _event(1200.0, "road_closed", "north", 1, cause="flood", depth_m=0.4),
        _event(2400.0, "road_opened", "north", 0, cause="flood", depth_m=0.1),
        _event(2400.0, "road_opened", "north", 1, cause="flood", depth_m=0.1),
    ]
    area = np.array([(stack[k] >= 0.05).sum() * 100.0 for k in range(len(TIMES))])
    ts = pd.DataFrame({"time_s": TIMES, "flooded_area_m2": area,
                       "flood_volume_m3": stack.sum(axis=(1, 2)) * 100.0,
                       "roads_closed": [0, 2, 4, 4, 2, 2, 2]})  # fmt: skip
    summary = {k: dict.fromkeys(v) for k, v in SUMMARY_KEYS.items()}
    summary["flood"].update(peak_flooded_area_m2=float(area.max()), peak_volume_m3=float(
        ts.flood_volume_m3.max()), roads_closed=4, mass_error_rel=1e-12,
        max_depth_by_gauge={"g": 0.6}, cells=400, steps=100, kernel_wall_s=0.5)  # fmt: skip
    summary["run"].update(wall_s=1.25, seed=3, scenario="fake", duration_s=DURATION,
                          components=["flood", "roads"])  # fmt: skip
    x0, y0 = world.terrain.transform.c, world.terrain.transform.f
    tables = {
        "gauges": pd.DataFrame(
            {
                "time_s": TIMES,
                "gauge": "g",
                "depth_m": 0.1 * np.arange(7),
                "speed_m_s": 0.2,
                "level_m": 0.1 * np.arange(7),
            }
        )
    }
    if evacuation:
        trips = []
        for i in range(3):
            t0 = 600.0 + 300 * i
            for j, (x, y) in enumerate([(50, 50), (150, 50), (150, 150)]):
                trips.append((f"h{i}", "vehicle", t0 + 100 * j, x0 + x, y0 - y))
        tables["trips"] = pd.DataFrame(trips, columns=["id", "kind", "time_s", "x", "y"])
        occ = [0, 0, 5, 30, 45, 40, 40]
        tables["shelters"] = pd.DataFrame({"time_s": TIMES, "shelter": "School",
                                           "occupancy": occ, "capacity": 50.0})  # fmt: skip
        ts["departed"] = [0, 1, 2, 3, 3, 3, 3]
        ts["sheltered"] = [0, 0, 1, 2, 3, 3, 3]
        ts["stranded"] = 0
        events.append(_event(1500.0, "stranded", "h9", people=2, vehicle=True, x=x0 + 60,
                             y=y0 - 120))  # fmt: skip
        summary["evacuation"].update(households=3, people=7.5, sheltered=7.5, out=0, stranded=0,
                                     never_left=0, t50_s=1500.0, t90_s=1800.0,
                                     clearance_s=2000.0)  # fmt: skip
    if dispatch:
        tables["calls"] = pd.DataFrame({
            "id": ["c1", "c2"], "time_s": [900.0, 1800.0], "x": [x0 + 100, x0 + 120],
            "y": [y0 - 100, y0 - 160], "priority": [1, 2], "type": "medical",
            "needs": "ambulance", "state": ["served", "unserved"], "response_s": [600.0, np.nan],
            "wait_s": [60.0, np.nan], "unit": ["amb-1", ""]})  # fmt: skip
        tables["units"] = pd.DataFrame({"id": ["amb-1", "boat-1"], "type": ["ambulance", "boat"],
                                        "station": "North", "busy_s": [1800.0, 900.0],
                                        "calls": [1, 0]})  # fmt: skip
        unit = [("amb-1", "unit", 960.0 + 100 * j, x0 + x, y0 - y)
                for j, (x, y) in enumerate([(50, 60), (50, 100), (100, 100)])]  # fmt: skip
        # as the dispatch component does: beside an evacuation, its movements are "unit_trips"
        units = pd.DataFrame(unit, columns=["id", "kind", "time_s", "x", "y"])
        tables["unit_trips" if evacuation else "trips"] = units
        ts["calls_waiting"] = [0, 1, 0, 1, 1, 1, 1]
        ts["units_busy"] = [0, 1, 1, 0, 0, 0, 0]
        summary["dispatch"].update(calls=2, served=1, unserved=1, response_p50_s=600.0,
                                   response_p90_s=600.0, wait_mean_s=60.0,
                                   utilisation_mean=0.375)  # fmt: skip
    ev = pd.DataFrame(events, columns=["time_s", "kind", "entity", "node", "edge", "details"])
    return Results(
        summary=summary, events=ev.sort_values("time_s", kind="stable").reset_index(drop=True),
        timeseries=ts, rasters={"max_depth": stack.max(axis=0).astype(float)}, tables=tables,
        frames={"depth": (TIMES, stack)}, frame_transforms={"depth": world.terrain.transform},
        scenario=None, **world_parts(world, rs),
    )  # fmt: skip


class _Tags(HTMLParser):
    """Collects start tags and checks that elements close in order."""

    VOID = {"meta", "link", "input", "br", "img", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.texts: dict[str, str] = {}
        self._id: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in self.VOID:
            self.stack.append(tag)
        self._id = a.get("id") if tag == "script" else None

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data):
        if self._id:
            self.texts[self._id] = self.texts.get(self._id, "") + data


def parse_map(page: str) -> tuple[_Tags, dict, dict]:
    assert page.startswith("<!DOCTYPE html>")
    p = _Tags()
    p.feed(page)
    p.close()
    assert p.stack == [], f"unclosed elements {p.stack}"
    return p, json.loads(p.texts["deck-json"]), json.loads(p.texts["emtwin-config"])


# ---------------------------------------------------------------- pieces


def test_depth_classes_and_transparency() -> None:
    depth = np.array([[0.0, 0.049, 0.05, 0.149, 0.15, 0.3, 0.5, 1.0, 2.0, 5.0, np.nan]])
    rgba = np.asarray(depth_palette_image(depth).convert("RGBA"))[0]
    assert (rgba[[0, 1, 10], 3] == 0).all()  # dry, below 5 cm, NaN: transparent
    expect = [0, 0, 1, 1, 2, 3, 4, 5, 6, 6]  # class by the limits 0.05/0.15/0.3/0.5/1/2 m
    for i, k in enumerate(expect):
        if k:
            assert tuple(rgba[i, :3]) == DEPTH_COLORS[k - 1] and rgba[i, 3] > 0


def test_raster_corners_on_the_central_meridian() -> None:
    from affine import Affine

    # UTM 33N: x = 500 km is the 15 E meridian and y = 0 the equator; on the equator
    # x - 500 km = k0 a dlon to well under a millimetre over 1 km
    (lb, lt, rt, rb) = grid_corners_lonlat("EPSG:32633", Affine(1000, 0, 500000, 0, -1000, 1000),
                                           (1, 1))  # fmt: skip
    assert lb == pytest.approx([15.0, 0.0], abs=1e-9)
    assert lt[0] == pytest.approx(15.0, abs=1e-9) and lt[1] > 0
    dlon = math.degrees(1000 / (0.9996 * 6378137.0))
    assert rb == pytest.approx([15.0 + dlon, 0.0], abs=1e-7)


def test_terrain_hillshade_lit_from_the_north_west(small_world) -> None:
    from emtwin.viz.layers import terrain_layer

    def image(z: np.ndarray) -> np.ndarray:
        small_world.terrain.z = z
        res = Results({}, None, None, **world_parts(small_world))
        uri = str(terrain_layer(res).layers[0].image)
        data = base64.b64decode(uri.strip("'\"").split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(float)

    ramp = np.tile(np.arange(20) * 0.5, (20, 1))  # 5 % slope
    faces_west, faces_east = image(ramp), image(ramp[:, ::-1].copy())
    # the same elevations (same tints), but a slope facing the light (west) is brighter
    assert faces_west[..., :3].mean() > faces_east[..., :3].mean() + 3
    small_world.terrain.mask[:5, :5] = False
    img = image(ramp)
    assert (img[:5, :5, 3] == 0).all() and (img[5:, 5:, 3] == 255).all()


def test_road_states_over_time(small_world) -> None:
    """Both directions as one road; closures by cause; water slows; bridges are not slowed."""
    w = small_world
    w.roads.bridge[[2, 3]] = True  # east is a bridge
    rows, cols = w.terrain.shape
    stack = np.zeros((3, rows, cols), dtype=np.float32)
    stack[1, 15, 8:13] = 0.1  # under the middle of 'south' (row 15) at 600 s only
    stack[1, 8:13, 15] = 2.0  # the river under the 'east' bridge (column 15)
    rs = RoadState(w.roads)
    rs.max_depth_m[[4, 5]] = 0.1
    ev = pd.DataFrame([
        _event(300.0, "road_closed", "east", 2, edges=2, cause="plan"),
        _event(600.0, "road_closed", "north", 0, cause="flood"),
        _event(600.0, "road_closed", "north", 1, cause="flood"),
        _event(900.0, "road_opened", "east", 2, edges=2, cause="plan"),
        _event(1200.0, "road_opened", "north", 0, cause="flood"),
        _event(1500.0, "road_opened", "north", 1, cause="flood"),
        # west: closed by the plan, and one direction by water; the plan's reopening
        # leaves it closed until the water has gone too
        _event(100.0, "road_closed", "west", 6, edges=2, cause="plan"),
        _event(200.0, "road_closed", "west", 7, cause="flood"),
        _event(400.0, "road_opened", "west", 6, edges=2, cause="plan"),
        _event(700.0, "road_opened", "west", 7, cause="flood"),
    ], columns=["time_s", "kind", "entity", "node", "edge", "details"])  # fmt: skip
    res = Results(
        summary={},
        events=ev,
        timeseries=pd.DataFrame({"time_s": [0.0]}),
        frames={"depth": (np.array([0.0, 600.0, 1200.0]), stack)},
        frame_transforms={"depth": w.terrain.transform},
        **world_parts(w, rs),
    )
    group, first, changes = road_timeline(res)
    assert group.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and first.tolist() == [0, 2, 4, 6]
    assert changes[0] == [[600.0, 2], [1500.0, 0]]  # north: open once both directions reopen
    assert changes[1] == [[300.0, 2], [900.0, 0]]  # east: the plan; water under the bridge
    assert changes[2] == [[600.0, 1], [1200.0, 0]]  # south: 10 cm on it at 600 s
    assert changes[3] == [[100.0, 2], [700.0, 0]]


def test_trip_sampling_keeps_whole_trips() -> None:
    trips = pd.DataFrame({"id": np.repeat([f"t{i:03d}" for i in range(100)], 10),
                          "kind": "vehicle", "time_s": np.tile(np.arange(10.0), 100),
                          "x": 0.0, "y": 0.0})  # fmt: skip
    kept, n, total = sample_trips(trips, max_points=250)
    assert (n, total) == (25, 100) and len(kept) == 250
    assert (kept.groupby("id").size() == 10).all()
    again, _, _ = sample_trips(trips, max_points=250)
    assert again["id"].tolist() == kept["id"].tolist()  # seeded


def test_flood_frames_kept_within_budget(small_world) -> None:
    rng = np.random.default_rng(0)
    rows, cols = small_world.terrain.shape
    times = np.arange(40) * 300.0
    stack = rng.uniform(0, 3, (40, rows, cols)).astype(np.float32)  # incompressible
    res = Results(
        summary={},
        events=None,
        timeseries=None,
        frames={"depth": (times, stack)},
        frame_transforms={"depth": small_world.terrain.transform},
        **world_parts(small_world),
    )
    full = flood_layer(res)
    one = len(full.anim["flood-depth"]["images"][0])
    assert len(full.anim["flood-depth"]["times"]) == 40 and not full.notes
    small = flood_layer(res, max_bytes=10.5 * one)
    a = small.anim["flood-depth"]
    assert sum(len(x) for x in a["images"]) <= 10.5 * one
    assert a["times"][0] == 0.0 and a["times"][-1] == times[-1]  # first and last kept
    assert "of 40 depth frames kept" in small.notes[0]


# ---------------------------------------------------------------- the map


def test_map_holds_the_layers_and_time_range(small_world) -> None:
    res = fake_results(small_world)
    tags, deck, cfg = parse_map(build_map(res))
    types = {lyr["id"]: lyr["@@type"] for lyr in deck["layers"]}
    assert types == {
        "terrain": "BitmapLayer", "flood-max": "BitmapLayer", "flood-depth": "BitmapLayer",
        "roads": "PathLayer", "trips": "TripsLayer", "units": "TripsLayer",
        "shelter-capacity": "ScatterplotLayer", "shelters": "ScatterplotLayer",
        "facilities": "ScatterplotLayer", "stranded": "ScatterplotLayer",
        "calls": "ScatterplotLayer",
    }  # fmt: skip
    assert (cfg["t0"], cfg["t1"]) == (0.0, DURATION)
    assert cfg["anim"]["flood-depth"]["times"] == TIMES.tolist()
    # water grows at every output time: 7 distinct images (the first one dry)
    assert len(cfg["anim"]["flood-depth"]["images"]) == 7
    roads = next(lyr for lyr in deck["layers"] if lyr["id"] == "roads")
    north = next(d for d in roads["data"] if d["i"] == "north")
    # closed 1200-2400 s; then still 0.4 m of water on it (columns < 12 wet at 2400 s): slowed
    assert north["c"] == 1200.0 and north["s"] == [[1200.0, 2], [2400.0, 1]]
    trips = next(lyr for lyr in deck["layers"] if lyr["id"] == "trips")
    assert sorted(d["id"] for d in trips["data"]) == ["h0", "h1", "h2"]
    assert trips["data"][0]["t"] == [600.0, 700.0, 800.0]
    # lon/lat of the School corner node: UTM 33N (500150, 5500050) lies just east of 15 E
    lon, lat = trips["data"][0]["p"][-1]
    assert 15.0 < lon < 15.01 and 49.6 < lat < 49.7
    # offline: no script or style is fetched from the network
    for tag, a in tags.tags:
        assert not (tag == "script" and a.get("src")), a
        assert not (tag == "link" and a.get("href", "").startswith("http")), a
    assert cfg["notes"] == [] and 'name="emtwin-sampled" content="no"' in build_map(res)
    assert "mapProvider" not in deck
    online = build_map(res, basemap="light")
    _, deck, _ = parse_map(online)
    assert deck["mapProvider"] == "carto" and "positron" in deck["mapStyle"]


def test_map_without_evacuation_or_dispatch(small_world) -> None:
    res = fake_results(small_world, evacuation=False, dispatch=False)
    _, deck, cfg = parse_map(build_map(res))
    ids = {lyr["id"] for lyr in deck["layers"]}
    assert ids == {"terrain", "flood-max", "flood-depth", "roads", "shelter-capacity", "shelters",
                   "facilities"}  # fmt: skip
    assert set(cfg["anim"]) == {"flood-depth", "roads"}
    only_dispatch = fake_results(small_world, evacuation=False)
    _, deck, _ = parse_map(build_map(only_dispatch))
    ids = {lyr["id"] for lyr in deck["layers"]}
    assert {"units", "calls"} <= ids and not ids & {"trips", "stranded"}
    units = next(lyr for lyr in deck["layers"] if lyr["id"] == "units")
    assert [d["id"] for d in units["data"]] == ["amb-1"]
    res.frames, res.rasters, res.roads = {}, {}, None
    _, deck, _ = parse_map(build_map(res))
    assert {lyr["id"] for lyr in deck["layers"]} == {"terrain", "shelter-capacity", "shelters",
                                                     "facilities"}  # fmt: skip


def test_map_is_sampled_to_its_size_budget(small_world) -> None:
    res = fake_results(small_world)
    n = 4000  # trips of 20 waypoints: about 2 MB of trips
    x0, y0 = small_world.terrain.transform.c, small_world.terrain.transform.f
    res.tables["trips"] = pd.DataFrame({
        "id": np.repeat([f"t{i:05d}" for i in range(n)], 20), "kind": "vehicle",
        "time_s": np.tile(np.arange(20) * 60.0, n), "x": x0 + np.tile(np.arange(20) * 9.0, n),
        "y": y0 - 100.0})  # fmt: skip
    full = build_map(res)
    budget = len(full.encode()) - 1_000_000
    page = build_map(res, max_bytes=budget)
    assert len(page.encode()) <= budget
    _, deck, cfg = parse_map(page)
    kept = next(lyr for lyr in deck["layers"] if lyr["id"] == "trips")["data"]
    assert 0 < len(kept) < n
    assert any(f"{len(kept):,} of {n:,} trips shown" in note for note in cfg["notes"])
    with pytest.raises(EmtwinError, match="basemap"):
        build_map(res, basemap="satellite-hd")


def test_map_says_when_the_evacuation_recorded_a_sample_of_trips(small_world) -> None:
    # as in the riverside run: 7,766 households left home, the trips of 1,957 were recorded
    res = fake_results(small_world)
    res.summary["evacuation"].update(trips_sampled=True, trips_households=1957,
                                     trips_of_households=7766)  # fmt: skip
    page = build_map(res)
    tags, _, cfg = parse_map(page)
    note = "evacuation trips: trips of 1,957 of 7,766 households recorded (evacuation sample)"
    assert cfg["notes"] == [note] and cfg["sampled"] is True
    meta = next(a for t, a in tags.tags if t == "meta" and a.get("name") == "emtwin-sampled")
    assert meta["content"] == note
    # every household's trips recorded: nothing to say
    res.summary["evacuation"].update(trips_sampled=False, trips_households=3,
                                     trips_of_households=3)  # fmt: skip
    tags, _, cfg = parse_map(build_map(res))
    meta = next(a for t, a in tags.tags if t == "meta" and a.get("name") == "emtwin-sampled")
    assert cfg["notes"] == [] and cfg["sampled"] is False and meta["content"] == "no"


# ---------------------------------------------------------------- charts and report


def test_charts_appear_with_their_data(small_world) -> None:
    charts = render_charts(fake_results(small_world))
    assert list(charts) == ["evacuation", "shelters", "dispatch", "response_times", "flood",
                            "gauges", "roads"]  # fmt: skip
    img = Image.open(io.BytesIO(charts["flood"]))
    assert img.format == "PNG" and img.size == (720, 340)  # 7.2 x 3.4 in at 100 dpi
    only_flood = render_charts(fake_results(small_world, evacuation=False, dispatch=False))
    assert list(only_flood) == ["flood", "gauges", "roads"]


def test_report_tables_by_hand(small_world) -> None:
    res = fake_results(small_world)
    # School: capacity 50; occupancy peaks at 45 people at 2400 s and ends at 40
    assert shelters_rows(res) == [["School", "50", "45", "0:40:00", "40", "90 %"]]
    # North: 1800 + 900 s busy of 2 units x 3600 s = 37.5 %
    assert stations_rows(res) == [["North", "ambulance × 1, boat × 1", "1", "0:45:00", "37.5 %"]]


def _report_values(page: str) -> dict[str, object]:
    return {k: json.loads(v.replace("&quot;", '"'))
            for k, v in re.findall(r'data-key="([^"]+)" data-value="([^"]*)"', page)}  # fmt: skip


def test_report_holds_every_chart_and_the_summary(small_world, tmp_path: Path) -> None:
    res = fake_results(small_world)
    out = write_results(res, tmp_path / "run", extra=run_writers(res))
    page = (out / "report.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    values = _report_values(page)
    for section, keys in HEADLINES.items():
        if all(summary[section][k] is None for k, _, _ in keys):  # consequences: not faked
            assert f"no {section} in this run" in page
            continue
        for key, _, _ in keys:
            assert values[f"{section}.{key}"] == summary[section][key], (section, key)
    files = sorted(p.stem for p in (out / "charts").glob("*.png"))
    assert len(files) == 7
    embedded = dict(re.findall(r'data-chart="([^"]+)"><img alt="[^"]*" '
                               r'src="data:image/png;base64,([^"]+)"', page))  # fmt: skip
    assert sorted(embedded) == files
    for name, b64 in embedded.items():
        assert base64.b64decode(b64) == (out / "charts" / f"{name}.png").read_bytes()
    assert 'href="map.html"' in page and (out / "map.html").is_file()
    assert "0:10:00 (600 s)" in page  # the median response time, 600 s


# ---------------------------------------------------------------- a real flood run


def _town(d: Path) -> Path:
    """A 1 km2 sloping DEM (UTM 33N), a street grid, a shelter and a station; 30 min of rain."""
    d.mkdir()
    x0, y0, dx, n = 500000.0, 5501000.0, 20.0, 50
    profile = {"driver": "GTiff", "height": n, "width": n, "count": 1, "dtype": "float32",
               "transform": from_origin(x0, y0, dx, dx), "crs": "EPSG:32633"}  # fmt: skip
    with rasterio.open(d / "dem.tif", "w", **profile) as dst:
        dst.write(np.tile(10.0 + np.arange(n) * dx / 100.0, (n, 1)).astype("float32"), 1)
    xs, ys = x0 + np.array([200.0, 500.0, 800.0]), y0 - np.array([200.0, 500.0, 800.0])
    lines = [LineString([(x, ys[0]), (x, ys[-1])]) for x in xs]
    lines += [LineString([(xs[0], y), (xs[-1], y)]) for y in ys]
    gpd.GeoDataFrame({"id": [f"r{i}" for i in range(6)], "highway": "residential"},
                     geometry=lines, crs=32633).to_file(d / "roads.geojson")  # fmt: skip
    gpd.GeoDataFrame({"name": ["Hall"], "capacity": [500]}, geometry=[Point(x0 + 790, y0 - 790)],
                     crs=32633).to_file(d / "shelters.geojson")  # fmt: skip
    gpd.GeoDataFrame({"name": ["North"]}, geometry=[Point(x0 + 500, y0 - 210)],
                     crs=32633).to_file(d / "stations.geojson")  # fmt: skip
    (d / "s.yaml").write_text(
        textwrap.dedent("""\
        name: town
        seed: 3
        duration: 30min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif}
          roads: roads.geojson
          shelters: shelters.geojson
          stations: stations.geojson
        hazards:
          - type: flood
            rain: [[0, 50], [10min, 0]]
            gauges: [{name: low, at: [500100, 5500500]}]
        actions:
          - {at: 10min, close_road: r1}
        outputs: {every: 5min}
        """)
    )
    return d / "s.yaml"


def test_flood_only_run_writes_map_and_report(tmp_path: Path) -> None:
    scenario = _town(tmp_path / "town")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    _, deck, cfg = parse_map((out / "map.html").read_text())
    ids = {lyr["id"] for lyr in deck["layers"]}
    assert {"terrain", "flood-depth", "flood-max", "roads", "shelters", "facilities"} <= ids
    assert not ids & {"trips", "units", "calls", "stranded"}
    assert cfg["t1"] == 1800.0 and cfg["anim"]["flood-depth"]["times"] == [
        0,
        300,
        600,
        900,
        1200,
        1500,
        1800,
    ]
    roads = next(lyr for lyr in deck["layers"] if lyr["id"] == "roads")
    r1 = [d for d in roads["data"] if d["i"] == "r1"]
    assert r1 and all(d["c"] == 600.0 and [600.0, 2] in d["s"] for d in r1)  # the plan's closure
    page = (out / "report.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    values = _report_values(page)
    assert values["flood.peak_volume_m3"] == summary["flood"]["peak_volume_m3"]
    assert "8,333.3 m³" in page  # 50 mm/h for 10 min on a closed 1 km2: 1e6 m2 x 0.05 m / 6
    assert "no evacuation in this run" in page and "no dispatch in this run" in page
    assert sorted(p.stem for p in (out / "charts").glob("*.png")) == ["flood", "gauges", "roads"]
    text = scenario.read_text().replace(
        "outputs: {every: 5min}", "outputs: {every: 5min, map: false, report: false}"
    )
    scenario.write_text(text)
    res = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    names = {p.name for p in out.iterdir()}
    assert not names & {"map.html", "report.html", "charts"} and "summary.json" in names


# ---------------------------------------------------------------- view and compare


def test_view_opens_the_report_or_serves_the_folder_only(small_world, tmp_path: Path,
                                                         monkeypatch) -> None:  # fmt: skip
    import threading
    import urllib.error
    import urllib.request

    res = fake_results(small_world, evacuation=False, dispatch=False)
    out = write_results(res, tmp_path / "run", extra=run_writers(res, map=False))
    (tmp_path / "secret.txt").write_text("not for the web")
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    r = CliRunner().invoke(app, ["view", str(out)])
    assert r.exit_code == 0 and opened == [(out / "report.html").resolve().as_uri()]
    r = CliRunner().invoke(app, ["view", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and "no such output folder" in r.output
    server = make_server(out, port=0)
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        assert b"Headline figures" in urllib.request.urlopen(base + "report.html").read()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "../secret.txt")
        assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_comparison_of_plans(tmp_path: Path) -> None:
    def summary(seed: int, sheltered: float, p90: float | None) -> dict:
        s = {k: dict.fromkeys(v) for k, v in SUMMARY_KEYS.items()}
        s["evacuation"]["sheltered"] = sheltered
        s["dispatch"]["response_p90_s"] = p90
        s["run"].update(seed=seed, scenario="town")
        return s

    ts = pd.DataFrame({"time_s": [0.0, 600.0], "sheltered": [0.0, 100.0]})
    folder = tmp_path / "b-seed2"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary(2, 150.0, 900.0)))
    runs = {
        "base": [RunRecord(summary(1, 100.0, 600.0), ts), summary(2, 110.0, None),
                 summary(3, 120.0, 900.0)],
        "early": [summary(1, 130.0, 600.0), folder],
    }  # fmt: skip
    page = render_comparison(runs, tmp_path / "cmp.html").read_text()
    cells = re.findall(r'data-mean="([^"]*)" data-n="(\d+)"', page)
    # rows in DEFAULT_METRICS order: sheltered, then response_p90_s; columns base, early
    assert [(float(m), int(n)) for m, n in cells] == [(110.0, 3), (140.0, 2), (750.0, 2),
                                                      (750.0, 2)]  # fmt: skip
    assert "vs baseline +30 (+27.3 %)" in page
    assert 'data-chart="bars-evacuation"' in page and 'data-chart="series-sheltered"' in page
    with pytest.raises(EmtwinError, match="baseline 'late'"):
        render_comparison(runs, tmp_path / "x.html", baseline="late")
    with pytest.raises(EmtwinError, match="at least one run"):
        render_comparison({"base": []}, tmp_path / "x.html")


def test_report_consequences_and_flows_by_hand(small_world) -> None:
    """The facility losses from their events, the life-loss sentence from the summary, and
    the gauges' peak discharge where a gauge records one."""
    from emtwin.viz.report import facilities_rows, gauges_rows, life_loss_line, render_report

    res = fake_results(small_world)
    lost = pd.DataFrame({
        "time_s": [7260.0, 4560.0, 4560.0], "kind": "facility_lost",
        "entity": ["Underpass pump", "River substation", "River"], "node": -1, "edge": -1,
        "details": ['{"cause": "water", "depth_m": 0.548, "facility": "pump"}',
                    '{"cause": "water", "depth_m": 0.304, "facility": "substation"}',
                    '{"cause": "power", "depth_m": 0.162, "facility": "station", '
                    '"fed_by": "River substation"}'],
    })  # fmt: skip
    res.events = pd.concat([res.events, lost], ignore_index=True)
    assert facilities_rows(res) == [
        ["1:16:00", "River substation", "substation", "water", "0.30", "–"],
        ["1:16:00", "River", "station", "power", "0.16", "River substation"],
        ["2:01:00", "Underpass pump", "pump", "water", "0.55", "–"],
    ]
    res.summary["consequences"] = {"life_loss_mean": 1.044, "life_loss_p5": 0.0,
                                   "life_loss_p95": 3.0, "people_exposed": 19333.0}  # fmt: skip
    line = life_loss_line(res.summary)
    assert line == ("Expected loss of life 1.04 (5-95 %: 0 to 3) among 19,333 people "
                    "exposed to water.")
    g = pd.DataFrame({"time_s": [0.0, 60.0, 120.0] * 2, "gauge": ["q"] * 3 + ["p"] * 3,
                      "depth_m": [0.1, 0.3, 0.2, 0.0, 0.1, 0.05], "speed_m_s": 0.5,
                      "level_m": 1.0, "flow_m3_s": [2.0, 7.5, 3.0] + [np.nan] * 3})  # fmt: skip
    res.tables = {**(res.tables or {}), "gauges": g}
    rows = gauges_rows(res)
    assert rows[0][-2:] == ["7.50", "0:01:00"] and rows[1][-2:] == ["–", "–"]
    page = render_report(res, charts={})
    assert "Consequences: facilities lost" in page and "River substation" in page
    assert "peak discharge" in page and 'id="life-loss"' in page
