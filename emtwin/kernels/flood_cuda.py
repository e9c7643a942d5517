"""The flood kernel on a CUDA GPU (Numba CUDA): :class:`CudaFloodModel`.

A subclass of :class:`~emtwin.kernels.flood.FloodModel` that keeps all the
host logic (input checks, forcing, breakpoints, the step length and its caps,
the rain and inflow ledger) and replaces only the step itself
(:meth:`FloodModel._kernel_step`) with the kernels of
:mod:`emtwin.kernels._flood_cuda`. The state (``h``, ``qx``, ``qy``) and the
records stay on the device between :meth:`advance` calls; the properties copy
them back on demand (only what is read, only when the device copy is newer).
Per step one 16-byte buffer comes back: h_max (m) for the next step length
and the count of negative depths. The boundary and infiltration volumes are
summed on the device and read by :meth:`ledger`. See docs/gpu.md.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
from numba import cuda

from emtwin.errors import KernelError
from emtwin.kernels import _flood_cuda as _k
from emtwin.kernels import _flood_cuda_lts as _kl
from emtwin.kernels import _flood_lts as _lts
from emtwin.kernels import _probe_cuda as _probe
from emtwin.kernels._flood_numba import G
from emtwin.kernels.backend import cuda_available, simulator_enabled
from emtwin.kernels.flood import DT_DEPTH_FLOOR_M, FloodModel
from emtwin.kernels.road_state import edge_max_depth

__all__ = ["CudaFloodModel"]

# device name -> host attribute, for the state that the step changes
_STATE = {"h": "_h", "qx": "_qx", "qy": "_qy", "maxd": "_maxd", "maxs": "_maxs",
          "maxhr": "_maxhr", "maxa": "_maxa", "arr": "_arr"}  # fmt: skip
_WARM: set[str] = set()
#: Attributes that live on (or point to) the device: left out of a checkpoint.
_DEVICE_ATTRS = ("_dev", "_sb", "_faces", "_stale", "_push_state", "_push_rmult", "_n_in",
                 "_probe", "_block", "_grid_f", "_grid_c", "_faces_lts", "_grid_t",
                 "_lb")  # fmt: skip
log = logging.getLogger(__name__)


def _add_volumes(led: dict[str, float], acc: np.ndarray) -> None:
    """Add the device's volume accumulators (m3) to a host ledger, in place."""
    led["boundary_in"] += float(acc[_k.A_IN])
    led["boundary_out"] += float(acc[_k.A_OUT])
    led["infiltration"] += float(acc[_k.A_INF])


