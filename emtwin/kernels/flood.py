"""Two-dimensional flood kernel: local inertial shallow water on a raster.

:class:`FloodModel` holds the state of one flood (depth, face discharges,
forcing, running records, mass ledger) and advances it with the Numba cores
in :mod:`emtwin.kernels._flood_numba`. Scheme: Bates, Horritt & Fewtrell
(2010) with the q-centred momentum of de Almeida et al. (2012), as in
LISFLOOD-FP "ACC" and Landlab's ``OverlandFlow`` (references.md section 1).
Units are SI (m, s, m3/s); forcing series take times in seconds since the
start of the run. See docs/flood.md.
"""

from __future__ import annotations

import bisect
import math
import time

import numba
import numpy as np

from emtwin.defaults import MANNING_N
from emtwin.errors import KernelError
from emtwin.kernels import _flood_dry as _dry
from emtwin.kernels import _flood_lts as _lts
from emtwin.kernels import _flood_numba as _nb
from emtwin.kernels.cell_speed import cell_speed, cell_speed_at
from emtwin.kernels.hazard_rating import aidr_class, hazard_rating
from emtwin.kernels.road_state import edge_max_depth

__all__ = ["FloodModel", "SIDES", "DT_DEPTH_FLOOR_M", "ALPHA_MAX"]

#: Boundary sides, in the order the kernel stores them. Row 0 is the north edge.
SIDES = ("north", "south", "west", "east")
#: The stable step is computed from at least this depth, m, so that a dry or
#: nearly dry grid does not take one huge step when water arrives.
DT_DEPTH_FLOOR_M = 0.01
#: Grids with fewer cells step on one thread (no parallel region).
PARALLEL_MIN_CELLS = 65_536
#: Largest Courant factor accepted: 1/sqrt(2), the 2-D stability limit of the
#: frictionless staggered scheme (docs/flood.md, Stability).
ALPHA_MAX = 1.0 / math.sqrt(2.0)
_KINDS = {"closed": _nb.BC_CLOSED, "open": _nb.BC_OPEN, "level": _nb.BC_LEVEL}
_MM_H = 1.0 / 3.6e6  # mm/h -> m/s
_WARM: set[tuple[str, bool, str]] = set()
#: Time-stepping schemes: one global step, or local steps per tile (docs/flood.md).
TIME_STEPPING = ("global", "local")
#: Cost of a local cell update relative to a global one that local stepping assumes
#: when it decides whether a macro step pays (``FloodModel(lts_cost=...)``; measured
#: 1.3-1.5 on the built-in drills and the whole city since 2026-12-07, 2.0 until then,
#: docs/flood.md, *`lts_cost` 1.5*).
LTS_COST = 1.5
#: Local stepping makes a macro step's span of global steps where the deepest water rose
#: by more than this share of its depth over the macro step before (or it is the run's
#: first): rising water, which a base step set at the macro step's start may not allow
#: for by its end (a rise of 2 % puts the Courant number 1 % above alpha; docs/flood.md,
#: *Water on the move*). ``lts_cost=None`` overrides it.
LTS_WATCH = 0.02
#: Under local stepping a tile on an open or level grid edge steps at most
#: ``STEEP_BETA sqrt(dx / (g S))`` seconds, S its steepest bed slope: with the global
#: step's friction, which its boundary faces keep, longer steps turn thin sheets on
#: slopes into spurious roll waves (``benchmarks/steep_sheet.py``; docs/flood.md,
#: *Steep slopes* and *Implicit friction*). Interior faces at levels >= 1 take the
#: friction implicitly and need no cap.
STEEP_BETA = 0.4
#: Under local stepping, the global steps of a macro step that would not pay leave out
#: dry blocks of ``DRY_BLOCK x DRY_BLOCK`` cells with dry neighbours, bit for bit
#: (:mod:`emtwin.kernels._flood_dry`); the blocks are found again every ``DRY_BLOCK`` steps.
DRY_BLOCK = 8
#: ... and only where the windows keep at most this share of the cells; above it the
#: steps are full ones, with the same results: many windows each cost a step more than
#: their cells (357 windows keeping 0.90 of the whole city's cells made a step cost 1.62
#: full ones), and the dry cells left out are the cheap ones (docs/flood.md, *Windows
#: that do not pay*).
DRY_MAX = 0.5


def _fail(msg: str) -> None:
    raise KernelError(f"FloodModel: {msg}")


