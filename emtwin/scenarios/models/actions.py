"""Plan actions, timed (`at:`) or triggered (`when:`), and warning rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from emtwin.scenarios._types import (
    NonNegDuration,
    Point,
    PosDuration,
)
from emtwin.scenarios.models._common import _Model

# ---------------------------------------------------------------------------- actions

#: Action kinds of the plan timeline and the value each takes.
ACTION_KINDS: dict[str, str] = {
    "close_road": "a road id or name",
    "open_road": "a road id or name",
    "open_shelter": "a shelter name",
    "close_shelter": "a shelter name",
    "warn": "a zone name, or 'all'",
    "move_units": "{type, count, from, to}",
    "contraflow": "a road id or name",
}


class MoveUnits(_Model):
    """Move units of a type between stations."""

    type: str
    count: Annotated[int, Field(ge=1)] = 1
    from_: str = Field(alias="from")
    to: str

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TimeAfter(_Model):
    """`time_after: {event: KIND, entity: NAME, delay: D}`: *delay* after the first such event."""

    event: str = Field(description="an event kind of events.parquet (warning, road_closed, ...)")
    entity: str | None = Field(None, description="only events of this entity (name or id)")
    delay: NonNegDuration = 0.0


class RainOver(_Model):
    """`rain: {area, mm, over}`: rain accumulated over the last *over* seconds, averaged
    over *area* (an evacuation zone's name or a polygon in the scenario's crs), reaches
    *mm*. The rain is read from the per-cell field ``field`` (mm/h, default
    ``rain__rate``, written by a storm hazard), held between coupling steps."""

    area: str | list[Point]
    mm: Annotated[float, Field(gt=0)]
    over: PosDuration
    field: str = "rain__rate"


class Trigger(_Model):
    """`when:` the condition that fires an action, checked at every coupling step.

    Exactly one of: ``{gauge: NAME, depth_above: M}``, ``{gauge: NAME,
    level_above: M}`` or ``{gauge: NAME, flow_above: Q}`` (the flood gauge's
    depth or water level, m, or the discharge through its cross-section,
    m3/s, goes above the value); ``{road_closed: ID}`` (any edge of the road is closed, for any
    reason); ``{shelter_full: NAME}``; ``{time_after: {event, entity, delay}}``;
    ``{rain: {area, mm, over}}`` (flash-flood rule, :class:`RainOver`).
    """

    gauge: str | None = None
    depth_above: float | None = Field(None, description="m")
    level_above: float | None = Field(None, description="m")
    flow_above: float | None = Field(None, description="m3/s, at a gauge with a `section`")
    road_closed: str | None = None
    shelter_full: str | None = None
    time_after: TimeAfter | None = None
    rain: RainOver | None = None

    @field_validator("road_closed", "shelter_full", "gauge", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        kinds = [k for k in TRIGGER_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("`when` needs exactly one of: " + ", ".join(TRIGGER_KINDS))
        limits = [k for k in GAUGE_LIMITS if getattr(self, k) is not None]
        if self.gauge is not None and len(limits) != 1:
            raise ValueError("`when: {gauge: ...}` needs exactly one of " + ", ".join(GAUGE_LIMITS))
        if self.gauge is None and limits:
            raise ValueError(", ".join(GAUGE_LIMITS) + " go with `gauge`")
        return self

    @property
    def kind(self) -> str:
        """The condition's kind, one of :data:`TRIGGER_KINDS`."""
        return next(k for k in TRIGGER_KINDS if getattr(self, k) is not None)


#: The values a `when: {gauge: ...}` condition compares with.
GAUGE_LIMITS = ("depth_above", "level_above", "flow_above")

#: The kinds of `when:` conditions.
TRIGGER_KINDS = ("gauge", "road_closed", "shelter_full", "time_after", "rain")


class Action(_Model):
    """One decision of the plan, timed (`{at: 45min, close_road: bridge-north}`) or
    triggered (`{when: {gauge: bridge, level_above: 4.2}, warn: valley}`)."""

    at: NonNegDuration | None = None
    when: Trigger | None = None
    close_road: str | None = None
    open_road: str | None = None
    open_shelter: str | None = None
    close_shelter: str | None = None
    warn: str | None = None
    move_units: MoveUnits | None = None
    contraflow: str | None = None

    @field_validator("close_road", "open_road", "contraflow", "warn", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _one(self) -> Action:
        kinds = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "an action needs `at` (or `when`) and exactly one of: " + ", ".join(ACTION_KINDS)
            )
        if (self.at is None) == (self.when is None):
            raise ValueError("an action needs exactly one of `at` (a time) or `when` (a trigger)")
        return self

    @property
    def kind(self) -> str:
        """The action's kind, a key of :data:`ACTION_KINDS`."""
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def value(self) -> Any:
        """The action's argument."""
        return getattr(self, self.kind)


class WarningRule(_Model):
    """One flash-flood warning rule of `warning_rules:`: ``{area: valley, rain_mm: 50,
    over: 1h, then: {warn: valley}}``; it fires once, through the `when:` machinery
    (a ``rain`` trigger), as the action ``then``."""

    area: str | list[Point] = Field(description="an evacuation zone's name, or a polygon")
    rain_mm: Annotated[float, Field(gt=0)] = Field(description="mm accumulated over `over`")
    over: PosDuration = Field(description="the accumulation window, s")
    then: dict[str, Any] = Field(description="one plan action, e.g. {warn: valley}")

    @model_validator(mode="after")
    def _then(self) -> WarningRule:
        self.action()
        return self

    def action(self) -> Action:
        """The triggered action this rule stands for."""
        if "at" in self.then or "when" in self.then:
            raise ValueError("`then` is the action only (no `at` or `when`)")
        when = {"rain": {"area": self.area, "mm": self.rain_mm, "over": self.over}}
        return Action.model_validate({**self.then, "when": when})


