"""Distributions of durations written in a scenario (on-scene times, ...)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    model_validator,
)

from emtwin.scenarios._types import (
    NonNegDuration,
    PosDuration,
)
from emtwin.scenarios.models._common import _Model

# ---------------------------------------------------------------------------- distributions


class Distribution(_Model):
    """A random duration: exactly one of the keys, values as durations (s).

    ``{exponential: 40min}`` (mean), ``{lognormal: {mean: 30min, sd: 10min}}``,
    ``{normal: {mean, sd}}`` (truncated at 0), ``{uniform: [a, b]}``,
    ``{triangular: [low, mode, high]}``, ``{fixed: 20min}``.
    """

    exponential: PosDuration | None = None
    lognormal: dict[Literal["mean", "sd"], PosDuration] | None = None
    normal: dict[Literal["mean", "sd"], NonNegDuration] | None = None
    uniform: list[NonNegDuration] | None = None
    triangular: list[NonNegDuration] | None = None
    fixed: NonNegDuration | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, v: Any) -> Any:
        if isinstance(v, int | float | str) and not isinstance(v, bool):
            return {"fixed": v}
        return v

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of exponential, lognormal, normal, uniform, triangular, fixed"
            )
        for key in ("lognormal", "normal"):
            d = getattr(self, key)
            if d is not None and set(d) != {"mean", "sd"}:
                raise ValueError(f"{key} needs `mean` and `sd`")
        u = self.uniform
        if u is not None and (len(u) != 2 or u[0] > u[1]):
            raise ValueError("uniform needs [low, high] with low <= high")
        if self.triangular is not None:
            t = self.triangular
            if len(t) != 3 or not (t[0] <= t[1] <= t[2]) or t[0] == t[2]:
                raise ValueError("triangular needs [low, mode, high] with low <= mode <= high")
        return self

    @property
    def kind(self) -> str:
        """The distribution's name."""
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def mean_s(self) -> float:
        """Mean of the distribution, s."""
        k = self.kind
        v = getattr(self, k)
        if k in ("exponential", "fixed"):
            return float(v)
        if k in ("lognormal", "normal"):
            return float(v["mean"])
        if k == "uniform":
            return float(sum(v) / 2)
        return float(sum(v) / 3)


