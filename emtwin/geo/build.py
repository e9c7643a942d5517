"""Building the World from a scenario: terrain, roads, places, edge->cell index.

``build_world(scenario)`` picks one metric CRS (``world.crs``; else the DEM's own
projected CRS; else the local UTM zone of a geographic DEM; the built-in town
has its own), reads every layer into it, snaps places to the road network and
checks that everything is usable: places inside the DEM, facilities not on a piece
of road cut off from the kept network, shelters reachable.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
from pyproj import CRS

from emtwin.consequences.defaults import OCCUPANCIES
from emtwin.errors import InputDataError, NetworkError
from emtwin.geo import crs as crsmod
from emtwin.geo.index import edge_cell_index
from emtwin.geo.places import (
    check_inside,
    check_not_cut_off,
    check_reachable,
    population_from,
    read_points,
    snap_to_network,
)
from emtwin.geo.roads import read_roads, roads_from_lines
from emtwin.geo.synthetic import SyntheticTown, synthetic_town
from emtwin.geo.terrain import read_terrain, world_crs_for_raster
from emtwin.geo.world import Places, RoadNetwork, Terrain, World

if TYPE_CHECKING:
    from emtwin.geo.buildings import Buildings
    from emtwin.scenarios.models import Scenario

__all__ = ["build_world", "to_world_xy", "builtin_town", "bridge_decks"]

log = logging.getLogger(__name__)

#: A shelter, station or hospital farther than this from the (strongly connected)
#: road network is off the network: an error, m.
FACILITY_MAX_SNAP_M = 1000.0


@functools.lru_cache(maxsize=4)
def builtin_town(variant: str, scale: float) -> SyntheticTown:
    """The built-in synthetic town *variant* at *scale* (cached; deterministic)."""
    return synthetic_town(variant, scale)


def _builtin_name(value: str | None) -> str | None:
    if value and value.startswith("builtin:"):
        return value.split(":", 1)[1]
    return None


def _empty_points(crs: CRS, **cols: Any) -> gpd.GeoDataFrame:
    data = {k: np.array([], dtype=v) for k, v in cols.items()}
    data.update(node=np.array([], dtype=np.int64), snap_m=np.array([], dtype=float))
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def to_world_xy(points: Any, src_crs: str | CRS, world: World) -> np.ndarray:
    """Points written in a scenario (in *src_crs*) as (n, 2) x, y in the World CRS, m."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(pts) == 0:
        return pts
    src = crsmod.parse_crs(src_crs, what="crs")
    xs, ys = crsmod.to_crs_xy(pts[:, 0], pts[:, 1], src, world.crs)
    return np.column_stack([xs, ys])


def _terrain(scenario: Scenario) -> tuple[Terrain, CRS, SyntheticTown | None]:
    t = scenario.world.terrain
    target = crsmod.parse_crs(scenario.world.crs, what="world.crs") if scenario.world.crs else None
    if t.builtin is not None:
        town = builtin_town(t.builtin, t.scale)
        if target is not None and not target.equals(town.crs):
            raise InputDataError(
                f"world.crs: the built-in terrain '{t.builtin}' is in {town.crs.to_string()}; "
                "leave world.crs out for built-in terrains"
            )
        return town.terrain, town.crs, town
    override = crsmod.parse_crs(t.crs, what="world.terrain.crs") if t.crs else None
    if target is None:
        target = world_crs_for_raster(t.dem, crs_override=override, file_label="world.terrain.dem")
    manning: Any = t.manning
    table = None
    if hasattr(manning, "raster"):
        manning, table = manning.raster, manning.table
    terrain, _ = read_terrain(
        t.dem,
        crs_override=override,
        target_crs=target,
        resolution=t.resolution,
        manning=manning,
        manning_table=table,
        file_label="world.terrain.dem",
    )
    return terrain, target, None


