"""The wind field of a storm track on the World grid at a time.

:class:`TyphoonWind` turns the track point at time t into the parameters of a
Holland vortex (:class:`Vortex`) and evaluates
:func:`emtwin.kernels.wind.vortex_wind_at_points` on the World's cell centres,
or on a coarser node grid (``wind_grid_m``) interpolated bilinearly to them.

Conventions (docs/typhoon.md):

- B given (scenario ``holland_b`` or the track's column) is a *gradient-level*
  B (Holland 1980): the vortex is reduced to the surface by ``surface_factor``.
- B estimated (Holland 2008 ``b_s``) is fitted to observed 1-min *surface*
  maxima that include the storm's motion: the vortex is already at the surface
  (factor 1) and ``min(1, Rmax/r) |T|`` is taken off it before the translation
  vector is added back, as Holland (2008) and CLIMADA do.
- The translation vector is ``translation_factor`` times the storm's velocity
  (east, north); the grid's north is taken as true north (the grid
  convergence of a UTM zone is a few degrees at most).
- The Coriolis parameter is that of the storm centre's latitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emtwin.errors import KernelError
from emtwin.geo.crs import WGS84, to_crs_xy
from emtwin.geo.track import StormTrack
from emtwin.kernels.wind import (
    bilinear_nodes_to_cells,
    coriolis_parameter,
    holland_b_2008,
    speed_and_direction,
    vortex_wind_at_points,
)

__all__ = [
    "GUST_FACTOR_3S_1MIN",
    "DEFAULT_SURFACE_FACTOR",
    "GridSpec",
    "WindParameters",
    "Vortex",
    "TyphoonWind",
    "cell_factor_from_classes",
]

#: Gust factors from 1-min sustained to 3-s gust wind by exposure, Harper, Kepert
#: & Ginger (2010), WMO/TD-No. 1555, Table 1.1.
GUST_FACTOR_3S_1MIN = {"in-land": 1.49, "off-land": 1.36, "off-sea": 1.23, "at-sea": 1.11}

#: Gradient-to-surface (10 m) wind factor over water: within the 0.75-0.9 range of
#: the dropwindsonde ratios of Franklin, Black & Valde (2003, Wea. Forecasting 18).
DEFAULT_SURFACE_FACTOR = 0.8


@dataclass(frozen=True)
class GridSpec:
    """A north-up grid of square cells: the World's terrain grid or a wind grid.

    ``x0`` is the west edge and ``y_top`` the north edge, m in the World CRS;
    ``dx`` the cell size, m; row 0 is the northernmost row.
    """

    x0: float
    y_top: float
    dx: float
    nrows: int
    ncols: int

    @classmethod
    def of_terrain(cls, terrain: object) -> GridSpec:
        """The grid of an :class:`emtwin.geo.world.Terrain`."""
        t = terrain.transform  # type: ignore[attr-defined]
        nrows, ncols = terrain.shape  # type: ignore[attr-defined]
        return cls(float(t.c), float(t.f), float(terrain.dx), int(nrows), int(ncols))  # type: ignore[attr-defined]

    @property
    def shape(self) -> tuple[int, int]:
        """(nrows, ncols)."""
        return (self.nrows, self.ncols)

    def cell_x(self) -> np.ndarray:
        """Cell-centre x of each column, m, shape (ncols,)."""
        return self.x0 + (np.arange(self.ncols) + 0.5) * self.dx

    def cell_y(self) -> np.ndarray:
        """Cell-centre y of each row, m, shape (nrows,)."""
        return self.y_top - (np.arange(self.nrows) + 0.5) * self.dx


@dataclass(frozen=True)
class WindParameters:
    """Parameters of the wind model (the scenario's typhoon keys, SI units).

    Attributes
    ----------
    environment_pressure_hpa
        Pressure far from the storm, hPa.
    air_density
        kg/m3 (Holland 1980: 1.15).
    holland_b
        Gradient-level B for every time; None: the track's ``holland_b``
        column, else Holland (2008) estimated each time.
    asymmetry
        Add the forward-motion term.
    translation_factor
        The translation vector is this times the storm velocity.
    surface_factor
        Gradient-to-surface factor, applied when B is given (gradient level).
    inflow
        Turn the vortex wind inwards by the inflow angle.
    wind_grid_m
        Node spacing of a coarser wind grid, m; None computes on every cell.
    """

    environment_pressure_hpa: float = 1010.0
    air_density: float = 1.15
    holland_b: float | None = None
    asymmetry: bool = True
    translation_factor: float = 0.55
    surface_factor: float = DEFAULT_SURFACE_FACTOR
    inflow: bool = True
    wind_grid_m: float | None = None


@dataclass(frozen=True)
class Vortex:
    """The vortex at one time, in the World CRS.

    ``centre`` (x, y) m; ``rmax_m`` m; ``dp_pa`` Pa; ``b`` Holland B;
    ``f`` Coriolis 1/s; ``vortex_factor`` gradient-to-surface factor;
    ``translation`` (east, north) m/s; ``subtract_translation`` see the
    module docstring; ``b_estimated`` True when B came from Holland (2008).
    """

    time_s: float
    centre: tuple[float, float]
    lat: float
    rmax_m: float
    dp_pa: float
    b: float
    f: float
    vortex_factor: float
    translation: tuple[float, float]
    subtract_translation: bool
    b_estimated: bool


def cell_factor_from_classes(
    classes: np.ndarray, table: dict[int, float], *, default: float = 1.0
) -> np.ndarray:
    """Per-cell wind factor from a land-cover class raster and a class -> factor table.

    Classes missing from *table* get *default*.
    """
    out = np.full(classes.shape, float(default))
    for k, fac in table.items():
        out[classes == k] = float(fac)
    return out


class TyphoonWind:
    """The wind field of one track on one grid.

    Parameters
    ----------
    track
        The storm track (times in s from the scenario start).
    grid
        The World's grid (:meth:`GridSpec.of_terrain`).
    crs
        The World CRS (metric); track lon/lat (EPSG:4326) are projected to it.
    params
        The model's parameters.
    cell_factor
        Optional per-cell factor (land cover), shape ``grid.shape``.
    """

    def __init__(
        self,
        track: StormTrack,
        grid: GridSpec,
        *,
        crs: object,
        params: WindParameters | None = None,
        cell_factor: np.ndarray | None = None,
    ) -> None:
        self.track = track
        self.grid = grid
        self.crs = crs
        self.params = params or WindParameters()
        if cell_factor is not None and cell_factor.shape != grid.shape:
            raise KernelError(
                f"cell_factor must have the grid's shape {grid.shape}, got {cell_factor.shape}"
            )
        self.cell_factor = cell_factor
        self._cx = grid.cell_x()
        self._cy = grid.cell_y()
        self._xy: tuple[np.ndarray, np.ndarray] | None = None  # points, built on first use
        wg = self.params.wind_grid_m
        if wg is not None and wg > grid.dx:
            nx = max(int(math.ceil(grid.ncols * grid.dx / wg)), 1) + 1
            ny = max(int(math.ceil(grid.nrows * grid.dx / wg)), 1) + 1
            self._nodes = GridSpec(grid.x0, grid.y_top, float(wg), ny, nx)
            self._node_x = grid.x0 + np.arange(nx) * wg
            self._node_y = grid.y_top - np.arange(ny) * wg
        else:
            self._nodes = None

    # ------------------------------------------------------------------ vortex

    def vortex(self, t_s: float) -> Vortex | None:
        """The vortex at *t_s* (s), or None outside the track's time range."""
        if not self.track.covers(t_s):
            return None
        p = self.params
        pt = self.track.at(t_s)
        x, y = to_crs_xy(pt.lon, pt.lat, WGS84, self.crs)
        dp_hpa = max(p.environment_pressure_hpa - pt.pressure_hpa, 0.0)
        given = p.holland_b if p.holland_b is not None else pt.holland_b
        estimated = given is None or not math.isfinite(given)
        if estimated:
            b = holland_b_2008(dp_hpa, pt.lat, pt.translation_speed_m_s, pt.dpdt_hpa_h)
            factor = 1.0
        else:
            b = float(given)  # type: ignore[arg-type]
            factor = p.surface_factor
        tf = p.translation_factor if p.asymmetry else 0.0
        return Vortex(
            time_s=float(t_s),
            centre=(float(x[0]), float(y[0])),
            lat=pt.lat,
            rmax_m=pt.rmax_km * 1000.0,
            dp_pa=dp_hpa * 100.0,
            b=b,
            f=float(coriolis_parameter(pt.lat)),
            vortex_factor=factor,
            translation=(tf * pt.u_m_s, tf * pt.v_m_s),
            subtract_translation=estimated and p.asymmetry,
            b_estimated=estimated,
        )

    # ------------------------------------------------------------------ fields

    def uv_of(self, v: Vortex, x: np.ndarray, y: np.ndarray,
              cell_factor: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Wind vector (east, north), m/s, of vortex *v* at points (m, World CRS)."""
        return vortex_wind_at_points(
            x, y, centre=v.centre, rmax_m=v.rmax_m, dp_pa=v.dp_pa, b=v.b,
            rho=self.params.air_density, f=v.f, vortex_factor=v.vortex_factor,
            cell_factor=cell_factor, translation=v.translation,
            subtract_translation=v.subtract_translation, inflow=self.params.inflow,
        )

    def uv(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Eastward and northward surface wind on the grid at *t_s*, m/s, shape grid.shape."""
        v = self.vortex(t_s)
        shape = self.grid.shape
        if v is None:
            return np.zeros(shape), np.zeros(shape)
        if self._xy is None:
            xs, ys = (self._cx, self._cy) if self._nodes is None else (self._node_x, self._node_y)
            self._xy = tuple(np.meshgrid(xs, ys))  # type: ignore[assignment]
        px, py = self._xy  # type: ignore[misc]
        if self._nodes is None:
            cf = self.cell_factor if self.cell_factor is not None else 1.0
            return self.uv_of(v, px, py, cf)
        un, vn = self.uv_of(v, px, py, 1.0)
        kw = dict(node_x0=self._nodes.x0, node_y0=self._nodes.y_top, node_dx=self._nodes.dx,
                  cell_x=self._cx, cell_y=self._cy)
        u = bilinear_nodes_to_cells(un, **kw)
        w = bilinear_nodes_to_cells(vn, **kw)
        if self.cell_factor is not None:
            u *= self.cell_factor
            w *= self.cell_factor
        return u, w

    def field(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(wind__speed, wind__direction)`` on the grid at *t_s*.

        Speed is the 1-min sustained surface wind, m/s; direction is where it
        blows from, degrees clockwise from grid north. Both shape grid.shape.
        """
        return speed_and_direction(*self.uv(t_s))

    def at_points(self, t_s: float, x: np.ndarray, y: np.ndarray,
                  cell_factor: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Speed (m/s) and direction (degrees) at points (m, World CRS) at *t_s* (gauges)."""
        v = self.vortex(t_s)
        xa = np.asarray(x, dtype=float)
        if v is None:
            return np.zeros(xa.shape), np.zeros(xa.shape)
        return speed_and_direction(*self.uv_of(v, xa, np.asarray(y, dtype=float),
                                                cell_factor))
