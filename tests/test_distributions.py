"""emtwin.distributions: each family against scipy.stats and closed forms, draws, truncation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from emtwin import distributions as d

N = 20_000
U = np.array([1e-9, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-9])

# (law, its scipy.stats law built here from the closed-form parameters, mean by hand)
S2 = math.log1p((600 / 1800) ** 2)  # lognormal mean 1800 s, sd 600 s
FAMILIES = {
    "exponential": (d.exponential(600.0), stats.expon(scale=600), 600.0),
    "lognormal": (d.lognormal(1800.0, 600.0),
                  stats.lognorm(s=math.sqrt(S2), scale=math.exp(math.log(1800) - S2 / 2)), 1800.0),
    "normal": (d.normal(1.0, 0.2), stats.norm(1.0, 0.2), 1.0),
    "uniform": (d.uniform(600.0, 3600.0), stats.uniform(600, 3000), 2100.0),
    "triangular": (d.triangular(0.0, 600.0, 1800.0), stats.triang(1 / 3, 0, 1800), 800.0),
    "rayleigh": (d.rayleigh(900.0), stats.rayleigh(scale=900), 900 * math.sqrt(math.pi / 2)),
}  # fmt: skip


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_is_its_scipy_law(name: str) -> None:
    law, ref, mean = FAMILIES[name]
    x = ref.ppf(U)
    assert law.cdf(x) == pytest.approx(ref.cdf(x), rel=1e-12, abs=1e-300)
    assert law.ppf(U) == pytest.approx(ref.ppf(U), rel=1e-12)
    assert law.frozen.ppf(U) == pytest.approx(ref.ppf(U), rel=1e-12)
    assert law.mean() == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_draws_follow_the_frozen_cdf(name: str) -> None:
    law = FAMILIES[name][0]
    x = law.draw(np.random.default_rng(11), N)
    assert stats.kstest(x, law.frozen.cdf).pvalue > 0.001
    # and inverse transform gives the same law
    assert stats.kstest(law.ppf(np.random.default_rng(12).random(N)), law.frozen.cdf).pvalue > 0.001


def test_the_lognormal_conversion_keeps_the_mean_and_sd_of_the_value() -> None:
    mean, sd = 1800.0, 600.0
    mu, sigma = d.lognormal_params(mean, sd)
    # E = exp(mu + s^2 / 2), Var = (exp(s^2) - 1) E^2
    assert math.exp(mu + sigma**2 / 2) == pytest.approx(mean, rel=1e-14)
    assert math.sqrt(math.expm1(sigma**2)) * mean == pytest.approx(sd, rel=1e-14)
    x = d.lognormal(mean, sd).draw(np.random.default_rng(3), 200_000)
    assert abs(x.mean() - mean) < 4 * sd / math.sqrt(x.size)
    assert x.std() == pytest.approx(sd, rel=0.03)


def test_sampling_is_stream_stable() -> None:
    # the draws are the Generator's own, so a seed keeps them
    mu, sigma = math.log(1800) - S2 / 2, math.sqrt(S2)
    assert np.array_equal(d.lognormal(1800.0, 600.0).draw(np.random.default_rng(5), 50),
                          np.random.default_rng(5).lognormal(mu, sigma, 50))  # fmt: skip
    assert np.array_equal(d.triangular(0.0, 600.0, 1800.0).draw(np.random.default_rng(5), 50),
                          np.random.default_rng(5).triangular(0.0, 600.0, 1800.0, 50))  # fmt: skip
    assert np.array_equal(d.exponential(60.0).draw(np.random.default_rng(5), 50),
                          np.random.default_rng(5).exponential(60.0, 50))  # fmt: skip


def test_logistic_is_truncated_at_zero() -> None:
    a, h = 1 / 300.0, 600.0
    law = d.logistic(h, a)
    p = stats.logistic(h, 1 / a)
    t = np.array([0.0, 100.0, 600.0, 2000.0])
    want = (p.cdf(t) - p.cdf(0)) / p.sf(0)
    assert law.cdf(t) == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert law.cdf(-5.0) == 0.0 and law.ppf(0.0) == 0.0
    # E = int_0^inf (1 - F) dt = ln(1 + exp(a H)) / (a (1 - P(0)))
    assert law.mean() == pytest.approx(math.log1p(math.exp(a * h)) / a / p.sf(0), rel=1e-6)
    x = law.draw(np.random.default_rng(2), N)
    assert x.min() >= 0 and stats.kstest(x, law.cdf).pvalue > 0.001


def test_truncation_keeps_the_mass_between_its_ends() -> None:
    law = d.truncate(d.normal(0.0, 1.0), -1.0, 2.0)
    phi = stats.norm.cdf
    assert law.cdf(-1.0) == 0.0 and law.cdf(2.0) == 1.0
    assert law.cdf(0.0) == pytest.approx((0.5 - phi(-1)) / (phi(2) - phi(-1)), rel=1e-12)
    x = law.draw(np.random.default_rng(4), N)
    assert x.min() >= -1.0 and x.max() <= 2.0
    assert stats.kstest(x, stats.truncnorm(-1, 2).cdf).pvalue > 0.001
    assert law.mean() == pytest.approx(stats.truncnorm(-1, 2).mean(), rel=1e-7)
    with pytest.raises(ValueError, match="no probability"):
        d.truncate(d.uniform(0.0, 1.0), 2.0, 3.0)


def test_a_truncated_normal_redraws_into_its_range() -> None:
    law = d.normal(600.0, 600.0, low=0.0)  # a call duration: mean 10 min, sd 10 min, >= 0
    assert law.frozen.dist.name == "truncnorm"
    x = law.draw(np.random.default_rng(6), N)
    assert x.min() >= 0 and stats.kstest(x, law.frozen.cdf).pvalue > 0.001
    # E = mu + sigma phi(-1) / (1 - Phi(-1))
    e = 600 + 600 * stats.norm.pdf(-1) / stats.norm.sf(-1)
    assert law.mean() == pytest.approx(e, rel=1e-9)
    assert d.normal(5.0, 0.0).family == "fixed"


def test_cap_truncates_like_max_delay() -> None:
    sigma, top = 600.0, 1200.0
    law = d.cap(d.rayleigh(sigma), top)
    f_top = -math.expm1(-(top**2) / (2 * sigma**2))
    assert law.cdf(600.0) == pytest.approx(-math.expm1(-0.5) / f_top, rel=1e-12)
    assert law.cdf(top) == 1.0 and float(law.ppf(1 - 1e-12)) <= top
    assert d.cap(d.rayleigh(sigma), np.inf).family == "rayleigh"
    below = d.cap(d.table([100.0, 200.0], [0.0, 1.0]), 50.0)  # no mass under the cap
    assert below.family == "fixed" and below.ppf(0.3) == 50.0


def test_table_is_piecewise_linear_with_an_atom_and_a_missing_share() -> None:
    law = d.table([300.0, 1800.0, 3600.0], [0.2, 0.8, 1.0])
    assert law.ppf(np.array([0.1, 0.5, 0.9])) == pytest.approx([300.0, 1050.0, 2700.0])
    assert law.cdf(np.array([299.0, 300.0, 1050.0])) == pytest.approx([0.0, 0.2, 0.5])
    # mean: 0.2 * 300 + 0.6 * (300 + 1800) / 2 + 0.2 * (1800 + 3600) / 2
    assert law.mean() == pytest.approx(60 + 630 + 540)
    # the continuous part is scipy's rv_histogram of the rising shares
    hist = law.frozen
    t = np.array([500.0, 1800.0, 3000.0])
    assert (law.cdf(t) - 0.2) / 0.8 == pytest.approx(hist.cdf(t), rel=1e-12)
    short = d.table([0.0, 600.0], [0.0, 0.7])
    assert np.isinf(short.ppf(0.8)) and short.cdf(1e9) == pytest.approx(0.7)
    assert math.isinf(short.mean())


def test_fixed_is_a_point_mass() -> None:
    law = d.fixed(1200.0)
    assert law.cdf(np.array([1199.0, 1200.0])).tolist() == [0.0, 1.0]
    assert law.frozen.cdf(1200.0) == 1.0 and law.mean() == 1200.0
    assert law.draw(np.random.default_rng(0), 3).tolist() == [1200.0] * 3


def test_laws_pickle_for_checkpoints() -> None:
    import pickle

    laws = [v[0] for v in FAMILIES.values()] + [
        d.logistic(600.0, 1 / 300.0), d.table([0.0, 600.0], [0.0, 0.7]), d.fixed(3.0),
        d.normal(1.0, 0.5, low=0.0), d.cap(d.rayleigh(600.0), 1200.0),
    ]  # fmt: skip
    for law in laws:
        if isinstance(law, d.Law):
            assert law.frozen is not None  # built and cached before pickling
        back = pickle.loads(pickle.dumps(law))
        assert np.array_equal(back.ppf(U), law.ppf(U))
        assert back.mean() == pytest.approx(law.mean())
