"""Delay curves of the evacuation: warning reach and mobilisation (departure).

Pure functions of a delay ``t`` (s after the warning is issued, or after a
household received it) and of the curve's parameters, as cumulative
distribution functions (CDF) and their inverses (PPF). Households draw their
delays by inverse transform from one uniform number each, so a plan that
changes a curve's parameters keeps every household's rank (common random
numbers).

Curves (references.md section 4):

- Rayleigh, ``F(t) = 1 - exp(-t^2 / (2 sigma^2))`` (Tweedie et al. 1986);
- logistic, ``P(t) = 1 / (1 + exp(-a (t - H)))`` (Radwan et al. 1985),
  truncated to ``t >= 0``: ``F(t) = (P(t) - P(0)) / (1 - P(0))``;
- log-normal with the given mean and standard deviation (MATSim evacuation):
  ``s^2 = ln(1 + sd^2 / mean^2)``, ``mu = ln(mean) - s^2 / 2``;
- an empirical table ``[[t, cumulative share]]``, linear between its points,
  a jump to the first share at the first time; the share above the last one
  never comes (never warned, or never leaves);
- exponential with mean ``m`` (warning reach only), ``F(t) = 1 - exp(-t / m)``;
- instant (warning reach only): every delay is 0.

Any curve may be truncated at ``max_delay`` (s): ``F(t) / F(max_delay)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit, ndtr, ndtri

from emtwin.errors import ScenarioError

__all__ = [
    "DelayCurve",
    "rayleigh_cdf",
    "rayleigh_ppf",
    "logistic_cdf",
    "logistic_ppf",
    "lognormal_cdf",
    "lognormal_ppf",
    "exponential_cdf",
    "exponential_ppf",
    "table_cdf",
    "table_ppf",
    "departure_curve",
    "reach_curve",
]

KINDS = ("rayleigh", "logistic", "lognormal", "table", "exponential", "instant")
# scenario key of each parameter, for messages
_KEY_OF = {
    ("rayleigh", "sigma_s"): "sigma", ("logistic", "midpoint_s"): "midpoint",
    ("logistic", "steepness"): "steepness", ("lognormal", "mean_s"): "mean",
    ("lognormal", "sd_s"): "sd", ("exponential", "mean_s"): "reach_time",
}  # fmt: skip


def rayleigh_cdf(t: np.ndarray | float, sigma_s: float) -> np.ndarray:
    """Rayleigh CDF ``1 - exp(-t^2 / (2 sigma^2))`` at delays *t* (s); 0 for t < 0."""
    t = np.maximum(np.asarray(t, dtype=float), 0.0)
    return -np.expm1(-(t * t) / (2.0 * sigma_s * sigma_s))


def rayleigh_ppf(u: np.ndarray | float, sigma_s: float) -> np.ndarray:
    """Delay (s) at cumulative share *u* in [0, 1) of a Rayleigh curve of scale *sigma_s* (s)."""
    u = np.asarray(u, dtype=float)
    return sigma_s * np.sqrt(-2.0 * np.log1p(-u))


def _p0(midpoint_s: float, steepness: float) -> float:
    return float(expit(-steepness * midpoint_s))


def logistic_cdf(t: np.ndarray | float, midpoint_s: float, steepness: float) -> np.ndarray:
    """Logistic CDF with midpoint *H* (s) and steepness *a* (1/s), truncated to t >= 0."""
    t = np.maximum(np.asarray(t, dtype=float), 0.0)
    p0 = _p0(midpoint_s, steepness)
    return (expit(steepness * (t - midpoint_s)) - p0) / (1.0 - p0)


def logistic_ppf(u: np.ndarray | float, midpoint_s: float, steepness: float) -> np.ndarray:
    """Delay (s) at share *u* in [0, 1) of the logistic curve truncated to t >= 0."""
    u = np.asarray(u, dtype=float)
    p0 = _p0(midpoint_s, steepness)
    p = p0 + u * (1.0 - p0)
    return np.maximum(midpoint_s + logit(p) / steepness, 0.0)


def _lognormal_params(mean_s: float, sd_s: float) -> tuple[float, float]:
    s2 = np.log1p((sd_s / mean_s) ** 2)
    return float(np.log(mean_s) - s2 / 2.0), float(np.sqrt(s2))


def lognormal_cdf(t: np.ndarray | float, mean_s: float, sd_s: float) -> np.ndarray:
    """Log-normal CDF of mean *mean_s* and standard deviation *sd_s* (s) at delays *t* (s)."""
    t = np.asarray(t, dtype=float)
    mu, s = _lognormal_params(mean_s, sd_s)
    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(t, 0.0)) - mu) / s
    return ndtr(z)


def lognormal_ppf(u: np.ndarray | float, mean_s: float, sd_s: float) -> np.ndarray:
    """Delay (s) at share *u* in [0, 1) of the log-normal curve."""
    mu, s = _lognormal_params(mean_s, sd_s)
    return np.exp(mu + s * ndtri(np.asarray(u, dtype=float)))


def exponential_cdf(t: np.ndarray | float, mean_s: float) -> np.ndarray:
    """Exponential CDF ``1 - exp(-t / mean)`` at delays *t* (s)."""
    t = np.maximum(np.asarray(t, dtype=float), 0.0)
    return -np.expm1(-t / mean_s)


def exponential_ppf(u: np.ndarray | float, mean_s: float) -> np.ndarray:
    """Delay (s) at share *u* in [0, 1) of the exponential curve of mean *mean_s* (s)."""
    return -mean_s * np.log1p(-np.asarray(u, dtype=float))


def table_cdf(t: np.ndarray | float, times_s: Sequence[float], shares: Sequence[float]):
    """Empirical CDF at delays *t* (s): 0 before the first time, then linear between points.

    *times_s* strictly increasing (s), *shares* non-decreasing in [0, 1]; the
    CDF stays at the last share after the last time.
    """
    t = np.asarray(t, dtype=float)
    tt, ss = np.asarray(times_s, float), np.asarray(shares, float)
    return np.where(t < tt[0], 0.0, np.interp(t, tt, ss))


def table_ppf(u: np.ndarray | float, times_s: Sequence[float], shares: Sequence[float]):
    """Delay (s) at share *u* of an empirical table; ``inf`` above the last share."""
    u = np.asarray(u, dtype=float)
    tt, ss = np.asarray(times_s, float), np.asarray(shares, float)
    j = np.searchsorted(ss, u, side="left")  # first point with share >= u
    out = np.full(u.shape, np.inf)
    first = j == 0
    out[first] = tt[0]
    mid = (j > 0) & (j < ss.size)
    jm = j[mid]
    frac = (u[mid] - ss[jm - 1]) / (ss[jm] - ss[jm - 1])
    out[mid] = tt[jm - 1] + frac * (tt[jm] - tt[jm - 1])
    return out


@dataclass(frozen=True)
class DelayCurve:
    """A delay distribution with its CDF and inverse, in seconds.

    Attributes
    ----------
    kind
        One of ``rayleigh``, ``logistic``, ``lognormal``, ``table``,
        ``exponential``, ``instant``.
    params
        The curve's parameters: ``sigma_s``; ``midpoint_s`` and ``steepness``
        (1/s); ``mean_s`` and ``sd_s``; ``times_s`` and ``shares``; ``mean_s``.
    max_delay_s
        Truncation of the curve, s (``inf`` for none).
    key
        Scenario key the curve came from, for messages.
    table_key
        Name of the table's key within *key* (``table`` or ``reach_table``).
    """

    kind: str
    params: dict[str, Any]
    max_delay_s: float = np.inf
    key: str = "evacuation.departure"
    table_key: str = "table"

    def __post_init__(self) -> None:
        def bad(name: str, what: str) -> ScenarioError:
            shown = _KEY_OF.get((self.kind, name), name)
            return ScenarioError(f"{self.key}.{shown}: {what}, got {self.params.get(name)!r}")

        if self.kind not in KINDS:
            raise ScenarioError(f"{self.key}: unknown curve {self.kind!r}; expected one of {KINDS}")
        p = self.params
        for name in ("sigma_s", "sd_s", "mean_s", "steepness"):
            if name in p and not (np.isfinite(p[name]) and p[name] > 0):
                raise bad(name, "the curve's spread and scale must be positive")
        if self.kind == "table":
            tt, ss = np.asarray(p["times_s"], float), np.asarray(p["shares"], float)
            where = f"{self.key}.{self.table_key}"
            if tt.size == 0 or np.any(np.diff(tt) <= 0) or np.any(tt < 0):
                raise ScenarioError(f"{where}: delays must be >= 0 and strictly increasing")
            if np.any(np.diff(ss) < 0) or ss[0] < 0 or ss[-1] > 1:
                raise ScenarioError(
                    f"{where}: cumulative shares must rise within [0, 1], got {list(ss)}"
                )
        if not self.max_delay_s > 0:
            raise ScenarioError(f"{self.key}.max_delay: must be positive, got {self.max_delay_s}")

    def _raw_cdf(self, t: np.ndarray) -> np.ndarray:
        p, k = self.params, self.kind
        if k == "rayleigh":
            return rayleigh_cdf(t, p["sigma_s"])
        if k == "logistic":
            return logistic_cdf(t, p["midpoint_s"], p["steepness"])
        if k == "lognormal":
            return lognormal_cdf(t, p["mean_s"], p["sd_s"])
        if k == "table":
            return table_cdf(t, p["times_s"], p["shares"])
        if k == "exponential":
            return exponential_cdf(t, p["mean_s"])
        return np.where(np.asarray(t) >= 0, 1.0, 0.0)

    def _raw_ppf(self, u: np.ndarray) -> np.ndarray:
        p, k = self.params, self.kind
        if k == "rayleigh":
            return rayleigh_ppf(u, p["sigma_s"])
        if k == "logistic":
            return logistic_ppf(u, p["midpoint_s"], p["steepness"])
        if k == "lognormal":
            return lognormal_ppf(u, p["mean_s"], p["sd_s"])
        if k == "table":
            return table_ppf(u, p["times_s"], p["shares"])
        if k == "exponential":
            return exponential_ppf(u, p["mean_s"])
        return np.zeros(np.shape(u))

    @property
    def _f_max(self) -> float:
        if not np.isfinite(self.max_delay_s):
            return 1.0
        return float(self._raw_cdf(np.array(self.max_delay_s)))

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        """Share of delays <= *t* (s), truncation included."""
        t = np.asarray(t, dtype=float)
        f = self._f_max
        if f < 1.0:
            if f <= 0.0:
                return np.where(t >= self.max_delay_s, 1.0, 0.0)
            return np.minimum(self._raw_cdf(np.minimum(t, self.max_delay_s)) / f, 1.0)
        return self._raw_cdf(t)

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Delay (s) at share *u* in [0, 1); ``inf`` where the curve never gets there."""
        u = np.asarray(u, dtype=float)
        f = self._f_max
        if f < 1.0:
            if f <= 0.0:
                return np.full(u.shape, self.max_delay_s)
            return np.minimum(self._raw_ppf(u * f), self.max_delay_s)
        return self._raw_ppf(u)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """*n* delays (s) drawn by inverse transform with *rng*."""
        return self.ppf(rng.random(n))


