"""Forecast skill: weighted quantiles, RMSE, CRPS (hand cases, closed form), coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from emtwin.forecast.skill import (
    coverage,
    crps_ensemble,
    crps_gaussian,
    ensemble_mean_rmse,
    weighted_mean,
    weighted_quantile,
)


def test_weighted_quantile_hand_case() -> None:
    # cumulative weights 0.1, 0.3, 0.6, 1.0: the first value whose cumulative weight reaches q
    x = np.array([3.0, 1.0, 4.0, 2.0])
    w = np.array([0.3, 0.1, 0.4, 0.2])
    got = weighted_quantile(x, [0.0, 0.05, 0.1, 0.3, 0.31, 0.5, 0.95, 1.0], w)
    assert got.tolist() == [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 4.0]


def test_weighted_quantile_agrees_with_numpy_inverted_cdf() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 5))
    w = rng.random(37)
    q = [0.05, 0.5, 0.95]
    ours = weighted_quantile(x, q, w)
    ref = np.quantile(x, q, axis=0, weights=w / w.sum(), method="inverted_cdf")
    np.testing.assert_allclose(ours, ref)
    # equal weights
    np.testing.assert_allclose(
        weighted_quantile(x, q), np.quantile(x, q, axis=0, method="inverted_cdf")
    )


def test_weighted_quantile_rejects_nan_and_bad_q() -> None:
    with pytest.raises(ValueError, match="NaN"):
        weighted_quantile(np.array([1.0, np.nan]), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        weighted_quantile(np.array([1.0, 2.0]), 1.5)
    with pytest.raises(ValueError, match="shape"):
        weighted_quantile(np.array([1.0, 2.0]), 0.5, [1.0, 2.0, 3.0])


def test_rmse_of_ensemble_mean_hand_case() -> None:
    f = np.array([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    assert ensemble_mean_rmse(f, np.array([2.0, 2.0])) == pytest.approx(np.sqrt(0.5))
    # weights 3:1 give mean (1.5, 2.5): errors (-0.5, 0.5)
    assert ensemble_mean_rmse(f, np.array([2.0, 2.0]), [3, 1]) == pytest.approx(0.5)


@pytest.mark.parametrize(("y", "expected"), [(0.5, 0.25), (2.0, 1.25), (0.0, 0.25)])
def test_crps_two_member_hand_case(y: float, expected: float) -> None:
    # members 0 and 1: F = 1/2 on [0, 1); CRPS = integral (F - H(x - y))^2 dx by hand
    assert float(crps_ensemble(np.array([0.0, 1.0]), y)) == pytest.approx(expected)


def test_crps_equals_integral_of_squared_cdf_difference() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=9)
    w = rng.random(9)
    w /= w.sum()
    y = 0.3
    order = np.argsort(x)

    def f(t: float) -> float:
        return float(w[order][x[order] <= t].sum())

    # integrate (F - H)^2 piecewise between the members and the observation
    knots = np.sort(np.concatenate([x, [y]]))
    total = 0.0
    for a, b in zip(knots[:-1], knots[1:], strict=True):
        m = 0.5 * (a + b)
        total += (f(m) - (1.0 if m >= y else 0.0)) ** 2 * (b - a)
    assert float(crps_ensemble(x, y, w)) == pytest.approx(total, rel=1e-12)


def test_crps_gaussian_closed_form_against_quadrature() -> None:
    mu, sd, y = 1.0, 0.4, 1.7

    def integrand(t: float) -> float:
        return (stats.norm.cdf(t, mu, sd) - (t >= y)) ** 2

    num = integrate.quad(integrand, -10, y)[0] + integrate.quad(integrand, y, 10)[0]
    assert float(crps_gaussian(mu, sd, y)) == pytest.approx(num, rel=1e-8)


@pytest.mark.parametrize("y", [-0.5, 1.0, 1.3, 3.0])
def test_crps_of_many_members_approaches_gaussian_closed_form(y: float) -> None:
    mu, sd, n = 1.0, 0.5, 4000
    members = stats.norm.ppf((np.arange(n) + 0.5) / n, mu, sd)
    assert float(crps_ensemble(members, y)) == pytest.approx(
        float(crps_gaussian(mu, sd, y)), abs=2e-4
    )


def test_crps_vectorised_over_times() -> None:
    rng = np.random.default_rng(3)
    f = rng.normal(size=(12, 4))
    y = rng.normal(size=4)
    each = [float(crps_ensemble(f[:, k], y[k])) for k in range(4)]
    np.testing.assert_allclose(crps_ensemble(f, y), each)


def test_coverage_and_weighted_mean() -> None:
    lo = np.array([0.0, 0.0, 1.0, np.nan])
    hi = np.array([1.0, 1.0, 2.0, 1.0])
    truth = np.array([0.5, 1.5, 1.0, np.nan])
    assert coverage(lo, hi, truth) == pytest.approx(2 / 3)
    assert coverage(lo, hi, truth, where=np.array([True, False, False, True])) == 1.0
    np.testing.assert_allclose(weighted_mean(np.array([[0.0], [4.0]]), [3, 1]), [1.0])
