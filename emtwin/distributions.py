"""Probability distributions of the scenario format, built on frozen ``scipy.stats`` laws.

One function per family turns the scenario's parameters (in SI: s, 1/s, or plain
numbers) into a :class:`Law`: the frozen ``scipy.stats`` distribution that defines it
(``law.frozen``: cdf, ppf, mean, moments) together with the two operations the
simulation needs, ``ppf(u)`` (inverse transform of uniform numbers) and
``draw(rng, n)``. Departures and warning reach (``emtwin.sim.evacuation.departure``),
call durations (``emtwin.sim.components.incidents``) and the batch's ``uncertain:``
values (``emtwin.batch.uncertain``) all take their laws from here.

Families (parameters as written in a scenario):

===============  ==============================  =====================================
family           scipy.stats law                  parameters
===============  ==============================  =====================================
``exponential``  ``expon(scale=mean)``            mean
``lognormal``    ``lognorm(s=sigma, scale=e^mu)`` mean and sd *of the value itself*
``normal``       ``norm`` / ``truncnorm``         mean, sd, optional low / high
``uniform``      ``uniform``                      low, high
``triangular``   ``triang``                       low, mode, high
``rayleigh``     ``rayleigh(scale=sigma)``        sigma
``logistic``     ``logistic`` truncated at 0      midpoint H, steepness a (1/s)
``table``        ``rv_histogram``                 [[t, cumulative share], ...]
``fixed``        a point mass (``rv_discrete``)   value
===============  ==============================  =====================================

plus :func:`truncate` (any law restricted to [low, high], renormalised) and
:func:`cap` (the departure curve's ``max_delay``).

Exact arithmetic and stream-stable sampling
-------------------------------------------
A scenario and seed must give the same numbers as before this module existed, bit
for bit. Two rules keep them:

- ``ppf``: where scipy's own ``ppf`` rounds differently from the formula the engine
  has always used (``expon``, ``rayleigh`` and ``lognorm`` go through
  ``scipy.special.log1p`` / ``exp(s ndtri(q)) scale`` and differ in the last bit),
  :meth:`Law.ppf` evaluates the documented closed form below in numpy; it is the
  same function as ``law.frozen.ppf`` up to round-off (tests check both). The same
  holds for ``triangular`` (the closed form the batch has always used). ``normal`` (``norm``
  or ``truncnorm``) and ``uniform`` use scipy's ppf as it is.
- ``draw``: ``exponential``, ``lognormal``, ``normal``, ``uniform``, ``triangular``
  and ``fixed`` sample through the ``numpy.random.Generator`` method of the same
  distribution, with the parameters kept on the law (``rng.lognormal(mu, sigma)``
  and so on), so a seed keeps its draws; a truncated ``normal`` redraws the values
  outside [low, high] (the same law as ``truncnorm``). The other families draw by
  inverse transform, ``ppf(rng.random(n))``.

Closed forms (references.md section 4): Rayleigh ``F = 1 - exp(-t^2 / (2 sigma^2))``,
``ppf = sigma sqrt(-2 ln(1 - u))``; exponential ``ppf = -mean ln(1 - u)``; log-normal
``ppf = exp(mu + sigma ndtri(u))`` with ``sigma^2 = ln(1 + sd^2 / mean^2)``,
``mu = ln(mean) - sigma^2 / 2`` (:func:`lognormal_params`, the one place this
conversion is written); logistic ``P = 1 / (1 + exp(-a (t - H)))``, ``ppf = H +
logit(p) / a``; a table is linear between its points, jumps to its first share at
its first time, and the share above its last one never comes (``ppf = inf``).
Truncation to [lo, hi]: ``F_T(t) = (F(t) - F(lo)) / (F(hi) - F(lo))``,
``ppf_T(u) = ppf(F(lo) + u (F(hi) - F(lo)))``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit, logit, ndtr, ndtri

__all__ = [
    "Law",
    "Truncated",
    "lognormal_params",
    "exponential",
    "lognormal",
    "normal",
    "uniform",
    "triangular",
    "rayleigh",
    "logistic",
    "table",
    "fixed",
    "truncate",
    "cap",
]

Array = np.ndarray


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log of a log-normal value of mean *mean* and sd *sd* (> 0).

    ``sigma^2 = ln(1 + sd^2 / mean^2)``, ``mu = ln(mean) - sigma^2 / 2``; the value's
    own units (s, or a plain multiplier).
    """
    s2 = np.log1p((sd / mean) ** 2)
    return float(np.log(mean) - s2 / 2.0), float(np.sqrt(s2))


