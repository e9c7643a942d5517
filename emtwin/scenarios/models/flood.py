"""`hazards: - type: flood`: rain, inflows, boundaries, breaches, gauges."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from emtwin.kernels.hazard_rating import ROAD_CLOSURE_DEPTH_M
from emtwin.scenarios._types import (
    DataPath,
    Line,
    NonNegDuration,
    Point,
    PosDuration,
    Series,
)
from emtwin.scenarios.models._common import _Model

# ---------------------------------------------------------------------------- hazards

Side = Literal["north", "south", "east", "west"]


class LevelBoundary(_Model):
    """A water level series on one side of the DEM, m (tide, surge, river stage)."""

    level: Series
    start_at_rest: bool = Field(
        True,
        description="the water connected to this side below its level at time 0 (the sea "
        "at rest) starts at that level; false: it starts dry and the level edge fills it",
    )


_HYDROGRAPH_POINTS = (
    "a hydrograph needs at least two points [[t, m3/s], ...]: the discharge is 0 outside its "
    "time range (for a constant flow give [[0, q], [end, q]])"
)


class Inflow(_Model):
    """A point (`at`) or line (`along`) source with a hydrograph in m3/s."""

    name: str | None = None
    at: Point | None = None
    along: Line | None = None
    hydrograph: Series

    @model_validator(mode="after")
    def _where(self) -> Inflow:
        if (self.at is None) == (self.along is None):
            raise ValueError("give exactly one of `at` (a point) or `along` (a line)")
        if len(self.hydrograph) < 2:
            raise ValueError(_HYDROGRAPH_POINTS)
        if any(q < 0 for _, q in self.hydrograph):
            raise ValueError("hydrograph discharges must not be negative (m3/s)")
        return self


class ReleaseWhen(_Model):
    """`release_when`: the breach set off by the reservoir's state, checked every coupling step.

    Exactly one of ``level_above`` (the water level in the reservoir passes the
    crest, m) or ``inflow_above`` (the net inflow to the reservoir, m3/s, from
    the rise of its stored volume over each coupling step) held ``for`` a
    duration.
    """

    level_above: float | None = Field(None, description="water level passes this (crest), m")
    inflow_above: Annotated[float, Field(gt=0)] | None = Field(
        None, description="net inflow to the reservoir, m3/s"
    )
    for_: NonNegDuration = Field(0.0, alias="for", description="how long the inflow holds, s")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one(self) -> ReleaseWhen:
        if (self.level_above is None) == (self.inflow_above is None):
            raise ValueError("`release_when` needs exactly one of level_above (m) or "
                             "inflow_above (m3/s, with `for`)")  # fmt: skip
        return self


class Reservoir(_Model):
    """A body of water held behind a dam and released at a time, or by its state."""

    area: DataPath | list[Point] = Field(description="polygon file or a list of [x, y] vertices")
    level: float = Field(description="initial water surface level, m")
    release_at: NonNegDuration = 0.0
    release_when: ReleaseWhen | None = None

    @model_validator(mode="after")
    def _release(self) -> Reservoir:
        if self.release_when is not None and "release_at" in self.model_fields_set:
            raise ValueError("give either `release_at` (a time) or `release_when` (a state)")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave the unused default ``release_at`` out beside ``release_when``, so that the
        dump validates again (a fork's scenario, scenario.yaml)."""
        data = handler(self)
        if self.release_when is not None:
            data.pop("release_at", None)
        return data


class Breach(_Model):
    """A dam breach: a breach hydrograph at a point/line, or a reservoir released at a time."""

    name: str | None = None
    at: Point | None = None
    along: Line | None = None
    hydrograph: Series | None = None
    reservoir: Reservoir | None = None

    @model_validator(mode="after")
    def _kind(self) -> Breach:
        if (self.hydrograph is None) == (self.reservoir is None):
            raise ValueError("give either `hydrograph` (with `at`/`along`) or `reservoir`")
        if self.hydrograph is not None and (self.at is None) == (self.along is None):
            raise ValueError("a breach hydrograph needs exactly one of `at` or `along`")
        if self.hydrograph is not None and len(self.hydrograph) < 2:
            raise ValueError(_HYDROGRAPH_POINTS)
        return self


class Gauge(_Model):
    """A named point where depth, speed and level are recorded; with a `section`, flow too."""

    name: str
    at: Point
    section: Line | None = Field(
        None,
        description="a cross-section line, [[x, y], ...]: the gauge also records the "
        "discharge through it, m3/s, + from the line's right to its left (draw it from "
        "the left bank to the right bank, looking downstream)",
    )

    @model_validator(mode="after")
    def _section_points(self) -> Gauge:
        if self.section is not None and len(self.section) < 2:
            raise ValueError("`section` needs at least two points, [[x, y], [x, y]]")
        return self


class Infiltration(_Model):
    """A constant infiltration loss."""

    rate_mm_h: Annotated[float, Field(ge=0)]


class FloodHazard(_Model):
    """`hazards: - type: flood`: rain, inflows, boundaries, breaches, gauges."""

    type: Literal["flood"] = "flood"
    rain: Series | None = Field(None, description="[[t, mm/h], ...], step-wise")
    inflows: list[Inflow] = Field(default_factory=list)
    breaches: list[Breach] = Field(default_factory=list)
    boundary: dict[Side, Literal["closed", "open"] | LevelBoundary] = Field(default_factory=dict)
    infiltration: Infiltration | None = None
    gauges: list[Gauge] = Field(default_factory=list)
    road_closure_depth: Annotated[float, Field(gt=0)] = Field(ROAD_CLOSURE_DEPTH_M, description="m")
    backend: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["float64", "float32"] = "float64"
    theta: Annotated[float, Field(ge=0, le=1)] = 0.8
    alpha: Annotated[float, Field(gt=0)] = Field(
        0.5, description="Courant factor of the flood step, <= 1/sqrt(2) (2-D stability)"
    )
    coupling: PosDuration = Field(60.0, description="coupling step with the other components, s")
    time_stepping: Literal["local", "global"] = Field(
        "local",
        description="flood step: 'local' per tile (the default), or one 'global' step, the "
        "reference (docs/flood.md)",
    )
    initial_depth: Annotated[float, Field(ge=0)] = Field(0.0, description="m, over the domain")

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if v > 1.0 / math.sqrt(2.0):
            raise ValueError(
                f"alpha must be <= 0.7071 (1/sqrt(2), the 2-D stability limit of the flood "
                f"scheme; 0.5 is the tested default), got {v!r}"
            )
        return v

    @field_validator("rain")
    @classmethod
    def _rain(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v and any(r < 0 for _, r in v):
            raise ValueError("rain rates must not be negative (mm/h)")
        return v

    @model_validator(mode="after")
    def _names(self) -> FloodHazard:
        names = [g.name for g in self.gauges]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"gauge names must be unique, repeated: {', '.join(dup)}")
        return self




