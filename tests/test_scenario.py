"""The scenario file: every key of the contract, values in SI, errors with file/key/line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emtwin.errors import ScenarioError
from emtwin.scenarios import load_scenario, merge
from emtwin.scenarios._types import parse_duration, parse_point, parse_rate

FULL = """\
name: riverside-flood-drill
seed: 7
duration: 6h
crs: EPSG:4326
world:
  terrain:
    dem: data/dem.tif
    resolution: 10
    manning: 0.035
  roads:
    source: data/town.osm.bz2
  population:
    source: data/buildings.gpkg
    total: 20000
    vehicles_per_household: 1
    household_size: 2.5
  shelters: data/shelters.geojson
  stations: data/stations.geojson
  hospitals: data/hospitals.geojson
hazards:
  - type: flood
    rain:
      - [0, 0]
      - [30min, 60]
      - [2h, 0]
    inflows:
      - at: [13.40, 52.51]
        hydrograph: [[0, 0], [1h, 300], [4h, 0]]
      - along: [[13.39, 52.50], [13.39, 52.51]]
        hydrograph: [[0, 0], [1h, 20], [5h, 0]]
    boundary:
      north: closed
      south: open
      west: {level: [[0, 1.2], [6h, 2.5]]}
    infiltration: {rate_mm_h: 5}
    gauges:
      - {name: bridge, at: [13.41, 52.50]}
    road_closure_depth: 0.3
    backend: auto
evacuation:
  warning: {at: 20min}
  departure: {curve: rayleigh, sigma: 15min}
  zones:
    - {area: data/zone_a.geojson, warning: {at: 20min}}
  shelter_choice: nearest_with_space
  contraflow: []
response:
  resources:
    - {type: ambulance, station: North, count: 3}
    - {type: boat, station: River, count: 2}
  dispatch: closest_idle
  incidents:
    background_rate: 4/h
    types:
      - {name: medical, share: 0.8, priority: 1, needs: ambulance,
         on_scene: {exponential: 40min}, to_hospital: 0.5}
      - {name: fire, share: 0.2, priority: 2, needs: fire_engine,
         on_scene: {lognormal: {mean: 30min, sd: 10min}}}
    from_hazard: true
actions:
  - {at: 45min, close_road: bridge-north}
  - {at: 1h, open_shelter: School}
  - {at: 1h, warn: zone_a}
  - {at: 90min, move_units: {type: boat, count: 1, from: River, to: North}}
outputs:
  every: 5min
  map: true
  rasters: [max_depth, arrival_time, hazard_class]
