"""Writing a run's Results to its output folder, all or nothing.

Files follow the contract of scenario-format.md. Everything is written to a
hidden temporary folder beside the target and renamed into place at the end,
so a failed run leaves no half-written folder; an older folder of the same
name is replaced only once the new one is complete.

Safety rules (checked by :func:`prepare_out_dir` before a run starts, and
again by :func:`write_results`):

* emtwin marks every folder it writes with a small ``.emtwin-output`` file,
  and replaces only a folder so marked (or an empty one). Any other existing
  folder, a file, the current folder or one above it, the home folder and
  the root are refused.
* The folder's parent must be writable.
* Temporary folders ``.NAME.tmp-*`` (and ``.NAME.old-*``) left by a killed
  run are removed once the process that made them is gone; only folders that
  hold emtwin's marker are touched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import numpy as np

from emtwin.errors import OutputError
from emtwin.scenarios.models import RasterName
from emtwin.sim.results import Results

__all__ = [
    "write_results",
    "prepare_out_dir",
    "OUTPUT_MARKER",
    "mark_output",
    "roads_table",
    "calls_layer",
    "units_layer",
    "json_safe",
]

#: The file that marks a folder as written by emtwin (and so replaceable by it).
OUTPUT_MARKER = ".emtwin-output"

#: Tables written as Parquet (one row per household: too large for CSV); the rest as CSV.
PARQUET_TABLES = frozenset({"households", "buildings"})

#: Rasters and the value written outside the domain / where the quantity never occurred.
RASTER_NODATA = -9999.0


def json_safe(x: Any) -> Any:
    """JSON-safe copy: NaN/inf become null, NumPy arrays and scalars Python lists and numbers."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def roads_table(results: Results) -> Any:
    """Roads as a GeoDataFrame in the World CRS: attributes, first closure time, loads.

    Columns: ``edge``, ``road_id``, ``name``, ``highway``, ``length_m``,
    ``speed_m_s``, ``lanes``, ``capacity_veh_h``, ``first_closed_s`` (NaN if
    never), ``max_depth_m``, plus any per-edge columns the components added
    under ``results.tables["roads"]`` (e.g. ``peak_queue``, ``passed``).
    """
    import geopandas as gpd

    roads = results.roads
    data = {
        "edge": roads["edge"].to_numpy(),
        "road_id": roads["road_id"].to_numpy(),
        "name": roads["name"].to_numpy(),
        "highway": roads["highway"].to_numpy(),
        "length_m": np.round(roads["length_m"].to_numpy(), 2),
        "speed_m_s": np.round(roads["speed_m_s"].to_numpy(), 3),
        "lanes": roads["lanes"].to_numpy(),
        "capacity_veh_h": roads["capacity_veh_h"].to_numpy(),
        "first_closed_s": roads["first_closed_s"].to_numpy(),
        "max_depth_m": roads["max_depth_m"].to_numpy(),
    }
    extra = results.tables.get("roads")
    if extra is not None:
        for col in extra.columns:
            data[col] = np.asarray(extra[col])
    return gpd.GeoDataFrame(data, geometry=list(roads.geometry), crs=roads.crs)


def _dispatch_ran(results: Results) -> bool:
    """True when the dispatch component took part and left its calls and units tables."""
    run = results.summary.get("run") or {}
    return (
        "dispatch" in (run.get("components") or [])
        and "calls" in results.tables
        and "units" in results.tables
    )


def calls_layer(results: Results) -> Any:
    """Calls as points in the World CRS: one feature per row of ``calls.csv``.

    The point is the call's ``x, y`` (m, World CRS; kept as columns too), with
    every column of the calls table: ``id``, ``time_s``, ``priority``, ``type``,
    ``needs``, ``state``, ``response_s``, ``wait_s``, ``unit``, ``source``,
    ``people``, ``to_hospital``, ``hospital``, ``hospital_s`` (times in s; NaN
    where the call never got there).
    """
    import geopandas as gpd

    calls = results.tables["calls"].reset_index(drop=True)
    geom = gpd.points_from_xy(calls["x"].astype(float), calls["y"].astype(float))
    return gpd.GeoDataFrame(calls, geometry=geom, crs=results.crs)


def units_layer(results: Results) -> Any:
    """Units as points at their station in the World CRS: one feature per row of ``units.csv``.

    A unit stands at the road node its (final) home station is snapped to,
    where it starts and ends its trips; a station without a node falls back to
    the station's own point. Columns as in the units table: ``id``, ``type``,
    ``station``, ``busy_s`` (s), ``calls``, ``utilisation`` (share of the
    run), ``state``.
    """
    import geopandas as gpd

    units = results.tables["units"].reset_index(drop=True)
    st = results.places["stations"]
    nodes = results.nodes
    where: dict[str, tuple[float, float]] = {}
    for name, node, pt in zip(st["name"], st["node"], st.geometry, strict=True):
        k = int(node)
        if k >= 0 and nodes is not None:
            where[str(name)] = (float(nodes["x"].iat[k]), float(nodes["y"].iat[k]))
        else:
            where[str(name)] = (float(pt.x), float(pt.y))
    xy = [where.get(str(s), (np.nan, np.nan)) for s in units["station"]]
    geom = gpd.points_from_xy([p[0] for p in xy], [p[1] for p in xy])
    return gpd.GeoDataFrame(units, geometry=geom, crs=results.crs)


