"""Warning-reach and departure delay curves against their closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Departure, WarningSpec
from emtwin.sim.evacuation.departure import DelayCurve, departure_curve, reach_curve

N = 10_000


def draws(curve: DelayCurve, seed: int = 7) -> np.ndarray:
    return curve.draw(np.random.default_rng(seed), N)


def test_rayleigh_draws_pass_ks_and_the_median_is_sigma_sqrt_2ln2() -> None:
    sigma = 900.0
    c = departure_curve(Departure(curve="rayleigh", sigma=sigma))
    t = draws(c)
    ks = stats.kstest(t, lambda x: 1 - np.exp(-(x**2) / (2 * sigma**2)))
    assert ks.pvalue > 0.01
    assert c.ppf(0.5) == pytest.approx(sigma * np.sqrt(2 * np.log(2)), rel=1e-12)
    # scipy's Rayleigh is the same law
    assert stats.kstest(t, stats.rayleigh(scale=sigma).cdf).pvalue > 0.01


def test_logistic_draws_follow_the_curve_truncated_at_zero() -> None:
    # P(t) = 1 / (1 + exp(-a (t - H))), t >= 0: F = (P(t) - P(0)) / (1 - P(0))
    a, h = 1 / 300.0, 600.0
    c = departure_curve(Departure(curve="logistic", midpoint=h, steepness=a))
    t = draws(c)
    p = lambda x: 1 / (1 + np.exp(-a * (x - h)))  # noqa: E731
    assert stats.kstest(t, lambda x: (p(x) - p(0)) / (1 - p(0))).pvalue > 0.01
    assert t.min() >= 0
    # the median of the truncated law: P(t) = P(0) + (1 - P(0)) / 2
    target = p(0) + (1 - p(0)) / 2
    assert c.ppf(0.5) == pytest.approx(h + np.log(target / (1 - target)) / a, rel=1e-9)


def test_lognormal_draws_have_the_given_mean_and_sd() -> None:
    mean, sd = 1800.0, 600.0
    c = departure_curve(Departure(curve="lognormal", mean=mean, sd=sd))
    t = draws(c)
    s2 = np.log(1 + (sd / mean) ** 2)
    law = stats.lognorm(s=np.sqrt(s2), scale=np.exp(np.log(mean) - s2 / 2))
    assert stats.kstest(t, law.cdf).pvalue > 0.01
    assert law.mean() == pytest.approx(mean) and law.std() == pytest.approx(sd)
    assert abs(t.mean() - mean) < 4 * sd / np.sqrt(N)


def test_table_draws_follow_the_piecewise_linear_cdf() -> None:
    # 20 % leave at once at 5 min, 80 % by 30 min (linear), all by 1 h
    table = [(300.0, 0.2), (1800.0, 0.8), (3600.0, 1.0)]
    c = departure_curve(Departure(curve="table", table=table))
    t = draws(c)
    assert np.mean(t == 300.0) == pytest.approx(0.2, abs=4 * np.sqrt(0.16 / N))
    cont = t[t > 300.0]  # the continuous part, against the table's CDF rescaled
    cdf = lambda x: (np.interp(x, [300, 1800, 3600], [0.2, 0.8, 1.0]) - 0.2) / 0.8  # noqa: E731
    assert stats.kstest(cont, cdf).pvalue > 0.01
    assert c.ppf(np.array([0.1, 0.5, 0.9])) == pytest.approx([300.0, 1050.0, 2700.0])


def test_a_table_that_stops_below_one_leaves_the_rest_at_home() -> None:
    c = departure_curve(Departure(curve="table", table=[(0.0, 0.0), (600.0, 0.7)]))
    t = draws(c)
    assert np.mean(np.isinf(t)) == pytest.approx(0.3, abs=4 * np.sqrt(0.21 / N))
    assert c.cdf(1e9) == pytest.approx(0.7)


def test_truncation_at_max_delay() -> None:
    sigma, cap = 600.0, 1200.0
    c = departure_curve(Departure(curve="rayleigh", sigma=sigma, max_delay=cap))
    t = draws(c)
    f_cap = 1 - np.exp(-(cap**2) / (2 * sigma**2))
    assert t.max() <= cap
    ks = stats.kstest(t, lambda x: (1 - np.exp(-(np.minimum(x, cap) ** 2) / (2 * sigma**2)))
                      / f_cap)  # fmt: skip
    assert ks.pvalue > 0.01


def test_warning_reach_curves() -> None:
    assert reach_curve(WarningSpec()).ppf(np.array([0.0, 0.9])).tolist() == [0.0, 0.0]
    c = reach_curve(WarningSpec(reach="exponential", reach_time=600))
    assert c.ppf(1 - np.exp(-1)) == pytest.approx(600.0)
    t = draws(c)
    assert stats.kstest(t, stats.expon(scale=600).cdf).pvalue > 0.01
    c = reach_curve(WarningSpec(reach="table", reach_table=[(0, 0.0), (1200, 0.9)]))
    assert c.ppf(0.45) == pytest.approx(600.0) and np.isinf(c.ppf(0.95))


def test_bad_curves_are_named_errors() -> None:
    with pytest.raises(ScenarioError, match=r"evacuation.departure.sigma: .*positive"):
        DelayCurve("rayleigh", {"sigma_s": -60.0})
    with pytest.raises(ScenarioError, match=r"evacuation.departure.sd: .*positive"):
        DelayCurve("lognormal", {"mean_s": 60.0, "sd_s": 0.0})
    with pytest.raises(ScenarioError, match=r"evacuation.warning.reach_table: .*rise within"):
        reach_curve(WarningSpec(reach="table", reach_table=[(0, 0.5), (60, 0.2)]))
    with pytest.raises(ValueError, match="spread"):
        Departure(curve="rayleigh", sigma="-15min")
