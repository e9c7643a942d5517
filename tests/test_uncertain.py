"""Uncertain parameters: key paths, distributions, Monte Carlo and Latin hypercube draws."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from emtwin.batch import uncertain as unc
from emtwin.errors import ScenarioError
from emtwin.scenarios import load_scenario
from emtwin.scenarios.models import Scenario


def scenario(uncertain: dict[str, Any], **over: Any) -> Scenario:
    data = {"name": "u", "seed": 11, "duration": "1h", "crs": "EPSG:32633",
            "world": {"terrain": {"dem": "dem.tif"}},
            "hazards": [{"type": "flood", "rain": [[0, 50], ["10min", 0]]}],
            "uncertain": uncertain}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


#: One parameter of each distribution, with scipy's CDF of the same distribution.
LN_MEAN, LN_SD = 1800.0, 600.0
_S = np.sqrt(np.log1p((LN_SD / LN_MEAN) ** 2))
CASES = {
    "evacuation.departure.sigma": ({"triangular": ["10min", "15min", "40min"]},
                                   stats.triang(c=300 / 1800, loc=600, scale=1800).cdf),
    "evacuation.walk_speed": ({"uniform": [0.8, 1.6]}, stats.uniform(0.8, 0.8).cdf),
    "evacuation.warning.reach_time": ({"lognormal": {"mean": "30min", "sd": "10min"}},
                                      stats.lognorm(_S, scale=LN_MEAN / np.exp(_S**2 / 2)).cdf),
    "evacuation.on_foot_share": ({"normal": {"mean": 0.1, "sd": 0.1, "min": 0}},
                                 stats.truncnorm(-1.0, np.inf, loc=0.1, scale=0.1).cdf),
}  # fmt: skip
EVAC = {"evacuation": {"departure": {"curve": "rayleigh", "sigma": "15min"}}}


def test_latin_hypercube_puts_one_run_in_every_stratum_of_every_parameter() -> None:
    n = 23
    sc = scenario({"method": "lhs", "parameters": {k: v for k, (v, _) in CASES.items()}}, **EVAC)
    params = unc.parameters(sc)
    draws = unc.sample(params, seed=sc.seed, runs=n, method="lhs")
    for path, (_, cdf) in CASES.items():
        x = np.array([d[path] for d in draws])
        strata = np.floor(cdf(x) * n).astype(int)
        assert sorted(strata) == list(range(n)), path
    # a choice with weights 1:3 over 20 strata: exactly 5 and 15 runs
    sc = scenario({"method": "lhs", "parameters": {
        "response.dispatch": {"choice": {"values": ["closest_idle", "priority_then_closest"],
                                         "weights": [1, 3]}}}}, response={})  # fmt: skip
    draws = unc.sample(unc.parameters(sc), seed=1, runs=20, method="lhs")
    picked = [d["response.dispatch"] for d in draws]
    assert picked.count("closest_idle") == 5 and picked.count("priority_then_closest") == 15


def test_monte_carlo_draws_follow_their_distributions_and_do_not_depend_on_n() -> None:
    sc = scenario({"parameters": {k: v for k, (v, _) in CASES.items()}}, **EVAC)
    params = unc.parameters(sc)
    draws = unc.sample(params, seed=5, runs=1500)
    for path, (_, cdf) in CASES.items():
        x = np.array([d[path] for d in draws])
        # Kolmogorov-Smirnov against scipy's distribution: a wrong shape fails at p << 1e-4
        assert stats.kstest(x, cdf).pvalue > 1e-4, path
    # run i's values depend only on (seed, i): a shorter batch is a prefix of a longer one
    assert unc.sample(params, seed=5, runs=7) == draws[:7]
    assert unc.sample(params, seed=6, runs=7) != draws[:7]


def test_run_seeds_are_deterministic_distinct_and_non_negative() -> None:
    seeds = [unc.run_seed(7, i) for i in range(2000)]
    assert seeds == [unc.run_seed(7, i) for i in range(2000)]
    assert len(set(seeds)) == 2000 and min(seeds) >= 0 and max(seeds) < 2**63
    assert unc.run_seed(8, 0) != seeds[0]


def test_draws_written_into_the_scenario_validate_to_the_drawn_si_values() -> None:
    sc = scenario({"parameters": {
        "hazards.0.rain": {"scale": {"uniform": [0.5, 1.5]}},
        "response.incidents.background_rate": {"uniform": ["2/h", "6/h"]},
        "evacuation.departure.sigma": {"choice": ["10min", "20min"]},
    }}, response={"incidents": {"background_rate": "4/h"}}, **EVAC)  # fmt: skip
    params = unc.parameters(sc)
    raw = sc.model_dump(mode="json", exclude_none=True)
    raw["response"] = {"incidents": {"background_rate": "4/h"}}
    for draw in unc.sample(params, seed=3, runs=5):
        edited = unc.apply_edits(raw, unc.edits(sc, params, draw))
        got = Scenario.model_validate(edited, context={"check_files": False})
        f = draw["hazards.0.rain"]
        assert got.flood.rain == [(0.0, 50.0 * f), (600.0, 0.0)]
        rate = draw["response.incidents.background_rate"]
        assert 2 / 3600 <= rate <= 6 / 3600 and got.response.incidents.background_rate == rate
        assert got.evacuation.departure.sigma == {"10min": 600.0, "20min": 1200.0}[
            draw["evacuation.departure.sigma"]]  # fmt: skip
        assert got.evacuation.departure.curve == "rayleigh"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("path", "spec", "message"), [
    ("evacuation.departure.sigmaa", {"uniform": [1, 2]},
     r"uncertain\.parameters\.evacuation\.departure\.sigmaa: no key 'sigmaa' under "
     r"evacuation\.departure .*sigma"),
    ("evacuation.departure.sigma", {"uniform": [60, 120]},
     r"evacuation\.departure\.sigma: the scenario has no `evacuation`"),
    ("hazards.1.rain", {"scale": {"uniform": [0.5, 1]}}, r"`hazards` has 1 item\(s\)"),
    ("hazards.0.rain", {"uniform": [0.5, 1]}, r"a series is varied with `scale: DIST`"),
    ("hazards.0.rain", {"scale": {"uniform": [-1, 1]}}, r"scale factors must not be negative"),
    ("hazards.0.theta", {"uniform": [0.5, "1min"]}, r"expected a number for hazards\.0\.theta"),
    ("seed", {"choice": [1, 2]}, r"uncertain\.parameters\.seed: `seed` cannot be uncertain"),
    ("hazards.0.backend", {"uniform": [0, 1]}, r"give it a `choice:`"),
])  # fmt: skip
def test_bad_key_paths_and_misfit_distributions_name_the_key(path, spec, message) -> None:
    with pytest.raises(ScenarioError, match=message):
        unc.parameters(scenario({"parameters": {path: spec}}))


def test_a_rate_needs_its_unit() -> None:
    sc = scenario({"parameters": {"response.incidents.background_rate": {"uniform": [1, 2]}}},
                  response={})  # fmt: skip
    with pytest.raises(ScenarioError, match=r"background_rate: give the rate with its time unit"):
        unc.parameters(sc)


@pytest.mark.parametrize(("spec", "message"), [
    ("{uniform: [2, 1]}", r"uniform needs \[low, high\] with low < high"),
    ("{normal: {mean: 1, sd: 0}}", r"normal needs `mean` and `sd` with sd > 0"),
    ("{lognormal: {mean: -1, sd: 1}}", r"lognormal needs mean > 0"),
    ("{triangular: [0, 2, 1]}", r"triangular needs \[low, mode, high\]"),
    ("{choice: {values: [1, 2], weights: [1]}}", r"choice weights"),
    ("{uniform: [0, 1], normal: {mean: 0, sd: 1}}", r"exactly one of"),
    ("{unifrom: [0, 1]}", r"unknown key 'unifrom'; did you mean 'uniform'"),
])  # fmt: skip
def test_invalid_distribution_parameters_name_file_line_and_key(tmp_path: Path, spec: str,
                                                                 message: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(textwrap.dedent(f"""\
        world:
          terrain: {{dem: dem.tif}}
        uncertain:
          parameters:
            hazards.0.initial_depth: {spec}
        """))  # fmt: skip
    with pytest.raises(ScenarioError, match=r"s\.yaml:5: uncertain\.parameters\.hazards\.0\."
                                            r"initial_depth.*" + message):  # fmt: skip
        load_scenario(f, check_files=False)