class CudaFloodModel(FloodModel):
    """:class:`FloodModel` stepped by Numba CUDA kernels (same arguments and methods).

    The only difference in the arguments is the default *dtype*: float32 (the
    face momentum runs in the state dtype; continuity, boundary faces and the
    ledger stay float64). Raises :class:`KernelError` when Numba has no CUDA
    device (nor the simulator, ``NUMBA_ENABLE_CUDASIM=1``).
    """

    backend = "cuda"
    _dry_steps = False

    def __init__(self, z, mask, dx: float, *, dtype=np.float32, **kwargs) -> None:
        if not cuda_available():
            raise KernelError("CudaFloodModel: Numba finds no usable CUDA GPU (nor the "
                              "simulator, NUMBA_ENABLE_CUDASIM=1); use FloodModel on the CPU")
        super().__init__(z, mask, dx, dtype=dtype, **kwargs)
        self._upload(np.zeros(4))
        key = f"{self.dtype.name} {self.time_stepping}"
        if key not in _WARM and not simulator_enabled():
            _WARM.add(key)
            try:
                _cuda_warm_up(self.dtype, self.time_stepping)
            except KernelError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. no NVVM/libdevice for the JIT
                _WARM.discard(key)
                raise KernelError(
                    f"CudaFloodModel: the CUDA kernels failed to compile or run "
                    f"({type(exc).__name__}: {exc}); a CUDA toolkit (NVVM, libdevice) must "
                    "be installed for Numba, e.g. pip install 'numba-cuda[cu12]'"
                ) from exc

    # ------------------------------------------------------------------ transfers

    def _upload(self, acc: np.ndarray) -> None:
        """Put the host state on the device (at start-up, or when a checkpoint is loaded)
        with the device accumulators *acc* (boundary in/out, infiltration, lost; m3)."""
        nr, nc = self.nrows, self.ncols
        self._block = (8, 8) if simulator_enabled() else _k.BLOCK
        bx, by = self._block
        self._grid_f = (math.ceil((nc + 1) / bx), math.ceil((nr + 1) / by))
        self._grid_c = (math.ceil(nc / bx), math.ceil(nr / by))
        self._faces = _k.faces if simulator_enabled() else _k.FACES[self.dtype.name]
        d: dict = {}
        self._dev = d
        d["z"] = cuda.to_device(self._z)
        d["n"] = cuda.to_device(self._n)
        d["grp"] = cuda.to_device(self._grp)
        for name, attr in _STATE.items():
            d[name] = cuda.to_device(getattr(self, attr))
        d["qxn"] = cuda.device_array_like(self._qx)
        d["qyn"] = cuda.device_array_like(self._qy)
        pd = np.array(_k.device_params(self.theta, self.dx, self.dry_tol, self._n_scalar,
                                       self.debris_factor), dtype=self.dtype)  # fmt: skip
        d["pd"] = cuda.to_device(pd)
        d["acc"] = cuda.to_device(np.asarray(acc, np.float64).copy())
        d["stepbuf"] = cuda.to_device(np.zeros(2))
        d["rowneg"] = cuda.to_device(np.zeros(nr, np.int32))
        d["bct"] = cuda.to_device(self._bct)
        self._sb = cuda.pinned_array(2, np.float64)
        self._stale: set[str] = set()  # host copies older than the device ones
        self._push_state = False  # host state newer than the device: upload before stepping
        self._push_rmult = True
        self._n_in = -1  # inflow cells on the device
        self._probe: dict = {}  # coupling-read indices on the device (see _cached)
        if self.time_stepping == "local":
            self._upload_lts()

    def _upload_lts(self) -> None:
        """The device arrays of local time stepping (:mod:`emtwin.kernels._flood_cuda_lts`):
        face accumulators (zero between macro steps), tile levels and caps, runs, and the
        negative-depth repair's stack."""
        d = self._dev
        ntr, ntc = self._tlev.shape
        nt = ntr * ntc
        bx, by = self._block
        self._grid_t = (math.ceil(ntc / bx), math.ceil(ntr / by))
        self._faces_lts = (_kl.faces_lts if simulator_enabled()
                           else _kl.FACES_LTS[self.dtype.name])  # fmt: skip
        for name, like in (("vx", self._qx), ("vcx", self._qx), ("vy", self._qy),
                           ("vcy", self._qy)):  # fmt: skip
            d[name] = cuda.to_device(np.zeros(like.shape))
        d["tlev"] = cuda.to_device(self._tlev)
        d["tdry"] = cuda.to_device(self._tdry)
        d["tin"] = cuda.to_device(self._tin)
        d["tcap"] = cuda.to_device(self._tcap)
        d["edge"] = cuda.to_device(np.zeros(4))
        for name in ("rt", "rn", "lc"):
            d[name] = cuda.to_device(np.zeros(nt, np.int64))
        d["head"] = cuda.to_device(np.zeros((ntr, ntc), np.int64))
        d["tacc"] = cuda.to_device(np.zeros((nt, _lts.N_ACC)))
        d["lbuf"] = cuda.to_device(np.zeros(3))
        d["stack"] = cuda.to_device(np.zeros(2 * self._h.size, np.int64))
        d["instack"] = cuda.to_device(np.zeros(self._h.size, np.uint8))
        self._lb = cuda.pinned_array(3, np.float64)

    # ------------------------------------------------------------------ checkpoints

    def __getstate__(self) -> dict:
        """The model as host data, for a checkpoint: the device state copied back, the
        device objects left out, the device accumulators kept as ``_acc_host``."""
        self._pull()
        state = {k: v for k, v in self.__dict__.items() if k not in _DEVICE_ATTRS}
        state["_acc_host"] = self._dev["acc"].copy_to_host()
        return state

    def __setstate__(self, state: dict) -> None:
        """Rebuild from :meth:`__getstate__`: back on the device when Numba finds a GPU
        (or the simulator); otherwise the model goes on as the CPU kernel
        (:class:`FloodModel`, global steps, its dtype kept), with a warning."""
        state = dict(state)
        acc = np.asarray(state.pop("_acc_host"), np.float64)
        self.__dict__.update(state)
        if cuda_available():
            self._upload(acc)
            return
        log.warning("this checkpoint's flood ran on a GPU; none is found here, so it goes "
                    "on on the CPU (%s, global steps)", self.dtype.name)
        self._fold_into_host(acc)

    def _fold_into_host(self, acc: np.ndarray) -> None:
        """Become the CPU :class:`FloodModel` with the same state and ledger."""
        _add_volumes(self._led, acc)
        self._unplaced += float(acc[_k.A_LOST])
        for k in _DEVICE_ATTRS:
            self.__dict__.pop(k, None)
        self.time_stepping = "global"
        self.__class__ = FloodModel

    def to_cpu(self) -> FloodModel:
        """A CPU :class:`FloodModel` with this model's state, forcing and ledger (a copy)."""
        state = self.__getstate__()
        acc = state.pop("_acc_host")
        other = object.__new__(CudaFloodModel)
        other.__dict__.update(copy.deepcopy(state))
        other._fold_into_host(acc)
        return other  # type: ignore[return-value]

    def _pull(self, *names: str) -> None:
        """Copy the named state arrays (keys of ``_STATE``) back when the host is stale."""
        for name in names or tuple(_STATE):
            if name in self._stale:
                self._dev[name].copy_to_host(getattr(self, _STATE[name]))
                self._stale.discard(name)

    def _to_device(self) -> None:
        """Upload what the host changed since the last step (forcing set-up, reservoirs)."""
        d = self._dev
        if self._push_state:
            for name, attr in _STATE.items():
                d[name].copy_to_device(getattr(self, attr))
            d["grp"].copy_to_device(self._grp)
            self._push_state = False
        if self._push_rmult:
            d["rmult"] = cuda.to_device(self._rmult)
            self._push_rmult = False
        d["bct"].copy_to_device(self._bct)
        if self._n_in != len(self._in_rows):
            self._n_in = len(self._in_rows)
            if self._n_in:
                d["in_rows"] = cuda.to_device(self._in_rows)
                d["in_cols"] = cuda.to_device(self._in_cols)
                d["dd"] = cuda.device_array(self._n_in, self.dtype)

    # ------------------------------------------------------------------ host hooks

    def set_rain(self, times_s, rate_mm_h, *, multiplier=None) -> None:  # noqa: D102
        super().set_rain(times_s, rate_mm_h, multiplier=multiplier)
        self._push_rmult = True

    set_rain.__doc__ = FloodModel.set_rain.__doc__

    def add_reservoir(self, cells, level_m: float, release_time_s: float) -> None:  # noqa: D102
        self._pull()
        super().add_reservoir(cells, level_m, release_time_s)
        self._push_state = True

    add_reservoir.__doc__ = FloodModel.add_reservoir.__doc__

    def advance(self, t_end_s: float) -> int:  # noqa: D102
        self._to_device()
        return super().advance(t_end_s)

    advance.__doc__ = FloodModel.advance.__doc__

    def _release_due(self) -> None:
        before = sum(r["released"] for r in self._reservoirs)
        super()._release_due()
        if sum(r["released"] for r in self._reservoirs) != before:
            self._dev["grp"].copy_to_device(self._grp)

    def _kernel_step(self, dt: float, t_new: float, rain: float,
                     inflow: bool) -> tuple[float, float, float, float]:  # fmt: skip
        """One step on the device; returns (h_max m, 0, 0, 0): the volumes stay there."""
        d = self._dev
        if inflow:
            d["dd"].copy_to_device(self._in_dd.astype(self.dtype))
            n = self._n_in
            _k.add_depth[math.ceil(n / 64), 64](d["h"], d["in_rows"], d["in_cols"], d["dd"])
        bcv = self._bcv
        self._faces[self._grid_f, self._block](
            d["h"], d["z"], d["grp"], d["n"], self._nsc, d["qx"], d["qy"], d["qxn"], d["qyn"],
            d["pd"], self.dtype.type(G * dt), d["bct"], float(bcv[0]), float(bcv[1]),
            float(bcv[2]), float(bcv[3]), float(dt), self.dx, self.dry_tol, d["acc"],
            d["stepbuf"], d["rowneg"],
        )  # fmt: skip
        d["qx"], d["qxn"] = d["qxn"], d["qx"]
        d["qy"], d["qyn"] = d["qyn"], d["qy"]
        _k.continuity[self._grid_c, self._block](
            d["h"], d["grp"], d["rmult"], self._rsc, d["qx"], d["qy"], d["maxd"], d["maxs"],
            d["maxhr"], d["maxa"], d["arr"], d["pd"], float(rain), float(self._inf * dt),
            float(dt / self.dx), self.dx * self.dx, float(t_new), self.arrival_depth,
            d["acc"], d["stepbuf"], d["rowneg"],
        )  # fmt: skip
        d["stepbuf"].copy_to_host(self._sb)
        self._stale.update(_STATE)
        hmax, nneg = float(self._sb[_k.S_HMAX]), float(self._sb[_k.S_NNEG])
        if nneg:
            if "stack" not in d:
                d["stack"] = cuda.to_device(np.zeros(2 * self._h.size, np.int64))
                d["instack"] = cuda.to_device(np.zeros(self._h.size, np.uint8))
            _k.fix_negative_kernel[1, 1](d["h"], d["qx"], d["qy"], d["rowneg"], d["stack"],
                                         d["instack"], float(dt), self.dx, d["acc"])  # fmt: skip
        return hmax, 0.0, 0.0, 0.0

    # ------------------------------------------------------------------ local time stepping

    def _lts_tile_levels(self, c: float, dt0: float, lm: int, grow: float, edge: np.ndarray,
                         rain_on: bool) -> None:  # noqa: D102
        d = self._dev
        d["tin"].copy_to_device(self._tin)
        d["edge"].copy_to_device(np.asarray(edge, np.float64))
        _kl.tile_raw[self._grid_t, self._block](
            d["h"], d["z"], d["grp"], self.lts_tile, c, dt0, lm, DT_DEPTH_FLOOR_M, grow,
            d["tin"], d["edge"], self._inf > 0.0, self.dry_tol, d["tcap"], self._bopen(),
            d["tlev"], d["tdry"])  # fmt: skip
        d["tlev"].copy_to_host(self._tlev)
        d["tdry"].copy_to_host(self._tdry)
        _lts.smooth_levels(self._tlev, self._tdry, rain_on)

    _lts_tile_levels.__doc__ = FloodModel._lts_tile_levels.__doc__

    def _lts_call(self, q, pdl, tks, ddk, bcvk):
        """One macro step on the device (:mod:`emtwin.kernels._flood_cuda_lts`): three
        launches per base step and one read-back at the end. Returns what
        :func:`emtwin.kernels._flood_lts.macro` returns, with the volumes left on the
        device (0 here; :meth:`ledger` adds them)."""
        d = self._dev
        B = self.lts_tile
        tlev = self._tlev
        d["tlev"].copy_to_device(tlev)
        dt0 = float(q[_lts.Q_DT0])
        nrun = _lts.runs(tlev, max(1, _lts.RUN_CELLS // B), self._rt, self._rn, self._tcap, dt0)
        rt, rn = self._rt[:nrun], self._rn[:nrun]
        head = np.zeros(tlev.size, np.int64)
        head[np.repeat(rt, rn) + np.arange(int(rn.sum())) - np.repeat(np.cumsum(rn) - rn, rn)] \
            = np.repeat(rt, rn)  # fmt: skip
        d["rt"].copy_to_device(self._rt)
        d["rn"].copy_to_device(self._rn)
        d["head"].copy_to_device(head.reshape(tlev.shape))
        d["lbuf"].copy_to_device(np.zeros(3))
        n = len(tks) - 1
        lm = int(np.log2(n))
        gdtl = np.array([G * dt0 * 2**lev for lev in range(lm + 1)], self.dtype)
        d_gdt = cuda.to_device(gdtl)
        tlev_d = d["tlev"]
        nin = self._n_in
        if nin:
            d_dd = cuda.to_device(np.ascontiguousarray(ddk, self.dtype))
        for k in range(n):
            if nin:
                _k.add_depth[math.ceil(nin / 64), 64](d["h"], d["in_rows"], d["in_cols"],
                                                      d_dd[k])  # fmt: skip
            b = bcvk[k]
            self._faces_lts[self._grid_f, self._block](
                k, d["h"], d["z"], d["grp"], d["n"], self._nsc, d["qx"], d["qy"], d["qxn"],
                d["qyn"], d["vx"], d["vy"], d["pd"], d_gdt, dt0, d["bct"], float(b[0]),
                float(b[1]), float(b[2]), float(b[3]), self.dx, self.dry_tol, tlev_d, B,
                d["tcap"], d["acc"])  # fmt: skip
            _kl.cells_lts[self._grid_c, self._block](
                k, k == n - 1, d["h"], d["grp"], d["rmult"], self._rsc, d["qx"], d["qy"],
                d["qxn"], d["qyn"], d["vx"], d["vy"], d["vcx"], d["vcy"], d["maxd"], d["maxs"],
                d["maxhr"], d["maxa"], d["arr"], d["pd"], float(q[_lts.Q_RAIN]),
                float(q[_lts.Q_INF]), dt0, self.dx, float(tks[k + 1]), self.arrival_depth,
                tlev_d, B, d["head"], d["tacc"], d["acc"], d["lbuf"])  # fmt: skip
            _kl.repair_lts[1, 1](
                k, d["h"], d["qx"], d["qy"], d["qxn"], d["qyn"], d["vx"], d["vy"], d["vcx"],
                d["vcy"], tlev_d, B, dt0, self.dx, d["rt"], d["rn"], nrun, d["lc"], d["tacc"],
                d["stack"], d["instack"], d["acc"], d["lbuf"])  # fmt: skip
        d["lbuf"].copy_to_host(self._lb)
        self._stale.update(_STATE)
        # cell updates: a tile of level L updates its cells n / 2^L times
        rows = np.minimum(B, self.nrows - B * np.arange(tlev.shape[0]))
        cols = np.minimum(B, self.ncols - B * np.arange(tlev.shape[1]))
        on = tlev != _lts.SKIP
        cells = int((np.outer(rows, cols)[on] * (n >> tlev[on])).sum())
        return (float(self._lb[_kl.L_HMAX]), 0.0, 0.0, 0.0, 0.0, cells,
                int(self._lb[_kl.L_REPAIRS]))  # fmt: skip

    # ------------------------------------------------------------------ views

    @property
    def h(self) -> np.ndarray:
        """Water depth, m, shape (nrows, ncols) (read-only copy of the device state)."""
        self._pull("h")
        return self._ro(self._h)

    @property
    def qx(self) -> np.ndarray:
        """Unit discharge on x-faces, m2/s, shape (nrows, ncols + 1), + toward east."""
        self._pull("qx")
        return self._ro(self._qx)

    @property
    def qy(self) -> np.ndarray:
        """Unit discharge on y-faces, m2/s, shape (nrows + 1, ncols), + toward south."""
        self._pull("qy")
        return self._ro(self._qy)

    @property
    def max_depth(self) -> np.ndarray:
        """Maximum depth so far, m, shape (nrows, ncols)."""
        self._pull("maxd")
        return self._ro(self._maxd)

    @property
    def max_speed(self) -> np.ndarray:
        """Maximum cell speed so far, m/s, shape (nrows, ncols)."""
        self._pull("maxs")
        return self._ro(self._maxs)

    @property
    def arrival_time(self) -> np.ndarray:
        """First time depth >= ``arrival_depth``, s since start; NaN where never (float64)."""
        self._pull("arr")
        return self._ro(self._arr)

    @property
    def max_hr(self) -> np.ndarray:
        """Maximum FD2320 hazard rating so far, shape (nrows, ncols)."""
        self._pull("maxhr")
        return self._ro(self._maxhr)

    @property
    def max_aidr(self) -> np.ndarray:
        """Maximum AIDR 7-3 hazard class so far (int8, 0 dry, 1..6 = H1..H6)."""
        self._pull("maxa")
        return self._ro(self._maxa)

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre velocity (u east, v north), m/s, from the device state."""
        self._pull("h", "qx", "qy")
        return super().velocity()

    def speed(self) -> np.ndarray:
        """Cell-centre speed, m/s, from the device state (see :meth:`FloodModel.speed`)."""
        self._pull("h", "qx", "qy")
        return super().speed()

    def speeds_at(self, cells: np.ndarray) -> np.ndarray:
        """Speed (m/s) at flat cells, from the device state (see :meth:`FloodModel.speeds_at`)."""
        self._pull("h", "qx", "qy")
        return super().speeds_at(cells)

    def ledger(self) -> dict[str, float]:
        """Water volumes since the start, m3 (float64); as :meth:`FloodModel.ledger`.

        Boundary in/out and infiltration come from the device accumulators.
        """
        self._pull("h")
        saved = dict(self._led)
        _add_volumes(self._led, self._dev["acc"].copy_to_host())
        try:
            return super().ledger()
        finally:
            self._led = saved

    @property
    def unplaced_m3(self) -> float:
        """Volume the negative-depth repair could not place, m3 (0 unless something broke)."""
        return float(self._dev["acc"].copy_to_host()[_k.A_LOST]) + self._unplaced

    # ------------------------------------------------------------------ coupling reads

    def _cached(self, key: tuple, make):
        """A device-side object built once per key (which holds the host arrays it
        was made from, so that their ids stay theirs)."""
        hit = self._probe.get(key)
        if hit is None:
            hit = self._probe[key] = make()
        return hit

    def edge_depths(self, indptr: np.ndarray, cells: np.ndarray) -> np.ndarray:  # noqa: D102
        n_edges = len(indptr) - 1

        def make():
            edge_max_depth(indptr, cells, np.zeros(self.nrows * self.ncols))  # checks the index
            return (indptr, cells, cuda.to_device(np.asarray(indptr, np.int64)),
                    cuda.to_device(np.asarray(cells, np.int64)),
                    cuda.device_array(max(n_edges, 1), np.float64))  # fmt: skip

        _, _, d_ptr, d_cells, d_out = self._cached(("edges", id(indptr), id(cells)), make)
        if n_edges == 0:
            return np.zeros(0)
        _probe.edge_max[math.ceil(n_edges / _probe.THREADS), _probe.THREADS](
            d_ptr, d_cells, self._dev["h"], d_out)  # fmt: skip
        return d_out.copy_to_host()[:n_edges]

    edge_depths.__doc__ = FloodModel.edge_depths.__doc__

    def depths_at(self, cells: np.ndarray) -> np.ndarray:  # noqa: D102
        n = len(cells)
        if n == 0:
            return np.zeros(0)

        def make():
            flat = np.asarray(cells, np.int64)
            if flat.min() < 0 or flat.max() >= self.nrows * self.ncols:
                raise KernelError(f"depths_at: cell indices must be in [0, "
                                  f"{self.nrows * self.ncols}), got {flat.min()}..{flat.max()}")
            return cells, cuda.to_device(flat), cuda.device_array(n, np.float64)

        _, d_cells, d_out = self._cached(("cells", id(cells)), make)
        _probe.gather[math.ceil(n / _probe.THREADS), _probe.THREADS](
            self._dev["h"], d_cells, d_out)  # fmt: skip
        return d_out.copy_to_host()

    depths_at.__doc__ = FloodModel.depths_at.__doc__

    def depth_stats(self, threshold_m: float,
                    region: np.ndarray | None = None) -> tuple[int, float, float]:  # fmt: skip
        if region is None:
            n_region, d_region = self.nrows * self.ncols, self._dev["grp"]
        else:
            def make():
                r = np.ascontiguousarray(region, np.uint8)
                return region, int(r.sum()), cuda.to_device(r)

            _, n_region, d_region = self._cached(("region", id(region)), make)
        if n_region == 0:
            return 0, 0.0, 0.0
        buf = self._dev.get("stats")
        if buf is None:
            buf = self._dev["stats"] = cuda.device_array(3, np.float64)
        buf.copy_to_device(np.array([0.0, 0.0, -1.0e300]))
        blocks = min(math.ceil(self.nrows * self.ncols / _probe.THREADS), 1024)
        _probe.stats[blocks, _probe.THREADS](self._dev["h"], d_region, region is not None,
                                            float(threshold_m), buf)  # fmt: skip
        cnt, tot, mx = buf.copy_to_host()
        return int(round(cnt)), float(tot), float(mx)

    depth_stats.__doc__ = FloodModel.depth_stats.__doc__


def _cuda_warm_up(dtype: np.dtype, time_stepping: str = "global") -> None:
    """Compile the kernels for *dtype* on a tiny grid (once per process, dtype and kind of
    time stepping).

    So that :attr:`FloodModel.wall_s` never includes the CUDA JIT.
    """
    z = np.add.outer(np.arange(4.0), np.arange(5.0)) * 0.1
    m = CudaFloodModel(z, None, 10.0, manning=np.full(z.shape, 0.03), h0=0.01, dtype=dtype,
                       time_stepping=time_stepping, lts_levels=1, lts_tile=2, lts_cost=None)
    m.set_rain([0.0, 1.0], [100.0, 0.0], multiplier=np.ones(z.shape))
    m.set_infiltration(1.0)
    m.add_inflow([1], [1], [0.0, 2.0], [0.1, 0.0])
    m.set_boundary("east", "open")
    m.set_boundary("north", "level", times_s=[0.0], level_m=[0.5])
    m.advance(2.0)
    d = m._dev
    d["stack"] = cuda.to_device(np.zeros(2 * z.size, np.int64))
    d["instack"] = cuda.to_device(np.zeros(z.size, np.uint8))
    _k.fix_negative_kernel[1, 1](d["h"], d["qx"], d["qy"], d["rowneg"], d["stack"],
                                 d["instack"], 1.0, m.dx, d["acc"])  # fmt: skip
    m.ledger()
    cuda.synchronize()