def _series(name: str, times_s, values, *, nonneg: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate a time series: 1-D, same length, finite, strictly increasing times."""
    t = np.atleast_1d(np.asarray(times_s, dtype=np.float64))
    v = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if t.ndim != 1 or v.shape != t.shape or t.size == 0:
        _fail(f"{name}: times and values must be 1-D of equal length >= 1, "
              f"got shapes {t.shape} and {v.shape}")  # fmt: skip
    if not (np.isfinite(t).all() and np.isfinite(v).all()):
        _fail(f"{name}: times and values must be finite (no NaN/inf)")
    if np.any(np.diff(t) <= 0):
        i = int(np.argmax(np.diff(t) <= 0))
        _fail(f"{name}: times must be strictly increasing (sorted), but t[{i}]={t[i]:g} s "
              f"is followed by t[{i + 1}]={t[i + 1]:g} s")  # fmt: skip
    if nonneg and np.any(v < 0):
        _fail(f"{name}: values must be >= 0, got min {v.min():g}")
    return t, v


def _interp(t: list[float], v: list[float], x: float, outside_zero: bool) -> float:
    """Linear interpolation at x in the series (t, v) (Python lists, for speed).

    Outside [t[0], t[-1]]: 0 when *outside_zero*, else the end values.
    """
    if x < t[0] or x > t[-1]:
        if outside_zero:
            return 0.0
        return v[0] if x < t[0] else v[-1]
    i = bisect.bisect_right(t, x) - 1
    if i >= len(t) - 1:
        return v[-1]
    return v[i] + (x - t[i]) / (t[i + 1] - t[i]) * (v[i + 1] - v[i])


def _written(a: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous copy of *a* in *dtype*, every page of it written.

    The cores update the records (and depths inside the mask) as
    ``x = new if new > x else x``, which LLVM compiles to AVX-512 masked
    stores. Memory from ``np.zeros`` (calloc) stays mapped to the shared zero
    page until first written, and on the AMD EPYC development machine a masked
    store to such a page is slow every time, even with nothing to store: on
    dry ground, where the max speed never changes, that made the riverside
    step three times slower (docs/flood.md, Performance). Filling a fresh
    array writes every page.
    """
    out = np.empty(np.shape(a), dtype)
    out[...] = a
    return out


class FloodModel:
    """A local inertial flood on a raster, advanced with :meth:`advance`.

    Parameters
    ----------
    z
        Bed elevation at cell centres, m, shape (nrows, ncols); row 0 is the
        northern edge. Values outside *mask* are ignored (may be NaN).
    mask
        True for cells inside the domain, shape (nrows, ncols). Cells outside
        never hold water; faces to them are closed walls. None: all inside.
    dx
        Cell size, m (square cells).
    manning
        Manning's n, s/m^(1/3): a scalar, or per cell shape (nrows, ncols)
        (a face takes the mean of its two cells).
    h0
        Initial depth, m: None (dry), a scalar or shape (nrows, ncols); >= 0
        inside the mask, ignored outside.
    theta
        q-centring weight of de Almeida et al. (2012) in [0, 1]; 1 is Bates 2010.
    alpha
        Courant factor in (0, 1/sqrt(2)] of the step ``dt = alpha dx / sqrt(g h_max)``.
    dtype
        np.float64 or np.float32 for the state arrays; the ledger is float64.
    dry_tol
        Flow depth below which a face carries no flow, and depth below which a
        cell counts as dry in the speed and hazard records, m.
    arrival_depth
        Depth at which :attr:`arrival_time` records the first arrival, m.
    debris_factor
        FD2320 debris factor for :attr:`max_hr` (1.0 urban, 0.5 pasture).
    max_dt
        Optional upper bound on the step, s.
    time_stepping
        "global": one step for the whole grid, set by the deepest water (the
        reference). "local": tiles of *lts_tile* x *lts_tile* cells step with
        ``dt0 2^L``, L <= *lts_levels*, from their own depth (and, on an open
        or level grid edge, their slope: :data:`STEEP_BETA`; a tile stepping
        beyond its slope's cap takes the friction implicitly), and dry tiles
        with dry neighbours are skipped (docs/flood.md, Local time stepping).
    lts_levels
        Largest level L of local stepping (a macro step is ``2^lts_levels``
        base steps, and a tile's level is set by the water within as many
        cells of it); ``2^lts_levels <= lts_tile``. Default 5.
    lts_tile
        Tile size of local stepping, cells. Default 32 (16 with 4 levels
        measured faster with the slope cap; docs/flood.md).
    lts_cost
        Cost of a local cell update relative to a global one (measured 1.2-2.7,
        docs/flood.md). A macro step whose tile levels leave a share of the
        global updates above ``1 / lts_cost`` is made of global steps instead,
        so that local stepping is not slower than global where most of the
        grid must step at the base step. None: always local.
    """

    #: Where the step runs ("cpu" here; :class:`~emtwin.kernels.flood_cuda.CudaFloodModel`: "cuda").
    backend = "cpu"
    #: Whether global steps may leave out the dry blocks (the CPU cores; a GPU subclass
    #: steps every cell, and its host copy of the state is not current).
    _dry_steps = True

    def __init__(self, z, mask, dx: float, *, manning=MANNING_N, h0=None, theta: float = 0.8,
                 alpha: float = 0.5, dtype=np.float64, dry_tol: float = 0.001,
                 arrival_depth: float = 0.05, debris_factor: float = 1.0,
                 max_dt: float | None = None, time_stepping: str = "global",
                 lts_levels: int = 5, lts_tile: int = 32,
                 lts_cost: float | None = LTS_COST) -> None:  # fmt: skip
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            _fail(f"dtype must be float32 or float64, got {dtype}")
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
            _fail(f"z must be a 2-D (nrows, ncols) array, got shape {z.shape}")
        shape = z.shape
        mask = np.ones(shape, bool) if mask is None else np.asarray(mask)
        if mask.shape != shape:
            _fail(f"mask shape {mask.shape} does not match z shape {shape}")
        mask = mask.astype(bool)
        if not np.isfinite(z[mask]).all():
            bad = np.argwhere(mask & ~np.isfinite(z))[0]
            _fail(f"z has NaN/inf inside the mask, first at row {bad[0]}, col {bad[1]}")
        if not (np.isfinite(dx) and dx > 0):
            _fail(f"dx must be a positive cell size in m, got {dx!r}")
        for name, val, lo, hi, lo_open in (("theta", theta, 0.0, 1.0, False),
                                           ("alpha", alpha, 0.0, ALPHA_MAX, True)):  # fmt: skip
            if not (np.isfinite(val) and (val > lo if lo_open else val >= lo) and val <= hi):
                rng = f"({lo:g}, {hi:.4g}]" if lo_open else f"[{lo:g}, {hi:g}]"
                why = (" (1/sqrt(2): above it the step c dt/dx goes past the 2-D stability"
                       " limit of the staggered scheme; 0.5 is the tested default)"
                       if name == "alpha" else "")  # fmt: skip
                _fail(f"{name} must be in {rng}{why}, got {val!r}")
        for name, val in (("dry_tol", dry_tol), ("arrival_depth", arrival_depth)):
            if not (np.isfinite(val) and val > 0):
                _fail(f"{name} must be a positive depth in m, got {val!r}")
        if not (np.isfinite(debris_factor) and debris_factor >= 0):
            _fail(f"debris_factor must be >= 0, got {debris_factor!r}")
        if max_dt is not None and not (np.isfinite(max_dt) and max_dt > 0):
            _fail(f"max_dt must be None or a positive time in s, got {max_dt!r}")
        if time_stepping not in TIME_STEPPING:
            _fail(f"time_stepping must be one of {TIME_STEPPING}, got {time_stepping!r}")
        if not (isinstance(lts_tile, int | np.integer) and lts_tile >= 1):
            _fail(f"lts_tile must be a positive number of cells, got {lts_tile!r}")
        if not (isinstance(lts_levels, int | np.integer) and 0 <= lts_levels <= 10
                and 2**lts_levels <= lts_tile):  # fmt: skip
            _fail(f"lts_levels must be an integer in [0, 10] with 2**lts_levels <= lts_tile "
                  f"({lts_tile}) (a front crosses at most one cell per base step, so a dry "
                  f"tile must be at least a macro step wide), got {lts_levels!r}")
        if lts_cost is not None and not (np.isfinite(lts_cost) and lts_cost > 0):
            _fail(f"lts_cost must be None or a positive number, got {lts_cost!r}")
        nman = np.asarray(manning, dtype=np.float64)
        if nman.ndim == 0:
            if not (np.isfinite(nman) and nman > 0):
                _fail(f"manning n must be > 0, got {float(nman)!r}")
            self._nsc = True
            nman = nman.reshape(1, 1)
        else:
            if nman.shape != shape:
                _fail(f"manning shape {nman.shape} does not match z shape {shape}")
            inside = nman[mask]
            if not (np.isfinite(inside).all() and (inside > 0).all()):
                _fail(f"manning n must be finite and > 0 inside the mask, got min {inside.min()!r}")
            self._nsc = False
            nman = np.where(mask, nman, 1.0)
        if h0 is None:
            h = np.zeros(shape)
        else:
            h = np.broadcast_to(np.asarray(h0, dtype=np.float64), shape) if np.ndim(h0) == 0 \
                else np.asarray(h0, dtype=np.float64)  # fmt: skip
            if h.shape != shape:
                _fail(f"h0 shape {h.shape} does not match z shape {shape}")
            inside = h[mask]
            if np.isnan(inside).any() or not np.isfinite(inside).all():
                _fail("h0 has NaN/inf inside the mask")
            if (inside < 0).any():
                bad = np.argwhere(mask & (h < 0))[0]
                _fail(f"h0 must be >= 0 (depth, m), got {h[bad[0], bad[1]]:g} at "
                      f"row {bad[0]}, col {bad[1]}")  # fmt: skip
            h = np.where(mask, h, 0.0)

        nr, nc = shape
        self.nrows, self.ncols, self.dx = nr, nc, float(dx)
        self.dtype = dtype
        self.theta, self.alpha = float(theta), float(alpha)
        self.dry_tol, self.arrival_depth = float(dry_tol), float(arrival_depth)
        self.debris_factor = float(debris_factor)
        self.max_dt = None if max_dt is None else float(max_dt)
        self.time_stepping = time_stepping
        self.lts_levels, self.lts_tile = int(lts_levels), int(lts_tile)
        self.lts_cost = None if lts_cost is None else float(lts_cost)
        self.mask = mask
        self._z = np.ascontiguousarray(np.where(mask, z, 0.0), dtype=dtype)
        self._grp = np.ascontiguousarray(mask, dtype=np.uint8)
        self._n = np.ascontiguousarray(nman, dtype=dtype)
        self._h = _written(h, dtype)
        self._qx = _written(np.zeros((nr, nc + 1)), dtype)
        self._qy = _written(np.zeros((nr + 1, nc)), dtype)
        # running records
        wet = self._h >= self.dry_tol
        self._maxd = _written(self._h, dtype)
        self._maxs = _written(np.zeros(shape), dtype)
        hr0 = hazard_rating(self._h, 0.0, self.debris_factor)
        self._maxhr = _written(np.where(wet, hr0, 0.0), dtype)
        self._maxa = _written(np.where(wet, aidr_class(self._h, 0.0), 0), np.int8)
        self._arr = _written(np.where(mask & (self._h >= self.arrival_depth), 0.0, np.nan),
                             np.float64)  # fmt: skip
        # chunks of rows for the parallel pass and their scratch rows
        nch = 1
        if nr * nc >= PARALLEL_MIN_CELLS and numba.get_num_threads() > 1:
            nch = min(nr // 4, 4 * numba.get_num_threads())
        self._qyb = np.zeros((2, nc), dtype)
        self._set_chunks(nch)
        self._rowneg = np.zeros(nr, np.int64)
        self._stack: np.ndarray | None = None  # allocated on the first negative depth
        self._instack: np.ndarray | None = None
        self._p = np.zeros(_nb.N_PARAMS)
        self._p[[_nb.P_DX, _nb.P_THETA, _nb.P_DRY, _nb.P_ARRIVAL, _nb.P_DEBRIS]] = (
            self.dx, self.theta, self.dry_tol, self.arrival_depth, self.debris_factor)
        self._pd = np.zeros(_nb.N_DPARAMS, dtype)
        self._n_scalar = float(self._n[0, 0]) if self._nsc else 0.0
        self._bct = np.zeros(4, np.int64)
        self._bcv = np.zeros(4)
        # forcing
        self._rain_t: list[float] = [0.0]
        self._rain_r: list[float] = [0.0]  # m/s
        self._rmult = np.ones((1, 1), dtype)
        self._rsc = True
        self._rain_cells = float(mask.sum())  # sum of multipliers inside the mask
        self._rmult_max = 1.0
        self._inf = 0.0  # m/s
        self._inflows: list[dict] = []
        self._in_rows = np.zeros(0, np.int64)
        self._in_cols = np.zeros(0, np.int64)
        self._in_dd = np.zeros(0)
        self._levels: dict[int, tuple[list[float], list[float], float]] = {}
        self._reservoirs: list[dict] = []
        self._bp: list[float] = []
        # clock, ledger, timing
        self.t = 0.0
        self.steps = 0
        self.wall_s = 0.0
        #: Cell updates done so far (cells x steps; with local stepping only the
        #: tiles that stepped, each at its own rate).
        self.cell_updates = 0
        self._hmax = float(self._h.max())
        area = self.dx * self.dx
        self._led = dict.fromkeys(
            ("rain_in", "inflow_in", "boundary_in", "boundary_out", "infiltration"), 0.0)
        self._led["initial"] = float(self._h.sum(dtype=np.float64)) * area
        self._unplaced = 0.0
        if time_stepping == "local":
            self._lts_init()
        key = (dtype.name, self._parallel, time_stepping)
        if key not in _WARM:
            _WARM.add(key)
            _warm_up(dtype, self._parallel, time_stepping)

    # ------------------------------------------------------------------ views

    @staticmethod
    def _ro(a: np.ndarray) -> np.ndarray:
        v = a.view()
        v.flags.writeable = False
        return v

    @property
    def h(self) -> np.ndarray:
        """Water depth, m, shape (nrows, ncols) (read-only view)."""
        return self._ro(self._h)

    @property
    def lts_global_steps(self) -> int:
        """Base steps that local stepping made as global steps, where local ones would
        not pay (``lts_cost``); 0 under global stepping."""
        return int(getattr(self, "_lts_global", 0))

    @property
    def qx(self) -> np.ndarray:
        """Unit discharge on x-faces, m2/s, shape (nrows, ncols + 1), + toward east."""
        return self._ro(self._qx)

    @property
    def qy(self) -> np.ndarray:
        """Unit discharge on y-faces, m2/s, shape (nrows + 1, ncols), + toward south (row + 1)."""
        return self._ro(self._qy)

    @property
    def z(self) -> np.ndarray:
        """Bed elevation used by the kernel, m, shape (nrows, ncols) (0 outside the mask)."""
        return self._ro(self._z)

    @property
    def max_depth(self) -> np.ndarray:
        """Maximum depth so far, m, shape (nrows, ncols)."""
        return self._ro(self._maxd)

    @property
    def max_speed(self) -> np.ndarray:
        """Maximum cell speed so far, m/s, shape (nrows, ncols) (see :meth:`speed`)."""
        return self._ro(self._maxs)

    @property
    def arrival_time(self) -> np.ndarray:
        """First time depth >= ``arrival_depth``, s since start; NaN where never (float64)."""
        return self._ro(self._arr)

    @property
    def max_hr(self) -> np.ndarray:
        """Maximum FD2320 hazard rating so far, shape (nrows, ncols)."""
        return self._ro(self._maxhr)

    @property
    def max_aidr(self) -> np.ndarray:
        """Maximum AIDR 7-3 hazard class so far (int8, 0 dry, 1..6 = H1..H6)."""
        return self._ro(self._maxa)

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre velocity (u east, v north), m/s, each shape (nrows, ncols).

        The mean of the two face discharges divided by the depth, both scaled
        down where their speed would exceed ``FROUDE_MAX sqrt(g h)``
        (:data:`emtwin.kernels._flood_numba.FROUDE_MAX`: beyond it a speed is an
        artefact of a cell just wetted or drained); 0 where the depth is below
        ``dry_tol``.
        """
        h = self._h.astype(np.float64)
        wet = h >= self.dry_tol
        inv = np.divide(1.0, h, out=np.zeros_like(h), where=wet)
        u = 0.5 * (self._qx[:, :-1] + self._qx[:, 1:]) * inv
        v = -0.5 * (self._qy[:-1, :] + self._qy[1:, :]) * inv
        s = np.hypot(u, v)
        cap = np.sqrt(_nb.FR2G * h)
        over = s > cap
        if over.any():
            k = np.divide(cap, s, out=np.ones_like(s), where=over)
            u, v = u * k, v * k
        return u, v

    def speed(self) -> np.ndarray:
        """Cell-centre speed ``sqrt(u^2 + v^2)``, m/s, shape (nrows, ncols); 0 where dry.

        The same numbers as ``np.hypot(*self.velocity())``, in one pass
        (:func:`emtwin.kernels.cell_speed.cell_speed`).
        """
        return cell_speed(self._h, self._qx, self._qy, self.dry_tol)

    def speeds_at(self, cells: np.ndarray) -> np.ndarray:
        """Speed (m/s, float64) at flat cell indices *cells* (``row * ncols + col``).

        The same numbers as ``speed().reshape(-1)[cells]``, reading only those cells.
        """
        return cell_speed_at(self._h, self._qx, self._qy, self.dry_tol, cells)

    # ------------------------------------------------------------------ coupling reads
    # What a coupled component needs every coupling step, as small results: a GPU
    # backend computes them on the device and copies back only these.

    def edge_depths(self, indptr: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """Deepest water (m) under each road edge of a CSR edge->cell index.

        *indptr* (n_edges + 1) and *cells* (flat ``row * ncols + col``) as in
        :func:`emtwin.kernels.road_state.edge_max_depth`; negative depths count
        as 0. A GPU backend uploads the index once per pair of array objects:
        pass new arrays, not changed ones, when the index changes. Returns
        shape (n_edges,), the state dtype on the CPU.
        """
        return edge_max_depth(indptr, cells, self.h.reshape(-1))

    def depths_at(self, cells: np.ndarray) -> np.ndarray:
        """Depth (m) at flat cell indices *cells* (``row * ncols + col``), float64."""
        return self.h.reshape(-1)[np.asarray(cells, np.int64)].astype(np.float64)

    def depth_stats(self, threshold_m: float,
                    region: np.ndarray | None = None) -> tuple[int, float, float]:  # fmt: skip
        """(cells with depth >= *threshold_m*, sum of depths m, max depth m) over *region*.

        *region*: bool mask of the grid's shape (all cells when None; a GPU
        backend uploads it once per array object). The sum is accumulated in
        float64; the max is 0 for an empty region.
        """
        h = self.h if region is None else self.h[region]
        if not h.size:
            return 0, 0.0, 0.0
        return (int(np.count_nonzero(h >= threshold_m)), float(h.sum(dtype=np.float64)),
                float(h.max()))  # fmt: skip

    # ------------------------------------------------------------------ forcing

    def set_rain(self, times_s, rate_mm_h, *, multiplier=None) -> None:
        """Set a step-wise hyetograph (replaces any earlier one).

        Parameters
        ----------
        times_s
            Start of each step, s since the run start, strictly increasing.
        rate_mm_h
            Rain rate of each step, mm/h, >= 0; holds from its time to the
            next one (the last one holds for ever); 0 before the first.
        multiplier
            Optional factor per cell, shape (nrows, ncols) (or a scalar), >= 0:
            the rate in a cell is ``rate * multiplier``.
        """
        t, r = _series("set_rain", times_s, rate_mm_h, nonneg=True)
        if multiplier is None:
            mult = None
        else:
            mult = np.asarray(multiplier, dtype=np.float64)
            if mult.ndim == 0:
                mult = np.full((self.nrows, self.ncols), float(mult))
            if mult.shape != (self.nrows, self.ncols):
                _fail(f"set_rain: multiplier shape {mult.shape} does not match the grid "
                      f"{(self.nrows, self.ncols)}")  # fmt: skip
            inside = mult[self.mask]
            if not (np.isfinite(inside).all() and (inside >= 0).all()):
                _fail("set_rain: multiplier must be finite and >= 0 inside the mask")
        self._rain_t, self._rain_r = t.tolist(), (r * _MM_H).tolist()
        if mult is None:
            self._rmult, self._rsc = np.ones((1, 1), self.dtype), True
            self._rain_cells, self._rmult_max = float(self.mask.sum()), 1.0
        else:
            m = np.where(self.mask, mult, 0.0)
            self._rmult = np.ascontiguousarray(m, dtype=self.dtype)
            self._rsc = False
            self._rain_cells = float(self._rmult.sum(dtype=np.float64))
            self._rmult_max = float(m.max())
        self._rebuild_breakpoints()

    def set_infiltration(self, rate_mm_h: float) -> None:
        """Set a constant infiltration loss, mm/h, >= 0 (never more than the water there)."""
        if not (np.isfinite(rate_mm_h) and rate_mm_h >= 0):
            _fail(f"set_infiltration: rate must be >= 0 mm/h, got {rate_mm_h!r}")
        self._inf = float(rate_mm_h) * _MM_H
        if getattr(self, "_dry", None) is not None:  # (what counts as dry changes with it)
            self._dry.stale()

    def add_inflow(self, rows, cols, times_s, q_m3_s, name: str = "") -> None:
        """Add a discharge hydrograph spread evenly over cells (point or line source).

        Parameters
        ----------
        rows, cols
            Cell indices, equal length >= 1; all inside the grid and the mask.
        times_s
            Hydrograph times, s, strictly increasing.
        q_m3_s
            Discharge, m3/s, >= 0; linearly interpolated, 0 outside the time range.
        name
            A label for messages.
        """
        label = f"add_inflow({name!r})" if name else "add_inflow"
        r, c = self._cells(label, rows, cols)
        t, q = _series(label, times_s, q_m3_s, nonneg=True)
        self._inflows.append(
            {"name": name, "t": t.tolist(), "q": q.tolist(), "n": len(r), "start": 0})
        self._in_rows = np.concatenate([self._in_rows, r])
        self._in_cols = np.concatenate([self._in_cols, c])
        self._in_dd = np.zeros(len(self._in_rows))
        start = 0
        for f in self._inflows:
            f["start"] = start
            start += f["n"]
        self._rebuild_breakpoints()

    def set_boundary(self, side: str, kind: str, *, times_s=None, level_m=None,
                     slope: float | None = None) -> None:  # fmt: skip
        """Set the condition on one side of the grid (all sides start closed).

        Parameters
        ----------
        side
            One of {"north", "south", "west", "east"} (north = row 0).
        kind
            "closed": a wall. "open": free outflow (normal depth: the water
            surface keeps its slope across the edge, or falls at *slope* when
            given; never inflow). "level": a water level series (m) in a ghost
            cell one dx outside the edge, flow either way.
        times_s, level_m
            The level series for "level": times (s, strictly increasing) and
            levels (m), linearly interpolated, held at the end values outside.
        slope
            For "open": a fixed friction slope (m/m, > 0) instead of the
            local water-surface slope.
        """
        if side not in SIDES:
            _fail(f"set_boundary: side must be one of {SIDES}, got {side!r}")
        if kind not in _KINDS:
            _fail(f"set_boundary: kind must be one of {tuple(_KINDS)}, got {kind!r}")
        s = SIDES.index(side)
        self._levels.pop(s, None)
        self._bct[s] = _KINDS[kind]
        self._bcv[s] = 0.0
        if kind == "level":
            if times_s is None or level_m is None:
                _fail(f"set_boundary({side!r}, 'level') needs times_s and level_m")
            t, lv = _series(f"set_boundary({side!r}) level", times_s, level_m, nonneg=False)
            edge = self._edge(s)
            zmin = float(self._z[edge].min()) if edge.any() else math.inf
            self._levels[s] = (t.tolist(), lv.tolist(), zmin)
        elif kind == "open" and slope is not None:
            if not (np.isfinite(slope) and slope > 0):
                _fail(f"set_boundary({side!r}, 'open'): slope must be > 0, got {slope!r}")
            self._bcv[s] = float(slope)

    def add_reservoir(self, cells, level_m: float, release_time_s: float) -> None:
        """Fill cells to a water level and hold the water there until a release time.

        Parameters
        ----------
        cells
            Boolean array shape (nrows, ncols), or a (rows, cols) pair; inside
            the grid and the mask.
        level_m
            Water level, m; cells whose bed is lower are filled to it (the
            water counts as initial storage in the ledger).
        release_time_s
            Until this time (s) the faces between these cells and the rest are
            closed walls; from it on the water is free.
        """
        if isinstance(cells, np.ndarray) and cells.dtype == bool:
            if cells.shape != (self.nrows, self.ncols):
                _fail(f"add_reservoir: cell mask shape {cells.shape} does not match the grid "
                      f"{(self.nrows, self.ncols)}")  # fmt: skip
            r, c = np.nonzero(cells)
            if r.size == 0:
                _fail("add_reservoir: the cell mask selects no cells")
        else:
            try:
                rows, cols = cells
            except (TypeError, ValueError):
                _fail("add_reservoir: cells must be a boolean grid or a (rows, cols) pair")
            r, c = rows, cols
        r, c = self._cells("add_reservoir", r, c)
        if not (np.isfinite(level_m) and np.isfinite(release_time_s)):
            _fail("add_reservoir: level_m and release_time_s must be finite")
        gid = 2 + len([v for v in self._reservoirs if not v["released"]])
        if gid > 255:
            _fail("add_reservoir: at most 254 reservoirs can be held at once")
        z = self._z[r, c].astype(np.float64)
        old = self._h[r, c].astype(np.float64)
        new = np.maximum(old, np.maximum(float(level_m) - z, 0.0))
        self._h[r, c] = new
        if getattr(self, "_dry", None) is not None:  # (a checkpoint of an earlier version has none)
            self._dry.stale()
        added = float((self._h[r, c].astype(np.float64) - old).sum()) * self.dx * self.dx
        self._led["initial"] += added
        self._maxd[r, c] = np.maximum(self._maxd[r, c], self._h[r, c])
        wet = new >= self.dry_tol
        hr = np.where(wet, hazard_rating(new, 0.0, self.debris_factor), 0.0)
        self._maxhr[r, c] = np.maximum(self._maxhr[r, c], hr)
        self._maxa[r, c] = np.maximum(self._maxa[r, c], np.where(wet, aidr_class(new, 0.0), 0))
        self._arr[r, c] = np.where(np.isnan(self._arr[r, c]) & (new >= self.arrival_depth),
                                   self.t, self._arr[r, c])  # fmt: skip
        self._hmax = max(self._hmax, float(new.max()))
        res = {"rows": r, "cols": c, "release": float(release_time_s), "released": False}
        self._reservoirs.append(res)
        if release_time_s > self.t:
            self._grp[r, c] = gid
        else:
            res["released"] = True
        self._rebuild_breakpoints()

    def release_reservoir(self, index: int) -> None:
        """Release reservoir *index* (in the order added) now, if it is still held."""
        res = self._reservoirs[index]
        if not res["released"]:
            res["release"] = min(res["release"], float(self.t))
            self._release_due()
            self._rebuild_breakpoints()

    # ------------------------------------------------------------------ stepping

    def advance(self, t_end_s: float) -> int:
        """Advance to exactly *t_end_s* (s since start); returns the number of steps taken.

        The step is ``alpha dx / sqrt(g h_max)`` (h_max over the grid and the
        level-boundary ghost cells, at least :data:`DT_DEPTH_FLOOR_M`), capped
        at ``max_dt``, at the next forcing change (rain step, hydrograph point,
        reservoir release) and at *t_end_s*.
        """
        t_end = float(t_end_s)
        if not np.isfinite(t_end) or t_end < self.t:
            _fail(f"advance: t_end_s must be finite and >= the current time {self.t:g} s, "
                  f"got {t_end_s!r}")  # fmt: skip
        t0 = time.perf_counter()
        n = 0
        if not hasattr(self, "_dry_rows"):  # a checkpoint of an earlier version
            self._set_chunks(self._nch, parallel=self._parallel, reverse=self._reverse)
        if self.time_stepping == "local":
            while self.t < t_end:
                self._release_due()
                n += self._lts_macro(t_end)
            self._release_due()
            self.wall_s += time.perf_counter() - t0
            return n
        n = self._global_steps(t_end, t_end)
        self._release_due()
        self.wall_s += time.perf_counter() - t0
        return n

    def _global_steps(self, until: float, t_end: float, *, dry: bool = False,
                      full: int = 0) -> int:  # fmt: skip
        """Global steps, each set for an advance to *t_end* (s), until the clock reaches
        *until* (s); returns their number. With *dry*, the steps without rain leave
        out the dry blocks (:meth:`_dry_windows`), with the same results bit for bit;
        *full*: full steps to make before looking for them (the caller found, on this
        state, windows that would not pay)."""
        n = 0
        while self.t < until:
            released = self._release_due()
            dt, t_new = self._next_dt(t_end)
            if dry:
                if released or self._rain_rate(self.t) > 0.0:
                    full = 0  # (the state the caller looked at has changed)
                    if self._dry is not None:
                        self._dry.left = 0
                elif full > 0:
                    full -= 1
                elif (self._dry is None or self._dry.left == 0) and \
                        self._dry_windows() > DRY_MAX * self._h.size:  # fmt: skip
                    self._dry.left = 0  # the windows would not pay
                    full = DRY_BLOCK - 1
            self._one_step(dt, t_new)
            n += 1
        if self._dry is not None:  # the windows hold within one call only
            self._dry.left = 0
        return n

    def _dry_windows(self, *, zero: bool = True) -> int:
        """Find the dry blocks with dry neighbours (:mod:`emtwin.kernels._flood_dry`) and
        the windows of the cells left, held for the next :data:`DRY_BLOCK` steps; returns
        the number of cells in the windows. With ``zero=False`` only that number: the
        state is not touched and the next step does not use the windows."""
        key = (tuple(self._bct), self._in_rows.size)
        if self._dry is None or self._dry_key != key:
            hot = _dry.hot_blocks((self.nrows, self.ncols), DRY_BLOCK, self._in_rows,
                                  self._in_cols, tuple(bool(k == _nb.BC_LEVEL) for k in self._bct))
            self._dry = _dry.DryWindows(self.ncols, DRY_BLOCK, hot, numba.get_num_threads(),
                                        self.dtype)
            self._dry_key = key
        return self._dry.find(self._h, self._qx, self._qy, self.dry_tol, self._inf > 0.0,
                              self._dry_rows, zero=zero)  # fmt: skip

    def _one_step(self, dt: float, t_new: float) -> None:
        area = self.dx * self.dx
        t = self.t
        inflow = False
        if self._inflows:
            vol = 0.0
            for f in self._inflows:
                q0 = _interp(f["t"], f["q"], t, True)
                v = 0.5 * dt * (q0 + _interp(f["t"], f["q"], t_new, True))
                self._in_dd[f["start"] : f["start"] + f["n"]] = v / (f["n"] * area)
                vol += v
            if vol > 0.0:
                inflow = True
                self._led["inflow_in"] += vol
        for s, (lt, lv, _) in self._levels.items():
            self._bcv[s] = _interp(lt, lv, t, False)
        rain = self._rain_rate(t) * dt
        d = self._dry
        cells = d.cells if d is not None and d.left > 0 else self._h.size
        hmax, vin, vout, vinf = self._kernel_step(dt, t_new, rain, inflow)
        if not math.isfinite(hmax):
            _fail(f"the flood became unstable in the step from t = {t:.3f} s to "
                  f"{t_new:.3f} s (dt {dt:.4g} s): the depth is no longer finite. Lower "
                  f"alpha (now {self.alpha:g}) or theta (now {self.theta:g}), or check "
                  "the forcing")  # fmt: skip
        led = self._led
        led["rain_in"] += rain * self._rain_cells * area
        led["boundary_in"] += vin
        led["boundary_out"] += vout
        led["infiltration"] += vinf
        self._hmax = hmax
        self.t = t_new
        self.steps += 1
        self.cell_updates += cells

    def _kernel_step(self, dt: float, t_new: float, rain: float,
                     inflow: bool) -> tuple[float, float, float, float]:  # fmt: skip
        """One step of the state on the CPU cores (the hook a GPU backend overrides).

        *rain* is the rain depth of the step (m, before the per-cell
        multiplier); with *inflow* the depths in ``_in_dd`` (m) are added to
        the inflow cells first. Returns (h_max m, boundary inflow m3, boundary
        outflow m3, infiltration m3) of the step.
        """
        if inflow:
            _nb.add_depth(self._h, self._in_rows, self._in_cols, self._in_dd)
        p = self._p
        p[_nb.P_DT], p[_nb.P_TNEW], p[_nb.P_RAIN], p[_nb.P_INF] = dt, t_new, rain, self._inf * dt
        _nb.face_params(self._pd, self.theta, dt, self.dx, self.dry_tol, self._n_scalar,
                        self.debris_factor)
        d = self._dry
        dry = d is not None and d.left > 0
        if dry:  # leave the dry blocks out (_global_steps(dry=True))
            sq, sh, sqx, qbot, wk, chacc = d.scratch
            win, gs, rowneg = d.win[: d.n], d.gs, d.rowneg
        else:
            if d is not None:
                d.stale()
            win, sq, sh, sqx, qbot, wk, chacc = self._full
            gs = self._full_gs
            rowneg = self._rowneg
        state = (self._h, self._z, self._grp, self._n, self._nsc, self._rmult, self._rsc,
                 self._qx, self._qy, self._maxd, self._maxs, self._maxhr, self._maxa, self._arr,
                 self._bct, self._bcv, win)  # fmt: skip
        work = (sq, sh, sqx, qbot, self._qyb, wk, chacc, rowneg, p, self._pd)
        if self._parallel:
            hmax, vin, vout, vinf, nneg = _nb.step_parallel(*state, gs, *work)
        else:
            hmax, vin, vout, vinf, nneg = _nb.step(*state, *work, self._reverse)
        if nneg:
            if self._stack is None or self._stack.size < 2 * self._h.size:  # (or a checkpoint
                # of an earlier version, whose stack was half as long)
                self._stack = np.zeros(2 * self._h.size, np.int64)  # see fix_negative
                self._instack = np.zeros(self._h.size, np.uint8)
            if dry:  # the windows' counts per row
                _dry.row_counts(win, rowneg, self._rowneg)
            bcorr, lost = _nb.fix_negative(self._h, self._qx, self._qy, self._rowneg,
                                           self._stack, self._instack, dt, self.dx)  # fmt: skip
            vout -= bcorr
            self._unplaced += lost
        if dry:
            d.left -= 1
            hmax = max(hmax, d.hskip)
        return hmax, vin, vout, vinf

    def _next_dt(self, t_end: float) -> tuple[float, float]:
        """The next step length and the time it ends at (exactly a cap when capped)."""
        c = self.alpha * self.dx / math.sqrt(_nb.G)
        h = max(self._hmax, DT_DEPTH_FLOOR_M, self._level_depth(self.t))
        dt = c / math.sqrt(h)
        # anticipate what rain, inflow and rising boundary levels add during the step
        grow = self._rain_rate(self.t) * self._rmult_max * dt
        for f in self._inflows:
            qmax = max(_interp(f["t"], f["q"], self.t, True),
                       _interp(f["t"], f["q"], self.t + dt, True))  # fmt: skip
            grow = max(grow, qmax * dt / (f["n"] * self.dx * self.dx))
        h2 = max(h, self._hmax + grow, self._level_depth(self.t + dt))
        if h2 > h:
            dt = c / math.sqrt(h2)
        if self.max_dt is not None:
            dt = min(dt, self.max_dt)
        t_new = self.t + dt
        i = bisect.bisect_right(self._bp, self.t)
        if i < len(self._bp) and self._bp[i] <= t_new:
            t_new = self._bp[i]
        t_new = min(t_new, t_end)
        if not t_new > self.t:  # pragma: no cover - only if dt fell below the clock's ulp
            _fail(f"advance: the time step underflowed at t = {self.t!r} s (max depth "
                  f"{self._hmax:.3g} m): the flood probably became unstable; lower alpha "
                  f"(now {self.alpha:g})")  # fmt: skip
        return t_new - self.t, t_new

    # ------------------------------------------------------------------ local time stepping

    def _lts_init(self) -> None:
        """Arrays of local time stepping (tiles, new discharges, face accumulators)."""
        nr, nc, B = self.nrows, self.ncols, self.lts_tile
        ntr, ntc = -(-nr // B), -(-nc // B)
        self._qxn = _written(self._qx, self.dtype)
        self._qyn = _written(self._qy, self.dtype)
        self._vx, self._vcx = (_written(np.zeros(self._qx.shape), np.float64) for _ in range(2))
        self._vy, self._vcy = (_written(np.zeros(self._qy.shape), np.float64) for _ in range(2))
        self._tlev = np.zeros((ntr, ntc), np.int64)
        self._tdry = np.zeros((ntr, ntc), np.int8)
        self._tin = np.zeros((ntr, ntc), np.int8)
        self._tacc = np.zeros((ntr * ntc, _lts.N_ACC))
        self._lts_repairs = 0  # base steps that needed the negative-depth repair
        self._lts_global = 0  # global steps made where local ones would not pay (lts_cost)
        self._q = np.zeros(_lts.N_QPARAMS)
        self._q[[_lts.Q_DX, _lts.Q_DRY, _lts.Q_ARRIVAL]] = (self.dx, self.dry_tol,
                                                            self.arrival_depth)  # fmt: skip
        self._lts_scratch()

    def _lts_scratch(self) -> None:
        """Work arrays of local time stepping, which hold nothing between macro steps
        (made again for a checkpoint of an earlier version, whose layout differs)."""
        nr, nc, B = self.nrows, self.ncols, self.lts_tile
        nt = -(-nr // B) * -(-nc // B)
        self._rt = np.zeros(nt, np.int64)  # runs: first tile, number of tiles
        self._rn = np.zeros(nt, np.int64)
        self._la = np.zeros(nt, np.int64)
        self._lc = np.zeros(nt, np.int64)
        self._cnt = np.zeros(nt, np.int64)
        self._lwk = np.zeros((5, nt * (B + 2)), self.dtype)  # row work, B + 2 per tile
        self._lwf = np.zeros((3, nt * (B + 1)))  # float64 face rows, B + 1 per tile
        self._lstack = np.zeros(2 * nr * nc, np.int64)  # the repair's cells, see fix_negative_lts
        self._linstack = np.zeros(nr * nc, np.uint8)
        self._tcap = np.zeros((-(-nr // B), -(-nc // B)))  # each tile's longest step, s
        _lts.step_caps(self._z, self._grp, B, self.dx, STEEP_BETA, self._tcap)

    def _lts_macro(self, t_end: float) -> int:
        """One macro step of local time stepping, ending on a forcing change or *t_end*.

        The base step ``dt0`` is the global step of :meth:`_next_dt` (from the
        deepest water, raised by what rain, inflows and levels add over the
        macro step); a macro step is ``2^L`` of them, L <= ``lts_levels``
        (fewer when it is cut at a forcing change or *t_end*, with dt0 then
        shortened so that they fit exactly). Its span is made of global steps
        instead where local ones would not pay (``lts_cost``) and where the
        deepest water rose over the macro step before (:data:`LTS_WATCH`).
        Returns the number of base steps.
        """
        c = self.alpha * self.dx / math.sqrt(_nb.G)
        t = self.t
        lm = self.lts_levels
        cost = getattr(self, "lts_cost", LTS_COST)  # (a checkpoint of an earlier version)
        # whether the deepest water rose over the last macro step (or this is the first),
        # outside the inflow cells, whose rise over a base step dt0 allows for
        h_w = getattr(self, "_lts_h_prev", None)  # (None: the first, or an older checkpoint)
        rising = False
        if cost is not None:
            rise = LTS_WATCH * max(h_w or 0.0, DT_DEPTH_FLOOR_M)
            rising = h_w is None or (self._hmax - h_w > rise and self._off_inflow() - h_w > rise)
        self._lts_h_prev = self._hmax
        h = max(self._hmax, DT_DEPTH_FLOOR_M, self._level_depth(t))
        dt0 = c / math.sqrt(h)
        span = dt0 * 2**lm
        rain_rate = self._rain_rate(t)
        grow_rain = rain_rate * self._rmult_max * span
        grow = grow_rain
        for f in self._inflows:  # over one base step, as the global step (inflow tiles are
            # at level 0; the water spreads from the inflow cells as it comes)
            qmax = max(_interp(f["t"], f["q"], t, True), _interp(f["t"], f["q"], t + span, True))
            grow = max(grow, qmax * dt0 / (f["n"] * self.dx * self.dx))
        h2 = max(h, self._hmax + grow, self._level_depth(t + span))
        if h2 > h:
            dt0 = c / math.sqrt(h2)
        if self.max_dt is not None:
            dt0 = min(dt0, self.max_dt)
            while lm > 0 and dt0 * 2**lm > self.max_dt:
                lm -= 1
        t_new = t + dt0 * 2**lm
        i = bisect.bisect_right(self._bp, t)
        if i < len(self._bp) and self._bp[i] <= t_new:
            t_new = self._bp[i]
        t_new = min(t_new, t_end)
        if not t_new > t:  # pragma: no cover - only if dt fell below the clock's ulp
            _fail(f"advance: the time step underflowed at t = {t!r} s (max depth "
                  f"{self._hmax:.3g} m): the flood probably became unstable; lower alpha "
                  f"(now {self.alpha:g})")  # fmt: skip
        while lm > 0 and (t_new - t) / 2 ** (lm - 1) <= dt0:
            lm -= 1
        dt0 = (t_new - t) / 2**lm
        edge = np.full(4, -np.inf)
        for s, (lt, lv, _) in self._levels.items():
            inside = [v for tt, v in zip(lt, lv, strict=True) if t <= tt <= t_new]
            edge[s] = max([_interp(lt, lv, t, False), _interp(lt, lv, t_new, False), *inside])
        if not hasattr(self, "_tcap"):  # a checkpoint of an earlier version
            self._lts_scratch()
            self._lts_global = 0
        if rising:
            # rising water (a bore filling a basin): it may rise within the macro step
            # past what dt0 allows, where global steps follow it step by step
            return self._lts_as_global(t_new, t_end)
        nin = len(self._in_rows)
        tin = self._tin
        tin[:] = 0
        if nin:
            tin[self._in_rows // self.lts_tile, self._in_cols // self.lts_tile] = 1
        self._lts_tile_levels(c, dt0, lm, rain_rate * self._rmult_max * (t_new - t), edge,
                              rain_rate > 0.0)  # fmt: skip
        share = None if cost is None else _lts.update_share(self._tlev, self.lts_tile,
                                                            self.nrows, self.ncols)  # fmt: skip
        # the share of the cells that global steps would compute (all of them under rain)
        g = 1.0
        full = 0
        if share is not None and rain_rate == 0.0 and self._dry_steps:
            g = self._dry_windows(zero=False) / self._h.size
            if g > DRY_MAX:  # the global steps would be full ones, the next DRY_BLOCK of
                g = 1.0  # them without looking for dry blocks again
                full = DRY_BLOCK
        if share is not None and cost * share > g:
            # local steps would cost more than global ones that leave out the dry blocks
            return self._lts_as_global(t_new, t_end, full=full)
        n = 2**lm
        tks = t + dt0 * np.arange(n + 1.0)
        tks[-1] = t_new
        area = self.dx * self.dx
        # forcing per base step: inflow depths, boundary values
        ddk = np.zeros((n, nin))
        bcvk = np.tile(self._bcv, (n, 1))
        for k in range(n):
            a, b = float(tks[k]), float(tks[k + 1])
            for f in self._inflows:
                v = 0.5 * dt0 * (_interp(f["t"], f["q"], a, True)
                                 + _interp(f["t"], f["q"], b, True))
                ddk[k, f["start"] : f["start"] + f["n"]] = v / (f["n"] * area)
                self._led["inflow_in"] += v
            for s, (lt, lv, _) in self._levels.items():
                bcvk[k, s] = _interp(lt, lv, a, False)
        pdl = np.zeros((lm + 1, _nb.N_DPARAMS), self.dtype)
        for lev in range(lm + 1):
            _nb.face_params(pdl[lev], self.theta, dt0 * 2**lev, self.dx, self.dry_tol,
                            self._n_scalar, self.debris_factor)  # fmt: skip
        q = self._q
        q[_lts.Q_RAIN], q[_lts.Q_INF], q[_lts.Q_DT0] = rain_rate, self._inf, dt0
        # (the bands of tiles go to the threads in equal contiguous shares: Numba ignores a
        # parallel chunk size here, and balancing the shares by work gained nothing,
        # docs/flood.md, *Dry blocks in the global steps*)
        if self._dry is not None:
            self._dry.stale()
        hmax, vin, vout, vinf, lost, cells, nrep = self._lts_call(q, pdl, tks, ddk, bcvk)
        if not math.isfinite(hmax):
            _fail(f"the flood became unstable in the macro step from t = {t:.3f} s to "
                  f"{t_new:.3f} s (base step {dt0:.4g} s, local time stepping): the depth is "
                  f"no longer finite. Lower alpha (now {self.alpha:g}) or theta (now "
                  f"{self.theta:g}), or check the forcing")  # fmt: skip
        led = self._led
        led["rain_in"] += rain_rate * (t_new - t) * self._rain_cells * area
        led["boundary_in"] += vin
        led["boundary_out"] += vout
        led["infiltration"] += vinf
        self._unplaced += lost
        self._hmax = hmax
        self.t = t_new
        self.steps += n
        self.cell_updates += int(cells)
        self._lts_repairs += int(nrep)
        return n

    def _off_inflow(self) -> float:
        """The deepest water outside the inflow cells, m (the base step allows for what
        inflows add there over a step; on a GPU this reads the depths back)."""
        h = self.h
        m = float(h.max())
        if not self._in_rows.size or m > float(h[self._in_rows, self._in_cols].max()):
            return m
        off = np.ones(h.shape, bool)
        off[self._in_rows, self._in_cols] = False
        return float(h[off].max()) if off.any() else 0.0

    def _lts_as_global(self, t_new: float, t_end: float, *, full: int = 0) -> int:
        """Global steps over a macro step's span, to *t_new* (s), each as :meth:`advance`
        makes them (so a run of them is the global run bit for bit), leaving out the dry
        blocks (after *full* full steps, see :meth:`_global_steps`); returns their
        number."""
        n = self._global_steps(t_new, t_end, dry=self._dry_steps, full=full)
        self._lts_global += n
        return n

    def _lts_tile_levels(self, c: float, dt0: float, lm: int, grow: float, edge: np.ndarray,
                         rain_on: bool) -> None:
        """Each tile's level for the next macro step into ``_tlev`` (see
        :func:`emtwin.kernels._flood_lts.tile_levels`; *c* = alpha dx / sqrt(g) (m s^-1/2),
        *dt0* the base step (s), *lm* the macro step's level, *grow* the depth rain may add
        over it (m), *edge* the highest level of each level boundary over it (m, -inf for
        none))."""
        _lts.tile_levels(self._h, self._z, self._grp, self.lts_tile, c, dt0, lm,
                         DT_DEPTH_FLOOR_M, grow, self._tin, edge, rain_on, self._inf > 0.0,
                         self.dry_tol, self._tcap, self._bopen(), self._tlev,
                         self._tdry)  # fmt: skip

    def _bopen(self) -> int:
        """The grid edges whose boundary is not closed, as bits ``1 << side`` (north,
        south, west, east)."""
        return sum(1 << s for s in range(4) if self._bct[s] != _nb.BC_CLOSED)

    def _lts_call(self, q, pdl, tks, ddk, bcvk):
        """One call of the macro step's Numba core (see :meth:`_lts_macro`)."""
        return _lts.macro(
            self._h, self._z, self._grp, self._n, self._nsc, self._rmult, self._rsc, self._qx,
            self._qy, self._qxn, self._qyn, self._vx, self._vy, self._vcx, self._vcy, self._maxd,
            self._maxs, self._maxhr, self._maxa, self._arr, self._bct, bcvk, self._tlev,
            self.lts_tile, self._tacc, q, pdl, tks, self._in_rows, self._in_cols, ddk,
            max(1, _lts.RUN_CELLS // self.lts_tile), self._rt, self._rn, self._la, self._lc,
            self._cnt, self._lstack, self._linstack, self._lwk, self._lwf,
            self._lts_ranges(), self._tcap,
            not getattr(self, "_lts_copy", False))  # fmt: skip

    def _lts_ranges(self) -> int:
        """Ranges of bands of tiles a local sub-step spreads over threads: one per Numba
        thread, 1 (no parallel region) on one thread. The results do not depend on it;
        ``_lts_threads``, where set, overrides it (tests)."""
        if not self._parallel:
            return 1
        return getattr(self, "_lts_threads", None) or numba.get_num_threads()

    def _level_depth(self, t: float) -> float:
        d = 0.0
        for lt, lv, zmin in self._levels.values():
            d = max(d, _interp(lt, lv, t, False) - zmin)
        return d

    def _rain_rate(self, t: float) -> float:
        i = bisect.bisect_right(self._rain_t, t) - 1
        return self._rain_r[i] if i >= 0 else 0.0

    def _release_due(self) -> bool:
        """Release the reservoirs whose time has come; True if any was."""
        done = False
        for res in self._reservoirs:
            if not res["released"] and self.t >= res["release"]:
                self._grp[res["rows"], res["cols"]] = 1
                res["released"] = True
                done = True
        return done

    def _rebuild_breakpoints(self) -> None:
        bp = set(self._rain_t)
        for f in self._inflows:
            bp.update(f["t"])
        bp.update(r["release"] for r in self._reservoirs if not r["released"])
        self._bp = sorted(bp)

    # ------------------------------------------------------------------ helpers

    def _set_chunks(self, nch: int, *, parallel: bool | None = None, reverse: bool = False) -> None:
        """Cut the rows into *nch* contiguous chunks (one parallel task each).

        Results do not depend on the chunking, nor on the order the chunks run
        in. With ``parallel=False`` the chunks run one after another on the
        calling thread (in reverse order with *reverse*); by default they run
        in parallel when there are several.
        """
        nr, nc = self.nrows, self.ncols
        nch = max(1, min(int(nch), nr))
        self._nch = nch
        self._parallel = nch > 1 if parallel is None else bool(parallel)
        self._reverse = bool(reverse)
        starts = np.linspace(0, nr, nch + 1).round().astype(np.int64)
        win = np.zeros((nch, 5), np.int64)  # chunks (a, b, c0, c1, o): whole rows a..b-1
        win[:, 0], win[:, 1], win[:, 3], win[:, 4] = starts[:-1], starts[1:], nc, starts[:-1]
        self._full = (win, *_nb.scratch(nch, nc, self.dtype))
        self._full_gs = np.arange(nch + 1, dtype=np.int64)  # one chunk per parallel task
        # the tallest dry-block window: a whole-row chunk's height, at least a block
        self._dry_rows = max(DRY_BLOCK, int(np.diff(starts).max()))
        self._dry: _dry.DryWindows | None = None  # made by _dry_windows when needed
        self._dry_key: tuple = ()

    def _cells(self, label: str, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        r = np.atleast_1d(np.asarray(rows))
        c = np.atleast_1d(np.asarray(cols))
        if r.ndim != 1 or r.shape != c.shape or r.size == 0:
            _fail(f"{label}: rows and cols must be 1-D of equal length >= 1, "
                  f"got shapes {r.shape} and {c.shape}")  # fmt: skip
        if r.dtype.kind not in "iu" or c.dtype.kind not in "iu":
            _fail(f"{label}: rows and cols must be integer cell indices")
        out = (r < 0) | (r >= self.nrows) | (c < 0) | (c >= self.ncols)
        if out.any():
            i = int(np.argmax(out))
            _fail(f"{label}: cell (row {int(r[i])}, col {int(c[i])}) is outside the domain "
                  f"grid of {self.nrows} x {self.ncols} cells")  # fmt: skip
        outside = ~self.mask[r, c]
        if outside.any():
            i = int(np.argmax(outside))
            _fail(f"{label}: cell (row {int(r[i])}, col {int(c[i])}) is outside the domain "
                  "mask")
        return r.astype(np.int64), c.astype(np.int64)

    def _edge(self, s: int) -> tuple:
        """Index of the in-mask edge cells of side *s* as a boolean grid."""
        e = np.zeros(self.mask.shape, bool)
        sl = {0: (0, slice(None)), 1: (-1, slice(None)), 2: (slice(None), 0),
              3: (slice(None), -1)}[s]  # fmt: skip
        e[sl] = True
        return e & self.mask

    # ------------------------------------------------------------------ ledger

    def ledger(self) -> dict[str, float]:
        """Water volumes since the start, m3 (float64).

        Keys: ``initial`` (h0 plus reservoirs), ``rain_in``, ``inflow_in``,
        ``boundary_in``, ``boundary_out``, ``infiltration``, ``stored`` (now),
        ``error`` = stored - (initial + rain_in + inflow_in + boundary_in -
        boundary_out - infiltration), and ``error_rel`` = error / the volume
        that has entered the system (initial + all inflows).
        """
        led = dict(self._led)
        led["stored"] = float(self._h.sum(dtype=np.float64)) * self.dx * self.dx
        total = led["initial"] + led["rain_in"] + led["inflow_in"] + led["boundary_in"]
        led["error"] = led["stored"] - (total - led["boundary_out"] - led["infiltration"])
        led["error_rel"] = led["error"] / max(total, float(np.finfo(np.float64).tiny))
        order = ("initial", "rain_in", "inflow_in", "boundary_in", "boundary_out",
                 "infiltration", "stored", "error", "error_rel")  # fmt: skip
        return {k: led[k] for k in order}


def _warm_up(dtype: np.dtype, parallel: bool, time_stepping: str = "global") -> None:
    """Compile (or load from the cache) the cores for *dtype* on a tiny grid.

    Run once per process for each dtype and for the parallel step, at the first
    construction that needs it, so that :attr:`FloodModel.wall_s` never
    includes compilation.
    """
    z = np.add.outer(np.arange(4.0), np.arange(5.0)) * 0.1
    m = FloodModel(z, None, 10.0, manning=np.full(z.shape, 0.03), h0=0.01, dtype=dtype,
                   time_stepping=time_stepping, lts_levels=1, lts_tile=2,
                   lts_cost=None)  # (local steps even where they would not pay, to compile them)
    if parallel:
        m._set_chunks(2, parallel=True)
    m.set_rain([0.0, 1.0], [100.0, 0.0], multiplier=np.ones(z.shape))
    m.set_infiltration(1.0)
    m.add_inflow([1], [1], [0.0, 2.0], [0.1, 0.0])
    m.set_boundary("east", "open")
    m.set_boundary("north", "level", times_s=[0.0], level_m=[0.5])
    m.advance(2.0)
    if time_stepping == "local":
        _lts.fix_negative_lts(0, m._h, m._qx, m._qy, m._qxn, m._qyn, m._vx, m._vy, m._vcx,
                              m._vcy, m._tlev, m.lts_tile, 1.0, m.dx, m._rt, m._rn, m._lc, 0,
                              m._tacc, m._lstack, m._linstack, np.zeros(4),
                              np.zeros(4, np.int64))  # fmt: skip
        m.set_boundary("north", "closed")
        m._dry_windows()
        _dry.row_counts(m._dry.win[: m._dry.n], m._dry.rowneg, m._rowneg)
        m._dry_windows(zero=False)
    m._stack = np.zeros(2 * z.size, np.int64)
    m._instack = np.zeros(z.size, np.uint8)
    _nb.fix_negative(m._h, m._qx, m._qy, m._rowneg, m._stack, m._instack, 1.0, m.dx)
    m.ledger()
