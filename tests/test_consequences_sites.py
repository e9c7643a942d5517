"""Substations and pumps given as sites, and the loss of the facilities a substation feeds.

Uniform rain of 0.5 m/h on the flat closed small world gives depth = 0.5 m/h x t
everywhere, so every loss time below is computed by hand: a limit L is passed at
L / 0.5 h, and recorded at the first 5-min coupling step after it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point

from emtwin.consequences.facilities import FacilityWatch
from emtwin.consequences.sites import read_sites_file, resolve_feeds
from emtwin.errors import InputDataError, ScenarioError
from emtwin.geo.crs import to_crs_xy
from emtwin.scenarios import load_scenario
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation

RAIN_MM_H = 500.0  # 0.5 m/h
X0, Y0 = 500000.0, 5500200.0  # the small world's north-west corner (EPSG:32633)


def _lonlat(x: float, y: float) -> list[float]:
    lon, lat = to_crs_xy(np.array([x]), np.array([y]), "EPSG:32633", "EPSG:4326")
    return [float(lon[0]), float(lat[0])]


def scenario(sites: list[dict[str, Any]], **cons: Any) -> Scenario:
    data = {"name": "t", "seed": 5, "duration": "2h", "coupling": "5min", "crs": "EPSG:32633",
            "outputs": {"every": "30min"},
            "world": {"terrain": {"dem": "dem.tif"}, "roads": "roads.geojson"},
            "hazards": [{"type": "flood", "rain": [[0, RAIN_MM_H]]}],
            "consequences": {"facilities": {"station": {"fail_depth_m": 0.6}},
                             "sites": sites, **cons}}  # fmt: skip
    return Scenario.model_validate(data, context={"check_files": False})


SITES = [
    {"name": "Grid", "kind": "substation", "at": [X0 + 100, Y0 - 100],
     "feeds": ["North", "Works pump"]},
    {"name": "Works pump", "kind": "pump", "lonlat": _lonlat(X0 + 30, Y0 - 170),
     "fail_depth_m": 0.45},
    {"name": "Dry pump", "kind": "pump", "at": [X0 + 170, Y0 - 30], "fail_depth_m": 0.9},
]  # fmt: skip


def _of(ev: Any, kind: str) -> Any:
    out = ev[ev.kind == kind].copy()
    out["d"] = out.details.map(json.loads)
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------- the watch


def test_a_substation_takes_down_what_it_feeds_down_the_chain() -> None:
    # 0 substation feeds 1 (hospital) and 2 (substation), which feeds 3 (pump); 4 a shelter
    kinds = np.array(["substation", "hospital", "substation", "pump", "shelter"])
    w = FacilityWatch(kinds, {"pump": 0.8}, limits_m=np.array([np.nan, np.nan, 1.0, np.nan,
                                                                  np.nan]),
                      feeds=[[1, 2], [], [3], [], []])  # fmt: skip
    assert w.limit_m.tolist() == [0.3, 0.3, 1.0, 0.8, 0.3]
    assert w.update(np.array([0.2, 0.2, 0.2, 0.2, 0.2]), 60.0).tolist() == []
    # 0.35 m: the first substation and the shelter by water; the rest by power, in chain order
    assert w.update(np.array([0.35, 0.0, 0.0, 0.0, 0.35]), 120.0).tolist() == [0, 4, 1, 2, 3]
    assert w.cause.tolist() == ["water", "power", "power", "power", "water"]
    assert w.fed_by.tolist() == [-1, 0, 0, 2, -1]
    assert w.time_failed_s.tolist() == [120.0] * 5
    assert w.update(np.full(5, 9.0), 180.0).tolist() == []  # no recovery, no second loss


def test_feeds_resolve_by_name_or_type_and_name() -> None:
    kinds = ["shelter", "station", "substation"]
    names = ["North", "North", "Grid"]
    where = ["world.shelters", "world.stations", "consequences.sites.0"]
    assert resolve_feeds(kinds, names, [[], [], ["station/North"]], where) == [[], [], [1]]
    with pytest.raises(InputDataError, match=r"consequences.sites.0: feeds: 'North' names 2 "
                                             r"facilities \(shelter/North, station/North\)"):
        resolve_feeds(kinds, names, [[], [], ["North"]], where)
    with pytest.raises(InputDataError, match="no facility named 'Mill'"):
        resolve_feeds(kinds, names, [[], [], ["Mill"]], where)
    with pytest.raises(InputDataError, match="cannot feed itself"):
        resolve_feeds(kinds, names, [[], [], ["Grid"]], where)


# ---------------------------------------------------------------------------- in a run


def test_sites_lose_function_at_their_depth_and_the_feeds_follow(small_world) -> None:
    sim = Simulation(scenario(SITES), world=small_world)
    res = sim.run()
    lost = _of(res.events, "facility_lost")
    got = {e: (t, d["facility"], d["cause"], d.get("fed_by"))
           for e, t, d in zip(lost.entity, lost.time_s, lost.d, strict=True)}  # fmt: skip
    # 0.3 m (shelter School, substation Grid) at 2160 s -> 2400 s; Grid takes North and the
    # Works pump with it (their own limits, 0.6 and 0.45 m, come later: 4320 s and 3240 s);
    # the Dry pump's 0.9 m at 6480 s -> 6600 s
    assert got == {
        "School": (2400.0, "shelter", "water", None),
        "Grid": (2400.0, "substation", "water", None),
        "North": (2400.0, "station", "power", "Grid"),
        "Works pump": (2400.0, "pump", "power", "Grid"),
        "Dry pump": (6600.0, "pump", "water", None),
    }
    assert lost.entity.tolist()[:4] == ["School", "Grid", "North", "Works pump"]
    depth = {e: d["depth_m"] for e, d in zip(lost.entity, lost.d, strict=True)}
    assert depth["North"] == pytest.approx(0.5 * 2400 / 3600, abs=1e-3)  # below its 0.6 m
    assert depth["Dry pump"] == pytest.approx(0.5 * 6600 / 3600, abs=1e-3)
    assert sim.state.get("facility__lost") == {
        "shelter": {"School": 2400.0}, "substation": {"Grid": 2400.0},
        "station": {"North": 2400.0}, "pump": {"Works pump": 2400.0, "Dry pump": 6600.0},
    }  # fmt: skip
    c = res.summary["consequences"]
    assert c["facilities_lost"] == 5
    assert c["facilities_lost_by_type"] == {"pump": 2, "shelter": 1, "station": 1,
                                            "substation": 1}  # fmt: skip


def test_a_substation_feeding_a_shelter_closes_it(small_world) -> None:
    sites = [{"name": "Grid", "kind": "substation", "at": [X0 + 100, Y0 - 100],
              "fail_depth_m": 0.1, "feeds": ["School"]}]  # fmt: skip
    sc = scenario(sites, facilities={"shelter": {"fail_depth_m": 5.0}})
    res = Simulation(sc, world=small_world).run()
    lost = _of(res.events, "facility_lost").set_index("entity")
    # 0.1 m at 720 s -> 900 s; the School (5 m of its own) goes with it
    assert lost.loc["Grid", "time_s"] == 900.0 and lost.loc["School", "time_s"] == 900.0
    assert lost.loc["School", "d"]["cause"] == "power"


def test_sites_from_a_geojson(tmp_path: Path, small_world) -> None:
    gdf = gpd.GeoDataFrame(
        {"name": ["Grid", "Works pump"], "kind": ["substation", "pump"],
         "fail_depth_m": [None, 0.45], "feeds": ["North; Works pump", None]},
        geometry=[Point(_lonlat(X0 + 100, Y0 - 100)), Point(_lonlat(X0 + 30, Y0 - 170))],
        crs="EPSG:4326",
    )  # fmt: skip
    f = tmp_path / "sites.geojson"
    gdf.to_file(f)
    t = read_sites_file(str(f), "EPSG:32633")
    assert t["name"].tolist() == ["Grid", "Works pump"]
    assert t["x"].tolist() == pytest.approx([X0 + 100, X0 + 30], abs=1e-3)
    assert t["y"].tolist() == pytest.approx([Y0 - 100, Y0 - 170], abs=1e-3)
    assert math.isnan(t["fail_depth_m"][0]) and t["fail_depth_m"][1] == 0.45
    assert t["feeds"].tolist() == [["North", "Works pump"], []]
    res = Simulation(scenario([], sites_from=str(f)), world=small_world).run()
    lost = _of(res.events, "facility_lost").set_index("entity")
    assert lost.loc["Works pump", "time_s"] == 2400.0
    assert lost.loc["Works pump", "d"]["fed_by"] == "Grid"


# ---------------------------------------------------------------------------- bad input


def test_a_site_off_the_world_is_an_error(small_world) -> None:
    sites = [{"name": "Far", "kind": "pump", "at": [X0 + 500, Y0 - 100]}]
    with pytest.raises(ScenarioError, match=r"consequences.sites.0: 'Far' at \(500500.0, "
                                            r"5500100.0\) in EPSG:32633 is off the World"):
        Simulation(scenario(sites), world=small_world).run()


def test_a_feed_naming_no_facility_is_an_error(small_world) -> None:
    sites = [{"name": "Grid", "kind": "substation", "at": [X0 + 100, Y0 - 100],
              "feeds": ["General"]}]  # fmt: skip
    with pytest.raises(ScenarioError, match=r"consequences.sites.0: feeds: no facility named "
                                            r"'General'; expected .*shelter/School"):
        Simulation(scenario(sites), world=small_world).run()


@pytest.mark.parametrize(("site", "message"), [
    ({"name": "T", "kind": "transformer", "at": [0, 0]},
     r"consequences.sites.0.kind.*'substation' or 'pump'"),
    ({"name": "P", "kind": "pump"}, r"give its position as `at: \[x, y\]`"),
    ({"name": "P", "kind": "pump", "at": [0, 0], "lonlat": [0, 0]}, "one of the two"),
    ({"name": "P", "kind": "pump", "at": [0, 0], "feeds": ["x"]},
     "only a substation feeds other facilities"),
    ({"name": "P", "kind": "pump", "at": [0, 0], "fail_depth_m": 0},
     r"consequences.sites.0.fail_depth_m"),
])  # fmt: skip
def test_bad_sites_are_named_in_the_scenario_file(tmp_path: Path, site: dict,
                                                  message: str) -> None:  # fmt: skip
    f = tmp_path / "s.yaml"
    f.write_text(json.dumps({"name": "t", "duration": "1h", "crs": "EPSG:32633",
                             "world": {"terrain": {"builtin": "riverside"}},
                             "consequences": {"sites": [site]}}))  # fmt: skip
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(f)
    assert "s.yaml" in str(err.value)


def test_two_sites_with_one_name_are_an_error() -> None:
    two = [{"name": "P", "kind": "pump", "at": [0, 0]}, {"name": "P", "kind": "pump",
                                                         "at": [1, 1]}]  # fmt: skip
    with pytest.raises(ValueError, match="'P' are given more than once"):
        scenario(two)


def test_a_bad_sites_file_names_the_row(tmp_path: Path) -> None:
    f = tmp_path / "sites.geojson"
    gpd.GeoDataFrame({"name": ["A", "B"], "kind": ["pump", "windmill"]},
                     geometry=[Point(14.0, 50.0), Point(14.1, 50.0)],
                     crs="EPSG:4326").to_file(f)  # fmt: skip
    with pytest.raises(InputDataError, match=r"sites.geojson, row 2: kind: unknown 'windmill'; "
                                             r"expected one of substation, pump"):
        read_sites_file(str(f), "EPSG:32633")
    gpd.GeoDataFrame({"name": ["A"], "kind": ["pump"]},
                     geometry=[LineString([(14.0, 50.0), (14.1, 50.0)])],
                     crs="EPSG:4326").to_file(f)  # fmt: skip
    with pytest.raises(InputDataError, match="row 1: geometry: expected a point, got a "
                                             "LineString"):
        read_sites_file(str(f), "EPSG:32633")
    gpd.GeoDataFrame({"title": ["A"]}, geometry=[Point(14.0, 50.0)],
                     crs="EPSG:4326").to_file(f)  # fmt: skip
    with pytest.raises(InputDataError, match="no column name, kind"):
        read_sites_file(str(f), "EPSG:32633")
