"""`hazards: - type: typhoon`: a storm track and the parameters of its wind, rain and surge.

The section parses here; the hazards union in models.py registers it
(``hazards: list[Annotated[FloodHazard | TyphoonHazard, Field(discriminator="type")]]``).
Values are SI (m, m/s, s, hPa for pressures as the meteorological unit).
docs/typhoon.md explains every key, its default and its source.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from emtwin.scenarios._base import StrictModel
from emtwin.scenarios._types import DataPath, Point, PosDuration, Series
from emtwin.typhoon.fragility import DEFAULT_ROAD_FRAGILITY, RoadFragility
from emtwin.typhoon.wind import DEFAULT_SURFACE_FACTOR, GUST_FACTOR_3S_1MIN, WindParameters

__all__ = [
    "TyphoonHazard",
    "TyphoonRain",
    "TyphoonSurge",
    "LandCoverFactors",
    "FragilityCurve",
    "FacilityWindLimits",
    "WindGauge",
    "RoadClearance",
    "EvacuationWarning",
]

Side = Literal["north", "south", "east", "west"]
Exposure = Literal["in-land", "off-land", "off-sea", "at-sea"]


class TyphoonRain(StrictModel):
    """The storm's rain (R-CLIPER, Tuleya et al. 2007), fed to the flood as rain per cell."""

    model: Literal["rcliper"] = "rcliper"
    scale: Annotated[float, Field(ge=0)] = Field(1.0, description="multiplies the rain rate")


class TyphoonSurge(StrictModel):
    """The flood's sea boundary level: a given series, or inverse barometer plus wind setup."""

    side: Side = Field(description="the flood boundary side that is the sea")
    level: Series | None = Field(None, description="given surge series [[t, m], ...]")
    at: Point | None = Field(None, description="coast point, in the scenario's crs")
    onshore_bearing: Annotated[float, Field(ge=0, lt=360)] | None = Field(
        None, description="direction from sea to land, degrees clockwise from north"
    )
    shelf_width_m: Annotated[float, Field(gt=0)] = Field(30_000.0, description="m")
    shelf_depth_m: Annotated[float, Field(gt=0)] = Field(20.0, description="m")
    base_level: float = Field(0.0, description="still-water level (tide, MSL), m")

    @model_validator(mode="after")
    def _one_way(self) -> TyphoonSurge:
        parametric = self.at is not None or self.onshore_bearing is not None
        if self.level is not None and parametric:
            raise ValueError("give either `level` (a surge series) or `at` and "
                             "`onshore_bearing` (computed surge), not both")
        if self.level is None and (self.at is None or self.onshore_bearing is None):
            raise ValueError("give `level` (a surge series [[t, m], ...]) or both `at` (the "
                             "coast point) and `onshore_bearing` (degrees, sea to land)")
        return self


class LandCoverFactors(StrictModel):
    """Per-cell surface wind factor from a land-cover raster and a class -> factor table."""

    raster: DataPath
    table: dict[int, Annotated[float, Field(gt=0, le=1.5)]]


class FragilityCurve(StrictModel):
    """Lognormal fragility of a road class: median gust (m/s) and log-standard deviation."""

    median_gust_m_s: Annotated[float, Field(gt=0)]
    beta: Annotated[float, Field(gt=0, le=2)]


class FacilityWindLimits(StrictModel):
    """Sustained wind (m/s) above which a facility cannot be used; none: no limit."""

    shelters: Annotated[float, Field(gt=0)] | None = None
    stations: Annotated[float, Field(gt=0)] | None = None
    hospitals: Annotated[float, Field(gt=0)] | None = None


class RoadClearance(StrictModel):
    """Crews clear wind-blocked roads: a dispatch call per blocked road."""

    needs: str = Field("crew", description="unit type that clears a road")
    time: PosDuration = Field(2700.0, description="clearing time on scene, s")
    priority: Annotated[int, Field(ge=1)] = 2


class EvacuationWarning(StrictModel):
    """The hurricane-planning rule: warn at forecast arrival minus the clearance time."""

    zone: str = Field("all", description="an evacuation zone name, or 'all'")
    clearance: PosDuration = Field(description="estimated clearance time, s")


class WindGauge(StrictModel):
    """A named point where the wind is recorded."""

    name: str
    at: Point


