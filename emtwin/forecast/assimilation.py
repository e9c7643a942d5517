"""Assimilation of gauge observations into an ensemble: particle filter and ensemble Kalman.

Pure functions of arrays; nothing here runs a simulation. The forecast runner
runs each member (its uncertain parameters drawn from the scenario's
``uncertain:`` section, the prior) up to "now", reads each member's
predictions at the observation times, and calls these functions.

Particle filter (sequential importance resampling; Gordon, Salmond & Smith
1993; van Leeuwen 2009; in hydrology Moradkhani et al. 2005):

- observation error is Gaussian and independent, ``y_k = H_k(x) + e_k``,
  ``e_k ~ N(0, sigma_k^2)``; the default sigma is :data:`DEFAULT_SIGMA_M`
  (5 cm, the order of a river gauge's error plus the model's representation
  error at one cell);
- a member's log-likelihood is the sum over observations of
  ``-1/2 ((y_k - H_k(x_i)) / sigma_k)^2 - log(sigma_k sqrt(2 pi))``;
- weights are ``w_i ∝ w_i^prior exp(phi * loglik_i)``, normalised with the
  log-sum-exp; phi = 1 unless the weights would collapse below a wanted
  effective sample size, when phi < 1 is found by bisection (likelihood
  tempering, as in adaptive SMC; Jasra et al. 2011). Tempering stands for the
  correlation of errors between successive readings of one gauge, which the
  independence assumption ignores;
- effective sample size ``ESS = 1 / sum w_i^2`` (Kong, Liu & Wong 1994);
- systematic resampling (Kitagawa 1996; Carpenter, Clifford & Fearnhead 1999):
  one uniform draw u ~ U[0, 1/N), member i is copied once for each
  ``u + k/N`` in its slice of the cumulative weights;
- optional jitter of the resampled parameters with the kernel shrinkage of
  Liu & West (2001), which keeps the weighted mean and variance of each
  parameter while breaking ties between copies.

Ensemble Kalman update of the parameters (an ensemble smoother with perturbed
observations; Evensen 1994, Burgers, van Leeuwen & Evensen 1998;
Evensen 2009 for parameters): ``theta_i^a = theta_i + K (y + e_i - H(x_i))``,
``K = C_theta,y (C_y,y + R)^-1`` from the ensemble covariances.

Everything is deterministic given the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emtwin.forecast.skill import normalise_weights, weighted_quantile

__all__ = [
    "DEFAULT_SIGMA_M",
    "log_likelihoods",
    "normalised_weights",
    "effective_sample_size",
    "tempering_exponent",
    "systematic_resample",
    "jitter",
    "posterior_summary",
    "ParticleFilterResult",
    "particle_filter",
    "enkf_parameter_update",
]

#: Default standard deviation of a gauge's observation error, m (levels and depths).
DEFAULT_SIGMA_M = 0.05

#: Default relative error of an observed discharge (sd / flow): gauged flows come
#: from a rating curve, whose error is typically 10-20 % at medium and high flows
#: (McMillan, Krueger & Freer 2012, Hydrological Processes 26, 4078-4111).
DEFAULT_FLOW_ERROR_REL = 0.10


def flow_sigma(observed: np.ndarray, gauges: np.ndarray, rel: float = DEFAULT_FLOW_ERROR_REL
               ) -> np.ndarray:  # fmt: skip
    """Observation error sd of discharge readings, m3/s: *rel* times the flow.

    A relative error alone would trust a near-zero flow absolutely, so each
    reading's sd is *rel* x max(|flow|, 10 % of the largest |flow| read at its
    gauge), and at least 1e-3 m3/s.

    Parameters
    ----------
    observed
        The readings, m3/s, shape (n,).
    gauges
        Each reading's gauge name, shape (n,).
    rel
        The relative error (> 0).
    """
    if not rel > 0:
        raise ValueError(f"flow error: expected a relative error > 0, got {rel!r}")
    y = np.abs(np.asarray(observed, dtype=float))
    g = pd.Series(np.asarray(gauges))
    peak = pd.Series(y).groupby(g).transform("max").to_numpy(dtype=float)
    return np.maximum(rel * np.maximum(y, 0.1 * peak), 1e-3)

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _as_obs(predicted: np.ndarray, observed: np.ndarray, sigma: float | np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    hx = np.asarray(predicted, dtype=float)
    y = np.asarray(observed, dtype=float)
    if hx.ndim != 2:
        raise ValueError(f"predicted: expected shape (n_members, n_obs), got {hx.shape}")
    if y.shape != (hx.shape[1],):
        raise ValueError(f"observed: expected shape ({hx.shape[1]},) (one per column of "
                         f"predicted), got {y.shape}")  # fmt: skip
    s = np.broadcast_to(np.asarray(sigma, dtype=float), y.shape)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("sigma must be finite and > 0")
    if not np.all(np.isfinite(y)):
        raise ValueError("observed must be finite")
    if not np.all(np.isfinite(hx)):
        bad = np.argwhere(~np.isfinite(hx))[0]
        raise ValueError(f"predicted: member {bad[0]} has no finite value for observation "
                         f"{bad[1]}")  # fmt: skip
    return hx, y, s


def log_likelihoods(
    predicted: np.ndarray,
    observed: np.ndarray,
    *,
    sigma: float | np.ndarray = DEFAULT_SIGMA_M,
) -> np.ndarray:
    """Gaussian log-likelihood of the observations under each member.

    Parameters
    ----------
    predicted
        Each member's value at each observation (same gauge, time and quantity),
        shape (n_members, n_obs), m.
    observed
        The observed values, shape (n_obs,), m.
    sigma
        Observation error standard deviation, m: a scalar or shape (n_obs,).

    Returns
    -------
    numpy.ndarray
        Shape (n_members,): ``sum_k log N(y_k; H_k(x_i), sigma_k^2)``.
    """
    hx, y, s = _as_obs(predicted, observed, sigma)
    r = (y - hx) / s
    return -0.5 * (r**2).sum(axis=1) - (np.log(s) + _LOG_SQRT_2PI).sum()


def normalised_weights(
    log_lik: np.ndarray,
    prior_weights: np.ndarray | Sequence[float] | None = None,
    *,
    exponent: float = 1.0,
) -> np.ndarray:
    """Posterior weights ``∝ prior * exp(exponent * log_lik)``, summing to 1 (log-sum-exp)."""
    ll = np.asarray(log_lik, dtype=float)
    if ll.ndim != 1 or ll.size == 0:
        raise ValueError(f"log_lik: expected shape (n_members,), got {ll.shape}")
    w0 = normalise_weights(prior_weights, ll.size)
    with np.errstate(divide="ignore"):
        a = exponent * ll + np.log(w0)
    a = a - a.max()
    w = np.exp(a)
    return w / w.sum()


def effective_sample_size(weights: np.ndarray | Sequence[float]) -> float:
    """``1 / sum w_i^2`` of normalised weights: N for equal weights, 1 for one member."""
    w = normalise_weights(weights, len(weights))
    return float(1.0 / np.sum(w**2))


def tempering_exponent(
    log_lik: np.ndarray,
    prior_weights: np.ndarray | Sequence[float] | None = None,
    *,
    min_ess: float,
    tol: float = 1e-6,
) -> float:
    """The largest phi in (0, 1] whose weights keep ``ESS >= min_ess`` (bisection).

    Returns 1.0 when the full likelihood already keeps the ESS, and the bisection's
    lower end otherwise (the ESS is continuous in phi and equals the prior's ESS
    at phi = 0; with equal prior weights it is N there).
    """
    n = len(log_lik)
    if not 1.0 <= min_ess <= n:
        raise ValueError(f"min_ess must lie in [1, {n}], got {min_ess}")

    def ess(phi: float) -> float:
        return effective_sample_size(normalised_weights(log_lik, prior_weights, exponent=phi))

    if ess(1.0) >= min_ess:
        return 1.0
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if ess(mid) >= min_ess:
            lo = mid
        else:
            hi = mid
    return lo


def systematic_resample(
    weights: np.ndarray | Sequence[float], rng: np.random.Generator, n: int | None = None
) -> np.ndarray:
    """Indices of *n* (default: as many as weights) members drawn by systematic resampling.

    One draw u ~ U[0, 1/n); member i is taken once for every ``u + k/n``
    (k = 0..n-1) in ``[W_{i-1}, W_i)`` of the cumulative weights W. A member
    of weight w is therefore copied floor(n w) or ceil(n w) times. The
    indices come out sorted.
    """
    w = normalise_weights(weights, len(weights))
    n = len(w) if n is None else int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    points = (rng.random() + np.arange(n)) / n
    cum = np.cumsum(w)
    cum[-1] = 1.0  # rounding must not leave the last point beyond the end
    return np.searchsorted(cum, points, side="right").astype(np.int64)


def jitter(
    params: Mapping[str, np.ndarray],
    indices: np.ndarray,
    weights: np.ndarray | Sequence[float],
    rng: np.random.Generator,
    *,
    discount: float = 0.98,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, np.ndarray]:
    """Resampled parameter values, shrunk and jittered (Liu & West 2001).

    ``theta' = a theta_idx + (1 - a) mean_w + sqrt(1 - a^2) sd_w eps``, with
    ``a = (3 delta - 1) / (2 delta)`` from the *discount* delta in (0, 1] and
    eps ~ N(0, 1). The weighted mean and variance of each parameter are kept
    in expectation. delta = 1 copies the resampled values unchanged.

    Parameters
    ----------
    params
        Each numeric parameter's prior values, shape (n_members,), by key path.
    indices
        The resampled members, from :func:`systematic_resample`.
    weights
        The weights the resampling used.
    rng
        Source of the jitter (one normal draw per parameter and new member,
        parameters in sorted key order).
    discount
        delta, in (0, 1].
    bounds
        Optional (low, high) per parameter; jittered values are clipped into it.
    """
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must lie in (0, 1], got {discount}")
    a = (3.0 * discount - 1.0) / (2.0 * discount)
    idx = np.asarray(indices, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for name in sorted(params):
        x = np.asarray(params[name], dtype=float)
        w = normalise_weights(weights, x.size)
        mean = float(np.sum(w * x))
        sd = float(np.sqrt(np.sum(w * (x - mean) ** 2)))
        eps = rng.standard_normal(idx.size)
        y = a * x[idx] + (1.0 - a) * mean + np.sqrt(max(1.0 - a * a, 0.0)) * sd * eps
        if bounds and name in bounds:
            y = np.clip(y, *bounds[name])
        out[name] = y
    return out


def posterior_summary(
    params: Mapping[str, np.ndarray],
    weights: np.ndarray | Sequence[float] | None = None,
) -> dict[str, dict[str, float]]:
    """Weighted mean, 5 % and 95 % quantile of each numeric parameter.

    Returns ``{path: {"mean": .., "p5": .., "p50": .., "p95": ..}}`` (units of the
    parameter: SI, or a multiplier for ``scale:`` parameters).
    """
    out: dict[str, dict[str, float]] = {}
    for name, values in params.items():
        x = np.asarray(values, dtype=float)
        w = normalise_weights(weights, x.size)
        p5, p50, p95 = weighted_quantile(x, [0.05, 0.5, 0.95], w)
        out[name] = {"mean": float(np.sum(w * x)), "p5": float(p5), "p50": float(p50),
                     "p95": float(p95)}  # fmt: skip
    return out


@dataclass(frozen=True)
class ParticleFilterResult:
    """What one particle-filter update gives.

    Attributes
    ----------
    log_likelihood
        Each member's summed Gaussian log-likelihood, shape (n_members,).
    exponent
        The tempering exponent phi used (1.0: the full likelihood).
    weights
        Posterior weights, shape (n_members,), summing to 1.
    ess
        Effective sample size of *weights* (1 ... n_members).
    indices
        The resampled members (systematic), shape (n_members,), sorted; a member
        appears as many times as it is copied.
    posterior
        Weighted mean, p5, p50, p95 of each parameter (before resampling).
    resampled_params
        Each parameter's values for the resampled members (jittered when asked).
    """

    log_likelihood: np.ndarray
    exponent: float
    weights: np.ndarray
    ess: float
    indices: np.ndarray
    posterior: dict[str, dict[str, float]] = field(default_factory=dict)
    resampled_params: dict[str, np.ndarray] = field(default_factory=dict)


def particle_filter(
    predicted: np.ndarray,
    observed: np.ndarray,
    *,
    rng: np.random.Generator,
    sigma: float | np.ndarray = DEFAULT_SIGMA_M,
    params: Mapping[str, np.ndarray] | None = None,
    prior_weights: np.ndarray | Sequence[float] | None = None,
    min_ess: float | None = None,
    jitter_discount: float | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> ParticleFilterResult:
    """One particle-filter update: weights, ESS, systematic resampling, parameter posterior.

    Parameters
    ----------
    predicted
        Members' values at the observations, shape (n_members, n_obs), m.
    observed
        Observed values, shape (n_obs,), m.
    rng
        The generator of the resampling (and the jitter).
    sigma
        Observation error sd, m (scalar or per observation); default 5 cm.
    params
        Each numeric uncertain parameter's values per member, shape (n_members,).
    prior_weights
        Weights before this update (equal when None).
    min_ess
        When given, temper the likelihood so that the ESS stays at least this
        (see :func:`tempering_exponent`); None uses the full likelihood.
    jitter_discount
        When given, jitter the resampled parameters (Liu & West 2001, delta).
    bounds
        (low, high) of parameters for the jitter.
    """
    ll = log_likelihoods(predicted, observed, sigma=sigma)
    phi = 1.0 if min_ess is None else tempering_exponent(ll, prior_weights, min_ess=min_ess)
    w = normalised_weights(ll, prior_weights, exponent=phi)
    idx = systematic_resample(w, rng)
    params = dict(params or {})
    if jitter_discount is not None:
        resampled = jitter(params, idx, w, rng, discount=jitter_discount, bounds=bounds)
    else:
        resampled = {k: np.asarray(v, dtype=float)[idx] for k, v in params.items()}
    return ParticleFilterResult(
        log_likelihood=ll, exponent=phi, weights=w, ess=effective_sample_size(w), indices=idx,
        posterior=posterior_summary(params, w), resampled_params=resampled,
    )  # fmt: skip


def enkf_parameter_update(
    params: np.ndarray,
    predicted: np.ndarray,
    observed: np.ndarray,
    *,
    rng: np.random.Generator,
    sigma: float | np.ndarray = DEFAULT_SIGMA_M,
) -> np.ndarray:
    """Ensemble-Kalman update of the parameters with perturbed observations.

    ``theta_i^a = theta_i + K (y + e_i - H(x_i))``, ``e_i ~ N(0, R)``,
    ``K = C_theta,y (C_y,y + R)^-1`` with ensemble (n - 1) covariances and
    ``R = diag(sigma^2)`` (Evensen 1994; Burgers et al. 1998).

    Parameters
    ----------
    params
        Parameter values, shape (n_members, n_params).
    predicted
        Members' values at the observations, shape (n_members, n_obs), m.
    observed
        Observations, shape (n_obs,), m.
    rng
        The generator of the observation perturbations.
    sigma
        Observation error sd, m (scalar or per observation).

    Returns
    -------
    numpy.ndarray
        The updated parameters, shape (n_members, n_params).
    """
    hx, y, s = _as_obs(predicted, observed, sigma)
    th = np.asarray(params, dtype=float)
    if th.ndim != 2 or th.shape[0] != hx.shape[0]:
        raise ValueError(f"params: expected shape ({hx.shape[0]}, n_params), got {th.shape}")
    n = th.shape[0]
    if n < 2:
        raise ValueError("an ensemble Kalman update needs at least 2 members")
    a_th = th - th.mean(axis=0)
    a_y = hx - hx.mean(axis=0)
    c_ty = a_th.T @ a_y / (n - 1)
    c_yy = a_y.T @ a_y / (n - 1) + np.diag(s**2)
    perturbed = y + rng.standard_normal(hx.shape) * s
    innovation = perturbed - hx  # (n, m)
    gain_t = np.linalg.solve(c_yy, c_ty.T)  # (m, p) = C_yy^-1 C_ty^T (C_yy symmetric)
    return th + innovation @ gain_t
