"""Skill of an ensemble forecast: weighted quantiles, RMSE, CRPS and band coverage.

Every function takes the members along axis 0 (shape ``(n_members, ...)``) and
optional member weights (shape ``(n_members,)``, >= 0, not all zero; they are
normalised here). Equal weights are used when none are given.

- Weighted quantiles invert the weighted empirical CDF (the smallest member
  value whose cumulative weight reaches q); with equal weights this is
  NumPy's ``method="inverted_cdf"``.
- The CRPS of an ensemble is the CRPS of its (weighted) empirical
  distribution, in the kernel form of Gneiting & Raftery (2007, eq. 21):
  ``CRPS = E|X - y| - 1/2 E|X - X'|``, which equals Hersbach's (2000)
  integral of ``(F(x) - H(x - y))^2`` over x for the step CDF F of the members.
  Units are those of the forecast quantity (m for depths and levels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "normalise_weights",
    "weighted_quantile",
    "weighted_mean",
    "ensemble_mean_rmse",
    "crps_ensemble",
    "crps_gaussian",
    "coverage",
]


def normalise_weights(weights: np.ndarray | Sequence[float] | None, n: int) -> np.ndarray:
    """Member weights summing to 1, shape (n,); equal weights when *weights* is None.

    Raises
    ------
    ValueError
        When the shape is not (n,), a weight is negative or not finite, or all are 0.
    """
    if weights is None:
        if n < 1:
            raise ValueError("an ensemble needs at least one member")
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights: expected shape ({n},) (one per member), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    total = w.sum()
    if total <= 0:
        raise ValueError("weights must not all be 0")
    return w / total


def weighted_quantile(
    values: np.ndarray,
    q: float | Sequence[float] | np.ndarray,
    weights: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """Weighted quantiles over the members (axis 0) of *values*.

    Parameters
    ----------
    values
        Member values, shape (n_members, ...). NaN is not allowed (mask first).
    q
        Probabilities in [0, 1], a scalar or a sequence.
    weights
        Member weights, shape (n_members,); equal when None.

    Returns
    -------
    numpy.ndarray
        Shape ``values.shape[1:]`` for a scalar *q*, else ``(len(q), *values.shape[1:])``:
        for each q the smallest member value x with sum of weights of members
        <= x at least q (the inverse of the weighted empirical CDF).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("values: expected shape (n_members, ...) with at least one member")
    if np.isnan(x).any():
        raise ValueError("values must not hold NaN")
    w = normalise_weights(weights, x.shape[0])
    qs = np.atleast_1d(np.asarray(q, dtype=float))
    if np.any((qs < 0) | (qs > 1)) or np.isnan(qs).any():
        raise ValueError(f"quantile probabilities must lie in [0, 1], got {qs.tolist()}")
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    cw = np.cumsum(w[order], axis=0)  # (n, ...) cumulative weight of sorted members
    # the first sorted member whose cumulative weight reaches q (guard rounding at q = 1)
    tol = 1e-12
    idx = np.stack([(cw < qq - tol).sum(axis=0) for qq in qs])
    idx = np.minimum(idx, x.shape[0] - 1)
    out = np.take_along_axis(xs, idx, axis=0)
    return out[0] if np.ndim(q) == 0 else out


def weighted_mean(
    values: np.ndarray, weights: np.ndarray | Sequence[float] | None = None
) -> np.ndarray:
    """Weighted mean over the members (axis 0), shape ``values.shape[1:]``."""
    x = np.asarray(values, dtype=float)
    w = normalise_weights(weights, x.shape[0])
    return np.tensordot(w, x, axes=(0, 0))