class TyphoonHazard(StrictModel):
    """`hazards: - type: typhoon`."""

    type: Literal["typhoon"] = "typhoon"
    name: str | None = None
    track: DataPath = Field(description="CSV: emtwin or IBTrACS columns (docs/typhoon.md)")
    storm: str | None = Field(None, description="IBTrACS SID or NAME in a file of many")
    environment_pressure_hpa: Annotated[float, Field(gt=900, lt=1100)] = 1010.0
    holland_b: Annotated[float, Field(ge=0.5, le=3.0)] | None = Field(
        None, description="gradient-level B; none: the track's, else Holland (2008)"
    )
    asymmetry: bool = True
    translation_factor: Annotated[float, Field(ge=0, le=1.5)] = Field(
        0.55, description="asymmetry vector = this x storm velocity"
    )
    inflow: bool = True
    surface_factor: Annotated[float, Field(gt=0, le=1)] = DEFAULT_SURFACE_FACTOR
    land_cover: LandCoverFactors | None = None
    gust_factor: Annotated[float, Field(ge=1, le=3)] | Exposure = Field(
        "in-land", description="gust / 1-min sustained, or a WMO exposure name"
    )
    air_density: Annotated[float, Field(gt=0.5, lt=1.5)] = Field(1.15, description="kg/m3")
    wind_grid_m: Annotated[float, Field(gt=0)] | None = Field(
        None, description="node spacing of a coarser wind grid, m"
    )
    coupling: PosDuration = Field(300.0, description="wind update step, s")
    rain: TyphoonRain | bool = Field(default_factory=TyphoonRain, description="false: no rain")
    surge: TyphoonSurge | None = None
    road_blockage: bool = True
    fragility: dict[str, FragilityCurve] = Field(
        default_factory=dict, description="per road class; overrides the defaults"
    )
    facility_wind_limits: FacilityWindLimits = Field(default_factory=FacilityWindLimits)
    facility_water_depth: Annotated[float, Field(gt=0)] | None = Field(
        None, description="water depth at a facility above which it is lost, m"
    )
    road_clearance: RoadClearance | None = Field(
        default_factory=RoadClearance, description="null: blocked roads stay blocked"
    )
    evacuation_warning: EvacuationWarning | list[EvacuationWarning] | None = Field(
        None, description="one zone's rule, or a list of them (one per zone)"
    )
    gauges: list[WindGauge] = Field(default_factory=list)
    cross_track_shift_km: float = Field(0.0, description="track uncertainty: right of motion")
    intensity_scale: Annotated[float, Field(gt=0, le=3)] = Field(
        1.0, description="track uncertainty: multiplies the pressure deficit"
    )

    @field_validator("rain", mode="before")
    @classmethod
    def _rain(cls, v: object) -> object:
        return TyphoonRain() if v is True else v

    @model_validator(mode="after")
    def _names(self) -> TyphoonHazard:
        names = [g.name for g in self.gauges]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"gauge names must be unique, repeated: {', '.join(dup)}")
        zones = [w.zone for w in self.warnings]
        dup = sorted({z for z in zones if zones.count(z) > 1})
        if dup:
            raise ValueError(f"evacuation_warning: one rule per zone, repeated: {', '.join(dup)}")
        return self

    # ----------------------------------------------------------- derived values

    @property
    def gust_factor_value(self) -> float:
        """The gust factor as a number (an exposure name looked up in Harper et al. 2010)."""
        g = self.gust_factor
        return GUST_FACTOR_3S_1MIN[g] if isinstance(g, str) else float(g)

    @property
    def warnings(self) -> list[EvacuationWarning]:
        """The ``evacuation_warning`` rules as a list (empty without any)."""
        w = self.evacuation_warning
        return [] if w is None else list(w) if isinstance(w, list) else [w]

    @property
    def call_needs(self) -> set[str]:
        """Unit types that the dispatch calls this hazard raises need (the crews of
        ``road_clearance``, where blocked roads raise calls); read by the dispatch's
        check of units no call can use (docs/engine.md, *Hazards*)."""
        rc = self.road_clearance
        return {rc.needs} if rc is not None and self.road_blockage else set()

    @property
    def rain_settings(self) -> TyphoonRain | None:
        """The rain settings, or None when the storm's rain is off."""
        return self.rain if isinstance(self.rain, TyphoonRain) else None

    def wind_parameters(self) -> WindParameters:
        """The wind model's parameters."""
        return WindParameters(
            environment_pressure_hpa=self.environment_pressure_hpa,
            air_density=self.air_density,
            holland_b=self.holland_b,
            asymmetry=self.asymmetry,
            translation_factor=self.translation_factor,
            surface_factor=self.surface_factor,
            inflow=self.inflow,
            wind_grid_m=self.wind_grid_m,
        )

    def fragility_table(self) -> dict[str, RoadFragility]:
        """Road class -> fragility: the defaults, overridden by the scenario's."""
        table = dict(DEFAULT_ROAD_FRAGILITY)
        for k, c in self.fragility.items():
            table[k] = RoadFragility(c.median_gust_m_s, c.beta)
        return table
