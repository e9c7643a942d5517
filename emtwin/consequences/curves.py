"""Depth-damage curves: the JRC global set built in, user CSV curves, interpolation.

A curve maps the water depth above a building's ground floor (m) to a damage
ratio (0 to 1, share of the value lost). Curves are linear between their
points and hold their end values outside them (``numpy.interp``), as Delft-FIAT
does (it clips the depth to the curve's range, ``fiat.methods.flood``).

Built-in curves: Huizinga, J., de Moel, H. & Szewczyk, W. (2017). *Global flood
depth-damage functions: methodology and the database with guidelines*. EUR
28552 EN, JRC105688, doi:10.2760/16510; the continental average curves of its
database, damage ratios at 0, 0.5, 1, 1.5, 2, 3, 4, 5 and 6 m of water.
The North-American curves start above 0 at 0 m (basements flood first).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import CRS, Transformer

from emtwin.consequences.defaults import CONTINENTS, OCCUPANCIES
from emtwin.errors import InputDataError

__all__ = [
    "DamageCurve",
    "JRC_DEPTHS_M",
    "JRC_CURVES",
    "builtin_curve",
    "read_curve_csv",
    "continent_of",
]

#: Depths of the JRC curves, m above the ground floor.
JRC_DEPTHS_M = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0)

#: Damage ratios of Huizinga et al. (2017) per (continent, occupancy) at
#: :data:`JRC_DEPTHS_M`. The database has no commercial curve for Africa and no
#: industrial one for Oceania: those take the residential curve of the same
#: continent (see :func:`builtin_curve`).
JRC_CURVES: dict[tuple[str, str], tuple[float, ...]] = {
    ("europe", "residential"): (0.0, 0.25, 0.40, 0.50, 0.60, 0.75, 0.85, 0.95, 1.00),
    ("europe", "commercial"): (0.0, 0.15, 0.30, 0.45, 0.55, 0.75, 0.90, 1.00, 1.00),
    ("europe", "industrial"): (0.0, 0.15, 0.27, 0.40, 0.52, 0.70, 0.85, 1.00, 1.00),
    ("north_america", "residential"): (0.202, 0.443, 0.583, 0.683, 0.784, 0.854, 0.924, 0.959, 1.0),
    ("north_america", "commercial"): (0.018, 0.239, 0.374, 0.466, 0.552, 0.687, 0.822, 0.908, 1.0),
    ("north_america", "industrial"): (0.026, 0.323, 0.511, 0.637, 0.740, 0.860, 0.937, 0.980, 1.0),
    ("south_america", "residential"): (0.0, 0.491, 0.711, 0.842, 0.949, 0.984, 1.0, 1.0, 1.0),
    ("south_america", "commercial"): (0.0, 0.611, 0.840, 0.924, 0.992, 1.0, 1.0, 1.0, 1.0),
    ("south_america", "industrial"): (0.0, 0.667, 0.889, 0.947, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("asia", "residential"): (0.0, 0.327, 0.494, 0.617, 0.721, 0.870, 0.931, 0.984, 1.0),
    ("asia", "commercial"): (0.0, 0.377, 0.538, 0.659, 0.763, 0.883, 0.942, 0.981, 1.0),
    ("asia", "industrial"): (0.0, 0.283, 0.482, 0.629, 0.717, 0.857, 0.909, 0.955, 1.0),
    ("africa", "residential"): (0.0, 0.220, 0.378, 0.531, 0.636, 0.817, 0.903, 0.957, 1.0),
    ("africa", "industrial"): (0.0, 0.063, 0.247, 0.403, 0.494, 0.685, 0.919, 1.0, 1.0),
    ("oceania", "residential"): (0.0, 0.475, 0.640, 0.715, 0.788, 0.929, 0.967, 0.983, 1.0),
    ("oceania", "commercial"): (0.0, 0.239, 0.481, 0.674, 0.865, 1.0, 1.0, 1.0, 1.0),
}  # fmt: skip

_JRC_SOURCE = "Huizinga et al. (2017), JRC global flood depth-damage functions"


@dataclass(frozen=True)
class DamageCurve:
    """A depth-damage curve.

    Attributes
    ----------
    depth_m
        Water depth above the ground floor, m, strictly increasing, shape (k,), k >= 2.
    ratio
        Damage ratio at each depth, 0 to 1, shape (k,).
    name
        A label (``jrc:europe:residential``, a file name).
    source
        Where the numbers come from, for reports.
    """

    depth_m: np.ndarray
    ratio: np.ndarray
    name: str = "curve"
    source: str = ""

    def __post_init__(self) -> None:
        d = np.asarray(self.depth_m, dtype=np.float64)
        r = np.asarray(self.ratio, dtype=np.float64)
        if d.ndim != 1 or d.shape != r.shape or d.size < 2:
            raise InputDataError(
                f"{self.name}: a curve needs at least 2 points of (depth_m, damage_ratio) "
                f"of the same length, got {d.size} depths and {r.size} ratios"
            )
        if not (np.isfinite(d).all() and np.isfinite(r).all()):
            raise InputDataError(f"{self.name}: depths and ratios must be finite numbers")
        if (np.diff(d) <= 0).any():
            raise InputDataError(f"{self.name}: depth_m must be strictly increasing, got {d}")
        if (r < 0).any() or (r > 1).any():
            raise InputDataError(f"{self.name}: damage_ratio must lie in [0, 1], got {r}")
        object.__setattr__(self, "depth_m", d)
        object.__setattr__(self, "ratio", r)

    def __call__(self, depth_m: np.ndarray | float) -> np.ndarray:
        """Damage ratio at water depth(s) above the ground floor, m (any shape).

        Linear between points; below the first depth the first ratio holds, above
        the last the last ratio holds. NaN depths give NaN.
        """
        return np.interp(np.asarray(depth_m, dtype=np.float64), self.depth_m, self.ratio)


def builtin_curve(occupancy: str, continent: str) -> DamageCurve:
    """The JRC curve of Huizinga et al. (2017) for *occupancy* on *continent*.

    Where the database has none (commercial in Africa, industrial in Oceania),
    the continent's residential curve is returned, with a ``source`` that says so.

    Raises
    ------
    InputDataError
        For an occupancy or continent that is not known.
    """
    if occupancy not in OCCUPANCIES:
        raise InputDataError(
            f"no built-in damage curve for occupancy {occupancy!r}; "
            f"expected one of {', '.join(OCCUPANCIES)} or a CSV curve"
        )
    if continent not in CONTINENTS:
        raise InputDataError(
            f"unknown continent {continent!r}; expected one of {', '.join(CONTINENTS)}"
        )
    key = (continent, occupancy)
    source = _JRC_SOURCE + f", {continent} {occupancy}"
    if key not in JRC_CURVES:
        key = (continent, "residential")
        source = _JRC_SOURCE + f", {continent} residential (none published for {occupancy})"
    return DamageCurve(
        np.array(JRC_DEPTHS_M), np.array(JRC_CURVES[key]), f"jrc:{continent}:{occupancy}", source
    )


def read_curve_csv(path: str | Path, *, file_label: str = "consequences.curves") -> DamageCurve:
    """Read a curve from a CSV file with the columns ``depth_m, damage_ratio``.

    A header row is required; other columns are ignored; ratios given in percent
    are not accepted (they must lie in [0, 1]).

    Raises
    ------
    InputDataError
        Naming the file, the row and the column that is wrong.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{file_label}: curve file not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"{file_label}: {path}: cannot read CSV: {exc}") from exc
    names = {k.strip(): k for k in (rows[0].keys() if rows else []) if k}
    missing = [c for c in ("depth_m", "damage_ratio") if c not in names]
    if missing:
        raise InputDataError(
            f"{file_label}: {path}: expected columns depth_m, damage_ratio; "
            f"missing {', '.join(missing)} (found {', '.join(names) or 'no rows'})"
        )
    depth, ratio = [], []
    for i, row in enumerate(rows, start=2):
        for col, out in (("depth_m", depth), ("damage_ratio", ratio)):
            text = (row.get(names[col]) or "").strip()
            try:
                out.append(float(text))
            except ValueError:
                raise InputDataError(
                    f"{file_label}: {path}: row {i}, column {col}: expected a number, got {text!r}"
                ) from None
    curve = DamageCurve(np.array(depth), np.array(ratio), f"{file_label}: {path}", str(path))
    return DamageCurve(curve.depth_m, curve.ratio, path.stem, f"user curve {path}")


