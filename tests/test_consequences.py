"""Consequence models against hand-computed numbers and published functions."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from scipy import stats

from emtwin.consequences.curves import (
    JRC_CURVES,
    DamageCurve,
    builtin_curve,
    continent_of,
    read_curve_csv,
)
from emtwin.consequences.damage import (
    FootprintMaxDepth,
    assess_buildings,
    damage_summary,
    footprint_max,
)
from emtwin.consequences.facilities import FacilityWatch
from emtwin.consequences.life_loss import (
    LifeLossTracker,
    jonkman_mortality,
    jonkman_zone,
    lifesim_mortality,
    lifesim_zone,
    loss_distribution,
    loss_summary,
    rise_rate_m_h,
)
from emtwin.errors import InputDataError, ScenarioError
from emtwin.geo.buildings import prepare_buildings
from emtwin.geo.world import Terrain
from emtwin.scenarios import load_scenario
from emtwin.scenarios.consequences import Consequences


def _phi(z: float) -> float:
    """Standard normal CDF by hand (erf), independent of scipy."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _grid(nrows: int = 6, ncols: int = 6, dx: float = 1.0) -> Terrain:
    """A flat grid with its north-west corner at (0, nrows * dx)."""
    return Terrain(
        z=np.zeros((nrows, ncols)),
        mask=np.ones((nrows, ncols), bool),
        transform=Affine(dx, 0, 0, 0, -dx, nrows * dx),
        dx=dx,
    )