def _write_raster(path: Path, array: np.ndarray, results: Results) -> None:
    import rasterio

    g = results.grid
    out = np.where(np.isfinite(array) & g.mask, array, RASTER_NODATA).astype("float32")
    profile = {
        "driver": "GTiff",
        "height": out.shape[0],
        "width": out.shape[1],
        "count": 1,
        "dtype": "float32",
        "crs": results.crs,
        "transform": g.transform,
        "nodata": RASTER_NODATA,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)


def mark_output(folder: Path) -> None:
    """Write the marker: which process on which host is writing *folder*."""
    info = {"writer": "emtwin", "pid": os.getpid(), "host": socket.gethostname()}
    (folder / OUTPUT_MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")


def _is_stale(folder: Path) -> bool:
    """True if *folder* holds emtwin's marker and the process that wrote it is gone."""
    try:
        info = json.loads((folder / OUTPUT_MARKER).read_text(encoding="utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return False  # another machine's run: cannot tell, leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _clean_stale(out: Path) -> None:
    """Remove ``.NAME.tmp-*`` and ``.NAME.old-*`` folders of dead emtwin runs beside *out*."""
    parent = out.parent
    if not parent.is_dir():
        return
    for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*"):
        for p in parent.glob(pattern):
            if p.is_dir() and not p.is_symlink() and _is_stale(p):
                shutil.rmtree(p, ignore_errors=True)


def prepare_out_dir(out_dir: str | Path, *, replace: bool = True) -> Path:
    """Check, before a run, that *out_dir* may be written; return its absolute path.

    Parameters
    ----------
    out_dir
        The output folder.
    replace
        True (``emtwin run``): the folder will be replaced as a whole, so an
        existing one must be empty or hold the ``.emtwin-output`` marker.
        False (a batch folder, added to in place): only writability is checked.

    Raises
    ------
    OutputError
        The folder is a file, the current folder or one above it, the home
        folder or the root; exists and was not written by emtwin; or its
        parent cannot be created or written.
    """
    given = str(out_dir)
    out = Path(out_dir).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if out == Path(out.anchor) or out == Path.home().resolve() or cwd.is_relative_to(out):
        raise OutputError(
            f"output folder {given!r} ({out}) is the current folder, one above it, the home "
            "folder or the root, which emtwin never replaces; name a new folder with --out"
        )
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputError(f"output folder {given!r} exists and is not a folder")
        if replace and not (out / OUTPUT_MARKER).is_file() and any(out.iterdir()):
            raise OutputError(
                f"output folder {given!r} ({out}) exists and was not written by emtwin (it has "
                f"no {OUTPUT_MARKER} file); emtwin replaces only folders it wrote. Choose "
                "another --out, or move the folder away yourself"
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent)
        os.rmdir(probe)
        if out.is_dir() and not replace:
            probe = tempfile.mkdtemp(prefix=".emtwin-probe-", dir=out)
            os.rmdir(probe)
    except OSError as exc:
        raise OutputError(
            f"output folder {given!r} cannot be written: {exc.strerror or exc}"
        ) from None
    _clean_stale(out)
    return out


def write_results(
    results: Results,
    out_dir: str | Path,
    *,
    extra: dict[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write *results* to *out_dir* (created or replaced as a whole); return its path.

    Only a folder emtwin wrote (marked ``.emtwin-output``) or an empty one is
    replaced; see :func:`prepare_out_dir`, which the CLI calls before the run.

    Parameters
    ----------
    results
        What :meth:`Simulation.run` returned.
    out_dir
        The output folder.
    extra
        Further writers by file name, each called with the file's path inside
        the temporary folder (maps and reports use this).

    Raises
    ------
    OutputError
        When *out_dir* may not be replaced or written.
    """
    out = prepare_out_dir(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        mark_output(tmp)
        _write_all(results, tmp, extra or {})
        if out.exists():
            old = out.parent / f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_all(results: Results, folder: Path, extra: dict[str, Callable[[Path], None]]) -> None:
    (folder / "summary.json").write_text(
        json.dumps(json_safe(results.summary), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    results.events.to_parquet(folder / "events.parquet", index=False)
    results.timeseries.to_parquet(folder / "timeseries.parquet", index=False)
    for name, table in results.tables.items():
        if name == "roads":
            continue
        if name in PARQUET_TABLES:
            table.to_parquet(folder / f"{name}.parquet", index=False)
            continue
        table.to_csv(folder / f"{name}.csv", index=False, float_format="%.10g")
    wanted = set(results.scenario.outputs.rasters) if results.scenario else set(results.rasters)
    # a hazard's own rasters (max_wind ...) are always written; the flood's are chosen
    wanted |= set(results.rasters) - set(get_args(RasterName))
    for name, array in results.rasters.items():
        if name in wanted:
            _write_raster(folder / f"{name}.tif", array, results)
    if results.roads is not None:
        # GeoJSON is WGS84 lon/lat by its standard (RFC 7946); rasters stay in the World CRS.
        roads_table(results).to_crs("EPSG:4326").to_file(
            folder / "roads.geojson", driver="GeoJSON"
        )
        if _dispatch_ran(results):
            # the dispatch's calls and units for the map, in the same CRS as roads.geojson
            for name, layer in (("calls", calls_layer), ("units", units_layer)):
                layer(results).to_crs("EPSG:4326").to_file(
                    folder / f"{name}.geojson", driver="GeoJSON"
                )
    if results.scenario is not None:
        import yaml

        dumped = results.scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
        (folder / "scenario.yaml").write_text(
            "# The scenario as run, every default filled in (SI units: s, m, m3/s).\n"
            + yaml.safe_dump(dumped, sort_keys=False),
            encoding="utf-8",
        )
    for name, writer in extra.items():
        writer(folder / name)
