"""Particle filter and ensemble-Kalman update against hand-computed and conjugate numbers."""

from __future__ import annotations

import numpy as np
import pytest

from emtwin.forecast.assimilation import (
    DEFAULT_SIGMA_M,
    effective_sample_size,
    enkf_parameter_update,
    jitter,
    log_likelihoods,
    normalised_weights,
    particle_filter,
    posterior_summary,
    systematic_resample,
    tempering_exponent,
)


def test_weights_by_hand() -> None:
    # residuals 0, 1 and 2 sigma at one gauge: w ∝ exp(0), exp(-1/2), exp(-2)
    pred = np.array([[0.0], [0.05], [0.10]])
    ll = log_likelihoods(pred, np.array([0.0]), sigma=0.05)
    assert ll[0] == pytest.approx(-np.log(0.05 * np.sqrt(2 * np.pi)))
    w = normalised_weights(ll)
    expected = np.exp([0.0, -0.5, -2.0])
    np.testing.assert_allclose(w, expected / expected.sum())
    assert DEFAULT_SIGMA_M == 0.05


def test_log_likelihood_sums_over_observations() -> None:
    pred = np.array([[1.0, 2.0], [1.1, 1.8]])
    obs = np.array([1.0, 2.0])
    sig = np.array([0.1, 0.2])
    ll = log_likelihoods(pred, obs, sigma=sig)
    each = [log_likelihoods(pred[:, [k]], obs[[k]], sigma=sig[k]) for k in range(2)]
    np.testing.assert_allclose(ll, each[0] + each[1])
    # member 1: residuals 1 sigma and 1 sigma below member 0
    assert ll[0] - ll[1] == pytest.approx(1.0)


def test_weights_conserved_and_stable_for_huge_likelihood_gaps() -> None:
    ll = np.array([-1e5, -1e5 - 3.0, -2e5])
    w = normalised_weights(ll, prior_weights=[0.2, 0.4, 0.4])
    assert w.sum() == pytest.approx(1.0)
    assert np.all(np.isfinite(w))
    r = np.exp(-3.0) * 2  # prior 0.4 vs 0.2, likelihood ratio e^-3
    np.testing.assert_allclose(w, [1 / (1 + r), r / (1 + r), 0.0], atol=1e-15)


def test_effective_sample_size() -> None:
    assert effective_sample_size(np.full(8, 1 / 8)) == pytest.approx(8.0)
    assert effective_sample_size([0.0, 1.0, 0.0]) == pytest.approx(1.0)
    assert effective_sample_size([0.5, 0.25, 0.25]) == pytest.approx(1 / 0.375)


def test_systematic_resampling_counts_are_floor_or_ceil() -> None:
    rng = np.random.default_rng(0)
    w = np.array([0.5, 0.25, 0.25])
    for _ in range(20):
        idx = systematic_resample(w, rng, 4)  # points u, u+1/4, ...: always 2, 1, 1
        assert np.bincount(idx, minlength=3).tolist() == [2, 1, 1]
    w = rng.random(10)
    w /= w.sum()
    for _ in range(50):
        counts = np.bincount(systematic_resample(w, rng), minlength=10)
        assert counts.sum() == 10
        assert np.all((counts == np.floor(10 * w)) | (counts == np.ceil(10 * w)))


def test_systematic_resampling_unbiased_and_deterministic() -> None:
    w = np.array([0.05, 0.15, 0.3, 0.5])
    rng = np.random.default_rng(5)
    mean = np.mean([np.bincount(systematic_resample(w, rng, 7), minlength=4)
                    for _ in range(4000)], axis=0)  # fmt: skip
    np.testing.assert_allclose(mean, 7 * w, atol=0.03)
    a = systematic_resample(w, np.random.default_rng(9))
    b = systematic_resample(w, np.random.default_rng(9))
    assert a.tolist() == b.tolist()


def test_tempering_keeps_the_wanted_ess() -> None:
    ll = -0.5 * (np.linspace(-3, 3, 50) / 0.1) ** 2  # a very sharp likelihood
    assert effective_sample_size(normalised_weights(ll)) < 5
    phi = tempering_exponent(ll, min_ess=25)
    assert 0 < phi < 1
    ess = effective_sample_size(normalised_weights(ll, exponent=phi))
    assert ess == pytest.approx(25, rel=1e-3)
    assert tempering_exponent(ll * 1e-6, min_ess=25) == 1.0