def _curve_csv(tmp_path: Path, text: str, name: str = "curve.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- damage


def test_three_buildings_hand_computed(tmp_path):
    """Three footprints, a known depth raster and a CSV curve: ratios, damages, total.

    Curve (0, 0) (1, 0.4) (2, 0.6). Depth raster: 1.3 m under A, 0.5 m under B
    (one cell of 0.2 m too), 2.8 m under C. First floors 0.3, 0.0, 0.3 m.
    A: 1.3 - 0.3 = 1.0 m -> 0.4 x 100 000 = 40 000
    B: max 0.5 - 0.0 = 0.5 m -> 0.2 x 50 000 = 10 000
    C: 2.8 - 0.3 = 2.5 m, past the curve -> 0.6 x 200 000 = 120 000
    total 170 000.
    """
    curve = read_curve_csv(_curve_csv(tmp_path, "depth_m,damage_ratio\n0,0\n1,0.4\n2,0.6\n"))
    terrain = _grid()
    depth = np.zeros((6, 6))
    depth[0:2, 0:2] = 1.3  # A: cells rows 0-1, cols 0-1 (y 4-6, x 0-2)
    depth[3, 3], depth[3, 4] = 0.5, 0.2  # B: row 3, cols 3-4 (y 2-3, x 3-5)
    depth[5, 0] = 2.8  # C: row 5, col 0 (y 0-1, x 0-1)
    table = gpd.GeoDataFrame(
        {
            "building": ["A", "B", "C"],
            "occupancy": ["residential", "commercial", "residential"],
            "value": [100_000.0, 50_000.0, 200_000.0],
            "first_floor_height_m": [0.3, 0.0, 0.3],
        },
        geometry=[
            shapely.box(0.2, 4.2, 1.8, 5.8),
            shapely.box(3.2, 2.2, 4.8, 2.8),
            shapely.box(0.2, 0.2, 0.8, 0.8),
        ],
    )
    b = prepare_buildings(table, terrain)
    max_d = footprint_max(depth, b.indptr, b.cells)
    np.testing.assert_allclose(max_d, [1.3, 0.5, 2.8])
    curves = {"residential": curve, "commercial": curve}
    res = assess_buildings(b.table, max_d, curves=curves)
    np.testing.assert_allclose(res["damage_ratio"], [0.4, 0.2, 0.6])
    np.testing.assert_allclose(res["damage"], [40_000.0, 10_000.0, 120_000.0])
    s = damage_summary(res)
    assert s["damage_total"] == pytest.approx(170_000.0)
    assert (s["buildings"], s["buildings_damaged"]) == (3, 3)


def test_dry_building_and_water_below_the_floor():
    """Dry: no damage even where a curve starts above 0; below the floor: the first value."""
    na = builtin_curve("residential", "north_america")  # 0.202 at 0 m (basements)
    table = gpd.GeoDataFrame(
        {
            "building": ["dry", "wet"],
            "occupancy": ["residential"] * 2,
            "value": [1000.0, 1000.0],
            "first_floor_height_m": [0.3, 0.3],
        },  # fmt: skip
        geometry=[shapely.Point(0, 0)] * 2,
    )
    res = assess_buildings(table, np.array([0.0, 0.1]), curves={"residential": na})
    np.testing.assert_allclose(res["damage"], [0.0, 202.0])
    assert np.isnan(res["time_of_max_s"]).all()


def test_content_damage_uses_its_own_curve(tmp_path):
    table = gpd.GeoDataFrame(
        {
            "building": ["a"],
            "occupancy": ["residential"],
            "value": [100.0],
            "content_value": [50.0],
            "first_floor_height_m": [0.0],
        },  # fmt: skip
        geometry=[shapely.Point(0, 0)],
    )
    s = DamageCurve(np.array([0.0, 2.0]), np.array([0.0, 1.0]))
    c = DamageCurve(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    res = assess_buildings(table, np.array([0.5]), curves={"residential": s},
                           content_curves={"residential": c})  # fmt: skip
    assert res["damage"].iloc[0] == pytest.approx(25.0)
    assert res["content_damage"].iloc[0] == pytest.approx(25.0)
    assert damage_summary(res)["content_damage_total"] == pytest.approx(25.0)


def test_running_max_and_its_time():
    indptr, cells = np.array([0, 2, 3]), np.array([0, 1, 5])
    fm = FootprintMaxDepth(indptr, cells)
    for t, (a, b, c) in zip(
        (0.0, 60.0, 120.0), ((1.0, 0.5, 0.0), (2.0, 0.1, 0.0), (1.5, 1.9, 0.0)), strict=True
    ):
        d = np.zeros(6)
        d[[0, 1, 5]] = a, b, c
        fm.update(d, t)
    np.testing.assert_allclose(fm.max_depth_m, [2.0, 0.0])
    assert fm.time_of_max_s[0] == 60.0 and np.isnan(fm.time_of_max_s[1])


# ----------------------------------------------------------------------------- curves


def test_curve_interpolates_and_holds_end_values():
    c = DamageCurve(np.array([0.0, 1.0, 3.0]), np.array([0.1, 0.5, 0.9]))
    np.testing.assert_allclose(c([-1.0, 0.0, 0.5, 2.0, 3.0, 10.0]), [0.1, 0.1, 0.3, 0.7, 0.9, 0.9])


def test_jrc_europe_residential_published_points():
    """Huizinga et al. (2017) Europe residential: 0.25 at 0.5 m, 0.6 at 2 m, 1 at 6 m."""
    c = builtin_curve("residential", "europe")
    np.testing.assert_allclose(c([0.5, 2.0, 6.0, 2.5]), [0.25, 0.60, 1.0, 0.675])
    # a class the database lacks takes the residential curve of its continent
    assert ("africa", "commercial") not in JRC_CURVES
    np.testing.assert_allclose(builtin_curve("commercial", "africa").ratio,
                               JRC_CURVES[("africa", "residential")])  # fmt: skip
    with pytest.raises(InputDataError, match="occupancy 'farm'"):
        builtin_curve("farm", "europe")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("depth,ratio\n0,0\n1,1\n", "expected columns depth_m, damage_ratio"),
        ("depth_m,damage_ratio\n0,0\n1,x\n", "row 3, column damage_ratio"),
        ("depth_m,damage_ratio\n1,0\n0,1\n", "strictly increasing"),
        ("depth_m,damage_ratio\n0,0\n1,40\n", r"in \[0, 1\]"),
        ("depth_m,damage_ratio\n0,0\n", "at least 2 points"),
    ],
)
def test_bad_curve_files_name_file_and_problem(tmp_path, text, match):
    p = _curve_csv(tmp_path, text, "bad.csv")
    with pytest.raises(InputDataError, match=match) as exc:
        read_curve_csv(p, file_label="consequences.curves.residential")
    assert "consequences.curves.residential" in str(exc.value) and "bad.csv" in str(exc.value)


