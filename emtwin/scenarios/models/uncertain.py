"""What a batch varies (`uncertain:`) and the response index weights."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from emtwin.scenarios._types import (
    parse_duration,
)
from emtwin.scenarios.models._common import _Model

# ---------------------------------------------------------------------------- batch runs


def _si_value(v: Any) -> float:
    """A distribution parameter in SI: a number, a duration ("20min", s) or a rate ("4/h", 1/s)."""
    from emtwin.scenarios._types import parse_rate

    if isinstance(v, str) and "/" in v:
        return parse_rate(v)
    if isinstance(v, str):
        return parse_duration(v)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"expected a number, a duration (20min) or a rate (4/h), got {v!r}")
    return float(v)


class UncertainChoice(_Model):
    """`choice: {values: [...], weights: [...]}`: one of the values, with weights."""

    values: list[Any] = Field(min_length=1)
    weights: list[Annotated[float, Field(ge=0)]] | None = None


class UncertainValue(_Model):
    """The distribution of one uncertain value (docs/batch.md); values as written.

    Exactly one of ``uniform: [low, high]``, ``normal: {mean, sd, min?, max?}``,
    ``lognormal: {mean, sd}`` (of the value itself), ``triangular: [low, mode, high]``,
    ``choice: [a, b, ...]`` (or ``{values, weights}``), or ``scale: DIST`` (multiply
    the key's value, or every value of a series, by a draw of DIST).
    """

    uniform: list[Any] | None = None
    normal: dict[Literal["mean", "sd", "min", "max"], Any] | None = None
    lognormal: dict[Literal["mean", "sd"], Any] | None = None
    triangular: list[Any] | None = None
    choice: list[Any] | UncertainChoice | None = None
    scale: UncertainValue | None = None

    @model_validator(mode="after")
    def _check(self) -> UncertainValue:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform, normal, lognormal, triangular, "
                             f"choice, scale (got {', '.join(given) or 'none'})")  # fmt: skip
        kind, v = given[0], getattr(self, given[0])
        if kind == "scale":
            if v.scale is not None:
                raise ValueError("a scale inside a scale is not allowed")
            return self
        if kind == "choice":
            if not v:
                raise ValueError("choice needs at least one value")
            c = v if isinstance(v, UncertainChoice) else UncertainChoice(values=v)
            if c.weights is not None and (len(c.weights) != len(c.values) or sum(c.weights) <= 0):
                raise ValueError("choice weights: one weight >= 0 per value, adding up to > 0")
            return self
        x = ({k: _si_value(p) for k, p in v.items()} if isinstance(v, dict)
             else [_si_value(p) for p in v])  # fmt: skip
        if kind == "uniform" and not (len(x) == 2 and x[0] < x[1]):
            raise ValueError(f"uniform needs [low, high] with low < high, got {v!r}")
        if kind == "triangular" and not (len(x) == 3 and x[0] <= x[1] <= x[2] and x[0] < x[2]):
            raise ValueError(f"triangular needs [low, mode, high] with low <= mode <= high "
                             f"and low < high, got {v!r}")  # fmt: skip
        if kind in ("normal", "lognormal"):
            if "mean" not in x or "sd" not in x or x["sd"] <= 0:
                raise ValueError(f"{kind} needs `mean` and `sd` with sd > 0, got {v!r}")
            if kind == "lognormal" and x["mean"] <= 0:
                raise ValueError(f"lognormal needs mean > 0, got {v!r}")
            if x.get("min", -math.inf) >= x.get("max", math.inf):
                raise ValueError(f"normal needs min < max, got {v!r}")
        return self


class Uncertain(_Model):
    """`uncertain`: what varies between the runs of a batch, and how it is sampled.

    ``parameters`` maps a key path of the scenario (``hazards.0.rain``,
    ``evacuation.departure.sigma``) to its distribution; ``method`` is
    ``monte_carlo`` (independent draws) or ``lhs`` (Latin hypercube).
    """

    method: Literal["monte_carlo", "lhs"] = "monte_carlo"
    parameters: dict[str, UncertainValue] = Field(default_factory=dict)


IndexPart = Literal["safe", "exposed", "response_p1", "response_p2", "unserved", "damage",
                    "life_loss"]


class ResponseIndex(_Model):
    """`response_index`: weights and [best, worst] targets of the 0-100 response index.

    Parts not given keep their defaults (docs/batch.md); a weight of 0 drops a part.
    Targets of response times are durations.
    """

    weights: dict[IndexPart, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    targets: dict[IndexPart, list[Any]] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for k, pair in v.items():
            if len(pair) != 2 or _si_value(pair[0]) == _si_value(pair[1]):
                raise ValueError(f"{k}: expected [best, worst], two different values, got {pair}")
        return v


