"""The ensemble's members: their uncertain values as arrays, and one assimilation step.

Members are drawn from the scenario's ``uncertain:`` section with
:func:`emtwin.batch.uncertain.sample` (the prior): one ``{path: value}``
per member. Numeric parameters (``uniform``, ``normal``, ``lognormal``,
``triangular``, and every ``scale:``) become arrays the filter can weight,
quantile and jitter; ``choice`` parameters are carried along (copied with
their member on resampling) and summarised as weighted shares.

:func:`assimilate` is what a forecast runner calls once the members have run
to "now": observation files + each member's gauge table + the members' values
-> weights, ESS, resampled members (their new draws) and the posterior.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emtwin.batch.uncertain import Parameter
from emtwin.forecast.assimilation import (
    DEFAULT_FLOW_ERROR_REL,
    DEFAULT_SIGMA_M,
    ParticleFilterResult,
    flow_sigma,
    particle_filter,
)
from emtwin.forecast.observations import GaugeObservations, member_values_at, observation_table
from emtwin.forecast.skill import normalise_weights

__all__ = [
    "numeric_parameters",
    "parameter_arrays",
    "parameter_bounds",
    "choice_shares",
    "Assimilation",
    "assimilate",
    "resampled_draws",
]

log = logging.getLogger(__name__)


def numeric_parameters(params: Sequence[Parameter]) -> list[Parameter]:
    """The parameters whose values are numbers the filter can weight and jitter."""
    return [p for p in params if p.mode == "scale" or p.dist != "choice"]


def parameter_arrays(
    params: Sequence[Parameter], draws: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Each numeric parameter's values over the members, shape (n_members,), by path.

    Values are SI (s, 1/s, m ...) for ``set`` parameters, multipliers for ``scale``.
    """
    return {
        p.path: np.array([float(d[p.path]) for d in draws], dtype=float)
        for p in numeric_parameters(params)
    }


def parameter_bounds(params: Sequence[Parameter]) -> dict[str, tuple[float, float]]:
    """The support of each numeric parameter's prior, (low, high), for jittered values."""
    out: dict[str, tuple[float, float]] = {}
    for p in numeric_parameters(params):
        a = p.args
        if p.dist in ("uniform", "triangular"):
            out[p.path] = (a["low"], a["high"])
        elif p.dist == "normal":
            out[p.path] = (a.get("min", -np.inf), a.get("max", np.inf))
        elif p.dist == "lognormal":
            out[p.path] = (0.0, np.inf)
        elif p.dist == "choice":  # a scale picked from a list of factors
            vals = [float(v) for v in p.choices]
            out[p.path] = (min(vals), max(vals))
    return out


def choice_shares(
    params: Sequence[Parameter],
    draws: Sequence[Mapping[str, Any]],
    weights: np.ndarray | Sequence[float] | None = None,
) -> dict[str, dict[str, float]]:
    """For each ``choice`` parameter (not a scale), the weighted share of each value."""
    w = normalise_weights(weights, len(draws))
    out: dict[str, dict[str, float]] = {}
    for p in params:
        if p in numeric_parameters(params):
            continue
        shares: dict[str, float] = {str(c): 0.0 for c in p.choices}
        for wi, d in zip(w, draws, strict=True):
            shares[str(d[p.path])] = shares.get(str(d[p.path]), 0.0) + float(wi)
        out[p.path] = shares
    return out


@dataclass(frozen=True)
class Assimilation:
    """One assimilation step over the members.

    Attributes
    ----------
    observations
        The readings used (``source, quantity, gauge, time_s, value``).
    predicted
        Each member's value at each reading, shape (n_members, n_obs).
    result
        Weights, ESS, resampled indices, posterior (see ParticleFilterResult).
    dropped
        Readings left out because some member had no value there (before its
        first or after its last gauge record).
    """

    observations: pd.DataFrame
    predicted: np.ndarray
    result: ParticleFilterResult
    dropped: int = 0

    def summary_entries(self) -> list[dict[str, Any]]:
        """One entry per observation file, for :func:`forecast_summary`'s *observations*."""
        out = []
        for (src, q), rows in self.observations.groupby(["source", "quantity"], sort=False):
            out.append({"file": str(src), "quantity": str(q),
                        "gauges": sorted(rows["gauge"].unique().tolist()),
                        "readings": int(len(rows)),
                        "last_time_s": float(rows["time_s"].max())})  # fmt: skip
        return out


def assimilate(
    observations: Sequence[GaugeObservations],
    member_gauges: Sequence[pd.DataFrame],
    values: Mapping[str, np.ndarray],
    *,
    at_s: float,
    rng: np.random.Generator,
    sigma: float = DEFAULT_SIGMA_M,
    min_ess: float | None = None,
    jitter_discount: float | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    flow_error_rel: float = DEFAULT_FLOW_ERROR_REL,
) -> Assimilation:
    """Weigh and resample the members on every reading at or before *at_s*.

    Parameters
    ----------
    observations
        From :func:`~emtwin.forecast.observations.read_gauge_observations`.
    member_gauges
        Each member's gauge table up to *at_s* (``time_s, gauge, depth_m,
        level_m`` and, for gauges with a section, ``flow_m3_s``, as the flood
        component records it), in member order.
    values
        From :func:`parameter_arrays`: each numeric parameter's member values.
    at_s
        "Now", s since t = 0.
    rng
        Drives the resampling and the jitter (same generator => same members).
    sigma, min_ess, jitter_discount, bounds
        As for :func:`~emtwin.forecast.assimilation.particle_filter`; *sigma*
        (m) is the error of level and depth readings.
    flow_error_rel
        The relative error of discharge readings (see
        :func:`~emtwin.forecast.assimilation.flow_sigma`).

    Raises
    ------
    ValueError
        When no reading at or before *at_s* can be compared with every member.
    """
    table = observation_table(observations, at_s=at_s)
    if not len(member_gauges):
        raise ValueError("assimilate: no members")
    predicted = np.stack([member_values_at(table, g) for g in member_gauges])
    ok = np.isfinite(predicted).all(axis=0)
    dropped = int((~ok).sum())
    if dropped:
        log.warning("%d reading(s) left out: some member has no gauge value there", dropped)
    if not ok.any():
        raise ValueError(f"assimilate: no reading at or before {at_s:g} s matches every "
                         "member's gauge records")  # fmt: skip
    table = table[ok].reset_index(drop=True)
    predicted = predicted[:, ok]
    y = table["value"].to_numpy(dtype=float)
    flow = (table["quantity"] == "flow_m3_s").to_numpy()
    sd = np.full(y.shape, float(sigma))
    if flow.any():
        sd[flow] = flow_sigma(y[flow], table["gauge"].to_numpy()[flow], flow_error_rel)
    result = particle_filter(
        predicted, y, rng=rng, sigma=sd, params=values,
        min_ess=min_ess, jitter_discount=jitter_discount, bounds=bounds,
    )  # fmt: skip
    return Assimilation(table, predicted, result, dropped)


def resampled_draws(
    draws: Sequence[Mapping[str, Any]], result: ParticleFilterResult
) -> list[dict[str, Any]]:
    """The new members' ``{path: value}``: the resampled (jittered) numbers, choices copied.

    Feed each to :func:`emtwin.batch.uncertain.edits` to write it into the scenario.
    """
    out = []
    for k, i in enumerate(result.indices):
        d = dict(draws[int(i)])
        for path, arr in result.resampled_params.items():
            d[path] = float(arr[k])
        out.append(d)
    return out