# ---------------------------------------------------------------------------- the law


@dataclass(frozen=True, eq=False)
class Law:
    """A distribution: its frozen scipy law and the engine's ppf and draw.

    Attributes
    ----------
    family
        ``exponential``, ``lognormal``, ``normal``, ``uniform``, ``triangular``,
        ``rayleigh``, ``logistic_raw`` (untruncated; :func:`logistic` truncates it),
        ``table`` or ``fixed``.
    params
        The parameters the engine computes with (for ``lognormal``: ``mu`` and
        ``sigma`` of the log as well as ``mean`` and ``sd``).
    make
        Builds the frozen ``scipy.stats`` distribution (a picklable ``partial``);
        called once, on first use of :attr:`frozen` (building one costs about a
        millisecond, and drawing never needs it).
    """

    family: str
    params: Mapping[str, Any]
    make: Callable[[], Any] = field(repr=False)

    @cached_property
    def frozen(self) -> Any:
        """The frozen ``scipy.stats`` distribution (for a table, see :func:`table`)."""
        return self.make()

    def cdf(self, x: Array | float) -> Array:
        """Share of values <= *x*."""
        x = np.asarray(x, dtype=float)
        p, f = self.params, self.family
        if f == "exponential":
            return -np.expm1(-np.maximum(x, 0.0) / p["mean"])
        if f == "rayleigh":
            t = np.maximum(x, 0.0)
            return -np.expm1(-(t * t) / (2.0 * p["sigma"] * p["sigma"]))
        if f == "lognormal":
            with np.errstate(divide="ignore"):
                return ndtr((np.log(np.maximum(x, 0.0)) - p["mu"]) / p["sigma"])
        if f == "logistic_raw":
            return expit(p["steepness"] * (x - p["midpoint"]))
        if f == "table":
            tt, ss = p["times"], p["shares"]
            return np.where(x < tt[0], 0.0, np.interp(x, tt, ss))
        if f == "fixed":
            return np.where(x >= p["value"], 1.0, 0.0)
        return np.asarray(self.frozen.cdf(x), dtype=float)

    def ppf(self, u: Array | float) -> Array:
        """Value at cumulative share *u* in [0, 1) (inverse transform); see the module notes."""
        u = np.asarray(u, dtype=float)
        p, f = self.params, self.family
        if f == "exponential":
            return -p["mean"] * np.log1p(-u)
        if f == "rayleigh":
            return p["sigma"] * np.sqrt(-2.0 * np.log1p(-u))
        if f == "lognormal":
            return np.exp(p["mu"] + p["sigma"] * ndtri(u))
        if f == "logistic_raw":
            return p["midpoint"] + logit(u) / p["steepness"]
        if f == "table":
            return _table_ppf(u, p["times"], p["shares"])
        if f == "triangular":
            return _triangular_ppf(u, p["low"], p["mode"], p["high"])
        if f == "fixed":
            return np.full(u.shape, p["value"])
        return np.asarray(self.frozen.ppf(u), dtype=float)

    def mean(self) -> float:
        """The law's mean (scipy's)."""
        if self.family == "table":
            return _table_mean(self.params["times"], self.params["shares"])
        return float(self.frozen.mean())

    def draw(self, rng: np.random.Generator, n: int) -> Array:
        """*n* values from *rng* (stream-stable sampling; see the module notes)."""
        p, f = self.params, self.family
        if f == "exponential":
            return rng.exponential(p["mean"], n)
        if f == "lognormal":
            return rng.lognormal(p["mu"], p["sigma"], n)
        if f == "normal":
            m, s, lo, hi = p["mean"], p["sd"], p["low"], p["high"]
            out = rng.normal(m, s, n)
            bad = (out < lo) | (out > hi)
            while bad.any():  # redraw outside [low, high]: the truncated normal
                out[bad] = rng.normal(m, s, int(bad.sum()))
                bad = (out < lo) | (out > hi)
            return out
        if f == "uniform":
            return rng.uniform(p["low"], p["high"], n)
        if f == "triangular":
            return rng.triangular(p["low"], p["mode"], p["high"], n)
        if f == "fixed":
            return np.full(n, p["value"])
        return self.ppf(rng.random(n))


