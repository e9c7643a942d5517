"""Reading buildings (GeoPackage, OSM XML/PBF), their cells, and the town's buildings."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from emtwin.consequences.defaults import FIRST_FLOOR_HEIGHT_M, VALUE_PER_M2
from emtwin.errors import InputDataError
from emtwin.geo.buildings import footprint_cells, prepare_buildings, read_buildings
from emtwin.geo.synthetic import synthetic_town
from emtwin.geo.synthetic_buildings import town_buildings
from emtwin.geo.world import Terrain

DATA = Path(__file__).parent / "data"
KROVAK = "EPSG:5514"


def _grid(nrows: int = 5, ncols: int = 5) -> Terrain:
    mask = np.ones((nrows, ncols), bool)
    mask[0, 0] = False
    return Terrain(np.zeros((nrows, ncols)), mask, Affine(1.0, 0, 0, 0, -1.0, nrows), 1.0)


def test_footprint_cells_polygon_point_and_edges():
    t = _grid()
    geoms = np.array(
        [
            shapely.box(1.2, 1.2, 2.8, 2.8),  # cells cols 1-2, rows 2-3
            shapely.Point(3.5, 0.5),  # row 4, col 3
            shapely.box(-3.0, 3.5, 1.5, 4.5),  # rows 0-1, cols 0-1 on the grid; (0, 0) is masked
            shapely.box(10.0, 10.0, 11.0, 11.0),  # off the grid
        ],
        dtype=object,
    )
    indptr, cells = footprint_cells(geoms, t)
    got = [sorted(cells[indptr[i] : indptr[i + 1]].tolist()) for i in range(4)]
    assert got == [[11, 12, 16, 17], [23], [1, 5, 6], []]


def test_bubenec_footprints_value_from_area(tmp_path):
    """144 footprints, no attributes: residential, 2 levels, value = 600 x area x 2."""
    gdf = read_buildings(f"{DATA / 'bubenec.gpkg'}:buildings", crs=KROVAK)
    assert len(gdf) == 144
    assert set(gdf["occupancy"]) == {"residential"} and set(gdf["levels"]) == {2}
    # areas in an equal-area projection (LAEA Europe) agree: Krovak's scale error < 1e-4
    laea = read_buildings(f"{DATA / 'bubenec.gpkg'}:buildings", crs="EPSG:3035")
    area = laea.geometry.area.to_numpy()
    np.testing.assert_allclose(gdf["area_m2"], area, rtol=1e-3)
    np.testing.assert_allclose(gdf["value"], VALUE_PER_M2["residential"] * 2 * area, rtol=1e-3)
    np.testing.assert_allclose(gdf["first_floor_height_m"], FIRST_FLOOR_HEIGHT_M["residential"])
    assert gdf["building"].iloc[0] == "1"  # the uID column


def test_values_and_occupancy_from_columns(tmp_path):
    p = tmp_path / "b.geojson"
    gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c"],
            "occupancy": ["industrial", None, None],
            "building": [None, "retail", "yes"],
            "amenity": [None, None, "hospital"],
            "building:levels": [None, "3", None],
            "value": [None, None, 5e6],
            "first_floor_height": [1.0, None, None],
        },  # fmt: skip
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 20), shapely.Point(50, 5)],
        crs="EPSG:32633",
    ).to_file(p)
    gdf = read_buildings(p, crs="EPSG:32633")
    assert gdf["occupancy"].tolist() == ["industrial", "commercial", "commercial"]
    assert gdf["kind"].tolist() == ["industrial", "retail", "hospital"]
    assert gdf["levels"].tolist() == [1, 3, 2]
    np.testing.assert_allclose(gdf["value"], [500.0 * 100 * 1, 700.0 * 200 * 3, 5e6])
    np.testing.assert_allclose(gdf["first_floor_height_m"], [1.0, 0.15, 0.15])
    with pytest.raises(InputDataError, match="column occupancy: unknown value"):
        bad = tmp_path / "bad.geojson"
        gpd.GeoDataFrame({"occupancy": ["castle"]}, geometry=[shapely.box(0, 0, 1, 1)],
                         crs="EPSG:32633").to_file(bad)  # fmt: skip
        read_buildings(bad, crs="EPSG:32633", file_label="consequences.buildings")
    pts = tmp_path / "pts.geojson"
    gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.Point(0, 0)], crs="EPSG:32633").to_file(pts)
    with pytest.raises(InputDataError, match="points without a `value` or `area_m2`"):
        read_buildings(pts, crs="EPSG:32633")


def test_osm_xml_buildings_west_oakland():
    """23 ways tagged building=*: 2 retail (commercial), 21 others residential."""
    gdf = read_buildings(DATA / "West-Oakland.osm.bz2", crs="EPSG:32610")
    assert len(gdf) == 23
    assert all(b.startswith("way/") for b in gdf["building"])
    assert (gdf["occupancy"] == "commercial").sum() == 2
    assert (gdf["kind"] == "retail").sum() == 2
    assert (gdf["area_m2"] > 50).all() and gdf.crs.to_epsg() == 32610


def test_osm_pbf_gives_the_same_buildings(tmp_path):
    osmium = pytest.importorskip("osmium")
    pbf = tmp_path / "wo.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as w:
        for obj in osmium.FileProcessor(str(DATA / "West-Oakland.osm.bz2")):
            w.add(obj)
    a = read_buildings(DATA / "West-Oakland.osm.bz2", crs="EPSG:32610").set_index("building")
    b = read_buildings(pbf, crs="EPSG:32610").set_index("building")
    assert sorted(a.index) == sorted(b.index)
    np.testing.assert_allclose(b.loc[a.index, "area_m2"], a["area_m2"], rtol=1e-6)


def test_town_buildings_deterministic_with_every_kind():
    town = synthetic_town("riverside", 1.0)
    a, b = town_buildings(town), town_buildings(town)
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    counts = a["kind"].value_counts()
    assert counts["school"] == 1 and counts["hospital"] == 1 and counts["shop"] == 24
    assert counts["flats"] > 0 and counts["house"] > 0 and counts["warehouse"] > 0
    assert a["occupants"].sum() == town.buildings["occupants"].sum()
    built = prepare_buildings(a, town.terrain)
    assert built.dropped == 0 and (np.diff(built.indptr) > 0).all()
    # the school and the shops stand on the floodplain, the hospital on the hill
    ground = town.terrain.z.ravel()
    low = {k: ground[built.cells_of(int(np.flatnonzero(a["kind"] == k)[0]))].min()
           for k in ("school", "shop", "hospital")}  # fmt: skip
    bank = town.levels["bank_gauge_bridge"]
    assert low["school"] < bank + 1.0 and low["shop"] < bank + 1.0
    assert low["hospital"] > bank + 3.0
