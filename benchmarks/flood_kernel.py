"""Throughput of the flood kernel, its memory-bandwidth floor, and Landlab for comparison.

Run:  .venv/bin/python benchmarks/flood_kernel.py [--seconds 10] [--size 1000]

Case: a size x size grid of 5 m cells, bed ``0.001 x + 0.0005 y + 0.2 sin(x/50)
cos(y/70)`` (x east, y north, m), initial depth 0.05 m, rain 50 mm/h, Manning
n = 0.03, the outer ring of cells outside the domain (closed walls, as Landlab's
closed perimeter nodes). For float64 and float32 it prints:

- cell-updates per second (grid cells x steps / stepping wall time) over at
  least ``--seconds`` of stepping, in blocks: the overall rate, the best and
  the median block (the machine may be shared; the best block is the least
  disturbed);
- the bandwidth floor: the bytes the kernel must move per cell-step (every
  array it reads or writes once per step) divided by the bandwidth of a large
  NumPy array copy (read + write bytes) measured in the same run, and the
  fraction of that floor the kernel reaches.

If Landlab is importable it runs ``OverlandFlow`` (same scheme, NumPy) on the
same grid to the same simulated time and prints the speed ratio and the largest
depth difference. Install it with ``pip install -e '.[bench]'`` (on Python 3.11
Landlab 2.11 needs ``requireit<0.3``). Nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

from emtwin.kernels import FloodModel

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


def make_model(n: int, dtype) -> FloodModel:
    z, mask = bed(n)
    m = FloodModel(z, mask, DX, manning=MANNING, h0=DEPTH0, dtype=dtype)
    m.set_rain([0.0], [RAIN_MM_H])
    return m


def copy_bandwidth(nbytes: int, repeats: int = 15) -> float:
    """Best read+write bandwidth of ``np.copyto`` on arrays of *nbytes*, B/s."""
    a = np.random.default_rng(0).random(nbytes // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best


def floor_bytes(m: FloodModel) -> tuple[int, dict[str, int]]:
    """Bytes the step must move per cell: each array read (r) or read and written (rw) once."""
    f = m.dtype.itemsize
    parts = {
        "h (rw)": 2 * f,
        "z (r)": f,
        "qx (rw)": 2 * f,
        "qy (rw)": 2 * f,
        "cell code (r)": 1,
        "max_depth (rw)": 2 * f,
        "max_speed (rw)": 2 * f,
        "max_hr (rw)": 2 * f,
        "max_aidr (rw)": 2,
        "arrival_time (r)": 8,
    }
    if not m._nsc:
        parts["manning (r)"] = f
    if not m._rsc:
        parts["rain multiplier (r)"] = f
    return sum(parts.values()), parts


def measure(n: int, dtype, seconds: float) -> dict:
    m = make_model(n, dtype)
    m.advance(10.0)  # settle; the first call never counts (warm-up compiled the cores)
    rates, walls, steps, cpu = [], 0.0, 0, 0.0
    while walls < seconds:
        w0, s0, c0 = m.wall_s, m.steps, time.process_time()
        m.advance(m.t + 20.0)
        dw, ds = m.wall_s - w0, m.steps - s0
        cpu += time.process_time() - c0
        rates.append(n * n * ds / dw)
        walls += dw
        steps += ds
    return {
        "model": m,
        "rate": n * n * steps / walls,
        "best": max(rates),
        "median": float(np.median(rates)),
        "steps": steps,
        "wall": walls,
        "sim_s": m.t - 10.0,
        "cpu_share": cpu / (walls * numba.get_num_threads()),
    }


def landlab_run(n: int, t_end: float):
    """Landlab OverlandFlow on the same case to *t_end* s; (depth row 0 north, steps, wall s)."""
    from landlab import RasterModelGrid
    from landlab.components import OverlandFlow

    z, _ = bed(n)
    g = RasterModelGrid((n, n), xy_spacing=DX)  # node row 0 is south
    g.add_field("topographic__elevation", z[::-1].reshape(-1).copy(), at="node")
    g.add_field("surface_water__depth", np.full(n * n, DEPTH0), at="node")
    g.set_closed_boundaries_at_grid_edges(True, True, True, True)
    of = OverlandFlow(g, mannings_n=MANNING, rainfall_intensity=RAIN_MM_H / 3.6e6,
                      alpha=0.7, theta=0.8, steep_slopes=False)  # fmt: skip
    t, steps = 0.0, 0
    t0 = time.perf_counter()
    while t < t_end:
        dt = min(of.calc_time_step(), t_end - t)
        of.run_one_step(dt)
        t += dt
        steps += 1
    wall = time.perf_counter() - t0
    h = g.at_node["surface_water__depth"].reshape(n, n)[::-1]
    return h, steps, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="stepping wall time per dtype")
    ap.add_argument("--size", type=int, default=1000, help="cells per side")
    ap.add_argument("--landlab-sim", type=float, default=60.0,
                    help="simulated seconds for the Landlab comparison")  # fmt: skip
    ap.add_argument("--threads", type=int, default=0, help="Numba threads (0: all)")
    ap.add_argument("--no-landlab", action="store_true", help="skip the Landlab comparison")
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    n = args.size
    print(f"flood kernel benchmark: {n} x {n} cells of {DX:g} m, numba {numba.__version__}, "
          f"{numba.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    bw = copy_bandwidth(256 * 2**20)
    bw_small = copy_bandwidth(n * n * 8)
    print(f"numpy copy bandwidth (read + write): {bw / 1e9:.1f} GB/s for 256 MiB arrays, "
          f"{bw_small / 1e9:.1f} GB/s for {n * n * 8 / 2**20:.0f} MiB arrays")  # fmt: skip
    results = {}
    for dtype in (np.float64, np.float32):
        r = measure(n, dtype, args.seconds)
        nbytes, parts = floor_bytes(r["model"])
        floor_rate = bw / nbytes
        results[np.dtype(dtype).name] = r
        print(f"\n{np.dtype(dtype).name}: {r['steps']} steps, {r['sim_s']:.0f} s simulated in "
              f"{r['wall']:.1f} s of stepping; CPU time / (wall x threads) "
              f"{r['cpu_share']:.0%}")  # fmt: skip
        print(f"  cell-updates/s      overall {r['rate'] / 1e6:7.1f} M   best block "
              f"{r['best'] / 1e6:7.1f} M   median block {r['median'] / 1e6:7.1f} M")  # fmt: skip
        print(f"  bytes per cell-step {nbytes} ({', '.join(f'{k} {v}' for k, v in parts.items())})")
        print(f"  bandwidth floor     {floor_rate / 1e6:7.1f} M cell-updates/s "
              f"({nbytes / bw * 1e9:.2f} ns per cell-step)")  # fmt: skip
        print(f"  fraction of floor   overall {r['rate'] / floor_rate:6.1%}   best block "
              f"{r['best'] / floor_rate:6.1%}")  # fmt: skip
        led = r["model"].ledger()
        print(f"  mass error_rel      {led['error_rel']:.1e}")
    print(f"\nthreading layer {numba.threading_layer()}, "
          f"load average now {os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.no_landlab:
        return
    try:
        import landlab  # noqa: F401
    except ImportError:
        print("\nLandlab comparison skipped: landlab is not installed (pip install -e '.[bench]';"
              " on Python 3.11 Landlab 2.11 needs 'requireit<0.3')")  # fmt: skip
        return
    t_end = args.landlab_sim
    h_ll, ll_steps, ll_wall = landlab_run(n, t_end)
    m = make_model(n, np.float64)
    m.advance(t_end)
    ll_rate = n * n * ll_steps / ll_wall
    own_rate = n * n * m.steps / m.wall_s
    mask = m.mask
    diff = np.abs(np.asarray(m.h) - h_ll)[mask].max()
    dmax = abs(float(np.asarray(m.h)[mask].max()) - float(h_ll[mask].max()))
    print(f"\nLandlab {landlab.__version__} OverlandFlow, same grid, {t_end:g} s simulated:")
    print(f"  landlab  {ll_steps} steps in {ll_wall:.1f} s: {ll_rate / 1e6:.2f} M cell-updates/s")
    print(f"  emtwin   {m.steps} steps in {m.wall_s:.2f} s: {own_rate / 1e6:.1f} M cell-updates/s "
          f"(float64, this run); float64 over {args.seconds:g} s above: "
          f"{results['float64']['rate'] / 1e6:.1f} M")  # fmt: skip
    print(f"  speed ratio  {own_rate / ll_rate:.1f}x (this run), "
          f"{results['float64']['rate'] / ll_rate:.1f}x (float64 overall), "
          f"{results['float32']['rate'] / ll_rate:.1f}x (float32 overall)")  # fmt: skip
    print(f"  depth at {t_end:g} s: max |emtwin - landlab| {diff:.2e} m, "
          f"max depth {np.asarray(m.h)[mask].max():.4f} vs {h_ll[mask].max():.4f} m "
          f"(difference {dmax:.2e} m)")  # fmt: skip


if __name__ == "__main__":
    main()
