"""emtwin's typhoon wind against CLIMADA's TropCyclone (Holland 2008) on real tracks.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/typhoon_climada.py [--climada-python PATH]
      [--step 0.05] [--case andrew gretelle usagi]

Cases (tracks with IBTrACS column names; sources in benchmarks/data/README.md),
each on a 0.05-degree grid around its landfall:

- ``andrew``: Hurricane Andrew (1992), 22-25 August, six-hourly; south Florida
  and the Bahamas (24-27.5 N, 82.5-74 W); environment 1010 hPa; the radius of
  maximum wind is missing and estimated by emtwin's reader (Vickery & Wadhera
  2008).
- ``gretelle``: cyclone Gretelle (1997), 23-25 January, three-hourly; south-
  east Madagascar (25-20 S, 43.5-52 E); environment 1005 hPa (as in CLIMADA's
  file); southern hemisphere.
- ``usagi``: typhoon Usagi (2013), 20-23 September, six-hourly; its landfall
  near Shanwei, Guangdong (22 September) after crossing the Luzon Strait
  (20.5-25 N, 111.5-119 E); environment 1010 hPa; the radius of maximum wind
  is estimated by emtwin's reader, as for Andrew. The West Pacific case.

emtwin reads the track; the *same* positions, pressures and radii are handed
to CLIMADA, so the comparison is of the wind models alone.

CLIMADA (climada_python >= 4, ``TropCyclone.from_tracks(model="H08")``) needs
GDAL and lives in its own virtual environment: this script runs itself there
with ``--climada-only`` (pass ``--climada-python``; default
/work/climadavenv/bin/python) and reads back CLIMADA's max wind per point.

emtwin is run with the settings that match the H08 model: B from Holland
(2008), environment 1010 hPa, air density 1.15 kg/m3, surface factor 1 (b_s is
a surface B), full translation vector (``translation_factor = 1``) taken off the
vortex first, no inflow angle, hourly steps on the linearly interpolated track
(CLIMADA's ``equal_timestep(1)``), points in the case's UTM zone. It then prints the
same comparison with emtwin's defaults (inflow angle on, translation factor
0.55) to show how much those choices matter.

Printed: over the points where CLIMADA's max wind reaches tropical-storm force
(17.5 m/s; CLIMADA stores 0 below), the median and 90th percentile of
``|emtwin - CLIMADA| / CLIMADA``, and both peaks. The target is a median
below 5 %.

Measured 2026-12-04 (CLIMADA 6.1.0, 0.05-degree grid):

- andrew (11770 points): H08 settings median 0.53 %, p90 1.43 %, peaks 64.7 vs
  64.0 m/s; emtwin defaults median 2.12 %, p90 11.3 %.
- gretelle (11486 points): H08 settings median 0.30 %, p90 0.89 %, peaks 54.3
  vs 53.4 m/s; emtwin defaults median 2.25 %, p90 8.3 %.
- usagi (9455 points; measured 2026-12-06): H08 settings median 1.11 %, p90
  3.20 %, peaks 54.8 vs 53.2 m/s; emtwin defaults median 3.90 %, p90 12.7 %.

Setting up CLIMADA: ``apt-get install libgdal-dev``, then in a separate venv
``pip install GDAL==$(gdal-config --version)`` (``--no-build-isolation`` with
numpy installed first) and ``pip install climada``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NM_KM = 1.852
KT_M_S = 1852.0 / 3600.0

#: name: (track file, first time, (lat min, max), (lon min, max), env hPa, UTM EPSG, hemisphere)
CASES = {
    "andrew": ("andrew_1992.csv", "1992-08-22T12:00:00", (24.0, 27.5), (-82.5, -74.0),
               1010.0, 32617),
    "gretelle": ("gretelle_1997.csv", "1997-01-23T12:00:00", (-25.0, -20.0), (43.5, 52.0),
                 1005.0, 32738),
    "usagi": ("usagi_2013.csv", "2013-09-20T00:00:00", (20.5, 25.0), (111.5, 119.0),
              1010.0, 32650),
}


def _grid(case: str, step: float) -> tuple[np.ndarray, np.ndarray]:
    _, _, lat_r, lon_r, _, _ = CASES[case]
    lats = np.arange(lat_r[0], lat_r[1] + 1e-9, step)
    lons = np.arange(lon_r[0], lon_r[1] + 1e-9, step)
    lon, lat = np.meshgrid(lons, lats)
    return lat.ravel(), lon.ravel()


# ------------------------------------------------------------------ CLIMADA side


def climada_max_wind(spec: dict) -> np.ndarray:
    """CLIMADA H08 max wind (m/s) at the points of *spec* (run in CLIMADA's venv)."""
    import pandas as pd
    import xarray as xr
    from climada.hazard import Centroids, TCTracks, TropCyclone

    t = pd.to_datetime(spec["time"])
    n = len(t)
    env = spec["env_hpa"]
    step_h = np.diff(t.values).astype("timedelta64[s]").astype(float) / 3600.0
    rmax_nm = np.asarray(spec["rmax_km"]) / NM_KM
    ds = xr.Dataset(
        {
            "time_step": ("time", np.concatenate([step_h[:1], step_h])),
            "radius_max_wind": ("time", rmax_nm),
            "radius_oci": ("time", 6.0 * rmax_nm),
            "max_sustained_wind": ("time", np.asarray(spec["vmax_m_s"]) / KT_M_S),
            "central_pressure": ("time", np.asarray(spec["pressure_hpa"])),
            "environmental_pressure": ("time", np.full(n, env)),
            "basin": ("time", np.full(n, "XX")),
        },
        coords={"time": t, "lat": ("time", spec["lat"]), "lon": ("time", spec["lon"])},
        attrs={"max_sustained_wind_unit": "kn", "central_pressure_unit": "mb",
               "name": spec["case"], "sid": spec["case"], "orig_event_flag": True,
               "data_provider": "ibtracs_usa", "id_no": 1.0, "category": 4},
    )
    tracks = TCTracks(data=[ds])
    tracks.equal_timestep(time_step_h=1)
    lat, lon = _grid(spec["case"], spec["step"])
    cen = Centroids(lat=lat, lon=lon)
    haz = TropCyclone.from_tracks(tracks, centroids=cen, model="H08",
                                  ignore_distance_to_coast=True)
    return np.asarray(haz.intensity.toarray()).ravel()


# ------------------------------------------------------------------ emtwin side


def emtwin_max_wind(case: str, step: float, *, translation_factor: float, inflow: bool
                    ) -> tuple[np.ndarray, dict]:
    """emtwin's max wind (m/s) at the grid points, and the track spec for CLIMADA."""
    from pyproj import CRS

    from emtwin.geo.crs import to_crs_xy
    from emtwin.geo.track import read_track
    from emtwin.typhoon.wind import GridSpec, TyphoonWind, WindParameters

    fname, start, _, _, env, epsg = CASES[case]
    track = read_track(HERE / "data" / fname, env_pressure_hpa=env)
    crs = CRS.from_epsg(epsg)
    lat, lon = _grid(case, step)
    x, y = to_crs_xy(lon, lat, "EPSG:4326", crs)
    grid = GridSpec(float(x.min()), float(y.max()), 5000.0, 2, 2)  # unused: points below
    params = WindParameters(environment_pressure_hpa=env, air_density=1.15,
                            holland_b=None, asymmetry=True,
                            translation_factor=translation_factor, surface_factor=1.0,
                            inflow=inflow)
    wind = TyphoonWind(track, grid, crs=crs, params=params)
    vmax = np.zeros(x.shape)
    for t in np.arange(track.start_s, track.end_s + 1.0, 3600.0):
        v = wind.vortex(float(t))
        u, w = wind.uv_of(v, x, y)
        np.maximum(vmax, np.hypot(u, w), out=vmax)
    t0 = np.datetime64(start)
    spec = {
        "time": [str(t0 + np.timedelta64(int(s), "s")) for s in track.time_s],
        "lat": track.lat.tolist(), "lon": track.lon.tolist(),
        "pressure_hpa": track.pressure_hpa.tolist(), "rmax_km": track.rmax_km.tolist(),
        "vmax_m_s": track.vmax_m_s.tolist(), "step": step, "case": case, "env_hpa": env,
    }
    return vmax, spec


def _compare(label: str, ours: np.ndarray, theirs: np.ndarray) -> float:
    m = theirs >= 17.5
    rel = np.abs(ours[m] - theirs[m]) / theirs[m]
    med = float(np.median(rel))
    print(f"{label}: {int(m.sum())} points >= 17.5 m/s in CLIMADA; "
          f"|emtwin - CLIMADA| / CLIMADA median {100 * med:.2f} %, "
          f"p90 {100 * float(np.percentile(rel, 90)):.2f} %, "
          f"mean signed {100 * float(np.mean((ours[m] - theirs[m]) / theirs[m])):+.2f} %; "
          f"peaks emtwin {ours.max():.1f} m/s, CLIMADA {theirs.max():.1f} m/s")
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--climada-python", default="/work/climadavenv/bin/python")
    ap.add_argument("--step", type=float, default=0.05, help="grid step, degrees")
    ap.add_argument("--case", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    ap.add_argument("--climada-only", metavar="SPEC_JSON", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.climada_only:
        spec = json.loads(Path(args.climada_only).read_text())
        np.save(spec["out"], climada_max_wind(spec))
        return 0

    worst = 0.0
    for case in args.case:
        ours, spec = emtwin_max_wind(case, args.step, translation_factor=1.0, inflow=False)
        dflt, _ = emtwin_max_wind(case, args.step, translation_factor=0.55, inflow=True)
        with tempfile.TemporaryDirectory() as tmp:
            spec["out"] = str(Path(tmp) / "climada.npy")
            sp = Path(tmp) / "spec.json"
            sp.write_text(json.dumps(spec))
            run = subprocess.run([args.climada_python, __file__, "--climada-only", str(sp)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stdout[-2000:], run.stderr[-4000:], sep="\n", file=sys.stderr)
                print(f"CLIMADA run failed ({args.climada_python})", file=sys.stderr)
                return 1
            theirs = np.load(spec["out"])
        print(f"{case}: {CASES[case][0]}, {len(spec['lat'])} points, env {spec['env_hpa']:g} hPa; "
              f"Rmax (km) {', '.join(f'{r:.1f}' for r in spec['rmax_km'])}")
        med = _compare("  H08 settings (translation 1, no inflow)", ours, theirs)
        _compare("  emtwin defaults (translation 0.55, inflow)", dflt, theirs)
        worst = max(worst, med)
    print(f"target: median < 5 % in every case: {'PASS' if worst < 0.05 else 'FAIL'}")
    return 0 if worst < 0.05 else 2


if __name__ == "__main__":
    raise SystemExit(main())
