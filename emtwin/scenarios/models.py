"""The scenario file as pydantic models (the contract of scenario-format.md).

Every key of the contract parses here, including the sections whose components
come later, so that files written today keep working. Unknown keys are errors.
Values are stored in SI units: durations in s, rates in 1/s, depths in m,
coordinates as (x, y) in the file's ``crs``.
"""

from __future__ import annotations

import functools
import math
import typing
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_serializer,
    field_validator,
    model_validator,
)

from emtwin.defaults import MANNING_N
from emtwin.kernels.hazard_rating import ROAD_CLOSURE_DEPTH_M
from emtwin.scenarios._base import StrictModel
from emtwin.scenarios._locate import locate_key
from emtwin.scenarios._types import (
    DataPath,
    Line,
    NonNegDuration,
    Point,
    PosDuration,
    Rate,
    Series,
    parse_duration,
)
from emtwin.scenarios.consequences import Consequences

__all__ = [
    "Scenario",
    "HAZARD_MODELS",
    "register_hazard_model",
    "unregister_hazard_model",
    "Trigger",
    "TimeAfter",
    "TRIGGER_KINDS",
    "World",
    "Terrain",
    "Roads",
    "Population",
    "FloodHazard",
    "Inflow",
    "Breach",
    "Reservoir",
    "Evacuation",
    "Response",
    "Distribution",
    "Action",
    "ACTION_KINDS",
    "Outputs",
    "Uncertain",
    "UncertainValue",
    "ResponseIndex",
]


#: Base of every section: unknown keys are errors, a key left empty takes its default.
_Model = StrictModel


# ---------------------------------------------------------------------------- world


@functools.lru_cache(maxsize=64)
def _crs_problem(value: str, metric: bool) -> str | None:
    """What is wrong with CRS *value* (None if nothing); cached, batch runs re-validate."""
    from emtwin.errors import CRSError
    from emtwin.geo.crs import crs_label, is_metric_projected, parse_crs

    try:
        crs = parse_crs(value, what="crs")
    except CRSError as exc:
        return str(exc).removeprefix("crs: ")
    if metric and not is_metric_projected(crs):
        return (
            f"expected a projected CRS in metres (e.g. a UTM zone such as 'EPSG:32633'), "
            f"got {crs_label(crs)} ({crs.type_name})"
        )
    return None


def _check_crs(value: Any, *, metric: bool = False) -> Any:
    """Check that a ``crs`` value is a CRS PROJ can use; keep it as written.

    An integer EPSG code (``crs: 32633``) is stored as ``"EPSG:32633"``. With
    *metric*, the CRS must also be projected with metre units (the World's).

    Raises
    ------
    ValueError
        Naming the value and what was expected, for the loader to report with
        the file, line and key.
    """
    if value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"EPSG:{value}"
    if not isinstance(value, str):
        raise ValueError(
            f"expected a CRS such as 'EPSG:32633', an EPSG code or WKT, got {value!r}"
        )
    problem = _crs_problem(value, metric)
    if problem:
        raise ValueError(problem)
    return value


class ManningTable(_Model):
    """Manning's n from a land-cover raster and a class -> n table (s/m^(1/3))."""

    raster: DataPath
    table: dict[int, Annotated[float, Field(gt=0, allow_inf_nan=False)]]


