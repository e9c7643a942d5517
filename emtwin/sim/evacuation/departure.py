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
- log-normal with the given mean and standard deviation (MATSim evacuation),
  converted by :func:`emtwin.distributions.lognormal_params`;
- an empirical table ``[[t, cumulative share]]``, linear between its points,
  a jump to the first share at the first time; the share above the last one
  never comes (never warned, or never leaves);
- exponential with mean ``m`` (warning reach only), ``F(t) = 1 - exp(-t / m)``;
- instant (warning reach only): every delay is 0.

Any curve may be truncated at ``max_delay`` (s): ``F(t) / F(max_delay)``.

The laws themselves (frozen ``scipy.stats`` distributions, their exact ppf and the
truncation) live in :mod:`emtwin.distributions`; this module validates a scenario's
curve and names its keys in messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emtwin import distributions as dists
from emtwin.errors import ScenarioError

__all__ = ["DelayCurve", "departure_curve", "reach_curve"]

KINDS = ("rayleigh", "logistic", "lognormal", "table", "exponential", "instant")
# scenario key of each parameter, for messages
_KEY_OF = {
    ("rayleigh", "sigma_s"): "sigma", ("logistic", "midpoint_s"): "midpoint",
    ("logistic", "steepness"): "steepness", ("lognormal", "mean_s"): "mean",
    ("lognormal", "sd_s"): "sd", ("exponential", "mean_s"): "reach_time",
}  # fmt: skip


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
    law
        The distribution, from :mod:`emtwin.distributions` (``max_delay`` included).
    """

    kind: str
    params: dict[str, Any]
    max_delay_s: float = np.inf
    key: str = "evacuation.departure"
    table_key: str = "table"
    law: dists.Law | dists.Truncated = field(init=False, repr=False, compare=False)

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
        object.__setattr__(self, "law", self._make_law())

    def _make_law(self) -> dists.Law | dists.Truncated:
        p, k = self.params, self.kind
        if k == "rayleigh":
            law = dists.rayleigh(p["sigma_s"])
        elif k == "logistic":
            law = dists.logistic(p["midpoint_s"], p["steepness"])
        elif k == "lognormal":
            law = dists.lognormal(p["mean_s"], p["sd_s"])
        elif k == "table":
            law = dists.table(p["times_s"], p["shares"])
        elif k == "exponential":
            law = dists.exponential(p["mean_s"])
        else:
            law = dists.fixed(0.0)
        return dists.cap(law, self.max_delay_s)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        """Share of delays <= *t* (s), truncation included."""
        return self.law.cdf(t)

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """Delay (s) at share *u* in [0, 1); ``inf`` where the curve never gets there."""
        return self.law.ppf(u)

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