def _buildings(
    scenario: Scenario, crs: CRS, terrain: Terrain, town: SyntheticTown | None
) -> Buildings | None:
    """The buildings of ``consequences.buildings``, or the built-in town's; None without any."""
    from emtwin.geo.buildings import prepare_buildings, read_buildings
    from emtwin.geo.synthetic_buildings import town_buildings

    cfg = scenario.consequences
    assert cfg is not None  # noqa: S101  (checked by the caller)
    opts = {"value_per_m2": cfg.value_per_m2, "first_floor_height": cfg.first_floor_height}
    source = cfg.buildings
    name = _builtin_name(str(source)) if source is not None else None
    if source is None and town is None:
        return None
    if source is None or name is not None:
        town = _town(scenario, name) if name is not None else town
        assert town is not None  # noqa: S101
        gdf = town_buildings(town, **opts)
        label = f"consequences.buildings: builtin:{name or scenario.world.terrain.builtin}"
    else:
        occ = tuple(dict.fromkeys([*OCCUPANCIES, *cfg.curves]))
        gdf = read_buildings(source, crs=crs, occupancies=occ, **opts)
        label = f"consequences.buildings: {source}"
    return prepare_buildings(gdf.to_crs(crs), terrain, source=label)


def _town(scenario: Scenario, name: str) -> SyntheticTown:
    return builtin_town(name, scenario.world.terrain.scale)


def _roads(scenario: Scenario, crs: CRS) -> RoadNetwork | None:
    r = scenario.world.roads
    if r is None:
        return None
    name = _builtin_name(r.source)
    if name:
        return roads_from_lines(_town(scenario, name).roads, crs=crs)
    return read_roads(r.source, crs=crs, file_label="world.roads.source")


class _LayerProblemsError(InputDataError):
    """Every problem found in one place layer (each a one-line message)."""

    def __init__(self, problems: list[str], cls: type[InputDataError] = InputDataError) -> None:
        self.problems, self.cls = problems, cls
        super().__init__("\n".join(problems))


def _layer(
    scenario: Scenario, key: str, crs: CRS, roads: RoadNetwork | None, terrain: Terrain
) -> gpd.GeoDataFrame:
    value = getattr(scenario.world, key)
    required = {"shelters": ("capacity",), "stations": ("name",), "hospitals": ()}[key]
    if value is None:
        cols = {"name": object, "capacity": float} if key == "shelters" else {"name": object}
        return _empty_points(crs, **cols)
    # messages name the scenario file and line of the key that named the data file
    label = scenario.where("world", key)
    name = _builtin_name(value)
    if name:
        gdf = getattr(_town(scenario, name), key).to_crs(crs)
    else:
        gdf = read_points(value, crs=crs, kind=key, default_crs=scenario.crs, file_label=label)
    # a missing column and places outside the DEM are reported together
    problems = []
    missing = [c for c in required if c not in gdf.columns]
    if missing:
        have = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        problems.append(f"{label}: {value}: missing required column "
                        f"{', '.join(repr(c) for c in missing)}; columns present: {have}")
    if "name" not in gdf.columns:
        gdf = gdf.assign(name=[f"{key[:-1]}_{i + 1}" for i in range(len(gdf))])
    gdf = gdf.assign(name=gdf["name"].astype(str))
    try:
        check_inside(gdf, terrain, what=key, file_label=label)
    except InputDataError as exc:
        problems.append(str(exc))
    if problems:
        raise _LayerProblemsError(problems)
    gdf = snap_to_network(gdf, roads, what=key, sinks=key == "shelters")
    check_not_cut_off(gdf, roads, what=key, file_label=label)
    far = gdf[gdf["snap_m"] > FACILITY_MAX_SNAP_M]
    if len(far):
        pairs = zip(far["name"], far["snap_m"], strict=True)
        shown = ", ".join(f"{n!r} ({d:,.0f} m)" for n, d in pairs)
        raise NetworkError(
            f"{label}: {len(far)} of {len(gdf)} {key} are off the road network, farther "
            f"than {FACILITY_MAX_SNAP_M:g} m from any reachable road node: {shown}"
        )
    return gdf


def _unknown_stations(scenario: Scenario, stations: gpd.GeoDataFrame) -> list[str]:
    """A problem for each ``response.resources`` group based at a station the World lacks."""
    if scenario.response is None or scenario.world.stations is None:
        return []  # no stations file: the dispatch component says what it lacks
    names = {str(n) for n in stations["name"]}
    have = ", ".join(sorted(names)) or "none"
    return [
        f"{scenario.where('response', 'resources', i, 'station')}: no station named "
        f"'{g.station}' in world.stations (it has: {have})"
        for i, g in enumerate(scenario.response.resources)
        if g.station not in names
    ]