@pytest.mark.parametrize(
    ("lon", "lat", "continent"),
    [
        (14.40, 50.10, "europe"),  # Prague
        (-122.27, 37.81, "north_america"),  # Oakland
        (-46.63, -23.55, "south_america"),  # Sao Paulo
        (139.69, 35.69, "asia"),  # Tokyo
        (36.82, -1.29, "africa"),  # Nairobi
        (151.21, -33.87, "oceania"),  # Sydney
        (77.21, 28.61, "asia"),  # Delhi
    ],
)
def test_continent_of_cities(lon, lat, continent):
    assert continent_of("EPSG:4326", lon, lat) == continent


# ----------------------------------------------------------------------------- life loss


def test_jonkman_remaining_zone_by_hand():
    """F_D(h) = Phi((ln h - 7.60) / 2.75): h = 2 m gives 0.006 (references.md)."""
    h = np.array([0.5, 1.0, 2.0, 4.0])
    expected = [_phi((math.log(x) - 7.60) / 2.75) for x in h]
    np.testing.assert_allclose(jonkman_mortality(h, 0.0, 0.0), expected, rtol=1e-9)
    assert jonkman_mortality(2.0, 0.0, 0.0) == pytest.approx(0.0060, abs=1e-4)


def test_jonkman_rapidly_rising_and_breach_zones_by_hand():
    # rapid rise (>= 0.5 m/h) and h >= 2.1 m: Phi((ln h - 1.46) / 0.28)
    p = jonkman_mortality(np.array([3.0, 2.0, 3.0]), 0.0, np.array([1.0, 1.0, 0.4]))
    assert p[0] == pytest.approx(_phi((math.log(3.0) - 1.46) / 0.28), rel=1e-9)  # 0.098
    assert p[0] == pytest.approx(0.0984, abs=2e-4)
    assert p[1] == pytest.approx(_phi((math.log(2.0) - 7.60) / 2.75), rel=1e-9)  # h < 2.1 m
    assert p[2] == pytest.approx(_phi((math.log(3.0) - 7.60) / 2.75), rel=1e-9)  # slow rise
    # breach: h v >= 7 m2/s and v >= 2 m/s
    p = jonkman_mortality(np.array([4.0, 4.0, 0.0]), np.array([2.5, 1.9, 3.0]), 0.0)
    assert p[0] == 1.0
    assert p[1] == pytest.approx(_phi((math.log(4.0) - 7.60) / 2.75), rel=1e-9)
    assert p[2] == 0.0  # dry
    np.testing.assert_array_equal(jonkman_zone([4.0, 3.0, 1.0, 0.0], [2.5, 0, 0, 0], [0, 1, 0, 0]),
                                  [3, 2, 1, 0])  # fmt: skip


def test_lifesim_zones_and_rates():
    h = np.array([0.4, 1.0, 1.5, 2.0, 4.0, 7.0, 5.0, 0.0])
    loc = np.array([1, 2, 2, 0, 0, 0, -1, 0])
    zone = lifesim_zone(h, 0.0, loc, top_floor_m=3.3, roof_m=6.3)
    # car in 0.4 m (H2) compromised; on foot 1.0 m (H3) compromised, 1.5 m (H4) chance;
    # two-storey house: 2 m safe, 4 m top floor flooded, 7 m over the roof; out; dry
    np.testing.assert_array_equal(zone, [1, 1, 2, 0, 1, 2, -1, -1])
    np.testing.assert_allclose(lifesim_mortality(zone),
                               [0.12, 0.12, 0.91, 0.0002, 0.12, 0.91, 0.0, 0.0])  # fmt: skip


def test_poisson_binomial_exact_against_enumeration():
    p = np.array([0.1, 0.5, 0.9])
    people = np.array([1, 2, 1])
    persons = np.repeat(p, people)
    brute = np.zeros(persons.size + 1)
    for outcome in itertools.product((0, 1), repeat=persons.size):
        o = np.array(outcome)
        brute[o.sum()] += np.prod(np.where(o == 1, persons, 1 - persons))
    k0, pmf = loss_distribution(p, people)
    full = np.zeros(persons.size + 1)
    full[k0 : k0 + pmf.size] = pmf
    np.testing.assert_allclose(full, brute, atol=1e-12)


def test_loss_summary_matches_binomial_quantiles():
    s = loss_summary(np.full(400, 0.05))
    assert s["life_loss_mean"] == pytest.approx(20.0)
    assert s["life_loss_p5"] == stats.binom.ppf(0.05, 400, 0.05)
    assert s["life_loss_p95"] == stats.binom.ppf(0.95, 400, 0.05)
    assert loss_summary(np.array([1.0, 0.0]), np.array([3, 5]))["life_loss_p5"] == 3.0


