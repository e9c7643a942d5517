"""Households of the evacuation: who lives where, in which zone, by car or on foot.

The World's population (points with ``people`` and a road ``node``) is split
into households of the scenario's mean size; each household travels together,
in one vehicle or on foot. Zones are polygons in the World CRS; a household
belongs to the first zone that contains its home (boundary included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emtwin.errors import ScenarioError

__all__ = ["Households", "build_households", "zone_polygons", "assign_zones", "walk_share"]


@dataclass
class Households:
    """Per-household arrays, shape (n,) each.

    Attributes
    ----------
    people
        Members (persons, int >= 1).
    node
        Road node of the home (array node index).
    x, y
        Home location, m in the World CRS.
    row, col
        Terrain cell of the home (-1 outside the grid).
    source_row
        Row of ``world.places.population`` the household comes from.
    """

    people: np.ndarray
    node: np.ndarray
    x: np.ndarray
    y: np.ndarray
    row: np.ndarray
    col: np.ndarray
    source_row: np.ndarray

    def __len__(self) -> int:
        return int(self.people.shape[0])


def _integer_people(people: np.ndarray) -> np.ndarray:
    """Whole persons per row, summing to the rounded total (largest remainders)."""
    p = np.maximum(np.asarray(people, dtype=float), 0.0)
    base = np.floor(p + 1e-9)
    short = int(round(p.sum() - base.sum()))
    if short > 0:
        frac = p - base
        order = np.lexsort((np.arange(p.size), -frac))  # largest remainder, then row order
        base[order[:short]] += 1
    return base.astype(np.int64)


def build_households(population: Any, terrain: Any, household_size: float) -> Households:
    """Split population points into households of mean size *household_size* (persons).

    Each row of *population* (``people``, ``node``, point geometry) with ``p``
    whole persons (rows rounded so that the total is kept) gives
    ``max(1, round(p / size))`` households whose sizes differ by at most one.
    Rows with no one give none. Deterministic: no random draws.
    """
    p = _integer_people(population["people"].to_numpy())
    n_hh = np.where(p > 0, np.maximum(1, np.rint(p / household_size)), 0).astype(np.int64)
    src = np.repeat(np.arange(p.size), n_hh)
    # rank of each household within its row, 0 .. n_hh-1
    starts = np.repeat(np.cumsum(n_hh) - n_hh, n_hh)
    rank = np.arange(src.size) - starts
    size = p[src] // n_hh[src] + (rank < p[src] % n_hh[src])
    geom = population.geometry
    x = geom.x.to_numpy()[src]
    y = geom.y.to_numpy()[src]
    row, col = terrain.cell_of(x, y)
    return Households(
        people=size.astype(np.int64),
        node=population["node"].to_numpy().astype(np.int64)[src],
        x=x,
        y=y,
        row=np.asarray(row, dtype=np.int64),
        col=np.asarray(col, dtype=np.int64),
        source_row=src,
    )


def walk_share(on_foot_share: float, vehicles_per_household: float) -> float:
    """Share of households that walk: those choosing to, and those without a car.

    ``vehicles_per_household`` below 1 is read as the share of households that
    own a car; a household with a car takes one vehicle (all members in it).
    """
    return 1.0 - (1.0 - on_foot_share) * min(1.0, vehicles_per_household)


def zone_polygons(zones: list[Any], world: Any, scenario_crs: str) -> list[Any]:
    """Shapely polygons of ``evacuation.zones`` in the World CRS.

    An ``area`` is a polygon file (read with :func:`emtwin.geo.areas.read_polygon`)
    or a list of ``[x, y]`` points in the scenario's ``crs``.
    """
    from shapely.geometry import Polygon

    from emtwin.geo.areas import read_polygon
    from emtwin.geo.build import to_world_xy

    out = []
    for i, z in enumerate(zones):
        key = f"evacuation.zones.{i}.area"
        if isinstance(z.area, str):
            out.append(read_polygon(z.area, crs=world.crs, default_crs=scenario_crs,
                                    file_label=key))  # fmt: skip
            continue
        xy = to_world_xy(z.area, scenario_crs, world)
        if len(xy) < 3:
            raise ScenarioError(f"{key}: a polygon needs at least 3 points, got {len(xy)}")
        poly = Polygon(xy)
        if not poly.is_valid or poly.area <= 0:
            raise ScenarioError(f"{key}: the points do not make a valid polygon (self-crossing "
                                "or of zero area)")  # fmt: skip
        out.append(poly)
    return out


def assign_zones(x: np.ndarray, y: np.ndarray, polygons: list[Any], names: list[str]) -> np.ndarray:
    """Index of the first zone containing each point (boundary included), -1 for none.

    Raises
    ------
    ScenarioError
        If a zone contains no household: it names the zone.
    """
    import shapely

    zone = np.full(x.shape[0], -1, dtype=np.int64)
    for i, poly in enumerate(polygons):
        inside = shapely.intersects_xy(poly, x, y)
        if not inside.any():
            raise ScenarioError(
                f"evacuation.zones.{i} ({names[i]}): the area contains no household (no "
                "resident of world.population lives inside it); check its coordinates and crs"
            )
        zone[inside & (zone < 0)] = i
    return zone
