"""emtwin's building damage against Delft-FIAT 0.4 on the same inputs.

Builds a Delft-FIAT geometry model from emtwin's inputs (the same buildings,
the same curves, the same maximum-depth raster), runs ``fiat run`` on it and
compares ``damage_total``. Two cases:

- ``bubenec``: the 144 building footprints of Bubenec, Prague (momepy test
  data, ``tests/data/bubenec.gpkg``) on its 1 m DTM (EPSG:5514), flooded to a
  flat water level (depth = level - ground);
- ``town``: the built-in riverside town's 2,671 buildings on its 10 m DEM,
  with a water surface sloping down the valley at 1 m over the floodplain.

and two ways of reading the raster under a building:

- ``points``: each building as its centroid (FIAT ``extract_method =
  centroid``; emtwin with point geometries): the same cell, the same depth;
- ``area``: footprints (FIAT ``extract_method = area``). FIAT 0.4 takes the
  *mean* depth of the wet cells a footprint touches times the wet share of
  them (``fiat.methods.flood.calculate_hazard``, method "mean"); emtwin takes
  the *maximum* (issue 19: "the maximum water depth over its footprint").
  Both are printed, plus emtwin's cell index run with FIAT's mean rule, which
  checks that both pick the same cells.

FIAT is not a dependency of emtwin: install it in its own environment
(it builds against the system GDAL)::

    apt-get install -y libgdal-dev
    python -m venv /work/fiatvenv
    /work/fiatvenv/bin/pip install GDAL==$(gdal-config --version)
    /work/fiatvenv/bin/pip install delft-fiat

and run, from the repository root, with emtwin's interpreter::

    PYTHONPATH=. python benchmarks/consequences_fiat.py --fiat-python /work/fiatvenv/bin/python

FIAT is run as ``fiat run settings.toml`` through ``benchmarks/_fiat_run.py``,
which works around a crash of FIAT 0.4.0 with the GDAL 3.6 bindings (see there).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from emtwin.consequences.curves import builtin_curve
from emtwin.consequences.damage import assess_buildings, footprint_max
from emtwin.consequences.defaults import OCCUPANCIES, WET_DEPTH_M
from emtwin.geo.buildings import prepare_buildings, read_buildings
from emtwin.geo.synthetic import synthetic_town
from emtwin.geo.synthetic_buildings import town_buildings
from emtwin.geo.terrain import read_terrain
from emtwin.geo.world import Terrain

ROOT = Path(__file__).resolve().parents[1]
CONTINENT = "europe"
_BUBENEC_LEVEL_M = 212.0  # water level, m (EPSG:5514 heights of the DTM)


def bubenec_case() -> tuple[gpd.GeoDataFrame, Terrain, np.ndarray]:
    """Bubenec buildings, DTM and a flat water level (ground under the buildings: 205-218 m)."""
    gpkg = ROOT / "tests" / "data" / "bubenec.gpkg"
    terrain, crs = read_terrain(f"GPKG:{gpkg}:dtm", crs_override="EPSG:5514")
    table = read_buildings(f"{gpkg}:buildings", crs=crs)
    depth = np.where(terrain.mask, np.maximum(_BUBENEC_LEVEL_M - terrain.z, 0.0), 0.0)
    return table, terrain, depth


def town_case() -> tuple[gpd.GeoDataFrame, Terrain, np.ndarray]:
    """The riverside town, with water 1 m above the bank top along the valley."""
    town = synthetic_town("riverside", 1.0)
    terrain = town.terrain
    x = terrain.transform.c + (np.arange(terrain.shape[1]) + 0.5) * terrain.dx
    bank = 30.0 - 0.0005 * (x - terrain.transform.c)  # the floodplain level (synthetic.py)
    depth = np.maximum(bank[None, :] + 1.0 - terrain.z, 0.0)
    return town_buildings(town), terrain, depth


def emtwin_damage(table: gpd.GeoDataFrame, terrain: Terrain, depth: np.ndarray, mode: str) -> dict:
    """damage_total by emtwin: max rule, and the FIAT mean rule on emtwin's cells."""
    t = table.copy()
    if mode == "points":
        t["geometry"] = t.geometry.centroid
    b = prepare_buildings(t, terrain)
    curves = {o: builtin_curve(o, CONTINENT) for o in OCCUPANCIES}
    res = assess_buildings(b.table, footprint_max(depth, b.indptr, b.cells), curves=curves)
    out = {"n": len(b), "max_rule": float(res["damage"].sum())}
    # FIAT's rule: mean of the wet cells x the wet share
    vals = depth.ravel()[b.cells]
    wet = vals > WET_DEPTH_M
    owner = np.repeat(np.arange(len(b)), np.diff(b.indptr))
    n_wet = np.bincount(owner, weights=wet, minlength=len(b))
    n_all = np.diff(b.indptr)
    s_wet = np.bincount(owner, weights=np.where(wet, vals, 0.0), minlength=len(b))
    mean_wet = np.where(n_wet > 0, s_wet / np.maximum(n_wet, 1), 0.0)
    res2 = assess_buildings(b.table, mean_wet, curves=curves)
    out["fiat_rule"] = float((res2["damage"] * np.where(n_wet > 0, n_wet / n_all, 0)).sum())
    return out, b.table