def _population(
    scenario: Scenario, crs: CRS, roads: RoadNetwork | None, terrain: Terrain
) -> gpd.GeoDataFrame:
    p = scenario.world.population
    if p is None:
        return _empty_points(crs, people=float)
    src: Any = None
    label = scenario.where("world", "population", "source")
    name = _builtin_name(p.source)
    if name:
        src = _town(scenario, name).buildings.to_crs(crs)
    elif p.source is not None:
        src = read_points(
            p.source,
            crs=crs,
            kind="population",
            default_crs=scenario.crs,
            file_label=label,
            keep_polygons=True,
        )
    pop = population_from(src, total=p.total, roads=roads, crs=crs, file_label=label)
    check_inside(pop, terrain, what="population", file_label=label)
    return snap_to_network(pop, roads, what="population")


def bridge_decks(roads: RoadNetwork, terrain: Terrain) -> np.ndarray:
    """Deck elevation of each bridge edge, m (NaN for other edges).

    Taken as the higher ground under the bridge's two end nodes (its abutments),
    since DEMs show the ground or water under a bridge, not its deck.
    """
    deck = np.full(roads.n_edges, np.nan)
    e = np.flatnonzero(roads.bridge)
    if e.size == 0:
        return deck
    zs = []
    for nodes in (roads.edge_u[e], roads.edge_v[e]):
        r, c = terrain.cell_of(roads.node_x[nodes], roads.node_y[nodes])
        ok = r >= 0
        z = np.full(e.size, -np.inf)
        z[ok] = np.where(terrain.mask[r[ok], c[ok]], terrain.z[r[ok], c[ok]], -np.inf)
        zs.append(z)
    top = np.maximum(*zs)
    deck[e] = np.where(np.isfinite(top), top, np.nan)
    return deck


def build_world(scenario: Scenario) -> World:
    """Build the World of *scenario*, every layer in one metric CRS.

    Raises
    ------
    InputDataError, CRSError, NetworkError
        With the scenario key and file of the layer that failed, and what was
        expected.
    """
    t0 = time.perf_counter()
    terrain, crs, town = _terrain(scenario)
    roads = _roads(scenario, crs)
    # the place layers depend on the terrain and roads only, not on each other:
    # read them all and report every one that fails, not only the first
    layers: dict[str, gpd.GeoDataFrame] = {}
    failed: list[tuple[type[InputDataError], str]] = []
    for key in ("population", "shelters", "stations", "hospitals"):
        try:
            layers[key] = (_population(scenario, crs, roads, terrain) if key == "population"
                           else _layer(scenario, key, crs, roads, terrain))  # fmt: skip
        except _LayerProblemsError as exc:
            failed += [(exc.cls, p) for p in exc.problems]
        except InputDataError as exc:
            failed.append((type(exc), str(exc)))
    if "stations" in layers:
        failed += [(InputDataError, p) for p in _unknown_stations(scenario, layers["stations"])]
    if len(failed) == 1:
        raise failed[0][0](failed[0][1])
    if failed:
        # the most specific class all of them share (NetworkError, CRSError or InputDataError)
        cls = failed[0][0] if all(c is failed[0][0] for c, _ in failed) else InputDataError
        raise cls(f"{len(failed)} problems with the World's layers:\n"
                  + "\n".join(f"  - {m}" for _, m in failed))  # fmt: skip
    places = Places(**layers)
    if roads is not None and len(places.shelters) and len(places.population):
        check_reachable(
            roads,
            places.population["node"].to_numpy(),
            places.shelters["node"].to_numpy(),
            what="shelters",
        )
    index = None
    if roads is not None:
        index = edge_cell_index(roads, terrain)
        index.deck_z = bridge_decks(roads, terrain)
    world = World(
        crs=crs, terrain=terrain, roads=roads, places=places, edge_cells=index, name=scenario.name
    )
    if scenario.consequences is not None:
        world.buildings = _buildings(scenario, crs, terrain, town)
    s = world.summary()
    log.info(
        "world %s: %s, %d cells of %g m, %d nodes, %d edges (%.1f km), %.0f people, "
        "%d shelters, built in %.2f s",
        scenario.name, s["crs"], s["cells"], s["cell_size_m"], s["nodes"], s["edges"],
        s["road_km"], s["people"], s["shelters"], time.perf_counter() - t0,
    )  # fmt: skip
    return world
