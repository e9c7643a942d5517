"""The `evacuation:` section: warnings, departures, zones, exits, households."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from emtwin.scenarios._types import (
    DataPath,
    NonNegDuration,
    Point,
    PosDuration,
    Series,
    parse_duration,
)
from emtwin.scenarios.models._common import _Model

# ---------------------------------------------------------------------------- evacuation


class WarningSpec(_Model):
    """When the evacuation order is issued and how it spreads."""

    at: NonNegDuration = 0.0
    reach: Literal["instant", "exponential", "table"] = Field(
        "instant", description="how the warning spreads through the population"
    )
    reach_time: PosDuration = Field(
        1800.0, description="mean time to receive the warning for reach: exponential, s"
    )
    reach_table: Series | None = Field(None, description="[[t after issue, share warned]]")
    never: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="share of households that never get the warning"
    )


class Departure(_Model):
    """The mobilisation curve: delay from warning to departure."""

    curve: Literal["rayleigh", "logistic", "lognormal", "table"] = "rayleigh"
    sigma: PosDuration | None = Field(None, description="Rayleigh scale, s")
    midpoint: PosDuration | None = Field(None, description="logistic: time of half departed, s")
    steepness: Annotated[float, Field(gt=0)] | None = Field(None, description="logistic a, 1/s")
    mean: PosDuration | None = Field(None, description="lognormal mean, s")
    sd: PosDuration | None = Field(None, description="lognormal standard deviation, s")
    table: Series | None = Field(None, description="[[delay, cumulative share]]")
    max_delay: PosDuration | None = Field(
        None, description="truncate the curve at this delay (nobody leaves later), s"
    )

    @model_validator(mode="before")
    @classmethod
    def _neg_spread(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key in ("sigma", "sd"):
                if key in v and parse_duration(v[key]) <= 0:
                    raise ValueError(
                        f"departure {key} (the spread) must be positive, got {v[key]!r}"
                    )
        return v

    @model_validator(mode="after")
    def _params(self) -> Departure:
        need = {
            "rayleigh": ["sigma"],
            "logistic": ["midpoint", "steepness"],
            "lognormal": ["mean", "sd"],
            "table": ["table"],
        }[self.curve]
        missing = [k for k in need if getattr(self, k) is None]
        if self.curve == "rayleigh" and missing:
            self.sigma = 900.0
            missing = []
        if missing:
            raise ValueError(f"the {self.curve} curve needs {', '.join(missing)}")
        if self.curve == "table":
            shares = [s for _, s in self.table or []]
            if any(b < a for a, b in zip(shares, shares[1:], strict=False)) or not (
                shares[0] >= 0 and shares[-1] <= 1
            ):
                raise ValueError("a departure table needs cumulative shares rising within [0, 1]")
        return self


class Zone(_Model):
    """A phased-evacuation zone: its area and its own warning."""

    name: str | None = None
    area: DataPath | list[Point]
    warning: WarningSpec | None = None
    shelter: str | None = Field(None, description="shelter assigned to this zone by the plan")


class ContraflowRoad(_Model):
    """A road reversed for the evacuation."""

    road: str
    at: NonNegDuration = 0.0


class Exit(_Model):
    """A point where people leave the area; ``[x, y]`` alone is an unnamed exit."""

    name: str | None = Field(None, description="default exit_1, exit_2, ... in list order")
    at: Point

    @model_validator(mode="before")
    @classmethod
    def _point(cls, v: Any) -> Any:
        return {"at": v} if isinstance(v, list | tuple) else v


class Evacuation(_Model):
    """`evacuation`: warnings, departures, zones, shelters, contraflow."""

    warning: WarningSpec = Field(default_factory=WarningSpec)
    departure: Departure = Field(default_factory=lambda: Departure(curve="rayleigh", sigma=900))
    zones: list[Zone] = Field(default_factory=list)
    shelter_choice: Literal["nearest_with_space", "assigned"] = "nearest_with_space"
    contraflow: list[ContraflowRoad] = Field(default_factory=list)
    on_foot_share: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="share of households that walk"
    )
    walk_speed: Annotated[float, Field(gt=0)] = Field(1.2, description="m/s")
    exits: list[Exit] = Field(default_factory=list, description="exit points out of the area")
    households: DataPath | None = Field(
        None, description="CSV or Parquet table replaying each household's departure and "
        "destination (docs/evacuation.md#households-table)",
    )  # fmt: skip
    reroute_every: PosDuration = 300.0
    stuck_time: PosDuration = 300.0
    exposure_depth: Annotated[float, Field(gt=0)] = Field(
        0.3, description="depth at home above which people count as exposed, m"
    )

    @field_validator("contraflow", mode="before")
    @classmethod
    def _cf(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"road": x} if isinstance(x, str | int) else x for x in v]
        return v

    @model_validator(mode="after")
    def _zone_names(self) -> Evacuation:
        for i, z in enumerate(self.zones):
            if z.name is None:
                z.name = (
                    z.area.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                    if isinstance(z.area, str)
                    else f"zone_{i + 1}"
                )
        for i, e in enumerate(self.exits):
            e.name = e.name if e.name is not None else f"exit_{i + 1}"
        return self