def departure_curve(spec: Any, key: str = "evacuation.departure") -> DelayCurve:
    """The mobilisation curve of a scenario's ``departure`` section (a ``Departure`` model)."""
    k = spec.curve
    if k == "rayleigh":
        params: dict[str, Any] = {"sigma_s": float(spec.sigma)}
    elif k == "logistic":
        params = {"midpoint_s": float(spec.midpoint), "steepness": float(spec.steepness)}
    elif k == "lognormal":
        params = {"mean_s": float(spec.mean), "sd_s": float(spec.sd)}
    else:
        times, shares = zip(*spec.table, strict=True)
        params = {"times_s": list(times), "shares": list(shares)}
    cap = getattr(spec, "max_delay", None)
    return DelayCurve(k, params, float(cap) if cap is not None else np.inf, key)


def reach_curve(spec: Any, key: str = "evacuation.warning") -> DelayCurve:
    """The warning reach curve of a ``warning`` section (a ``WarningSpec`` model)."""
    if spec.reach == "instant":
        return DelayCurve("instant", {}, key=key)
    if spec.reach == "exponential":
        return DelayCurve("exponential", {"mean_s": float(spec.reach_time)}, key=key)
    if not spec.reach_table:
        raise ScenarioError(f"{key}.reach_table: `reach: table` needs [[t, share], ...]")
    times, shares = zip(*spec.reach_table, strict=True)
    params = {"times_s": list(times), "shares": list(shares)}
    return DelayCurve("table", params, key=key, table_key="reach_table")