def continent_of(crs: Any, x: float, y: float) -> str:
    """The continent (a key of :data:`CONTINENTS`) holding the point (x, y) in *crs*.

    Coarse longitude/latitude boxes, enough to pick a continental curve, tried
    in this order: Europe, 25 W to 60 E north of 36 N; west of 30 W, North
    America north of 13 N and South America south of it (east of 120 W; the
    Pacific further west is Oceania); Oceania, south of 10 S east of 110 E, or
    east of 160 E; Asia, east of 34 E north of 12 N, or east of 60 E; Africa,
    30 W to 52 E; anything else Asia.
    """
    to_ll = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(float(x), float(y))
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise InputDataError(f"cannot place ({x}, {y}) in {crs} on the globe")
    if -25.0 <= lon <= 60.0 and lat >= 36.0:
        return "europe"
    if lon < -30.0:
        if lon <= -50.0 and lat >= 13.0:
            return "north_america"
        if lat < 13.0 and lon >= -120.0:
            return "south_america"
        return "north_america" if lat >= 13.0 else "oceania"
    if (lat < -10.0 and lon >= 110.0) or lon >= 160.0:
        return "oceania"
    if (lon > 34.0 and lat > 12.0) or lon > 60.0:
        return "asia"
    if -30.0 <= lon <= 52.0:
        return "africa"
    return "asia"
