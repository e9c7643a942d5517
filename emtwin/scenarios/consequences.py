"""The ``consequences:`` section of a scenario: buildings, curves, life loss, facilities.

Values left out take the defaults of :mod:`emtwin.consequences.defaults` (the
one place they are written); the keys given here override them per occupancy
or per facility type. Depths in m, values in the scenario's currency per m2.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from emtwin.consequences.defaults import (
    CONTINENTS,
    FACILITY_FAIL_DEPTH_M,
    OCCUPANCIES,
    SITE_KINDS,
)
from emtwin.scenarios._base import StrictModel
from emtwin.scenarios._types import DataPath, Point

__all__ = ["Consequences", "LifeLoss", "FacilityType", "Site"]

_Continent = Literal["europe", "north_america", "south_america", "asia", "africa", "oceania"]
assert set(_Continent.__args__) == set(CONTINENTS)  # noqa: S101  (kept in step)
_SiteKind = Literal["substation", "pump"]
assert set(_SiteKind.__args__) == set(SITE_KINDS)  # noqa: S101  (kept in step)


_Section = StrictModel


class LifeLoss(_Section):
    """How the probability of death is estimated."""

    method: Literal["jonkman", "lifesim"] = Field(
        "jonkman",
        description="jonkman: Jonkman et al. (2008) mortality functions; "
        "lifesim: LifeSim lethality zones (McClelland & Bowles 2002)",
    )


class FacilityType(_Section):
    """Loss of function of one type of facility."""

    fail_depth_m: Annotated[float, Field(gt=0)] = Field(
        description="water depth above the ground at which it stops working, m"
    )


class Site(_Section):
    """A substation or a pump, given by its position (not a layer of the World)."""

    name: str = Field(min_length=1, description="unique among the facilities")
    kind: _SiteKind = Field(description="substation or pump")
    at: Point | None = Field(None, description="[x, y] in the scenario's crs")
    lonlat: Point | None = Field(None, description="[longitude, latitude], degrees (WGS 84)")
    fail_depth_m: Annotated[float, Field(gt=0)] | None = Field(
        None, description="water depth at which it stops working, m; default: its type's"
    )
    feeds: list[str] = Field(
        default_factory=list,
        description="facilities it powers, which lose function with it: names of hospitals, "
        "shelters, stations or sites, or TYPE/NAME where a name is not unique",
    )

    @model_validator(mode="after")
    def _one_position(self) -> Site:
        if (self.at is None) == (self.lonlat is None):
            raise ValueError(f"site {self.name!r}: give its position as `at: [x, y]` (the "
                             "scenario's crs) or `lonlat: [lon, lat]`, one of the two")
        if self.feeds and self.kind != "substation":
            raise ValueError(f"site {self.name!r}: feeds: only a substation feeds other "
                             f"facilities (this is a {self.kind})")
        return self


class Consequences(_Section):
    """Damage to buildings, life loss and the loss of critical facilities."""

    buildings: DataPath | None = Field(
        None,
        description="GeoPackage/GeoJSON footprints or points, an OSM file, or builtin:NAME; "
        "default: the built-in town's buildings, or none",
    )
    continent: _Continent | None = Field(
        None, description="continent of the JRC curves; default: from the World's location"
    )
    curves: dict[str, DataPath] = Field(
        default_factory=dict,
        description="occupancy -> CSV curve (depth_m, damage_ratio), replacing the JRC one",
    )
    content: dict[str, DataPath] | None = Field(
        None,
        description="occupancy -> CSV content-damage curve (an occupancy left out uses its "
        "structure curve); default: no content damage",
    )
    value_per_m2: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="occupancy -> value per m2 of floor, currency"
    )
    first_floor_height: dict[str, float] = Field(
        default_factory=dict, description="occupancy -> ground floor above the ground, m"
    )
    life_loss: LifeLoss = Field(default_factory=LifeLoss)
    facilities: dict[str, FacilityType] = Field(
        default_factory=dict,
        description="facility type (hospital, shelter, station, substation, pump) -> limits",
    )
    sites: list[Site] = Field(
        default_factory=list, description="substations and pumps: name, kind, at or lonlat, "
        "fail_depth_m, feeds",
    )
    sites_from: DataPath | None = Field(
        None,
        description="GeoPackage/GeoJSON of point sites with columns name, kind and, "
        "optionally, fail_depth_m and feeds (names separated by ';' or ',')",
    )

    @model_validator(mode="after")
    def _known_keys(self) -> Consequences:
        known = set(OCCUPANCIES) | set(self.curves)
        for key in ("value_per_m2", "first_floor_height"):
            bad = sorted(set(getattr(self, key)) - known)
            if bad:
                raise ValueError(
                    f"{key}: unknown occupancy {', '.join(map(repr, bad))}; expected one of "
                    f"{', '.join(sorted(known))} (a new class needs a curve in `curves`)"
                )
        bad = sorted(set(self.facilities) - set(FACILITY_FAIL_DEPTH_M))
        if bad:
            raise ValueError(
                f"facilities: unknown type {', '.join(map(repr, bad))}; expected one of "
                f"{', '.join(FACILITY_FAIL_DEPTH_M)}"
            )
        names = [site.name for site in self.sites]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sites: the name(s) {', '.join(map(repr, twice))} are given "
                             "more than once; each site needs its own name")
        return self

    def fail_depths_m(self) -> dict[str, float]:
        """Depth at which each facility type stops working, m (defaults overridden)."""
        return {**FACILITY_FAIL_DEPTH_M, **{k: v.fail_depth_m for k, v in self.facilities.items()}}