def ensemble_mean_rmse(
    forecast: np.ndarray,
    truth: np.ndarray,
    weights: np.ndarray | Sequence[float] | None = None,
) -> float:
    """Root-mean-square error of the (weighted) ensemble mean against *truth*.

    Parameters
    ----------
    forecast
        Member forecasts, shape (n_members, ...) (e.g. members x times), units of *truth*.
    truth
        The verifying values, shape ``forecast.shape[1:]``.
    weights
        Member weights; equal when None.

    Returns
    -------
    float
        ``sqrt(mean((mean_w(forecast) - truth)^2))`` over every verifying value.
    """
    f = np.asarray(forecast, dtype=float)
    y = np.asarray(truth, dtype=float)
    if f.shape[1:] != y.shape:
        raise ValueError(f"truth: expected shape {f.shape[1:]}, got {y.shape}")
    err = weighted_mean(f, weights) - y
    return float(np.sqrt(np.mean(err**2)))


def crps_ensemble(
    forecast: np.ndarray,
    observed: np.ndarray | float,
    weights: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """CRPS of an ensemble forecast for each verifying value, in its units.

    ``CRPS = sum_i w_i |x_i - y| - 1/2 sum_i sum_j w_i w_j |x_i - x_j|``
    (Gneiting & Raftery 2007, eq. 21, for the weighted empirical distribution;
    identical to Hersbach 2000, eq. 5, for the members' step CDF). The pair sum
    is taken over sorted members in O(n log n).

    Parameters
    ----------
    forecast
        Member values, shape (n_members, ...).
    observed
        The verifying values, shape ``forecast.shape[1:]`` (or a scalar for 1-D forecasts).
    weights
        Member weights; equal when None.

    Returns
    -------
    numpy.ndarray
        CRPS, shape ``forecast.shape[1:]`` (0-d for a single value); 0 only
        for a forecast that puts all its weight on the observed value.
    """
    x = np.asarray(forecast, dtype=float)
    y = np.asarray(observed, dtype=float)
    if x.ndim == 0:
        raise ValueError("forecast: expected shape (n_members, ...)")
    if y.shape != x.shape[1:]:
        raise ValueError(f"observed: expected shape {x.shape[1:]}, got {y.shape}")
    w = normalise_weights(weights, x.shape[0])
    wb = w.reshape((-1,) + (1,) * (x.ndim - 1))
    spread_to_obs = (wb * np.abs(x - y)).sum(axis=0)
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    ws = w[order]
    before = np.cumsum(ws, axis=0) - ws  # weight of members sorted before each one
    after = 1.0 - before - ws
    # sum_{i<j} w_i w_j (x_j - x_i) = sum_k w_k x_k (before_k - after_k)
    pair = (ws * xs * (before - after)).sum(axis=0)
    return spread_to_obs - pair


def crps_gaussian(mean: np.ndarray | float, sd: np.ndarray | float, observed: np.ndarray | float
                  ) -> np.ndarray:  # fmt: skip
    """CRPS of a Gaussian forecast N(mean, sd^2) (Gneiting & Raftery 2007, eq. 5).

    ``CRPS = sd [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)]``, z = (y - mean) / sd.
    """
    from scipy.stats import norm

    z = (np.asarray(observed, dtype=float) - mean) / sd
    return np.asarray(sd * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))


def coverage(
    lower: np.ndarray,
    upper: np.ndarray,
    truth: np.ndarray,
    *,
    where: np.ndarray | None = None,
) -> float:
    """Share of verifying values inside their band ``[lower, upper]`` (bounds included).

    Parameters
    ----------
    lower, upper, truth
        Same shape (e.g. p5 and p95 rasters and the true max-depth raster).
    where
        Optional boolean mask of the values to count (e.g. the wet cells); NaN
        truth values are never counted.

    Returns
    -------
    float
        In [0, 1]; NaN when nothing is counted.
    """
    lo, hi, y = (np.asarray(a, dtype=float) for a in (lower, upper, truth))
    if not lo.shape == hi.shape == y.shape:
        raise ValueError(f"lower, upper and truth differ in shape: {lo.shape}, {hi.shape}, "
                         f"{y.shape}")  # fmt: skip
    use = np.isfinite(y) if where is None else (np.asarray(where, dtype=bool) & np.isfinite(y))
    n = int(use.sum())
    if n == 0:
        return float("nan")
    inside = (y[use] >= lo[use]) & (y[use] <= hi[use])
    return float(inside.mean())