@dataclass(frozen=True, eq=False)
class Truncated:
    """*base* restricted to [*low*, *high*] and renormalised (the mass there must be > 0).

    ``cdf``, ``ppf``, ``mean`` and ``draw`` (by inverse transform) as for :class:`Law`;
    ``f_low`` and ``f_high`` are the base's cdf at the two ends (``f_low = 0`` exactly
    when ``low = -inf``).
    """

    base: Law | Truncated
    low: float
    high: float
    f_low: float
    f_high: float

    @property
    def family(self) -> str:
        """``truncated``."""
        return "truncated"

    def cdf(self, x: Array | float) -> Array:
        """Share of values <= *x*."""
        x = np.clip(np.asarray(x, dtype=float), self.low, self.high)
        out = (self.base.cdf(x) - self.f_low) / (self.f_high - self.f_low)
        return np.clip(out, 0.0, 1.0)

    def ppf(self, u: Array | float) -> Array:
        """Value at cumulative share *u* in [0, 1)."""
        u = np.asarray(u, dtype=float)
        q = self.f_low + u * (self.f_high - self.f_low)
        return np.clip(self.base.ppf(q), self.low, self.high)

    def mean(self) -> float:
        """The mean of the truncated law (by quadrature of its ppf)."""
        from scipy.integrate import quad

        return float(quad(lambda u: float(self.ppf(u)), 0.0, 1.0, limit=200)[0])

    def draw(self, rng: np.random.Generator, n: int) -> Array:
        """*n* values by inverse transform, ``ppf(rng.random(n))``."""
        return self.ppf(rng.random(n))


def truncate(law: Law | Truncated, low: float = -np.inf, high: float = np.inf) -> Truncated:
    """*law* restricted to [*low*, *high*]; ValueError when the law has no mass there."""
    f_low = 0.0 if low == -np.inf else float(law.cdf(np.array(low)))
    f_high = float(law.cdf(np.array(high)))
    if not f_high > f_low:
        raise ValueError(f"no probability between {low} and {high} to truncate to")
    return Truncated(law, float(low), float(high), f_low, f_high)


def cap(law: Law | Truncated, max_value: float) -> Law | Truncated:
    """*law* truncated at *max_value* the way a departure curve's ``max_delay`` is.

    ``inf``, or a cap above all of the law's mass: the law itself. A cap below all
    of it: every value is *max_value* (``fixed``). Otherwise ``truncate(law,
    high=max_value)``.
    """
    if not np.isfinite(max_value):
        return law
    f = float(law.cdf(np.array(max_value)))
    if f >= 1.0:
        return law
    if f <= 0.0:
        return fixed(max_value)
    return Truncated(law, -np.inf, float(max_value), 0.0, f)


# ---------------------------------------------------------------------------- families


def exponential(mean: float) -> Law:
    """Exponential of mean *mean* (> 0): ``expon(scale=mean)``."""
    return Law("exponential", {"mean": float(mean)}, partial(stats.expon, scale=float(mean)))


def lognormal(mean: float, sd: float) -> Law:
    """Log-normal whose value has mean *mean* and sd *sd* (both > 0): ``lognorm``."""
    mu, sigma = lognormal_params(float(mean), float(sd))
    return Law("lognormal", {"mean": float(mean), "sd": float(sd), "mu": mu, "sigma": sigma},
               partial(stats.lognorm, s=sigma, scale=np.exp(mu)))  # fmt: skip


def normal(mean: float, sd: float, low: float | None = None, high: float | None = None) -> Law:
    """Normal of mean *mean* and sd *sd* (>= 0), truncated to [*low*, *high*] when given.

    ``norm``, or ``truncnorm`` when truncated; sd 0 is the point mass at *mean*.
    """
    m, s = float(mean), float(sd)
    lo = -np.inf if low is None else float(low)
    hi = np.inf if high is None else float(high)
    if s == 0:
        return fixed(m)

    return Law(
        "normal", {"mean": m, "sd": s, "low": lo, "high": hi}, partial(_normal, m, s, lo, hi)
    )


