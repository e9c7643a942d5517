"""The `response:` section: unit types, resources, incidents."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from emtwin.scenarios._types import (
    NonNegDuration,
    Rate,
)
from emtwin.scenarios.models._common import _Model
from emtwin.scenarios.models.distribution import (
    Distribution,
)

# ---------------------------------------------------------------------------- response


class UnitType(_Model):
    """How a type of unit travels."""

    mode: Literal["road", "water", "high_clearance"] = "road"
    speed: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description="m/s: a water unit's speed on water (default 3); a high-clearance "
        "unit's speed in water deeper than the road closure depth (default 30 % of the road's)",
    )
    max_depth: Annotated[float, Field(gt=0)] = Field(
        0.6, description="deepest water a high-clearance unit drives through, m"
    )
    min_depth: Annotated[float, Field(gt=0)] = Field(
        0.3, description="shallowest water a water unit can use, m"
    )
    launch_time: NonNegDuration = Field(
        0.0, description="time to put a water unit in the water at its launch point, s"
    )

    @model_validator(mode="after")
    def _water_speed(self) -> UnitType:
        if self.mode == "water" and self.speed is None:
            self.speed = 3.0
        return self


DEFAULT_UNIT_TYPES: dict[str, dict[str, Any]] = {
    "ambulance": {"mode": "road"},
    "fire_engine": {"mode": "road"},
    "police": {"mode": "road"},
    "boat": {"mode": "water", "speed": 3.0},
    "truck": {"mode": "high_clearance", "max_depth": 0.6},
}


class ResourceGroup(_Model):
    """Units of one type at one station."""

    type: str
    station: str
    count: Annotated[int, Field(ge=0)] = 1


class IncidentType(_Model):
    """A kind of call in the background mix."""

    name: str
    share: Annotated[float, Field(ge=0)] = 1.0
    priority: Annotated[int, Field(ge=1)] = 1
    needs: str | list[str] = Field(
        "ambulance", description="unit type, or a list of unit types any of which can serve"
    )
    on_scene: Distribution = Field(default_factory=lambda: Distribution(exponential=1800))
    to_hospital: Annotated[float, Field(ge=0, le=1)] = 0.0
    handover: NonNegDuration = Field(
        600.0, description="time to hand a patient over at the hospital, s"
    )

    @field_validator("needs")
    @classmethod
    def _needs(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("needs: give a unit type or a non-empty list of unit types")
        return v

    @property
    def needs_types(self) -> tuple[str, ...]:
        """The unit types that can serve this kind of call."""
        return (self.needs,) if isinstance(self.needs, str) else tuple(self.needs)


class Incidents(_Model):
    """Calls: a background Poisson stream and calls from the hazard."""

    background_rate: Rate = 0.0
    types: list[IncidentType] = Field(default_factory=list)
    from_hazard: bool = True
    hazard_class: Annotated[int, Field(ge=1, le=6)] = Field(
        4, description="AIDR class (1-6) at or above which people at home call (no evacuation)"
    )
    hazard_share: Annotated[float, Field(ge=0, le=1)] = Field(
        1.0, description="share of stranded, exposed or flooded households that call"
    )
    hazard_types: list[IncidentType] = Field(
        default_factory=list,
        description="calls from the hazard, by name: stranded, exposed, flooded",
    )

    #: Default types of hazard calls: stranded vehicles, exposed households (from the
    #: evacuation) and people in cells at or above ``hazard_class`` (from the flood).
    HAZARD_CALL_TYPES: ClassVar[dict[str, dict[str, Any]]] = {
        "stranded": {"priority": 1, "needs": ["truck", "boat", "fire_engine"],
                     "on_scene": {"exponential": 1200}, "to_hospital": 0.1},
        "exposed": {"priority": 2, "needs": ["boat", "truck", "fire_engine"],
                    "on_scene": {"exponential": 1800}, "to_hospital": 0.1},
        "flooded": {"priority": 1, "needs": ["boat", "truck"],
                    "on_scene": {"exponential": 1800}, "to_hospital": 0.2},
    }  # fmt: skip

    @model_validator(mode="after")
    def _shares(self) -> Incidents:
        if self.types and sum(t.share for t in self.types) <= 0:
            raise ValueError("incident type shares must add up to more than 0")
        names = [t.name for t in self.hazard_types]
        bad = sorted(set(names) - set(self.HAZARD_CALL_TYPES))
        if bad:
            raise ValueError(
                f"hazard_types: unknown name {', '.join(bad)}; expected one of "
                + ", ".join(self.HAZARD_CALL_TYPES)
            )
        if len(set(names)) != len(names):
            raise ValueError("hazard_types: each name may appear once")
        given = set(names)
        self.hazard_types = list(self.hazard_types) + [
            IncidentType(name=n, **spec)
            for n, spec in self.HAZARD_CALL_TYPES.items()
            if n not in given
        ]
        return self

    @field_serializer("background_rate")
    def _rate_out(self, v: float) -> float | str:
        """Write the rate with its unit (``0.00111.../s``), so a dumped scenario reloads."""
        return v if v == 0 else f"{v!r}/s"

    def hazard_type(self, name: str) -> IncidentType:
        """The call type for hazard calls of *name* (stranded, exposed or flooded)."""
        return next(t for t in self.hazard_types if t.name == name)


class Response(_Model):
    """`response`: units, dispatch policy and calls."""

    resources: list[ResourceGroup] = Field(default_factory=list)
    dispatch: str = "closest_idle"
    incidents: Incidents = Field(default_factory=Incidents)
    unit_types: dict[str, UnitType] = Field(default_factory=dict)
    max_wait: NonNegDuration | None = Field(
        None,
        description="s a call waits for a unit before it is lost (none: waits to the end; "
        "0: a call that finds no free unit is lost at once)",
    )

    @field_validator("dispatch")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v in ("closest_idle", "priority_then_closest"):
            return v
        mod, sep, fn = v.partition(":")
        if not sep or not mod or not fn.isidentifier():
            raise ValueError(
                "expected closest_idle, priority_then_closest or a Python 'module:function'"
            )
        return v

    def unit_type(self, name: str) -> UnitType:
        """The travel mode of unit type *name* (built-in defaults, then the file's)."""
        if name in self.unit_types:
            return self.unit_types[name]
        return UnitType(**DEFAULT_UNIT_TYPES.get(name, {"mode": "road"}))