class Terrain(_Model):
    """`world.terrain`: the DEM, or a built-in synthetic terrain."""

    dem: DataPath | None = Field(None, description="GeoTIFF, ESRI ASCII grid or GPKG:file:layer")
    builtin: str | None = Field(None, description="name of a built-in terrain, e.g. riverside")
    scale: Annotated[float, Field(gt=0, le=64)] = Field(
        1.0, description="growth factor of a built-in terrain (area grows with it)"
    )
    resolution: Annotated[float, Field(gt=0)] | None = Field(
        None, description="resample to this cell size, m"
    )
    manning: Annotated[float, Field(gt=0)] | DataPath | ManningTable = Field(
        MANNING_N, description="Manning's n, s/m^(1/3): a scalar, a raster, or {raster, table}"
    )
    crs: str | None = Field(
        None, description="CRS of the DEM when the file has none or one PROJ cannot use"
    )

    @field_validator("crs", mode="before")
    @classmethod
    def _crs(cls, v: Any) -> Any:
        return _check_crs(v)

    @field_validator("manning", mode="before")
    @classmethod
    def _finite_n(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"Manning's n must be > 0 and finite (s/m^(1/3)), got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Terrain:
        if (self.dem is None) == (self.builtin is None):
            raise ValueError("give exactly one of `dem` (a file) or `builtin` (e.g. riverside)")
        return self


class Roads(_Model):
    """`world.roads`: the road network source (OSM XML/PBF, vector lines or GraphML)."""

    source: DataPath


class Population(_Model):
    """`world.population`: where people live."""

    source: DataPath | None = None
    total: Annotated[float, Field(ge=0)] | None = Field(None, description="residents")
    vehicles_per_household: Annotated[float, Field(ge=0)] = 1.0
    household_size: Annotated[float, Field(gt=0)] = 2.5

    @model_validator(mode="after")
    def _something(self) -> Population:
        if self.source is None and self.total is None:
            raise ValueError("give `source` (points or buildings) or `total` (residents)")
        return self


def _source_shorthand(value: Any) -> Any:
    """Allow `roads: file.osm` as short for `roads: {source: file.osm}`."""
    return {"source": value} if isinstance(value, str) else value


class World(_Model):
    """`world`: the place."""

    terrain: Terrain
    roads: Roads | None = None
    population: Population | None = None
    shelters: DataPath | None = None
    stations: DataPath | None = None
    hospitals: DataPath | None = None
    crs: str | None = Field(None, description="working CRS (metric); default: chosen from the DEM")

    @field_validator("roads", "population", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return _source_shorthand(v)

    @field_validator("crs", mode="before")
    @classmethod
    def _crs(cls, v: Any) -> Any:
        return _check_crs(v, metric=True)


# ---------------------------------------------------------------------------- hazards

Side = Literal["north", "south", "east", "west"]


class LevelBoundary(_Model):
    """A water level series on one side of the DEM, m (tide, surge, river stage)."""

    level: Series


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
    """A named point where depth, speed and level are recorded."""

    name: str
    at: Point


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
        "global", description="flood step: one 'global' step, or 'local' per tile (docs/flood.md)"
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

    Exactly one of: ``{gauge: NAME, depth_above: M}`` or ``{gauge: NAME,
    level_above: M}`` (the flood gauge's depth or water level, m, goes above
    the value); ``{road_closed: ID}`` (any edge of the road is closed, for any
    reason); ``{shelter_full: NAME}``; ``{time_after: {event, entity, delay}}``;
    ``{rain: {area, mm, over}}`` (flash-flood rule, :class:`RainOver`).
    """

    gauge: str | None = None
    depth_above: float | None = Field(None, description="m")
    level_above: float | None = Field(None, description="m")
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
        if self.gauge is not None and (self.depth_above is None) == (self.level_above is None):
            raise ValueError("`when: {gauge: ...}` needs exactly one of depth_above, level_above")
        if self.gauge is None and (self.depth_above is not None or self.level_above is not None):
            raise ValueError("depth_above and level_above go with `gauge`")
        return self

    @property
    def kind(self) -> str:
        """The condition's kind, one of :data:`TRIGGER_KINDS`."""
        return next(k for k in TRIGGER_KINDS if getattr(self, k) is not None)


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


# ---------------------------------------------------------------------------- outputs

RasterName = Literal["max_depth", "arrival_time", "hazard_class", "max_speed", "max_hr"]


class Outputs(_Model):
    """`outputs`: what a run writes."""

    every: PosDuration = 300.0
    map: bool = True
    report: bool = True
    rasters: list[RasterName] = Field(
        default_factory=lambda: ["max_depth", "arrival_time", "hazard_class"]
    )


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


# ---------------------------------------------------------------------------- scenario


#: Longest scenario name, characters (it names the default output folder out/NAME).
MAX_NAME_CHARS = 100


def check_plain_name(v: str) -> str:
    """*v* if it is a plain file name (the default output folder is ``out/NAME``).

    Refused: empty, ``.`` and ``..``, a leading dot or space, path separators,
    control characters, a drive (``C:``) and more than :data:`MAX_NAME_CHARS`.
    """
    why = None
    if not v.strip():
        why = "it is empty"
    elif v in (".", ".."):
        why = f"'{v}' names a folder above or at the output folder"
    elif "/" in v or "\\" in v:
        why = "it holds a path separator (/ or \\)"
    elif v[0] in ". " or v[-1] in ". ":
        why = "it starts or ends with a dot or a space"
    elif any(ord(c) < 32 or ord(c) == 127 for c in v) or ":" in v:
        why = "it holds a control character or ':'"
    elif len(v) > MAX_NAME_CHARS:
        why = f"it is longer than {MAX_NAME_CHARS} characters"
    if why:
        raise ValueError(
            f"the name must be a plain file name, since it names the output folder out/NAME; "
            f"{why} (got {v!r})"
        )
    return v


class Scenario(_Model):
    """A whole scenario file.

    Attributes hold SI values (s, m, m3/s, 1/s). ``source`` is the file it came
    from (not a key of the file).
    """

    name: str = "scenario"
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    duration: PosDuration = 6 * 3600.0
    coupling: PosDuration | None = Field(
        None, description="coupling step of the engine's clock, s (default 60 s, or the flood's "
        "`coupling`); capped at outputs.every",
    )
    start: datetime | None = Field(
        None, description="wall-clock time of t = 0 (ISO 8601; no zone means UTC), for "
        "observations with timestamps"
    )
    crs: str = "EPSG:4326"
    world: World
    hazards: list[FloodHazard] = Field(
        default_factory=list, description="tagged on `type`; see register_hazard_model"
    )
    evacuation: Evacuation | None = None
    response: Response | None = None
    actions: list[Action] = Field(default_factory=list)
    warning_rules: list[WarningRule] = Field(
        default_factory=list, description="flash-flood rules: rain over an area fires an action"
    )
    outputs: Outputs = Field(default_factory=Outputs)
    uncertain: Uncertain | None = Field(None, description="what varies in a batch (emtwin batch)")
    response_index: ResponseIndex | None = Field(None, description="weights of the response index")
    consequences: Consequences | None = Field(None, description="damage, life loss, facilities")

    source: str | None = Field(None, exclude=True, description="file the scenario came from")
    #: (file, {key path: line}) of the base file and each plan, in merge order
    #: (set by the loader; used to name the file and line in later errors)
    _origins: list[tuple[str, dict]] = PrivateAttr(default_factory=list)

    def where(self, *loc: str | int) -> str:
        """``file:line: key.path`` of a key path as written in the file or plan that set it.

        Falls back to ``source: key.path`` where no line is known (a scenario
        built in Python, or a key filled by a default).
        """
        return locate_key(loc, self._origins or [(self.source or "", {})])

    @field_validator("crs", mode="before")
    @classmethod
    def _crs(cls, v: Any) -> Any:
        return _check_crs(v)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        return check_plain_name(v)

    def triggered_actions(self) -> list[tuple[int, Action]]:
        """The actions fired by a condition, numbered: the ``when:`` actions by their index
        in ``actions``, then those of ``warning_rules`` from ``len(actions)`` on."""
        out = [(i, a) for i, a in enumerate(self.actions) if a.when is not None]
        n = len(self.actions)
        return out + [(n + k, r.action()) for k, r in enumerate(self.warning_rules)]

    def hazards_of(self, type_: str) -> list[Any]:
        """The hazards of type *type_* (``flood``, ``typhoon``, ...), in file order."""
        return [h for h in self.hazards if h.type == type_]

    @property
    def flood(self) -> FloodHazard | None:
        """The flood hazard, if any (one per scenario)."""
        floods = [h for h in self.hazards if h.type == "flood"]
        return floods[0] if floods else None

    @model_validator(mode="after")
    def _checks(self) -> Scenario:
        if sum(1 for h in self.hazards if h.type == "flood") > 1:
            raise ValueError("hazards: at most one flood per scenario")
        if not math.isfinite(self.duration):
            raise ValueError("duration must be finite")
        return self


# ---------------------------------------------------------------------------- hazard registry

#: Hazard models by their ``type`` tag: `hazards: - type: flood`. A new hazard
#: adds its model with :func:`register_hazard_model` (through
#: :func:`emtwin.sim.components.register_hazard`), and nothing else here changes.
HAZARD_MODELS: dict[str, type[BaseModel]] = {"flood": FloodHazard}


def _hazard_tag(v: Any) -> str | None:
    """The class name of the model for hazard item *v* (by its ``type``), or None."""
    t = v.get("type", "flood") if isinstance(v, dict) else getattr(v, "type", None)
    cls = HAZARD_MODELS.get(t) if isinstance(t, str) else None
    return cls.__name__ if cls is not None else None


def _hazards_annotation() -> Any:
    """``list[...]`` of the registered hazard models, a union tagged on ``type``."""
    models = list(HAZARD_MODELS.values())
    if len(models) == 1:
        return list[models[0]]  # type: ignore[valid-type]
    members = tuple(Annotated[m, Tag(m.__name__)] for m in models)
    known = ", ".join(HAZARD_MODELS)
    return list[  # type: ignore[valid-type]
        Annotated[
            typing.Union[members],  # noqa: UP007 (a runtime tuple of members)
            Discriminator(_hazard_tag, custom_error_type="hazard_type",
                          custom_error_message=f"unknown hazard type; known types: {known}"),
        ]
    ]  # fmt: skip


def register_hazard_model(model: type[BaseModel]) -> None:
    """Add a hazard model to ``Scenario.hazards`` under its ``type`` tag.

    *model* must have a ``type: Literal["name"]`` field with that default.
    Registering the same model again changes nothing.

    Raises
    ------
    ValueError
        If the tag is missing or already used by another model.
    """
    tag = model.model_fields["type"].default if "type" in model.model_fields else None
    if not isinstance(tag, str):
        raise ValueError(f"{model.__name__} needs a field `type: Literal[...]` with a default")
    if HAZARD_MODELS.get(tag, model) is not model:
        raise ValueError(f"hazard type {tag!r} is already registered")
    HAZARD_MODELS[tag] = model
    _rebuild_hazards()


def unregister_hazard_model(tag: str) -> None:
    """Remove the hazard model of type *tag* (tests; the flood stays)."""
    if tag != "flood" and HAZARD_MODELS.pop(tag, None) is not None:
        _rebuild_hazards()


def _rebuild_hazards() -> None:
    Scenario.model_fields["hazards"].annotation = _hazards_annotation()
    Scenario.model_rebuild(force=True)


# the built-in hazards besides the flood (their components register in emtwin.sim.components)
from emtwin.scenarios.typhoon import TyphoonHazard  # noqa: E402

register_hazard_model(TyphoonHazard)
