"""Throughput of the CUDA flood kernel against the CPU kernel, and its bandwidth fraction.

Run:  .venv/bin/python benchmarks/flood_gpu.py [--sizes 2000 4000 8000] [--seconds 5]
          [--cpu-seconds 5] [--dtype float32|float64]
      .venv/bin/python benchmarks/flood_gpu.py --sim     # a tiny grid on the CUDA simulator

Case: as ``benchmarks/flood_kernel.py`` (5 m cells, bed ``0.001 x + 0.0005 y +
0.2 sin(x/50) cos(y/70)``, 0.05 m initial depth, 50 mm/h rain, n = 0.03, the
outer ring outside the domain), on n x n grids: 2000, 4000 and 8000 (4M, 16M
and 64M cells) by default. For each size it prints:

- GPU cell-updates per second (cells x steps / stepping wall time, at least
  ``--seconds`` of stepping after a settling call; every step ends with the
  16-byte read-back of h_max, so the wall time is the device's);
- the CPU kernel (:class:`FloodModel`, all Numba threads) on the same grid, at
  least ``--cpu-seconds``, and the ratio;
- the bytes the step must move per cell (as flood_kernel.py: every array it
  reads or writes once per step), the device-to-device copy bandwidth measured
  in the same run (read + write bytes of a 1 GiB copy), and the fraction of
  that bandwidth the step reaches.

Without a CUDA GPU it says so and exits 0. ``--sim`` runs a 12 x 12 grid for a
few steps under Numba's CUDA simulator, only to show that the path runs (its
timings mean nothing). Nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

DX = 5.0
DEPTH0 = 0.05
RAIN_MM_H = 50.0
MANNING = 0.03


def bed(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bed elevation (m) with row 0 north, and the domain mask (outer ring out)."""
    rows, cols = np.mgrid[0:n, 0:n]
    x = cols * DX
    y = (n - 1 - rows) * DX
    z = 0.001 * x + 0.0005 * y + 0.2 * np.sin(x / 50.0) * np.cos(y / 70.0)
    mask = np.zeros((n, n), bool)
    mask[1:-1, 1:-1] = True
    return z, mask


def make_model(cls, n: int, dtype):
    """The benchmark case on an n x n grid with the model class *cls*."""
    z, mask = bed(n)
    m = cls(z, mask, DX, manning=MANNING, h0=DEPTH0, dtype=dtype)
    m.set_rain([0.0], [RAIN_MM_H])
    return m


def step_bytes(itemsize: int) -> int:
    """Bytes the step must move per cell (scalar Manning and rain; as flood_kernel.py)."""
    f = itemsize
    # h, qx, qy (rw); z (r); cell code (r); max depth, speed, HR (rw); AIDR class (rw);
    # arrival time (r)
    return 2 * f * 3 + f + 1 + 2 * f * 3 + 2 + 8


def rate(m, seconds: float, min_steps: int = 3) -> tuple[float, int, float]:
    """(cell-updates/s, steps, wall s) of *m* over at least *seconds* and *min_steps*."""
    m.advance(m.t + 5.0)  # settle (and the first read-backs)
    w0, s0 = m.wall_s, m.steps
    while m.wall_s - w0 < seconds or m.steps - s0 < min_steps:
        m.advance(m.t + 5.0)
    steps = m.steps - s0
    wall = m.wall_s - w0
    return m.nrows * m.ncols * steps / wall, steps, wall


def kernel_rate(m, seconds: float) -> float:
    """Cell-updates/s of the two step kernels alone, launched back to back.

    The state of *m* is stepped with a fixed dt (its last one) and no host
    work or read-back between steps: the device's own speed, for comparison
    with :func:`rate` (the difference is the per-step host and launch cost).
    """
    from numba import cuda

    from emtwin.kernels import _flood_cuda as k
    from emtwin.kernels._flood_numba import G

    d, dt = m._dev, 0.5 * m.alpha * m.dx / max(np.sqrt(G * m._hmax), 1e-9)
    bcv = [float(v) for v in m._bcv]

    def step():
        m._faces[m._grid_f, m._block](
            d["h"], d["z"], d["grp"], d["n"], m._nsc, d["qx"], d["qy"], d["qxn"], d["qyn"],
            d["pd"], m.dtype.type(G * dt), d["bct"], *bcv, float(dt), m.dx, m.dry_tol,
            d["acc"], d["stepbuf"], d["rowneg"])  # fmt: skip
        d["qx"], d["qxn"] = d["qxn"], d["qx"]
        d["qy"], d["qyn"] = d["qyn"], d["qy"]
        k.continuity[m._grid_c, m._block](
            d["h"], d["grp"], d["rmult"], m._rsc, d["qx"], d["qy"], d["maxd"], d["maxs"],
            d["maxhr"], d["maxa"], d["arr"], d["pd"], 0.0, 0.0, float(dt / m.dx),
            m.dx * m.dx, float(m.t), m.arrival_depth, d["acc"], d["stepbuf"],
            d["rowneg"])  # fmt: skip

    step()
    cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 4:
        for _ in range(10):
            step()
        n += 10
        cuda.synchronize()
    return m.nrows * m.ncols * n / (time.perf_counter() - t0)