def test_tracker_keeps_the_worst_conditions_met():
    people = np.array([3, 2, 4])
    tr = LifeLossTracker(people, method="jonkman")
    before = np.zeros(3)
    for depth, loc in (([0.5, 0.2, 5.0], [0, 1, -1]), ([2.5, 0.0, 5.0], [0, 1, -1])):
        now = np.array(depth)
        tr.update(now, np.zeros(3), rise_rate_m_h(now, before, 3600.0), np.array(loc))
        before = now
    p = tr.probability()
    # household 0: 2.5 m, rising 2 m/h -> rapidly rising zone
    assert p[0] == pytest.approx(_phi((math.log(2.5) - 1.46) / 0.28), rel=1e-9)
    assert p[1] == pytest.approx(_phi((math.log(0.2) - 7.60) / 2.75), rel=1e-9)
    assert p[2] == 0.0  # out of the area: not exposed, whatever the water
    s = tr.summary()
    assert s["people_exposed"] == 5.0
    assert s["life_loss_mean"] == pytest.approx(3 * p[0] + 2 * p[1])
    lifesim = LifeLossTracker(people, method="lifesim")
    lifesim.update(np.array([1.5, 0.0, 0.0]), np.zeros(3), np.zeros(3), np.array([2, 0, 0]))
    lifesim.update(np.array([0.1, 0.0, 0.0]), np.zeros(3), np.zeros(3), np.array([2, 0, 0]))
    np.testing.assert_allclose(lifesim.probability(), [0.91, 0.0, 0.0])
    with pytest.raises(InputDataError, match="life_loss.method"):
        LifeLossTracker(people, method="hazus")


# ----------------------------------------------------------------------------- facilities, section


def test_facility_loses_function_once_above_its_depth():
    fw = FacilityWatch(np.array(["hospital", "station"]), {"station": 1.0})
    assert fw.update(np.array([0.2, 0.9]), 60.0).tolist() == []
    assert fw.update(np.array([0.31, 1.2]), 120.0).tolist() == [0, 1]
    assert fw.update(np.array([0.0, 0.0]), 180.0).tolist() == []  # not restored
    np.testing.assert_allclose(fw.time_failed_s, [120.0, 120.0])
    with pytest.raises(InputDataError, match="fail_depth_m for type"):
        FacilityWatch(np.array(["school"]))


def test_consequences_section_defaults_and_errors():
    c = Consequences.model_validate({})
    assert c.life_loss.method == "jonkman" and c.content is None
    assert c.fail_depths_m()["hospital"] == 0.3
    c = Consequences.model_validate(
        {
            "life_loss": {"method": "lifesim"},
            "facilities": {"hospital": {"fail_depth_m": 0.8}},
            "value_per_m2": {"residential": 900},
        }  # fmt: skip
    )
    assert c.fail_depths_m()["hospital"] == 0.8 and c.life_loss.method == "lifesim"
    for bad, match in (
        ({"life_loss": {"method": "x"}}, "jonkman"),
        ({"value_per_m2": {"farm": 1}}, "unknown occupancy 'farm'"),
        ({"facilities": {"school": {"fail_depth_m": 1}}}, "unknown type 'school'"),
        ({"colour": 1}, "colour"),
    ):
        with pytest.raises(ValueError, match=match):
            Consequences.model_validate(bad)


def test_consequences_section_in_a_scenario_file(tmp_path):
    _curve_csv(tmp_path, "depth_m,damage_ratio\n0,0\n1,1\n")
    text = (
        "name: t\nworld:\n  terrain: {builtin: riverside}\nconsequences:\n"
        "  curves: {residential: curve.csv}\n  life_loss: {method: lifesim}\n"
    )
    (tmp_path / "s.yaml").write_text(text)
    c = load_scenario(tmp_path / "s.yaml").consequences
    assert c.curves["residential"] == str(tmp_path / "curve.csv")  # relative to the file
    assert c.life_loss.method == "lifesim"
    (tmp_path / "s.yaml").write_text(text + "  facilites: {}\n")
    with pytest.raises(ScenarioError, match=r"s.yaml:7: consequences.facilites: .*'facilities'"):
        load_scenario(tmp_path / "s.yaml")
