"""Terrain reading and CRS helpers: real DEMs, hand-made grids and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from emtwin.errors import CRSError, InputDataError
from emtwin.geo.crs import (
    is_metric_projected,
    is_usable,
    parse_crs,
    to_crs_xy,
    transformer,
    utm_crs_for,
)
from emtwin.geo.terrain import (
    choose_world_crs,
    nice_cell_size,
    read_terrain,
    world_crs_for_raster,
)

DATA = Path(__file__).parent / "data"
LAPINLAHTI = DATA / "elevation_model_2021_lapinlahti.tif"
BUBENEC_DTM = f"GPKG:{DATA / 'bubenec.gpkg'}:dtm"
LABEL = "world.terrain.dem"

# 4 x 3 grid of 5 m cells, two nodata cells
ASC = """ncols 4
nrows 3
xllcorner 500000
yllcorner 5000000
cellsize 5
NODATA_value -9999
1 2 3 4
5 -9999 7 8
9 10 11 -9999
"""


def _write_tif(
    path: Path, data: np.ndarray, transform: Affine, crs: str | None, nodata: float | None = None
) -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype,
        "transform": transform,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path


@pytest.fixture()
def asc(tmp_path: Path) -> Path:
    path = tmp_path / "grid.asc"
    path.write_text(ASC)
    return path


# ----------------------------------------------------------------------------- real data


def test_lapinlahti_geographic_to_utm35():
    terrain, crs = read_terrain(LAPINLAHTI, resolution=2, file_label=LABEL)
    assert crs == CRS.from_epsg(32635)
    assert world_crs_for_raster(LAPINLAHTI) == crs
    assert terrain.dx == 2.0
    assert terrain.transform.a == 2.0 and terrain.transform.e == -2.0
    assert terrain.transform.b == 0.0 and terrain.transform.d == 0.0
    assert terrain.z.dtype == np.float64 and np.isfinite(terrain.z).all()
    z = terrain.z[terrain.mask]
    assert z.min() >= -0.01 and z.max() <= 11.0
    assert z.max() > 9.0  # the high ground survives resampling
    # extent: the source corners projected with pyproj directly
    with rasterio.open(LAPINLAHTI) as ds:
        left, bottom, right, top = ds.bounds
        src = ds.read(1)
    t = Transformer.from_crs(4326, 32635, always_xy=True)
    lon = np.linspace(left, right, 50)
    lat = np.linspace(bottom, top, 50)
    edge_lon = np.concatenate([lon, lon, np.full(50, left), np.full(50, right)])
    edge_lat = np.concatenate([np.full(50, bottom), np.full(50, top), lat, lat])
    x, y = t.transform(edge_lon, edge_lat)
    xmin, ymin, xmax, ymax = terrain.bounds
    for got, want in zip(
        (xmin, ymin, xmax, ymax), (x.min(), y.min(), x.max(), y.max()), strict=True
    ):
        assert abs(got - want) <= 2 * terrain.dx
    # about 230 m x 350 m of ground; the valid cells cover the source area
    area_src = (x.max() - x.min()) * (y.max() - y.min())
    assert 0.85 * area_src < terrain.mask.sum() * terrain.dx**2 <= area_src * 1.05
    # the elevations keep their distribution
    assert abs(z.mean() - src.mean()) < 0.1


def test_lapinlahti_default_cell_size_from_source_pixels():
    terrain, crs = read_terrain(LAPINLAHTI)
    # source pixels are ~0.84 m x 1.68 m: geometric mean 1.19 m -> 1 m
    assert crs.to_epsg() == 32635
    assert terrain.dx == 1.0


def test_bubenec_local_cs_with_override():
    terrain, crs = read_terrain(BUBENEC_DTM, crs_override="EPSG:5514", file_label=LABEL)
    assert crs.to_epsg() == 5514
    assert terrain.shape == (647, 592)
    assert terrain.dx == 1.0
    assert terrain.transform == Affine(1.0, 0.0, -744171.0, 0.0, -1.0, -1040820.0)
    assert terrain.mask.all()
    assert 188.0 < terrain.z.min() < 189.0 and 222.0 < terrain.z.max() < 223.0
    assert terrain.source == BUBENEC_DTM


def test_bubenec_without_override_is_a_crs_error():
    with pytest.raises(CRSError, match=r"S-JTSK_Krovak_East_North.*world\.terrain\.crs"):
        read_terrain(BUBENEC_DTM, file_label=LABEL)
    with pytest.raises(CRSError, match="world.terrain.crs"):
        world_crs_for_raster(BUBENEC_DTM, file_label=LABEL)


def test_bubenec_to_explicit_target_crs():
    terrain, crs = read_terrain(BUBENEC_DTM, crs_override=5514, target_crs="EPSG:32633")
    assert crs.to_epsg() == 32633
    assert terrain.dx == 1.0
    z = terrain.z[terrain.mask]
    assert z.min() > 188.0 and z.max() < 223.0
    assert abs(terrain.mask.sum() - 647 * 592) < 0.02 * 647 * 592


# ----------------------------------------------------------------------------- ASCII grid


def test_ascii_grid_values_and_nodata(asc: Path):
    terrain, crs = read_terrain(asc, crs_override="EPSG:32633")
    assert crs.to_epsg() == 32633
    assert terrain.shape == (3, 4)
    assert terrain.dx == 5.0
    assert terrain.transform == Affine(5.0, 0.0, 500000.0, 0.0, -5.0, 5000015.0)
    expected_mask = np.array(
        [[True, True, True, True], [True, False, True, True], [True, True, True, False]]
    )
    np.testing.assert_array_equal(terrain.mask, expected_mask)
    expected = np.array([[1, 2, 3, 4], [5, 11, 7, 8], [9, 10, 11, 11]], dtype=float)
    np.testing.assert_array_equal(terrain.z, expected)  # nodata cells hold the max (11)
    assert terrain.manning == 0.035
    # cell lookups in the World CRS
    assert terrain.inside(500002.5, 5000012.5)
    assert not terrain.inside(500007.5, 5000007.5)  # the nodata cell


def test_ascii_grid_resampled(asc: Path):
    terrain, _ = read_terrain(asc, crs_override="EPSG:32633", resolution=2.5)
    assert terrain.shape == (6, 8)
    assert terrain.dx == 2.5
    z = terrain.z[terrain.mask]
    assert z.min() >= 1.0 and z.max() <= 11.0
    assert not terrain.mask[2:4, 2:4].any()  # the nodata cell stays outside


def test_ascii_grid_without_crs(asc: Path):
    with pytest.raises(CRSError, match=r"no CRS.*world\.terrain\.crs"):
        read_terrain(asc, file_label=LABEL)


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path):
    missing = tmp_path / "nope.tif"
    with pytest.raises(InputDataError, match=r"world\.terrain\.dem: .*nope\.tif: file not found"):
        read_terrain(missing, file_label=LABEL)
    with pytest.raises(InputDataError, match="file not found"):
        read_terrain(f"GPKG:{tmp_path / 'nope.gpkg'}:dtm", file_label=LABEL)


def test_not_a_raster(tmp_path: Path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not an elevation model\n")
    with pytest.raises(InputDataError, match=r"world\.terrain\.dem: .*notes\.txt: cannot read"):
        read_terrain(text, file_label=LABEL)


def test_missing_gpkg_layer():
    with pytest.raises(InputDataError, match="cannot read"):
        read_terrain(f"GPKG:{DATA / 'bubenec.gpkg'}:nosuchlayer", crs_override=5514)


def test_all_nodata(tmp_path: Path):
    data = np.full((4, 5), -9999.0, dtype=np.float32)
    path = _write_tif(
        tmp_path / "empty.tif", data, Affine(10, 0, 500000, 0, -10, 5000050), "EPSG:32633", -9999
    )
    with pytest.raises(InputDataError, match="every cell is nodata"):
        read_terrain(path, file_label=LABEL)


def test_float32_fill_and_nan_are_outside(tmp_path: Path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    data[0, 0] = -3.4028234663852886e38
    data[2, 3] = np.nan
    path = _write_tif(tmp_path / "f.tif", data, Affine(1, 0, 0, 0, -1, 3), "EPSG:32633")
    terrain, _ = read_terrain(path)
    assert not terrain.mask[0, 0] and not terrain.mask[2, 3]
    assert terrain.mask.sum() == 10
    assert terrain.z[0, 0] == 10.0 and terrain.z[2, 3] == 10.0


def test_geographic_with_absurd_bounds(tmp_path: Path):
    # projected coordinates labelled as EPSG:4326
    data = np.ones((5, 5), dtype=np.float32)
    path = _write_tif(
        tmp_path / "bad.tif", data, Affine(10, 0, 400000, 0, -10, 5550050), "EPSG:4326"
    )
    with pytest.raises(CRSError, match=r"no way to pick a zone.*world\.terrain\.crs"):
        read_terrain(path, file_label=LABEL)
    polar = _write_tif(tmp_path / "polar.tif", data, Affine(0.01, 0, 10, 0, -0.01, 88), "EPSG:4326")
    with pytest.raises(CRSError, match="no way to pick a zone"):
        world_crs_for_raster(polar)


def test_bad_resolution(asc: Path):
    with pytest.raises(InputDataError, match="resolution"):
        read_terrain(asc, crs_override=32633, resolution=-1)


def test_target_crs_must_be_metric(asc: Path):
    with pytest.raises(CRSError, match="projected with metre units"):
        read_terrain(asc, crs_override=32633, target_crs="EPSG:4326")


# ----------------------------------------------------------------------------- Manning


def test_manning_scalar_and_bad_scalar(asc: Path):
    terrain, _ = read_terrain(asc, crs_override=32633, manning=0.05)
    assert terrain.manning == 0.05
    with pytest.raises(InputDataError, match="must be > 0"):
        read_terrain(asc, crs_override=32633, manning=0.0)


def test_manning_raster_resampled_nearest(asc: Path, tmp_path: Path):
    # 2.5 m cells over the same extent, no CRS: taken to be in the DEM's CRS
    n = np.where(np.arange(8)[None, :] < 4, 0.02, 0.06).repeat(6, axis=0).astype(np.float32)
    path = _write_tif(tmp_path / "n.tif", n, Affine(2.5, 0, 500000, 0, -2.5, 5000015), None)
    terrain, _ = read_terrain(asc, crs_override="EPSG:32633", manning=path)
    assert isinstance(terrain.manning, np.ndarray)
    assert terrain.manning.shape == terrain.shape
    expected = np.where(np.arange(4)[None, :] < 2, 0.02, 0.06).repeat(3, axis=0)
    np.testing.assert_allclose(terrain.manning[terrain.mask], expected[terrain.mask], rtol=1e-6)
    assert np.isfinite(terrain.manning).all()


def test_manning_land_cover_table(asc: Path, tmp_path: Path):
    lc = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3]], dtype=np.uint8)
    path = _write_tif(
        tmp_path / "lc.tif", lc, Affine(5, 0, 500000, 0, -5, 5000015), "EPSG:32633", 0
    )
    table = {1: 0.02, 2: 0.1, 3: 0.04}
    terrain, _ = read_terrain(asc, crs_override=32633, manning=path, manning_table=table)
    expected = np.array([[0.02, 0.02, 0.1, 0.1], [0.02, 0.02, 0.1, 0.1], [0.04] * 4])
    np.testing.assert_allclose(terrain.manning[terrain.mask], expected[terrain.mask])
    with pytest.raises(InputDataError, match=r"classes 3 are not in the Manning table"):
        read_terrain(asc, crs_override=32633, manning=path, manning_table={1: 0.02, 2: 0.1})
    with pytest.raises(InputDataError, match="must be > 0"):
        read_terrain(asc, crs_override=32633, manning=path, manning_table={1: 0, 2: 1, 3: 1})


def test_manning_raster_missing(asc: Path, tmp_path: Path):
    with pytest.raises(InputDataError, match=r"world\.terrain\.manning: .*file not found"):
        read_terrain(asc, crs_override=32633, manning=tmp_path / "none.tif")


# ----------------------------------------------------------------------------- CRS helpers


def test_parse_crs_forms():
    assert parse_crs(32633).to_epsg() == 32633
    assert parse_crs("epsg:4326").to_epsg() == 4326
    assert parse_crs("5514").to_epsg() == 5514
    assert parse_crs(CRS.from_epsg(3857).to_wkt()).to_epsg() == 3857
    assert parse_crs("EPSG:5514+5705").to_epsg() == 5514  # compound -> horizontal part
    with pytest.raises(CRSError, match=r"world\.crs: cannot parse"):
        parse_crs("not a crs", what="world.crs")
    with pytest.raises(CRSError, match="no CRS"):
        parse_crs(None, what="world.crs")
    local = (
        'LOCAL_CS["S-JTSK_Krovak_East_North",UNIT["metre",1],'
        'AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    )
    with pytest.raises(CRSError, match=r"world\.terrain\.crs: PROJ cannot use"):
        parse_crs(local, what="world.terrain.crs")
    assert not is_usable(CRS.from_wkt(local))
    assert is_usable(CRS.from_epsg(5514))


def test_utm_zones():
    assert utm_crs_for(24.91, 60.17).to_epsg() == 32635  # Helsinki
    assert utm_crs_for(14.42, 50.09).to_epsg() == 32633  # Prague
    assert utm_crs_for(-70.6, -33.4).to_epsg() == 32719  # Santiago
    assert utm_crs_for(180.0, 0.0).to_epsg() == 32601
    with pytest.raises(CRSError, match="84"):
        utm_crs_for(0.0, 85.0)


def test_metric_projected_and_choice():
    assert is_metric_projected(CRS.from_epsg(32633))
    assert not is_metric_projected(CRS.from_epsg(4326))
    assert not is_metric_projected(CRS.from_epsg(2263))  # US survey feet
    # a feet CRS is replaced by the UTM zone of its centre (New York: zone 18N)
    ny = choose_world_crs(CRS.from_epsg(2263), (980000.0, 190000.0, 990000.0, 200000.0))
    assert ny.to_epsg() == 32618
    assert choose_world_crs(CRS.from_epsg(4326), (24.9, 60.1, 25.0, 60.2)).to_epsg() == 32635


def test_transform_roundtrip_and_cache():
    x, y = to_crs_xy([14.42, 14.43], [50.09, 50.10], "EPSG:4326", "EPSG:32633")
    assert x.shape == (2,) and 400000 < x[0] < 500000 and 5_500_000 < y[0] < 5_600_000
    lon, lat = to_crs_xy(x, y, 32633, 4326)
    np.testing.assert_allclose(lon, [14.42, 14.43], atol=1e-9)
    np.testing.assert_allclose(lat, [50.09, 50.10], atol=1e-9)
    assert transformer(4326, 32633) is transformer("EPSG:4326", CRS.from_epsg(32633))


def test_nice_cell_size():
    assert nice_cell_size(1.19) == 1.0
    assert nice_cell_size(0.84) == 1.0
    assert nice_cell_size(1.7) == 2.0
    assert nice_cell_size(30.9) == 30.0
    assert nice_cell_size(92.0) == 100.0
    assert nice_cell_size(0.27) == 0.25


def test_south_up_raster_is_flipped_north_up(tmp_path: Path):
    data = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)  # row 0 is the south row
    path = _write_tif(tmp_path / "s.tif", data, Affine(10, 0, 500000, 0, 10, 5000000), 32633)
    terrain, _ = read_terrain(path)
    assert terrain.transform == Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000020.0)
    np.testing.assert_allclose(terrain.z, [[4, 5, 6], [1, 2, 3]])
    assert terrain.mask.all()
