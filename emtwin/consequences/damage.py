"""Building damage: maximum depth over each footprint, and ratio x value from curves.

The two steps a consequence component takes:

1. each coupling step, :meth:`FootprintMaxDepth.update` with the depth raster
   (m) and the time (s): the running maximum over each footprint and the time
   it was reached (or, once at the end, :func:`footprint_max` of a max-depth
   raster);
2. at the end, :func:`assess_buildings` with those maxima: the depth above the
   ground floor, the damage ratio from the occupancy's curve, damage = ratio x
   value, and content damage with its own curves when given.

Rules (as Delft-FIAT 0.4, ``fiat.methods.flood``): a building whose cells never
hold more than :data:`~emtwin.consequences.defaults.WET_DEPTH_M` of water is
dry and takes no damage; a wet building is read on its curve at (maximum depth
- first-floor height), the curve's end values holding outside its range.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from emtwin.consequences.curves import DamageCurve
from emtwin.consequences.defaults import WET_DEPTH_M
from emtwin.errors import InputDataError

__all__ = [
    "FootprintMaxDepth",
    "footprint_max",
    "damage_ratios",
    "assess_buildings",
    "damage_summary",
    "BUILDING_OUTPUT_COLUMNS",
]

#: Columns of the per-building table (``buildings.parquet``); the content
#: columns are there only when content damage is on.
BUILDING_OUTPUT_COLUMNS = (
    "building",
    "occupancy",
    "value",
    "max_depth_m",
    "time_of_max_s",
    "damage_ratio",
    "damage",
)


def footprint_max(depth: np.ndarray, indptr: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Maximum of *depth* over each building's cells.

    Parameters
    ----------
    depth
        Water depth, m, shape (nrows, ncols) or flat; NaN counts as dry.
    indptr, cells
        CSR cell index of the buildings (:class:`emtwin.geo.buildings.Buildings`).

    Returns
    -------
    numpy.ndarray
        Shape (n_buildings,), m; 0 for a building with no cells.
    """
    flat = np.asarray(depth, dtype=np.float64).ravel()
    n = indptr.size - 1
    out = np.zeros(n)
    if cells.size == 0:
        return out
    vals = np.nan_to_num(flat[cells], nan=0.0)
    has = np.diff(indptr) > 0
    out[has] = np.maximum.reduceat(vals, indptr[:-1][has])
    return out


class FootprintMaxDepth:
    """Running maximum of the water depth over each footprint, and when it was reached.

    Parameters
    ----------
    indptr, cells
        CSR cell index of the buildings, flat cells ``row * ncols + col``.

    Attributes
    ----------
    max_depth_m
        Highest depth seen so far over each footprint, m, shape (n,).
    time_of_max_s
        Time of the first step at which that maximum was seen, s (NaN while
        the building has stayed dry), shape (n,).
    """

    def __init__(self, indptr: np.ndarray, cells: np.ndarray) -> None:
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.cells = np.asarray(cells, dtype=np.int64)
        n = self.indptr.size - 1
        self.max_depth_m = np.zeros(n)
        self.time_of_max_s = np.full(n, np.nan)

    def update(self, depth: np.ndarray, t_s: float) -> None:
        """Take the depth raster (m) at time *t_s* (s) into the maxima."""
        now = footprint_max(depth, self.indptr, self.cells)
        higher = (now > self.max_depth_m) & (now > WET_DEPTH_M)
        self.max_depth_m[higher] = now[higher]
        self.time_of_max_s[higher] = t_s


def damage_ratios(
    depth_above_floor_m: np.ndarray,
    occupancy: np.ndarray,
    curves: Mapping[str, DamageCurve],
    *,
    wet: np.ndarray | None = None,
) -> np.ndarray:
    """Damage ratio of each building from its occupancy's curve.

    Parameters
    ----------
    depth_above_floor_m
        Water depth above the ground floor, m, shape (n,) (may be negative).
    occupancy
        Occupancy class of each building, shape (n,); each must be a key of *curves*.
    curves
        Curve per occupancy.
    wet
        True where the building got water at all, shape (n,); dry buildings get
        0. None: every building is wet.

    Returns
    -------
    numpy.ndarray
        Ratios in [0, 1], shape (n,).
    """
    d = np.asarray(depth_above_floor_m, dtype=np.float64)
    occ = np.asarray(occupancy, dtype=object)
    out = np.zeros(d.shape)
    missing = sorted(set(occ.tolist()) - set(curves))
    if missing:
        raise InputDataError(
            f"no damage curve for occupancy {', '.join(map(repr, missing))}; "
            f"curves are given for {', '.join(sorted(curves))}"
        )
    for name in np.unique(occ):
        sel = occ == name
        out[sel] = curves[name](d[sel])
    if wet is not None:
        out = np.where(np.asarray(wet, dtype=bool), out, 0.0)
    return out


def assess_buildings(
    table: pd.DataFrame,
    max_depth_m: np.ndarray,
    *,
    curves: Mapping[str, DamageCurve],
    time_of_max_s: np.ndarray | None = None,
    content_curves: Mapping[str, DamageCurve] | None = None,
) -> pd.DataFrame:
    """The per-building damage table.

    Parameters
    ----------
    table
        Buildings with columns ``building``, ``occupancy``, ``value`` and
        ``first_floor_height_m`` (and ``content_value`` for content damage),
        n rows (:attr:`emtwin.geo.buildings.Buildings.table`).
    max_depth_m
        Maximum water depth over each footprint (above the ground), m, shape (n,).
    curves
        Structure damage curve per occupancy.
    time_of_max_s
        Time of that maximum, s, shape (n,); NaN where unknown.
    content_curves
        Content damage curve per occupancy; None: no content damage.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BUILDING_OUTPUT_COLUMNS` (plus ``content_damage_ratio``,
        ``content_damage`` with *content_curves*); ``damage`` in the units of
        ``value``.
    """
    depth = np.asarray(max_depth_m, dtype=np.float64)
    n = len(table)
    if depth.shape != (n,):
        raise InputDataError(f"max_depth_m has shape {depth.shape}, expected ({n},)")
    wet = depth > WET_DEPTH_M
    above = depth - table["first_floor_height_m"].to_numpy(dtype=np.float64)
    occ = table["occupancy"].to_numpy(dtype=object)
    ratio = damage_ratios(above, occ, curves, wet=wet)
    value = table["value"].to_numpy(dtype=np.float64)
    when = np.full(n, np.nan) if time_of_max_s is None else np.asarray(time_of_max_s, float)
    out = pd.DataFrame(
        {
            "building": table["building"].to_numpy(),
            "occupancy": occ,
            "value": value,
            "max_depth_m": depth,
            "time_of_max_s": np.where(wet, when, np.nan),
            "damage_ratio": ratio,
            "damage": ratio * value,
        }
    )
    if content_curves is not None:
        cratio = damage_ratios(above, occ, content_curves, wet=wet)
        out["content_damage_ratio"] = cratio
        out["content_damage"] = cratio * table["content_value"].to_numpy(dtype=np.float64)
    return out


def damage_summary(result: pd.DataFrame) -> dict[str, float]:
    """``buildings``, ``buildings_damaged`` (ratio > 0), ``damage_total`` (and content)."""
    out = {
        "buildings": int(len(result)),
        "buildings_damaged": int((result["damage_ratio"] > 0).sum()),
        "damage_total": float(result["damage"].sum()),
    }
    if "content_damage" in result.columns:
        out["content_damage_total"] = float(result["content_damage"].sum())
    return out
