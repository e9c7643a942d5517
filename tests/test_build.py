"""Building whole Worlds from scenario files: the built-in town and real data."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from emtwin.geo.build import build_world, builtin_town
from emtwin.scenarios import load_scenario

DATA = Path(__file__).parent / "data"


def scenario_file(folder: Path, text: str) -> Path:
    p = folder / "s.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_riverside_world_is_deterministic() -> None:
    sc = load_scenario("riverside")
    a = build_world(sc)
    builtin_town.cache_clear()
    b = build_world(sc)
    assert a.crs == b.crs
    np.testing.assert_array_equal(a.terrain.z, b.terrain.z)
    np.testing.assert_array_equal(a.terrain.mask, b.terrain.mask)
    for name in ("edge_u", "edge_v", "length_m", "speed_m_s", "capacity_veh_h", "node_x"):
        np.testing.assert_array_equal(getattr(a.roads, name), getattr(b.roads, name))
    np.testing.assert_array_equal(a.edge_cells.indptr, b.edge_cells.indptr)
    np.testing.assert_array_equal(a.edge_cells.cells, b.edge_cells.cells)
    np.testing.assert_array_equal(a.places.population["people"], b.places.population["people"])
    s = a.summary()
    assert s["cells"] == 120_000 and s["people"] == pytest.approx(20_000)
    assert (s["shelters"], s["stations"], s["hospitals"]) == (3, 2, 1)
    # every place is snapped to a node of the network
    for gdf in (a.places.population, a.places.shelters, a.places.stations):
        assert (gdf["node"] >= 0).all() and (gdf["node"] < a.roads.n_nodes).all()
    # the two bridges are bridges, with decks above the river bed under them
    bridges = np.flatnonzero(a.roads.bridge)
    assert set(a.roads.road_id[bridges]) == {"bridge-west", "bridge-east"}
    deck = a.edge_cells.deck_z[bridges]
    bed = [a.terrain.z.reshape(-1)[a.edge_cells.of(e)].min() for e in bridges]
    assert (deck > np.array(bed) + 2.0).all()


def test_lapinlahti_flood_only_world_in_utm(tmp_path: Path) -> None:
    shutil.copy(DATA / "elevation_model_2021_lapinlahti.tif", tmp_path / "dem.tif")
    p = scenario_file(tmp_path, """\
        world:
          terrain: {dem: dem.tif, resolution: 2}
        """)  # fmt: skip
    w = build_world(load_scenario(p))
    assert w.crs.to_epsg() == 32635  # Helsinki is in UTM zone 35N
    assert w.terrain.dx == 2.0 and w.roads is None
    # extent: the source's width in metres at its latitude, measured on the ellipsoid
    import rasterio

    with rasterio.open(DATA / "elevation_model_2021_lapinlahti.tif") as r:
        b = r.bounds
    # the area inside the domain equals the source's area on the ellipsoid (the box turns
    # a little in UTM, so compare areas, not widths)
    lons = [b.left, b.right, b.right, b.left]
    lats = [b.bottom, b.bottom, b.top, b.top]
    area_m2 = abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0])
    assert w.terrain.mask.sum() * 4.0 == pytest.approx(area_m2, rel=0.02)
    z = w.terrain.z[w.terrain.mask]
    assert z.min() >= -1.0 and z.max() <= 12.0


def test_bubenec_world_with_crs_override(tmp_path: Path) -> None:
    shutil.copy(DATA / "bubenec.gpkg", tmp_path / "b.gpkg")
    p = scenario_file(tmp_path, """\
        crs: EPSG:3857
        world:
          terrain: {dem: "GPKG:b.gpkg:dtm", crs: "EPSG:5514"}
          roads: b.gpkg:streets
          population: {source: b.gpkg:buildings, total: 3000}
        """)  # fmt: skip
    w = build_world(load_scenario(p))
    assert w.crs.to_epsg() == 5514  # the DEM's own metric CRS
    assert w.roads.n_edges > 40 and 5.0 < w.roads.total_km < 12.0
    assert w.places.total_people == pytest.approx(3000)
    z = w.terrain.z[w.terrain.mask]
    assert z.min() > 185.0 and z.max() < 225.0
    # every edge has cells under it: the streets lie on the DEM
    assert (np.diff(w.edge_cells.indptr) > 0).mean() > 0.9