def accuracy(n: int, t_end: float) -> None:
    """Max depth differences GPU - CPU on the benchmark case after *t_end* s."""
    from emtwin.kernels.flood import FloodModel
    from emtwin.kernels.flood_cuda import CudaFloodModel

    c = make_model(FloodModel, n, np.float64)
    c.advance(t_end)
    for dt_name in ("float64", "float32"):
        g = make_model(CudaFloodModel, n, np.dtype(dt_name))
        g.advance(t_end)
        diff = np.abs(g.h.astype(np.float64) - c.h)
        print(f"accuracy {n} x {n}, {t_end:g} s, {c.steps} CPU / {g.steps} GPU steps, "
              f"GPU {dt_name} vs CPU float64: max |dh| {diff.max():.2e} m (depths to "
              f"{c.h.max():.3f} m), max |d max_depth| "
              f"{np.abs(g.max_depth - c.max_depth).max():.2e} m, GPU error_rel "
              f"{g.ledger()['error_rel']:.1e}, CPU {c.ledger()['error_rel']:.1e}")  # fmt: skip


def d2d_bandwidth(cuda, nbytes: int = 1 << 30, repeats: int = 10) -> float:
    """Best read + write bandwidth of a device-to-device copy of *nbytes*, B/s."""
    a = cuda.device_array(nbytes // 4, np.float32)
    b = cuda.device_array(nbytes // 4, np.float32)
    b.copy_to_device(a)
    cuda.synchronize()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        b.copy_to_device(a)
        cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cpu-seconds", type=float, default=5.0)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--sim", action="store_true", help="a tiny grid on the CUDA simulator")
    ap.add_argument(
        "--accuracy",
        type=int,
        default=0,
        metavar="N",
        help="also compare GPU and CPU depths on an N x N grid after 300 s",
    )
    args = ap.parse_args(argv)
    if args.sim:
        # must be set before numba is imported (its config reads the environment once)
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numba import cuda

    from emtwin.kernels.backend import cuda_available
    from emtwin.kernels.flood import FloodModel

    if not cuda_available():
        print("flood_gpu.py needs a CUDA GPU (Numba finds none); nothing measured. "
              "Use --sim to run a tiny grid on the CUDA simulator.")  # fmt: skip
        return 0
    from emtwin.kernels.flood_cuda import CudaFloodModel

    dtype = np.dtype(args.dtype)
    if args.sim:
        sys.setswitchinterval(5e-4)
        g = make_model(CudaFloodModel, 12, dtype)
        c = make_model(FloodModel, 12, np.float64)
        g.advance(20.0)
        c.advance(20.0)
        diff = float(np.abs(g.h - c.h).max())
        print(f"simulator: 12 x 12 cells, {g.steps} steps to 20 s; max |h_gpu - h_cpu| = "
              f"{diff:.2e} m ({dtype.name} vs float64); ledger error_rel "
              f"{g.ledger()['error_rel']:.1e}")  # fmt: skip
        return 0
    dev = cuda.get_current_device()
    bw = d2d_bandwidth(cuda)
    per_cell = step_bytes(dtype.itemsize)
    print(f"device: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}; "
          f"device-to-device copy {bw / 1e9:.0f} GB/s (read + write); {dtype.name}; "
          f"{per_cell} B per cell-step")  # fmt: skip
    tiny = make_model(CudaFloodModel, 64, dtype)
    tr, ts, tw = rate(tiny, 1.0)
    print(f"per-step host + launch cost (64 x 64 grid): {1e6 * tw / ts:.0f} us")
    print(f"{'cells':>10} {'GPU Mcell/s':>12} {'steps':>6} {'CPU Mcell/s':>12} {'ratio':>7} "
          f"{'GB/s':>7} {'of copy':>8} {'kernels only':>13}")  # fmt: skip
    for n in args.sizes:
        g = make_model(CudaFloodModel, n, dtype)
        gr, gs, _ = rate(g, args.seconds)
        err = g.ledger()["error_rel"]
        kr = kernel_rate(g, min(args.seconds, 2.0))
        del g
        c = make_model(FloodModel, n, dtype)
        cr, _, _ = rate(c, args.cpu_seconds, min_steps=2)
        del c
        moved = gr * per_cell
        print(f"{n * n:>10} {gr / 1e6:>12.1f} {gs:>6} {cr / 1e6:>12.1f} {gr / cr:>6.1f}x "
              f"{moved / 1e9:>7.0f} {moved / bw:>7.0%} {kr * per_cell / bw:>12.0%}"
              f"   (GPU error_rel {err:.1e})")  # fmt: skip
    if args.accuracy:
        accuracy(args.accuracy, 300.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