def test_posterior_summary_by_hand() -> None:
    post = posterior_summary({"rain": np.array([1.0, 2.0, 3.0, 4.0])}, [0.1, 0.2, 0.3, 0.4])
    assert post["rain"] == {"mean": pytest.approx(3.0), "p5": 1.0, "p50": 3.0, "p95": 4.0}


def test_particle_filter_matches_conjugate_gaussian_posterior() -> None:
    # theta ~ N(0, 1), y = theta + e, e ~ N(0, s^2): posterior N(y / (1 + s^2), s^2 / (1 + s^2))
    n, s, y = 20000, 0.5, 1.2
    rng = np.random.default_rng(11)
    theta = rng.standard_normal(n)
    res = particle_filter(theta[:, None], np.array([y]), rng=rng, sigma=s,
                          params={"theta": theta})  # fmt: skip
    mean, var = y / (1 + s**2), s**2 / (1 + s**2)
    assert np.sum(res.weights * theta) == pytest.approx(mean, abs=0.02)
    assert res.posterior["theta"]["mean"] == pytest.approx(mean, abs=0.02)
    assert res.posterior["theta"]["p95"] == pytest.approx(mean + 1.6449 * np.sqrt(var), abs=0.03)
    assert res.resampled_params["theta"].mean() == pytest.approx(mean, abs=0.02)
    assert res.resampled_params["theta"].var() == pytest.approx(var, abs=0.02)
    assert 1 < res.ess < n
    assert res.exponent == 1.0


def test_particle_filter_is_deterministic_given_the_generator() -> None:
    pred = np.random.default_rng(2).normal(size=(16, 5))
    obs = np.zeros(5)
    kw = {"sigma": 0.5, "params": {"a": np.arange(16.0)}, "jitter_discount": 0.9}
    a = particle_filter(pred, obs, rng=np.random.default_rng(4), **kw)
    b = particle_filter(pred, obs, rng=np.random.default_rng(4), **kw)
    assert a.indices.tolist() == b.indices.tolist()
    np.testing.assert_array_equal(a.resampled_params["a"], b.resampled_params["a"])


def test_jitter_keeps_weighted_mean_and_variance() -> None:
    rng = np.random.default_rng(8)
    n = 40000
    x = rng.uniform(0.5, 2.0, n)
    w = rng.random(n)
    w /= w.sum()
    idx = systematic_resample(w, rng)
    out = jitter({"k": x}, idx, w, rng, discount=0.9)["k"]
    m = np.sum(w * x)
    assert out.mean() == pytest.approx(m, abs=0.01)
    assert out.var() == pytest.approx(np.sum(w * (x - m) ** 2), rel=0.03)
    same = jitter({"k": x}, idx, w, rng, discount=1.0)["k"]
    np.testing.assert_array_equal(same, x[idx])
    clipped = jitter({"k": x}, idx, w, rng, discount=0.5, bounds={"k": (0.5, 2.0)})["k"]
    assert clipped.min() >= 0.5 and clipped.max() <= 2.0


def test_enkf_matches_conjugate_gaussian_posterior() -> None:
    n, s, y = 20000, 0.5, 1.2
    rng = np.random.default_rng(12)
    theta = rng.standard_normal((n, 1))
    post = enkf_parameter_update(theta, 2.0 * theta, np.array([2.0 * y]), rng=rng, sigma=2 * s)
    # y' = 2 theta + e', sd 2s: the same information as y = theta + e, sd s
    assert post.mean() == pytest.approx(y / (1 + s**2), abs=0.02)
    assert post.var() == pytest.approx(s**2 / (1 + s**2), abs=0.02)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="member 1 has no finite value for observation 0"):
        log_likelihoods(np.array([[0.0], [np.nan]]), np.array([0.0]))
    with pytest.raises(ValueError, match="observed: expected shape"):
        log_likelihoods(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="sigma"):
        log_likelihoods(np.zeros((2, 1)), np.zeros(1), sigma=0.0)