def uniform(low: float, high: float) -> Law:
    """Uniform on [*low*, *high*]: ``uniform(loc=low, scale=high - low)``."""
    lo, hi = float(low), float(high)
    return Law("uniform", {"low": lo, "high": hi}, partial(stats.uniform, lo, hi - lo))


def triangular(low: float, mode: float, high: float) -> Law:
    """Triangular on [*low*, *high*] peaking at *mode*: ``triang``."""
    lo, mo, hi = float(low), float(mode), float(high)
    c = (mo - lo) / (hi - lo)
    return Law("triangular", {"low": lo, "mode": mo, "high": hi},
               partial(stats.triang, c, loc=lo, scale=hi - lo))  # fmt: skip


def rayleigh(sigma: float) -> Law:
    """Rayleigh of scale *sigma* (> 0): ``rayleigh(scale=sigma)``."""
    return Law("rayleigh", {"sigma": float(sigma)}, partial(stats.rayleigh, scale=float(sigma)))


def logistic(midpoint: float, steepness: float) -> Truncated:
    """Logistic of midpoint *midpoint* and steepness *steepness* (1/s), truncated to >= 0.

    ``logistic(loc=midpoint, scale=1 / steepness)`` restricted to [0, inf).
    """
    h, a = float(midpoint), float(steepness)
    raw = Law("logistic_raw", {"midpoint": h, "steepness": a}, partial(stats.logistic, h, 1.0 / a))
    return truncate(raw, 0.0, np.inf)


def table(times: Sequence[float], shares: Sequence[float]) -> Law:
    """An empirical cumulative table: *times* strictly increasing, *shares* rising in [0, 1].

    The cdf is 0 before the first time, jumps to the first share there, is linear
    between points and stays at the last share after the last time (the rest never
    comes: ``ppf = inf``). ``frozen`` is the ``rv_histogram`` of the continuous part
    (the mass between the first and the last share), or the point mass at the first
    time when there is none.
    """
    tt, ss = np.asarray(times, dtype=float), np.asarray(shares, dtype=float)

    return Law("table", {"times": tt, "shares": ss}, partial(_histogram, tt, ss))


def fixed(value: float) -> Law:
    """The point mass at *value*: ``rv_discrete(values=([value], [1]))``."""
    v = float(value)
    return Law("fixed", {"value": v}, partial(_point_mass, v))


# builders of the frozen laws (module-level, so that a Law pickles, e.g. in a checkpoint)


def _normal(m: float, s: float, lo: float, hi: float) -> Any:
    if lo == -np.inf and hi == np.inf:
        return stats.norm(m, s)
    return stats.truncnorm((lo - m) / s, (hi - m) / s, loc=m, scale=s)


def _histogram(tt: Array, ss: Array) -> Any:
    mass = np.diff(ss)
    if tt.size > 1 and mass.sum() > 0:
        return stats.rv_histogram((mass, tt), density=False)
    return _point_mass(float(tt[0]))


def _point_mass(v: float) -> Any:
    return stats.rv_discrete(values=([v], [1.0]))


def _table_ppf(u: Array, tt: Array, ss: Array) -> Array:
    j = np.searchsorted(ss, u, side="left")  # first point with share >= u
    out = np.full(u.shape, np.inf)
    out[j == 0] = tt[0]
    mid = (j > 0) & (j < ss.size)
    jm = j[mid]
    frac = (u[mid] - ss[jm - 1]) / (ss[jm] - ss[jm - 1])
    out[mid] = tt[jm - 1] + frac * (tt[jm] - tt[jm - 1])
    return out


def _triangular_ppf(u: Array, lo: float, mo: float, hi: float) -> Array:
    """``lo + sqrt(u (hi - lo) (mo - lo))`` below the mode's share, else from the top."""
    c = (mo - lo) / (hi - lo)
    with np.errstate(invalid="ignore"):
        left = lo + np.sqrt(u * (hi - lo) * (mo - lo))
        right = hi - np.sqrt((1 - u) * (hi - lo) * (hi - mo))
    return np.where(u < c, left, right)


def _table_mean(tt: Array, ss: Array) -> float:
    """Mean of a table's law (``inf`` when a share never comes)."""
    if ss[-1] < 1.0:
        return float("inf")
    mids = (tt[1:] + tt[:-1]) / 2.0
    return float(ss[0] * tt[0] + np.sum(np.diff(ss) * mids))