"""

DATA_FILES = [
    "dem.tif", "town.osm.bz2", "buildings.gpkg", "shelters.geojson",
    "stations.geojson", "hospitals.geojson", "zone_a.geojson",
]  # fmt: skip


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    for f in DATA_FILES:
        (tmp_path / "data" / f).write_text("x")
    return tmp_path


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    p = folder / name
    p.write_text(textwrap.dedent(text))
    return p


# ---------------------------------------------------------------- value parsers


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("15min", 900.0), ("2h", 7200.0), ("1h30min", 5400.0),
     ("1.5h", 5400.0), ("1d", 86400.0), ("120", 120.0), ("2 h", 7200.0)],
)  # fmt: skip
def test_durations_in_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 parsecs", True, "h2", [1]])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_rates_per_second() -> None:
    assert parse_rate("4/h") == pytest.approx(4 / 3600)
    assert parse_rate("0.5/min") == pytest.approx(0.5 / 60)
    assert parse_rate("12/day") == pytest.approx(12 / 86400)
    assert parse_rate("3/2h") == pytest.approx(3 / 7200)
    assert parse_rate(0) == 0.0
    for bad in ("4/x", "four/h", 4, "4"):
        with pytest.raises(ValueError, match="rate"):
            parse_rate(bad)


def test_points() -> None:
    assert parse_point([13.4, 52.5]) == (13.4, 52.5)
    for bad in ([1], [1, 2, 3], ["a", 2], [float("nan"), 1]):
        with pytest.raises(ValueError, match="coordinate pair"):
            parse_point(bad)


# ---------------------------------------------------------------- the whole contract


def test_every_contract_key_parses_to_si(folder: Path) -> None:
    sc = load_scenario(write(folder, FULL))
    assert sc.name == "riverside-flood-drill" and sc.seed == 7
    assert sc.duration == 6 * 3600
    t = sc.world.terrain
    assert t.dem == str((folder / "data/dem.tif").resolve())
    assert t.resolution == 10 and t.manning == 0.035
    assert sc.world.roads.source.endswith("town.osm.bz2")
    assert sc.world.population.total == 20000
    fl = sc.flood
    assert fl.rain == [(0, 0), (1800, 60), (7200, 0)]
    assert fl.inflows[0].at == (13.40, 52.51)
    assert fl.inflows[0].hydrograph[1] == (3600, 300)
    assert fl.inflows[1].along == [(13.39, 52.50), (13.39, 52.51)]
    assert fl.boundary["north"] == "closed" and fl.boundary["south"] == "open"
    assert fl.boundary["west"].level == [(0, 1.2), (21600, 2.5)]
    assert fl.infiltration.rate_mm_h == 5
    assert fl.gauges[0].name == "bridge"
    ev = sc.evacuation
    assert ev.warning.at == 1200 and ev.departure.sigma == 900
    assert ev.zones[0].warning.at == 1200 and ev.zones[0].name == "zone_a"
    rs = sc.response
    assert [(r.type, r.station, r.count) for r in rs.resources] == [
        ("ambulance", "North", 3), ("boat", "River", 2)]  # fmt: skip
    assert rs.incidents.background_rate == pytest.approx(4 / 3600)
    assert rs.incidents.types[0].on_scene.mean_s == 2400
    assert rs.incidents.types[1].on_scene.lognormal == {"mean": 1800, "sd": 600}
    assert rs.unit_type("boat").mode == "water"
    assert [a.kind for a in sc.actions] == ["close_road", "open_shelter", "warn", "move_units"]
    mv = sc.actions[3].value
    assert (mv.type, mv.count, mv.from_, mv.to) == ("boat", 1, "River", "North")
    assert sc.outputs.every == 300
    assert sc.outputs.rasters == ["max_depth", "arrival_time", "hazard_class"]


def test_only_terrain_is_required(folder: Path) -> None:
    sc = load_scenario(write(folder, "world: {terrain: {dem: data/dem.tif}}\n"))
    assert sc.hazards == [] and sc.evacuation is None and sc.response is None
    assert sc.duration == 6 * 3600 and sc.seed == 0


# ---------------------------------------------------------------- errors


def test_unknown_key_suggests_the_right_one_with_line(folder: Path) -> None:
    p = write(folder, FULL.replace("resolution: 10", "resolutoin: 10"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    (msg,) = exc.value.errors
    assert f"{p}:8:" in msg
    assert "world.terrain.resolutoin" in msg and "did you mean 'resolution'" in msg


def test_every_problem_is_reported_not_only_the_first(folder: Path) -> None:
    text = (
        FULL.replace("duration: 6h", "duration: -2h")
        .replace("sigma: 15min", "sigma: -5min")
        .replace("4/h", "4/x")
        .replace("count: 3", "count: -3")
        .replace("gauges:", "gagues:")
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(folder, text))
    errors = exc.value.errors
    assert len(errors) == 5, errors
    joined = "\n".join(errors)
    for key in ("duration", "evacuation.departure", "background_rate",
                "response.resources.0.count", "hazards.0.gagues"):  # fmt: skip
        assert key in joined
    assert "s.yaml:3: duration" in joined


def test_malformed_yaml_gives_line(folder: Path) -> None:
    p = write(folder, "name: x\nworld:\n  terrain: {dem: data/dem.tif\nseed: 1\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml: line \d+, column \d+: malformed YAML"):
        load_scenario(p)


def test_object_tags_are_refused(folder: Path) -> None:
    p = write(folder, "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ScenarioError, match="not allowed"):
        load_scenario(p)


def test_wrong_type_names_key(folder: Path) -> None:
    p = write(folder, FULL.replace("seed: 7", "seed: seven"))
    with pytest.raises(ScenarioError, match=r"s\.yaml:2: seed: .*integer"):
        load_scenario(p)


def test_missing_data_file_names_key_and_path(folder: Path) -> None:
    p = write(folder, "world: {terrain: {dem: data/nothere.tif}}\n")
    with pytest.raises(ScenarioError, match=r"world\.terrain\.dem: file not found: 'data/nothere"):
        load_scenario(p)


def test_unsorted_series_and_bad_action(folder: Path) -> None:
    text = FULL.replace("[1h, 300], [4h, 0]", "[4h, 300], [1h, 0]").replace(
        "{at: 1h, warn: zone_a}", "{at: 1h, warn: zone_a, open_shelter: School}"
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(folder, text))
    joined = "\n".join(exc.value.errors)
    assert "hazards.0.inflows.0.hydrograph" in joined and "times must increase" in joined
    assert "actions.2" in joined and "exactly one of" in joined


def test_not_a_mapping_and_empty(folder: Path) -> None:
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(write(folder, "- a\n- b\n"))
    with pytest.raises(ScenarioError, match="empty"):
        load_scenario(write(folder, "\n"))
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(folder / "nope.yaml")


# ---------------------------------------------------------------- plans


def test_merge_maps_deep_lists_whole() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    over = {"a": {"c": [3]}, "e": 2}
    assert merge(base, over) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_plan_overlays_base(folder: Path) -> None:
    base = write(folder, FULL)
    (folder / "plans").mkdir()
    (folder / "plans" / "z.geojson").write_text("x")
    plan = write(
        folder,
        """\
        evacuation:
          warning: {at: 5min}
          zones:
            - {area: z.geojson}
        response:
          resources:
            - {type: boat, station: North, count: 4}
        """,
        "plans/plan.yaml",
    )
    sc = load_scenario(base, plans=[plan])
    assert sc.evacuation.warning.at == 300
    assert sc.evacuation.departure.sigma == 900  # kept from the base
    assert len(sc.response.resources) == 1  # lists are replaced whole
    assert sc.evacuation.zones[0].area == str((folder / "plans" / "z.geojson").resolve())
    assert sc.response.incidents.background_rate == pytest.approx(4 / 3600)


def test_plan_with_unknown_key_names_the_plan_file(folder: Path) -> None:
    base = write(folder, FULL)
    plan = write(folder, "evacuation:\n  warnign: {at: 5min}\n", "plan.yaml")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(base, plans=[plan])
    (msg,) = exc.value.errors
    assert msg.startswith(f"{plan}:2: evacuation.warnign") and "did you mean 'warning'" in msg


def test_overrides(folder: Path) -> None:
    sc = load_scenario(write(folder, FULL), overrides={"seed": 11, "duration": "90min"})
    assert sc.seed == 11 and sc.duration == 5400


def test_unknown_builtin_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError, match="built-ins: .*riverside"):
        load_scenario("atlantis")


# ---------------------------------------------------------------- crs, YAML marks, unions


def test_bad_crs_is_a_validation_error_with_line(folder: Path) -> None:
    text = (
        FULL.replace("crs: EPSG:4326", "crs: not a crs")
        .replace("manning: 0.035", "manning: 0.035\n    crs: EPSG:99999")
        .replace("  shelters: data", "  crs: EPSG:4326\n  shelters: data")
    )
    p = write(folder, text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    errors = exc.value.errors
    assert len(errors) == 3, errors
    assert errors[0].startswith(f"{p}:4: crs: cannot parse CRS 'not a crs' (expected e.g.")
    assert errors[1].startswith(f"{p}:10: world.terrain.crs: cannot parse CRS 'EPSG:99999'")
    # the World CRS must be projected in metres; EPSG:4326 is in degrees
    assert errors[2].startswith(f"{p}:18: world.crs: expected a projected CRS in metres")
    assert "got EPSG:4326" in errors[2]


def test_good_crs_is_kept_as_written(folder: Path) -> None:
    text = FULL.replace("crs: EPSG:4326", "crs: 32633").replace(
        "  shelters: data", "  crs: epsg:32633\n  shelters: data"
    )
    sc = load_scenario(write(folder, text))
    assert sc.crs == "EPSG:32633" and sc.world.crs == "epsg:32633"
    assert load_scenario(write(folder, FULL)).crs == "EPSG:4326"


def test_malformed_yaml_says_where_the_bracket_opened(folder: Path) -> None:
    p = write(folder, "name: x\nworld:\n  terrain: {dem: data/dem.tif\nseed: 1\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    (msg,) = exc.value.errors
    # noticed on line 4 (seed:), but the `{` that was never closed is on line 3, column 12
    assert msg.startswith("line 4, column 5: malformed YAML:")
    assert msg.endswith("(while parsing a flow mapping opened at line 3, column 12)")


def test_typo_in_a_union_key_gives_one_error(folder: Path) -> None:
    p = write(folder, FULL.replace("manning: 0.035", "manning: {rastr: data/dem.tif}"))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    (msg,) = exc.value.errors
    assert msg.startswith(f"{p}:9: world.terrain.manning.rastr: unknown key 'rastr'")
    assert "did you mean 'raster'?" in msg


def test_union_typo_keeps_other_real_errors(folder: Path) -> None:
    text = (
        FULL.replace("manning: 0.035", "manning: {rastr: data/dem.tif, table: {1: -1}}")
        .replace("west: {level:", "west: {levl:")
        .replace("dispatch: closest_idle", "dispatch: closest_idle\n  unit_types:\n"
                 "    boat-2: {mode: wter}")
    )  # fmt: skip
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(folder, text))
    errors = exc.value.errors
    keys = [e.split(": ")[1] for e in errors]
    assert keys == [
        "world.terrain.manning.rastr",
        "hazards.0.boundary.west.levl",
        "world.terrain.manning.table.1",  # a bad value next to the typo is still shown
        "response.unit_types.boat-2.mode",  # a user key with a hyphen is not a pydantic tag
    ], errors


def test_one_point_hydrograph_and_unstable_alpha_are_refused(folder: Path) -> None:
    """A one-point hydrograph would put in nothing (0 outside its range); alpha > 1/sqrt(2)
    would step past the 2-D stability limit: both are errors naming the key."""
    text = FULL.replace("[[0, 0], [1h, 300], [4h, 0]]", "[[0, 300]]")
    assert text != FULL
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(folder, text))
    joined = "\n".join(exc.value.errors)
    assert "hazards.0.inflows.0" in joined and "at least two points" in joined
    text = FULL.replace("  - type: flood\n", "  - type: flood\n    alpha: 0.75\n", 1)
    assert text != FULL
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(folder, text))
    joined = "\n".join(exc.value.errors)
    assert "hazards.0.alpha" in joined and "2-D stability limit" in joined
