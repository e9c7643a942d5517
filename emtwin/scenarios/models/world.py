"""The `world:` section: terrain, roads, population and places."""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from emtwin.defaults import MANNING_N
from emtwin.scenarios._types import (
    DataPath,
)
from emtwin.scenarios.models._common import _Model

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


