"""Members from the uncertain: section, and an assimilation step on a toy twin experiment.

The "model" is a toy whose gauge level rises linearly with the rain multiplier
(level = 10 m + scale * 1e-4 m/s * t), so that the posterior and the skill can
be checked without running the flood; the forecast runner does the same with
the engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emtwin.batch import uncertain as unc
from emtwin.errors import InputDataError
from emtwin.forecast.members import (
    assimilate,
    choice_shares,
    parameter_arrays,
    parameter_bounds,
    resampled_draws,
)
from emtwin.forecast.observations import read_gauge_observations
from emtwin.forecast.skill import crps_ensemble, ensemble_mean_rmse, weighted_quantile
from emtwin.scenarios.models import Scenario

RATE = 1e-4  # m/s of level rise per unit rain multiplier


def scenario() -> Scenario:
    data = {
        "seed": 3, "crs": "EPSG:32633", "world": {"terrain": {"dem": "dem.tif"}},
        "hazards": [{"type": "flood", "rain": [[0, 20]], "theta": 0.8,
                     "gauges": [{"name": "bridge", "at": [0, 0]}]}],
        "uncertain": {"parameters": {
            "hazards.0.rain": {"scale": {"uniform": [0.5, 2.0]}},
            "hazards.0.theta": {"normal": {"mean": 0.8, "sd": 0.05, "min": 0.6, "max": 1.0}},
            "hazards.0.backend": {"choice": ["cpu", "auto"]},
        }},
    }  # fmt: skip
    return Scenario.model_validate(data, context={"check_files": False})


def toy_gauges(scale: float, times: np.ndarray) -> pd.DataFrame:
    depth = scale * RATE * times
    return pd.DataFrame({"time_s": times, "gauge": "bridge", "depth_m": depth,
                         "speed_m_s": 0.0, "level_m": 10.0 + depth})  # fmt: skip


def test_arrays_bounds_and_choices() -> None:
    sc = scenario()
    params = unc.parameters(sc)
    draws = unc.sample(params, seed=sc.seed, runs=8)
    arrays = parameter_arrays(params, draws)
    assert set(arrays) == {"hazards.0.rain", "hazards.0.theta"}
    assert arrays["hazards.0.rain"].tolist() == [d["hazards.0.rain"] for d in draws]
    assert parameter_bounds(params) == {"hazards.0.rain": (0.5, 2.0),
                                        "hazards.0.theta": (0.6, 1.0)}  # fmt: skip
    shares = choice_shares(params, draws, np.eye(8)[0])
    first = draws[0]["hazards.0.backend"]  # all the weight on member 0
    assert shares == {"hazards.0.backend": {"cpu": float(first == "cpu"),
                                            "auto": float(first == "auto")}}  # fmt: skip


def test_toy_twin_experiment_halves_the_forecast_error(tmp_path: Path) -> None:
    sc = scenario()
    params = unc.parameters(sc)
    n = 64
    draws = unc.sample(params, seed=sc.seed, runs=n)
    values = parameter_arrays(params, draws)
    truth_scale, at_s, end_s = 1.8, 3600.0, 3 * 3600.0
    # the hidden truth's gauge, observed every 5 min up to now with 2 cm noise
    t_obs = np.arange(0.0, at_s + 1, 300.0)
    obs = toy_gauges(truth_scale, t_obs)
    obs["level_m"] += np.random.default_rng(1).normal(0, 0.02, len(obs))
    obs.to_csv(tmp_path / "gauges.csv", index=False)
    readings = read_gauge_observations(tmp_path / "gauges.csv", sc)
    t_run = np.arange(0.0, at_s + 1, 60.0)
    members = [toy_gauges(s, t_run) for s in values["hazards.0.rain"]]
    a = assimilate([readings], members, values, at_s=at_s, rng=np.random.default_rng(7),
                   jitter_discount=0.95, bounds=parameter_bounds(params))  # fmt: skip
    res = a.result
    assert a.dropped == 0 and len(a.observations) == len(t_obs)
    assert res.weights.sum() == pytest.approx(1.0)
    post = res.posterior["hazards.0.rain"]
    assert post["p5"] <= truth_scale <= post["p95"]
    assert post["mean"] == pytest.approx(truth_scale, abs=0.05)
    assert 1.0 <= res.ess < n / 4  # the readings are informative
    assert a.summary_entries()[0]["readings"] == len(t_obs)
    # forecast (at_s, end_s]: the resampled members against the prior members
    t_fc = np.arange(at_s + 300.0, end_s + 1, 300.0)
    truth = toy_gauges(truth_scale, t_fc)["level_m"].to_numpy()

    def fan(scales: np.ndarray) -> np.ndarray:
        return np.stack([toy_gauges(s, t_fc)["level_m"].to_numpy() for s in scales])

    prior = fan(values["hazards.0.rain"])
    posterior = fan(res.resampled_params["hazards.0.rain"])
    assert ensemble_mean_rmse(posterior, truth) <= 0.5 * ensemble_mean_rmse(prior, truth)
    assert crps_ensemble(posterior, truth).mean() < crps_ensemble(prior, truth).mean()
    p5, p95 = weighted_quantile(posterior, [0.05, 0.95])
    assert np.all((p5 <= truth) & (truth <= p95))
    # the new members are valid scenarios
    new = resampled_draws(draws, res)
    assert [d["hazards.0.backend"] for d in new] == [draws[i]["hazards.0.backend"]
                                                     for i in res.indices]  # fmt: skip
    raw = sc.model_dump(mode="json", by_alias=True, exclude_none=True)
    edited = unc.apply_edits(raw, unc.edits(sc, params, new[0]))
    again = Scenario.model_validate(edited, context={"check_files": False})
    assert again.flood.rain[0][1] == pytest.approx(20.0 * new[0]["hazards.0.rain"])


def test_members_without_records_at_the_readings(tmp_path: Path) -> None:
    sc = scenario()
    pd.DataFrame({"time_s": [600.0, 7200.0], "gauge": "bridge", "level_m": [10.1, 10.5]}).to_csv(
        tmp_path / "o.csv", index=False
    )
    readings = read_gauge_observations(tmp_path / "o.csv", sc)
    members = [toy_gauges(1.0, np.arange(0.0, 3601, 60.0))] * 2
    vals = {"x": np.array([1.0, 2.0])}
    a = assimilate([readings], members, vals, at_s=9000.0, rng=np.random.default_rng(0))
    assert a.dropped == 1 and a.observations["time_s"].tolist() == [600.0]
    with pytest.raises(ValueError, match="no reading at or before 300 s"):
        assimilate([readings], members, vals, at_s=300.0, rng=np.random.default_rng(0))


def flow_scenario() -> Scenario:
    """Two gauges: `bridge` has a cross-section (it records a flow), `town` has none."""
    sc = scenario().model_dump(mode="json", by_alias=True, exclude_none=True)
    sc["hazards"][0]["gauges"] = [{"name": "bridge", "at": [0, 0], "section": [[-5, 0], [5, 0]]},
                                  {"name": "town", "at": [10, 10]}]  # fmt: skip
    return Scenario.model_validate(sc, context={"check_files": False})


def toy_flows(scale: float, times: np.ndarray, unit: float = 1.0) -> pd.DataFrame:
    """The toy's discharge: 2 m3/s per hour per unit rain multiplier (times *unit*)."""
    g = toy_gauges(scale, times)
    g["flow_m3_s"] = unit * scale * 2.0 * times / 3600.0
    return g


