"""The CUDA flood backend against the CPU kernel, under Numba's CUDA simulator.

The simulator must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before
``numba.cuda`` is first imported, and pytest's own process may already have
imported it without. So the CUDA runs happen in a subprocess: this file run as
a script (``python tests/test_flood_cuda.py sim``) builds the same small cases
on the CPU kernel and on :class:`CudaFloodModel`, and prints the differences
as JSON, which the tests below check. The simulator interprets every thread in
Python, hence the small grids (7 x 7 cells: one 8 x 8 block of face threads)
and short runs (<= 30 steps). The simulator runs the kernels as Python, so a
second child compiles them to PTX (when Numba finds NVVM) to catch what the
CUDA compiler would refuse. The backend selection without a GPU is checked
in a subprocess without the variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
#: Where the simulator child leaves a pickled device model for the child without a GPU.
CK = Path(tempfile.gettempdir()) / f"emtwin-cuda-model-{os.getpid()}.pkl"


# ---------------------------------------------------------------- the cases (run in the child)


def case_mixed(cls, dtype):
    """Rain with a per-cell multiplier, infiltration, a two-cell inflow, open west
    and south (fixed slope) boundaries, a rising level on the east, per-cell
    Manning and a masked block plus a masked corner; 7 x 7 cells of 5 m."""
    nr, nc = 7, 7
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:nr, 0:nc]
    z = 0.02 * xx + 0.01 * np.abs(yy - nr / 2) + rng.uniform(0, 0.05, (nr, nc))
    mask = np.ones((nr, nc), bool)
    mask[4:6, 2:4] = False
    mask[0, 0] = False
    man = np.where(xx < nc // 2, 0.03, 0.05)
    h0 = np.where(rng.uniform(size=(nr, nc)) < 0.3, 0.05, 0.0)
    m = cls(z, mask, 5.0, manning=man, h0=h0, dtype=dtype)
    m.set_rain([0, 20], [200, 100], multiplier=np.where(yy < nr // 2, 1.0, 0.5))
    m.set_infiltration(5.0)
    m.add_inflow([2, 3], [nc - 3, nc - 3], [0, 30, 60], [0.0, 0.5, 0.1])
    m.set_boundary("west", "open")
    m.set_boundary("east", "level", times_s=[0, 60], level_m=[0.4, 0.5])
    m.set_boundary("south", "open", slope=0.01)
    return m


def case_film(cls, dtype):
    """A thin film off a steep rough slope (negative depths repaired), scalar Manning
    and scalar rain, open east edge; 7 x 7 cells of 2 m."""
    rng = np.random.default_rng(1)
    _, x = np.mgrid[0:7, 0:7]
    z = -0.1 * x + rng.uniform(0, 0.3, x.shape)
    m = cls(z, None, 2.0, manning=0.02, h0=0.004, dtype=dtype)
    m.set_boundary("east", "open")
    m.set_rain([0, 10], [200, 150])
    m.set_infiltration(30)
    return m


def case_reservoir(cls, dtype):
    """Water held behind closed faces until 10 s, then released; 7 x 7 cells of 5 m."""
    z = np.add.outer(np.zeros(7), np.linspace(0.5, 0.0, 7))
    m = cls(z, None, 5.0, manning=0.04, dtype=dtype)
    cells = np.zeros(z.shape, bool)
    cells[2:5, 0:3] = True
    m.add_reservoir(cells, 1.0, 10.0)
    m.set_boundary("north", "level", times_s=[0], level_m=[0.2])
    return m


#: Local time stepping in the cases below: tiles of 2 x 2 cells, levels 0 and 1, always
#: local (no macro step turned into global steps).
LTS = {"time_stepping": "local", "lts_tile": 2, "lts_levels": 1, "lts_cost": None}


def case_levels(cls, dtype):
    """A 1 m deep strip on the west (level 0), a 3 cm sheet beside it (level 1 where
    the deep water is more than a tile away) and dry ground on the east (skipped
    tiles), an inflow, infiltration and an open south edge; 8 x 12 cells of 5 m."""
    nr, nc = 8, 12
    z = np.random.default_rng(2).uniform(0, 0.01, (nr, nc))
    h0 = np.zeros((nr, nc))
    h0[:, :2] = 1.0
    h0[:, 2:6] = 0.03
    h0[3, 4] = 0.0
    m = cls(z, None, 5.0, manning=0.03, h0=h0, dtype=dtype, **LTS)
    m.set_boundary("south", "open")
    m.set_infiltration(20.0)
    m.add_inflow([7], [1], [0, 20], [0.5, 0.2])
    return m


def case_sheet(cls, dtype):
    """A thin sheet on a 15 % slope beside a deep pool, with strong infiltration: tiles
    at both levels, some stepping beyond their slope cap (friction implicit), and
    depths that the repair must lift back to zero; 8 x 8 cells of 2 m, open east edge."""
    rng = np.random.default_rng(0)
    _, x = np.mgrid[0:8, 0:8]
    z = -0.3 * x + rng.uniform(0, 0.05, x.shape)
    h0 = np.full(x.shape, 0.005)
    h0[:3, :2] = 1.5
    m = cls(z, None, 2.0, manning=0.02, h0=h0, dtype=dtype, **LTS)
    m.set_boundary("east", "open")
    m.set_infiltration(30)
    return m


RECORDS = ("h", "max_depth", "max_speed", "max_hr", "arrival_time")


def _compare(a, b) -> dict:
    out = {"steps": [a.steps, b.steps]}
    for name in RECORDS:
        x = np.asarray(getattr(a, name), np.float64)
        y = np.asarray(getattr(b, name), np.float64)
        fin = np.isfinite(x) & np.isfinite(y)
        out[name] = {
            "abs": float(np.max(np.abs(x - y)[fin], initial=0.0)),
            "scale": float(np.max(np.abs(x[fin]), initial=0.0)),
            "nan_same": bool(np.array_equal(np.isnan(x), np.isnan(y))),
        }
    out["aidr_equal"] = bool(np.array_equal(a.max_aidr, b.max_aidr))
    out["aidr_max"] = int(a.max_aidr.max())
    out["speed_now"] = float(np.max(np.abs(a.speed() - b.speed())))
    out["ledger_cpu"] = a.ledger()
    out["ledger_gpu"] = b.ledger()
    out["h_min_gpu"] = float(b.h.min())
    return out


def _probe(a, b) -> dict:
    """Differences of the coupling reads (edge depths, point depths, stats) CPU - GPU."""
    indptr, cells = np.array([0, 3, 3, 7]), np.array([0, 8, 15, 48, 1, 2, 3])
    region = np.zeros((7, 7), bool)
    region[:4] = True
    out = {"edges": float(np.abs(a.edge_depths(indptr, cells)
                                 - b.edge_depths(indptr, cells)).max()),
           "at": float(np.abs(a.depths_at(cells) - b.depths_at(cells)).max()),
           "edges_max": float(a.edge_depths(indptr, cells).max())}  # fmt: skip
    for key, reg in (("all", None), ("region", region)):
        sa, sb = a.depth_stats(0.05, reg), b.depth_stats(0.05, reg)
        out[key] = [sa[0], sb[0], abs(sa[1] - sb[1]), abs(sa[2] - sb[2])]
    return out


def child_sim() -> dict:
    """Everything that needs the simulator; returns the measured differences."""
    import logging
    import time

    from emtwin.errors import KernelError
    from emtwin.kernels import _flood_numba as nb
    from emtwin.kernels.backend import select_backend
    from emtwin.kernels.flood import FloodModel
    from emtwin.kernels.flood_cuda import CudaFloodModel

    logging.basicConfig(level=logging.WARNING)
    sys.setswitchinterval(5e-4)  # the simulator's block loop polls its threads; hand over sooner
    res: dict = {"select": {"cuda": select_backend("cuda"), "auto": select_backend("auto")}}
    t0 = time.perf_counter()
    for dtype in ("float64", "float32"):
        a = case_mixed(FloodModel, np.float64)
        b = case_mixed(CudaFloodModel, dtype)
        mid = {}
        for t in (15.0, 40.0):  # two advance calls: the state stays on the device between them
            a.advance(t)
            b.advance(t)
            mid[t] = float(np.max(np.abs(a.h - b.h)))
        res[f"mixed_{dtype}"] = _compare(a, b) | {"mid": mid[15.0], "probe": _probe(a, b)}
    # the negative-depth repair: count the CPU calls; the device allocates its stack on use
    calls = []
    orig = nb.fix_negative

    def counting(*args):
        calls.append(1)
        return orig(*args)

    nb.fix_negative = counting
    try:
        a = case_film(FloodModel, np.float64)
        a.advance(40.0)
    finally:
        nb.fix_negative = orig
    b = case_film(CudaFloodModel, np.float64)
    b.advance(40.0)
    res["film"] = _compare(a, b) | {"cpu_repairs": len(calls), "gpu_stack": "stack" in b._dev}
    a = case_reservoir(FloodModel, np.float64)
    b = case_reservoir(CudaFloodModel, np.float64)
    filled = b.h[2:5, 0:3].copy()
    for t in (8.0, 30.0):
        a.advance(t)
        b.advance(t)
        if t == 8.0:  # the reservoir's depths have not moved before the release
            res["reservoir_held"] = float(np.abs(b.h[2:5, 0:3] - filled).max())
            res["reservoir_wet_outside"] = float(b.h[:, 4:].max())
    res["reservoir_moved"] = float(np.abs(b.h[2:5, 0:3] - filled).max())
    res["reservoir"] = _compare(a, b)
    # a NaN depth on the device stops the run with the CPU's message
    b = CudaFloodModel(np.zeros((6, 6)), None, 5.0, h0=0.1)
    b.advance(3.0)
    _ = b.h  # bring the state back, spoil one cell, send it up again
    b._h[2, 3] = np.nan
    b._push_state = True
    try:
        b.advance(6.0)
    except KernelError as exc:
        res["blowup"] = str(exc)
    try:
        CudaFloodModel(np.zeros((3, 3)), None, 1.0, dtype=np.int32)
    except KernelError as exc:
        res["bad_dtype"] = str(exc)
    res["checkpoint"] = _checkpoints(FloodModel, CudaFloodModel)
    res["lts"] = _local(FloodModel, CudaFloodModel)
    res["wall_s"] = time.perf_counter() - t0
    res["steps"] = {k: v["steps"][1] for k, v in res.items()
                    if isinstance(v, dict) and "steps" in v}  # fmt: skip
    return res


def _checkpoints(cpu_cls, gpu_cls) -> dict:
    """A device model pickled at 15 s and loaded again goes on as the original; its CPU
    copy (``to_cpu``) takes over the state and the ledger exactly. The pickle is also
    left in CK for the child without a GPU."""
    import pickle

    a = case_mixed(gpu_cls, np.float64)
    a.advance(15.0)
    blob = pickle.dumps(a)
    Path(os.environ["CK"]).write_bytes(blob)
    b = pickle.loads(blob)
    cpu = a.to_cpu()
    handover = {"h": float(np.abs(a.h - cpu.h).max()),
                "qx": float(np.abs(a.qx - cpu.qx).max()),
                "max_depth": float(np.abs(a.max_depth - cpu.max_depth).max()),
                "ledger": max(abs(a.ledger()[k] - cpu.ledger()[k]) for k in a.ledger()),
                "class": type(cpu).__name__, "backend": cpu.backend}  # fmt: skip
    ref = case_mixed(cpu_cls, np.float64)
    ref.advance(15.0)  # the same stops as the others: a stop caps the step before it
    for m in (a, b, cpu, ref):
        m.advance(40.0)
    return {
        "resumed_h": float(np.abs(a.h - b.h).max()),
        "resumed_max_depth": float(np.abs(a.max_depth - b.max_depth).max()),
        "resumed_steps": [a.steps, b.steps], "resumed_class": type(b).__name__,
        "resumed_ledger": max(abs(a.ledger()[k] - b.ledger()[k]) for k in a.ledger()),
        "handover": handover,
        "cpu_vs_reference": float(np.abs(cpu.h - ref.h).max()),
        "cpu_error_rel": cpu.ledger()["error_rel"],
        "cpu_h": cpu.h.tolist(), "cpu_steps": cpu.steps,
    }  # fmt: skip


def _count_implicit(m) -> list[int]:
    """A list whose one number counts, as *m* runs, the tiles of its local macro steps
    that step beyond their slope cap (so take the friction implicitly)."""
    from emtwin.kernels import _flood_lts as lts

    n = [0]
    call = m._lts_call

    def spy(q, *args):
        on = (m._tlev != lts.SKIP) & (m._tlev > 0)
        n[0] += int((q[lts.Q_DT0] * 2.0 ** np.where(on, m._tlev, 0) > m._tcap)[on].sum())
        return call(q, *args)

    m._lts_call = spy
    return n


def _local(cpu_cls, gpu_cls) -> dict:
    """Local time stepping on the device against the CPU's: the same tile levels at
    every macro step, the same updates and repairs; a device model pickled at 12 s goes
    on as the original."""
    import pickle

    out: dict = {}
    for dtype, t_end in (("float64", 24.0), ("float32", 12.0)):
        a = case_levels(cpu_cls, np.float64)
        b = case_levels(gpu_cls, dtype)
        levels: set[int] = set()
        same = True
        resumed = None
        for t in np.arange(3.0, t_end + 1.0, 3.0):
            a.advance(t)
            b.advance(t)
            if resumed is not None:  # (with the same stops: a stop ends a macro step)
                resumed.advance(t)
            levels |= {int(v) for v in np.unique(a._tlev)}
            same = same and bool(np.array_equal(a._tlev, b._tlev))
            if t == 12.0 and dtype == "float64":
                resumed = pickle.loads(pickle.dumps(b))
        out[dtype] = _compare(a, b) | {
            "levels": sorted(levels), "same_levels": same,
            "updates": [a.cell_updates, b.cell_updates, a.nrows * a.ncols * a.steps],
            "global_steps": [a.lts_global_steps, b.lts_global_steps],
            "time_stepping": b.time_stepping}  # fmt: skip
        if resumed is not None:
            out["resumed"] = {"h": float(np.abs(resumed.h - b.h).max()),
                              "steps": [resumed.steps, b.steps],
                              "max_depth": float(np.abs(resumed.max_depth - b.max_depth).max())}
    a = case_sheet(cpu_cls, np.float64)
    b = case_sheet(gpu_cls, np.float64)
    implicit = _count_implicit(a)
    levels = set()
    for t in (6.0, 12.0):
        a.advance(t)
        b.advance(t)
        levels |= {int(v) for v in np.unique(a._tlev)}
    out["sheet"] = _compare(a, b) | {"repairs": [a._lts_repairs, b._lts_repairs],
                                     "implicit": implicit[0],
                                     "levels": sorted(levels),
                                     "unplaced": [a._unplaced, b.unplaced_m3]}  # fmt: skip
    return out


def child_unpickle() -> dict:
    """Load the simulator child's pickled device model with neither a GPU nor the
    simulator, and run it on to 40 s."""
    import pickle

    from numba import cuda

    if cuda.is_available():
        return {"has_gpu": True}
    m = pickle.loads(Path(os.environ["CK"]).read_bytes())
    m.advance(40.0)
    return {"has_gpu": False, "class": type(m).__name__, "backend": m.backend, "h": m.h.tolist(),
            "steps": m.steps, "error_rel": m.ledger()["error_rel"]}  # fmt: skip


def child_nogpu() -> dict:
    """Backend selection with neither a GPU nor the simulator."""
    from numba import cuda

    from emtwin.errors import KernelError
    from emtwin.kernels import select_backend

    if cuda.is_available():
        return {"has_gpu": True}
    out: dict = {"has_gpu": False, "auto": select_backend("auto"), "cpu": select_backend("cpu")}
    try:
        select_backend("cuda")
    except KernelError as exc:
        out["cuda_error"] = str(exc)
    try:
        from emtwin.kernels.flood_cuda import CudaFloodModel

        CudaFloodModel(np.zeros((3, 3)), None, 1.0)
    except KernelError as exc:
        out["model_error"] = str(exc)
    return out


def child_ptx() -> dict:
    """Compile every kernel to PTX for both dtypes (needs NVVM, not a GPU).

    The simulator runs the kernels as plain Python, so it cannot see what the
    CUDA compiler would refuse (it did refuse the built-in max/min). Device
    functions are compiled for the current device's compute capability; with
    no device, this child tells Numba it is 8.0.
    """
    import types as pytypes

    from numba import cuda
    from numba import types as nt
    from numba.cuda import dispatcher
    from numba.cuda.cudadrv import nvvm

    try:
        nvvm.NVVM()
    except Exception as exc:  # noqa: BLE001
        return {"skip": f"no NVVM for Numba: {exc}"}
    if not cuda.is_available():
        cc8 = pytypes.SimpleNamespace(compute_capability=(8, 0))
        dispatcher.get_current_device = lambda: cc8
    from emtwin.kernels import _flood_cuda as k
    from emtwin.kernels import _flood_cuda_lts as kl
    from emtwin.kernels import _probe_cuda as pk

    out = {}
    for f in (nt.float32, nt.float64):
        a2, u8, f64, i32 = f[:, ::1], nt.uint8[:, ::1], nt.float64, nt.int32[::1]
        acc = nt.float64[::1]
        sigs = {
            "faces": (a2, a2, u8, a2, nt.boolean, a2, a2, a2, a2, f[::1], f, nt.int64[::1])
            + (f64,) * 7 + (acc, acc, i32),
            "continuity": (a2, u8, a2, nt.boolean, a2, a2, a2, a2, a2, nt.int8[:, ::1],
                           nt.float64[:, ::1], f[::1]) + (f64,) * 6 + (acc, acc, i32),
            "add_depth": (a2, nt.int64[::1], nt.int64[::1], f[::1]),
            "fix_negative_kernel": (a2, a2, a2, i32, nt.int64[::1], nt.uint8[::1], f64, f64,
                                    acc),
        }  # fmt: skip
        for name, sig in sigs.items():
            ptx, _ = cuda.compile_ptx(getattr(k, name).py_func, sig, cc=(8, 0))
            out[f"{name}_{f}"] = ".entry" in ptx
        for name, sig in {
            "edge_max": (nt.int64[::1], nt.int64[::1], a2, acc),
            "gather": (a2, nt.int64[::1], acc),
            "stats": (a2, u8, nt.boolean, f64, acc),
        }.items():
            ptx, _ = cuda.compile_ptx(getattr(pk, name).py_func, sig, cc=(8, 0))
            out[f"{name}_{f}"] = ".entry" in ptx
        # the face kernel a real GPU runs (the power through libdevice's cbrt)
        ptx, _ = cuda.compile_ptx(k.FACES[str(f)].py_func, sigs["faces"], cc=(8, 0))
        out[f"FACES_{f}"] = ".entry" in ptx
        # local time stepping
        i64, b1, i2, d2 = nt.int64, nt.boolean, nt.int64[:, ::1], nt.float64[:, ::1]
        v1 = nt.int64[::1]
        lsigs = {
            "tile_raw": (a2, a2, u8, i64, f64, f64, i64, f64, f64, nt.int8[:, ::1], acc, b1, f64,
                         d2, i64, i2, nt.int8[:, ::1]),
            "faces_lts": (i64, a2, a2, u8, a2, b1, a2, a2, a2, a2, d2, d2, f[::1], f[::1], f64,
                          v1, f64, f64, f64, f64, f64, f64, i2, i64, d2, acc),
            "cells_lts": (i64, b1, a2, u8, a2, b1, a2, a2, a2, a2, d2, d2, d2, d2, a2, a2, a2,
                          nt.int8[:, ::1], d2, f[::1]) + (f64,) * 6 + (i2, i64, i2, d2, acc, acc),
            "repair_lts": (i64, a2, a2, a2, a2, a2, d2, d2, d2, d2, i2, i64, f64, f64, v1, v1,
                           i64, v1, d2, v1, nt.uint8[::1], acc, acc),
        }  # fmt: skip
        for name, sig in lsigs.items():
            ptx, _ = cuda.compile_ptx(getattr(kl, name).py_func, sig, cc=(8, 0))
            out[f"{name}_{f}"] = ".entry" in ptx
        ptx, _ = cuda.compile_ptx(kl.FACES_LTS[str(f)].py_func, lsigs["faces_lts"], cc=(8, 0))
        out[f"FACES_LTS_{f}"] = ".entry" in ptx
    return out


# ---------------------------------------------------------------- the parent side


def _start(which: str, *, sim: bool) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["CK"] = str(CK)
    return subprocess.Popen([sys.executable, str(HERE), which], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait(p: subprocess.Popen, timeout: float = 600.0) -> tuple[dict, str]:
    stdout, stderr = p.communicate(timeout=timeout)
    assert p.returncode == 0, stderr[-4000:]
    return json.loads(stdout.strip().splitlines()[-1]), stderr


def _child(which: str, *, sim: bool) -> tuple[dict, str]:
    return _wait(_start(which, sim=sim))


@pytest.fixture(scope="module")
def children() -> dict:
    """The simulator runs and the PTX compilation, in two processes at once."""
    ps = {"sim": _start("sim", sim=True), "ptx": _start("ptx", sim=False)}
    return {k: _wait(p)[0] for k, p in ps.items()}


@pytest.fixture(scope="module")
def sim(children: dict) -> dict:
    return children["sim"]


def test_kernels_compile_for_the_gpu(children: dict) -> None:
    r = children["ptx"]
    if "skip" in r:
        pytest.skip(r["skip"])
    assert len(r) == 26 and all(r.values()), r


def _rel(d: dict) -> float:
    return d["abs"] / max(d["scale"], 1e-30)


def test_float64_matches_the_cpu_kernel(sim: dict) -> None:
    r = sim["mixed_float64"]
    assert r["steps"][0] == r["steps"][1] >= 15
    assert r["ledger_cpu"]["boundary_in"] > 0 and r["ledger_cpu"]["boundary_out"] > 0
    assert r["ledger_cpu"]["infiltration"] > 0 and r["aidr_max"] >= 1
    assert r["mid"] < 1e-12  # after the first advance, before the state is read back
    for name in RECORDS:
        assert r[name]["nan_same"], name
        assert _rel(r[name]) < 1e-5, (name, r[name])
    # measured: differences of 1e-16..1e-15 (only the order of float round-off differs)
    assert r["h"]["abs"] < 1e-12 and r["speed_now"] < 1e-10
    assert r["aidr_equal"]


def test_coupling_reads_match_the_cpu(sim: dict) -> None:
    """edge_depths, depths_at and depth_stats computed on the device = on the CPU."""
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        r = sim[f"mixed_{dtype}"]["probe"]
        assert r["edges_max"] > 0.01  # the edges are wet: the comparison means something
        assert r["edges"] < tol and r["at"] < tol, (dtype, r)
        for key in ("all", "region"):
            n_cpu, n_gpu, dsum, dmax = r[key]
            assert n_cpu > 0 and abs(n_cpu - n_gpu) <= (0 if dtype == "float64" else 1)
            assert dsum < 100 * tol and dmax < tol, (dtype, key, r[key])


def test_float64_ledger_closes_and_matches(sim: dict) -> None:
    for case in ("mixed_float64", "film", "reservoir"):
        cpu, gpu = sim[case]["ledger_cpu"], sim[case]["ledger_gpu"]
        assert abs(gpu["error_rel"]) < 1e-9, (case, gpu)
        for k in ("boundary_in", "boundary_out", "infiltration", "stored", "rain_in"):
            assert gpu[k] == pytest.approx(cpu[k], rel=1e-9, abs=1e-12), (case, k)


def test_float32_on_the_device_is_close_to_float64_on_the_cpu(sim: dict) -> None:
    """float32 carries ~7 digits: the water level z + h (z ~ 0.3 m) is rounded to
    ~3e-8 m each step, and the face slopes (mm over 5 m) to ~1e-5 relative, so
    after ~20 steps depths may differ by 1e-6 m; we allow 1e-5 m (10 um) and 1e-4
    on speeds (divided by shallow depths). Measured: 3e-8 m, 1.4e-6 m/s."""
    r = sim["mixed_float32"]
    assert r["h"]["abs"] < 1e-5 and r["max_depth"]["abs"] < 1e-5
    assert r["max_hr"]["abs"] < 1e-4 and r["max_speed"]["abs"] < 1e-4
    assert r["arrival_time"]["nan_same"] and r["arrival_time"]["abs"] < 1e-3
    assert r["aidr_equal"]
    assert abs(r["ledger_gpu"]["error_rel"]) < 1e-7


def test_local_stepping_on_the_device_matches_the_cpu(sim: dict) -> None:
    """The device's local steps are the CPU's: the same tile levels in every macro step
    (levels 0, 1 and skipped tiles all occur), the same cell updates (fewer than global
    steps would make), and states equal to float64 round-off (measured 4e-16 m)."""
    r = sim["lts"]["float64"]
    assert r["time_stepping"] == "local" and r["global_steps"] == [0, 0]
    assert r["levels"] == [0, 1, 127] and r["same_levels"]
    assert r["steps"][0] == r["steps"][1] >= 20
    cpu_updates, gpu_updates, global_updates = r["updates"]
    assert cpu_updates == gpu_updates < 0.9 * global_updates
    for name in RECORDS:
        assert r[name]["nan_same"], name
        assert r[name]["abs"] < 1e-12 * max(r[name]["scale"], 1.0), (name, r[name])
    assert r["aidr_equal"] and r["aidr_max"] >= 2
    cpu, gpu = r["ledger_cpu"], r["ledger_gpu"]
    assert cpu["inflow_in"] > 0 and cpu["boundary_out"] > 0 and cpu["infiltration"] > 0
    assert abs(gpu["error_rel"]) < 1e-12
    for k in ("boundary_out", "infiltration", "stored"):
        assert gpu[k] == pytest.approx(cpu[k], rel=1e-12), k


def test_local_stepping_in_float32_and_from_a_checkpoint(sim: dict) -> None:
    """float32 on the device is close to float64 on the CPU (same bounds as the global
    step's); a device model pickled mid-run goes on bit for bit."""
    r = sim["lts"]["float32"]
    assert r["same_levels"] and r["levels"] == [0, 1, 127]
    assert r["h"]["abs"] < 1e-5 and r["max_depth"]["abs"] < 1e-5
    assert r["max_speed"]["abs"] < 1e-4 and r["aidr_equal"]
    assert abs(r["ledger_gpu"]["error_rel"]) < 1e-7
    res = sim["lts"]["resumed"]
    assert res["steps"][0] == res["steps"][1]
    assert res["h"] == 0.0 and res["max_depth"] == 0.0


def test_local_repair_runs_on_the_device(sim: dict) -> None:
    """The negative-depth repair of local stepping runs on the device in the CPU's order,
    and so does the implicit friction of tiles beyond their slope cap: as many sub-steps
    repaired, the same depths, none negative, the ledger closed."""
    r = sim["lts"]["sheet"]
    cpu_rep, gpu_rep = r["repairs"]
    assert cpu_rep == gpu_rep > 10 and r["levels"][:2] == [0, 1]
    assert r["implicit"] > 10  # tiles beyond their slope cap: the implicit friction ran
    assert r["h_min_gpu"] >= 0.0 and r["unplaced"] == [0.0, 0.0]
    assert r["h"]["abs"] < 1e-12 and r["max_depth"]["abs"] < 1e-12
    assert abs(r["ledger_gpu"]["error_rel"]) < 1e-12


def test_negative_depth_repair_runs_on_the_device(sim: dict) -> None:
    r = sim["film"]
    assert r["cpu_repairs"] > 3 and r["gpu_stack"], "the repair was not exercised"
    assert r["h_min_gpu"] >= 0.0
    for name in RECORDS:
        assert _rel(r[name]) < 1e-5, (name, r[name])
    assert r["ledger_gpu"]["boundary_out"] > 0 and r["ledger_gpu"]["infiltration"] > 0


def test_reservoir_held_then_released(sim: dict) -> None:
    assert sim["reservoir_held"] == 0.0  # closed faces until the release at 10 s
    assert sim["reservoir_wet_outside"] > 0.0  # while the level boundary floods the rest
    assert sim["reservoir_moved"] > 0.01
    r = sim["reservoir"]
    for name in RECORDS:
        assert _rel(r[name]) < 1e-5, (name, r[name])
    assert r["ledger_gpu"]["boundary_in"] > 0 or r["ledger_gpu"]["boundary_out"] > 0


def test_a_nan_on_the_device_is_a_clear_error(sim: dict) -> None:
    assert "became unstable" in sim.get("blowup", ""), sim.get("blowup")


def test_selection_under_the_simulator(sim: dict) -> None:
    assert sim["select"] == {"cuda": "cuda", "auto": "cpu"}  # auto never picks the simulator
    assert "dtype must be float32 or float64" in sim["bad_dtype"]


def test_a_device_model_checkpoints_and_resumes(sim: dict) -> None:
    """Pickled at 15 s and loaded on the device: bit for bit the uninterrupted run. Its
    CPU copy takes over the state and ledger exactly and then runs the CPU kernel, which
    agrees with a CPU run from the start at round-off (float64 on both)."""
    r = sim["checkpoint"]
    assert r["resumed_class"] == "CudaFloodModel"
    assert r["resumed_h"] == 0.0 and r["resumed_max_depth"] == 0.0
    # the ledger's volumes are summed by atomic adds, whose order the device (and the
    # simulator's threads) do not fix: equal to round-off, not always bit for bit
    assert r["resumed_ledger"] < 1e-9  # m3
    assert r["resumed_steps"][0] == r["resumed_steps"][1] >= 15
    h = r["handover"]
    assert h["class"] == "FloodModel" and h["backend"] == "cpu"
    assert h["h"] == 0.0 and h["qx"] == 0.0 and h["max_depth"] == 0.0 and h["ledger"] == 0.0
    assert r["cpu_vs_reference"] < 1e-12 and abs(r["cpu_error_rel"]) < 1e-9


def test_a_device_checkpoint_goes_on_on_the_cpu_without_a_gpu(sim: dict) -> None:
    out, stderr = _child("unpickle", sim=False)
    if out["has_gpu"]:
        pytest.skip("this machine has a CUDA GPU")
    assert out["class"] == "FloodModel" and out["backend"] == "cpu"
    assert "goes on on the CPU" in stderr
    # the same as the CPU copy made on the device's side, run on to the same time
    r = sim["checkpoint"]
    assert out["steps"] == r["cpu_steps"] and out["h"] == r["cpu_h"]
    assert abs(out["error_rel"]) < 1e-9


def test_selection_without_a_gpu() -> None:
    out, stderr = _child("nogpu", sim=False)
    if out["has_gpu"]:
        pytest.skip("this machine has a CUDA GPU")
    assert out["auto"] == "cpu" and out["cpu"] == "cpu"
    assert "no CUDA GPU found, running the flood on the CPU" in stderr
    assert "backend 'cuda'" in out["cuda_error"] and "NUMBA_ENABLE_CUDASIM" in out["cuda_error"]
    assert "no usable CUDA GPU" in out["model_error"]


# ---------------------------------------------------------------- the scenario and the CLI


def _scenario(tmp: Path) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    z = np.add.outer(np.linspace(0.2, 0.0, 7), np.linspace(0.3, 0.0, 7)) + 10.0
    with rasterio.open(tmp / "dem.tif", "w", driver="GTiff", height=7, width=7, count=1,
                       dtype="float64", crs="EPSG:32633",
                       transform=from_origin(600000.0, 5600070.0, 10.0, 10.0)) as dst:  # fmt: skip
        dst.write(z, 1)
    (tmp / "s.yaml").write_text(textwrap.dedent("""\
        name: tiny
        duration: 2min
        crs: EPSG:32633
        world:
          terrain: {dem: dem.tif, manning: 0.03}
        hazards:
          - type: flood
            initial_depth: 0.02
            rain: [[0, 300]]
            boundary: {east: open}
            coupling: 60s
        outputs: {every: 60s}
        """))
    return tmp / "s.yaml"


def test_cli_backend_option(tmp_path: Path) -> None:
    """``emtwin run --backend``: cpu in this process; cuda (simulator) in a child."""
    from typer.testing import CliRunner

    from emtwin.cli import app
    from emtwin.kernels.backend import simulator_enabled

    s = _scenario(tmp_path)
    res = CliRunner().invoke(app, ["run", str(s), "--out", str(tmp_path / "cpu"), "-q",
                                   "--backend", "cpu"], catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    cpu = json.loads((tmp_path / "cpu" / "summary.json").read_text())["flood"]
    assert cpu["backend"] == "cpu" and cpu["precision"] == "float64"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = "import sys; sys.setswitchinterval(5e-4); from emtwin.cli import app; app()"
    cmd = [sys.executable, "-c", code, "run", str(s), "-q",
           "--out", str(tmp_path / "gpu"), "--backend", "cuda"]  # fmt: skip
    from numba import cuda

    if not simulator_enabled() and not cuda.is_available():  # no GPU here: a clear error
        bad = CliRunner().invoke(app, ["run", str(s), "--out", str(tmp_path / "bad"), "-q",
                                       "--backend", "cuda"], catch_exceptions=False)  # fmt: skip
        assert bad.exit_code == 1 and "hazards.0.backend" in bad.output
        assert "no usable CUDA GPU" in bad.output and not (tmp_path / "bad").exists()
    p = subprocess.run(cmd, env=env | {"NUMBA_ENABLE_CUDASIM": "1"}, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    gpu = json.loads((tmp_path / "gpu" / "summary.json").read_text())["flood"]
    assert gpu["backend"] == "cuda" and gpu["precision"] == "float32"  # the GPU default
    assert gpu["steps"] == cpu["steps"]
    assert gpu["max_depth_m"] == pytest.approx(cpu["max_depth_m"], abs=1e-5)
    assert gpu["peak_volume_m3"] == pytest.approx(cpu["peak_volume_m3"], rel=1e-5)
    assert abs(gpu["mass_error_rel"]) < 1e-6


def test_a_run_on_the_device_checkpoints_and_resumes(tmp_path: Path) -> None:
    """``emtwin run --backend cuda --checkpoint-at 1min`` then ``emtwin resume`` (both
    under the simulator): the resumed run's flood figures and time series equal the
    uninterrupted run's. Resumed with no GPU it goes on on the CPU, float32 kept."""
    s = _scenario(tmp_path)
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = "import sys; sys.setswitchinterval(5e-4); from emtwin.cli import app; app()"

    def emtwin(*args: str, sim: bool) -> None:
        env = base | ({"NUMBA_ENABLE_CUDASIM": "1"} if sim else {})
        p = subprocess.run([sys.executable, "-c", code, *args, "-q"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert p.returncode == 0, p.stderr[-3000:]

    ck = tmp_path / "ck.emtwin"
    emtwin("run", str(s), "--out", str(tmp_path / "full"), "--backend", "cuda",
           "--checkpoint-at", "1min", "--checkpoint", str(ck), sim=True)
    emtwin("resume", str(ck), "--out", str(tmp_path / "resumed"), sim=True)
    full, res = (json.loads((tmp_path / d / "summary.json").read_text())["flood"]
                 for d in ("full", "resumed"))  # fmt: skip
    assert res["backend"] == "cuda"
    for k in ("steps", "peak_volume_m3", "max_water_depth_m", "mass_error_rel", "ledger_m3"):
        assert res[k] == full[k], k
    ts = [pd.read_parquet(tmp_path / d / "timeseries.parquet") for d in ("full", "resumed")]
    cols = [c for c in ts[0].columns if c.startswith(("flood", "wet", "max_depth"))]
    assert len(cols) >= 3
    pd.testing.assert_frame_equal(ts[0][cols], ts[1][cols])
    from numba import cuda

    if cuda.is_available():
        return
    emtwin("resume", str(ck), "--out", str(tmp_path / "on_cpu"), sim=False)
    cpu = json.loads((tmp_path / "on_cpu" / "summary.json").read_text())["flood"]
    assert cpu["backend"] == "cpu" and cpu["precision"] == "float32"
    assert cpu["steps"] == full["steps"]
    assert cpu["peak_volume_m3"] == pytest.approx(full["peak_volume_m3"], rel=1e-5)
    assert abs(cpu["mass_error_rel"]) < 1e-6


if __name__ == "__main__":  # the child: python tests/test_flood_cuda.py sim|nogpu|ptx
    result = {"sim": child_sim, "nogpu": child_nogpu, "ptx": child_ptx,
              "unpickle": child_unpickle}[sys.argv[1]]()
    print(json.dumps(result))