def write_fiat_model(
    folder: Path, table: gpd.GeoDataFrame, terrain: Terrain, depth: np.ndarray, mode: str
) -> Path:
    """A FIAT 0.4 geometry model (settings.toml, hazard, exposure, vulnerability)."""
    folder.mkdir(parents=True, exist_ok=True)
    nrows, ncols = terrain.shape
    with rasterio.open(
        folder / "hazard.tif", "w", driver="GTiff", height=nrows, width=ncols, count=1,
        dtype="float64", crs=table.crs, transform=terrain.transform, nodata=-9999.0,
    ) as dst:  # fmt: skip
        dst.write(depth.astype(np.float64), 1)
    exp = gpd.GeoDataFrame(
        {
            "object_id": np.arange(1, len(table) + 1, dtype=np.int64),
            "extract_method": "centroid" if mode == "points" else "area",
            "ground_flht": table["first_floor_height_m"].to_numpy(),
            "ground_elevtn": 0.0,
            "fn_damage_structure": table["occupancy"].to_numpy(),
            "max_damage_structure": table["value"].to_numpy(),
        },
        geometry=table.geometry.centroid if mode == "points" else table.geometry.values,
        crs=table.crs,
    )
    exp.to_file(folder / "exposure.gpkg", driver="GPKG")
    depths = builtin_curve("residential", CONTINENT).depth_m
    vul = pd.DataFrame({"water depth": depths})
    for o in OCCUPANCIES:
        vul[o] = builtin_curve(o, CONTINENT)(depths)
    vul.to_csv(folder / "vulnerability.csv", index=False)
    epsg = table.crs.to_epsg()
    (folder / "settings.toml").write_text(
        f"""[model]
srs.value = "EPSG:{epsg}"
threads = 1

[output]
path = "output"
csv.name1 = "output.csv"
geom.name1 = "spatial.gpkg"

[hazard]
file = "hazard.tif"
elevation_reference = "dem"

[exposure.geom]
file1 = "exposure.gpkg"

[vulnerability]
file = "vulnerability.csv"
step_size = 0.01
"""
    )
    return folder / "settings.toml"


def run_fiat(python: str, settings: Path) -> float:
    """Run ``fiat run`` and return the sum of its total damage column."""
    runner = Path(__file__).with_name("_fiat_run.py")
    proc = subprocess.run(
        [python, str(runner), str(settings)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"fiat run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out = pd.read_csv(settings.parent / "output" / "output.csv")
    col = next(c for c in out.columns if c.startswith("total_damage"))
    return float(pd.to_numeric(out[col], errors="coerce").fillna(0.0).sum())


def main() -> None:
    """Print the comparison table."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--fiat-python",
        default="/work/fiatvenv/bin/python",
        help="the interpreter of the environment where delft-fiat is installed",
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the FIAT models here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="emtwin-fiat-")) if args.keep is None else args.keep
    print(f"{'case':8} {'mode':6} {'n':>5} {'emtwin max':>14} {'emtwin FIAT-rule':>17} "
          f"{'FIAT 0.4':>14} {'diff %':>7} {'FIAT s':>6}")  # fmt: skip
    for name, build in (("bubenec", bubenec_case), ("town", town_case)):
        table, terrain, depth = build()
        for mode in ("points", "area"):
            ours, kept = emtwin_damage(table, terrain, depth, mode)
            settings = write_fiat_model(tmp / f"{name}-{mode}", kept, terrain, depth, mode)
            t0 = time.perf_counter()
            theirs = run_fiat(args.fiat_python, settings)
            secs = time.perf_counter() - t0
            ref = ours["max_rule"] if mode == "points" else ours["fiat_rule"]
            diff = 100.0 * (ref - theirs) / theirs if theirs else float("nan")
            print(
                f"{name:8} {mode:6} {ours['n']:5d} {ours['max_rule']:14,.0f} "
                f"{ours['fiat_rule']:17,.0f} {theirs:14,.0f} {diff:7.3f} {secs:6.1f}"
            )
    if args.keep is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