def test_flow_error_is_relative_with_a_floor_by_hand() -> None:
    from emtwin.forecast.assimilation import flow_sigma

    sd = flow_sigma(np.array([50.0, 2.0, 0.0, 0.004]), np.array(["a", "a", "a", "b"]), 0.1)
    # a: 10 % of 50; 10 % of max(2, 5); 10 % of max(0, 5); b: 10 % of 0.004 < 1e-3 floor
    np.testing.assert_allclose(sd, [5.0, 0.5, 0.5, 1e-3])
    with pytest.raises(ValueError, match="relative error > 0"):
        flow_sigma(np.array([1.0]), np.array(["a"]), 0.0)


def test_discharge_readings_weigh_the_members(tmp_path: Path) -> None:
    """Flows alone find the truth; with a relative error the weights do not depend on the
    unit of the flows (m3/s or 1000 m3/s give the same members)."""
    sc = flow_scenario()
    params = unc.parameters(sc)
    n = 64
    draws = unc.sample(params, seed=sc.seed, runs=n)
    values = parameter_arrays(params, draws)
    truth, at_s = 1.8, 3600.0
    t_obs = np.arange(300.0, at_s + 1, 300.0)
    t_run = np.arange(0.0, at_s + 1, 60.0)
    weights = []
    for unit in (1.0, 1000.0):
        obs = toy_flows(truth, t_obs, unit)
        obs["flow_m3_s"] *= 1.0 + np.random.default_rng(2).normal(0, 0.05, len(obs))
        obs[["time_s", "gauge", "flow_m3_s"]].to_csv(tmp_path / "q.csv", index=False)
        readings = read_gauge_observations(tmp_path / "q.csv", sc)
        assert readings.quantity == "flow_m3_s"
        members = [toy_flows(s, t_run, unit) for s in values["hazards.0.rain"]]
        a = assimilate([readings], members, values, at_s=at_s, rng=np.random.default_rng(7),
                       bounds=parameter_bounds(params))  # fmt: skip
        post = a.result.posterior["hazards.0.rain"]
        assert post["p5"] <= truth <= post["p95"]
        assert post["mean"] == pytest.approx(truth, abs=0.1)
        weights.append(a.result.weights)
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-9, atol=1e-15)


def test_flow_readings_need_a_gauge_with_a_section(tmp_path: Path) -> None:
    q = pd.DataFrame({"time_s": [0.0, 60.0, 0.0], "gauge": ["bridge", "bridge", "town"],
                      "flow_m3_s": [1.0, 2.0, 3.0]})  # fmt: skip
    q.to_csv(tmp_path / "q.csv", index=False)
    with pytest.raises(InputDataError, match=r"q\.csv.*row 3.*gauge 'town' has no cross-section"
                                             r".*hazards\.0\.gauges\.1\.section"):
        read_gauge_observations(tmp_path / "q.csv", flow_scenario())
