"""Random floods: local against global stepping, and the kernel's own sanity, case by case.

Each seed draws a flood the kernel must take (``FloodModel`` directly, no
world): a grid of 16-140 x 16-140 cells of 0.5-20 m over smooth random relief
of 0.5-30 m with a tilt, sometimes with blocks of buildings and holes in the
mask; Manning's n scalar or per cell; and any mix of a cloudburst,
infiltration, point inflows, open edges, water-level edges (a rising or
falling sea), a reservoir released during the run and ponds at the start;
theta 0.7, 0.8 or 1; float64 or float32; local tiles of 4-32 cells. It runs
global, then local, then global again with a step 10 % shorter (``alpha`` x
0.9), advancing a minute at a time, and prints per case:

- ``p99``: the 99th percentile of |max depth difference|, local against
  global, over the cells wet (0.05 m) in either (issue 16: <= 5 cm);
- ``noise``: the same figure for the global run against the global run with
  the shorter step: how far the reference itself moves with its step. Where
  ``p99`` is well above 5 cm but about ``noise`` or below, the case is one the
  scheme does not resolve at this grid and step (a dam-break front on coarse
  cells, theta 1 in deep water), not a fault of local stepping;
- the mass error of each run (``ledger()["error_rel"]``: <= 1e-9 in float64,
  1e-5 in float32, whose state rounds at 6e-8 a step),
  the least depth seen at any minute (never below 0), the deepest water of
  each run and the wall time of each.

A case is flagged ``CHECK`` where a mass error is beyond 1e-9 (float64) or
1e-5 (float32), a depth is negative, or ``p99`` exceeds both 5 cm and twice
``noise``. The summary counts them. (docs/flood.md, *Random cases*.)

    python benchmarks/random_floods.py                 # seeds 0-59
    python benchmarks/random_floods.py --seeds 100 140
    python benchmarks/random_floods.py --theta 0.8     # only the default theta
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.ndimage import gaussian_filter
from whole_event import max_depth_p99  # (benchmarks/, the script's own folder)

from emtwin.kernels.flood import FloodModel

SIDES = ("north", "south", "west", "east")


def case(seed: int, theta: float | None = None) -> tuple[dict, list[tuple]]:
    """The grid and parameters (a dict) and the forcing calls (a list) of one seed."""
    r = np.random.default_rng(seed)
    nr, nc = int(r.integers(16, 140)), int(r.integers(16, 140))
    dx = float(r.choice([0.5, 1, 2, 5, 10, 20]))
    z = gaussian_filter(r.normal(size=(nr, nc)), float(r.uniform(1, 8)))
    z = (z - z.min()) / (np.ptp(z) + 1e-12) * float(r.uniform(0.5, 30))
    z += (r.uniform(-0.02, 0.02) * dx * np.arange(nc)[None, :]
          + r.uniform(-0.02, 0.02) * dx * np.arange(nr)[:, None])  # fmt: skip
    if r.random() < 0.3:  # blocks of buildings
        for _ in range(int(r.integers(1, 20))):
            a, b = int(r.integers(0, nr)), int(r.integers(0, nc))
            z[a : a + int(r.integers(1, 6)), b : b + int(r.integers(1, 6))] += r.uniform(1, 5)
    mask = np.ones((nr, nc), bool)
    if r.random() < 0.3:  # holes in the domain
        for _ in range(int(r.integers(1, 6))):
            a, b = int(r.integers(0, nr)), int(r.integers(0, nc))
            mask[a : a + int(r.integers(1, 12)), b : b + int(r.integers(1, 12))] = False
    manning = float(r.uniform(0.02, 0.1)) if r.random() < 0.6 else r.uniform(0.02, 0.1, (nr, nc))
    h0 = None
    if r.random() < 0.3:  # ponds at the start
        h0 = np.where(z < np.quantile(z, r.uniform(0.05, 0.4)), np.quantile(z, 0.4) - z, 0.0)
    th = float(r.choice([0.7, 0.8, 1.0]))
    dtype = np.float64 if r.random() < 0.8 else np.float32
    tile, levels = [(32, 5), (16, 4), (8, 3), (4, 2)][int(r.integers(0, 4))]
    duration = float(r.choice([300, 900, 1800]))
    cfg = {"z": z, "mask": mask, "dx": dx, "manning": manning, "h0": h0,
           "theta": th if theta is None else theta, "dtype": dtype, "tile": tile,
           "levels": levels, "duration": duration}  # fmt: skip
    ops: list[tuple] = []
    if r.random() < 0.5:
        ops.append(("rain", [0.0, duration * r.uniform(0.2, 0.8)], [float(r.uniform(5, 150)), 0.0]))
    if r.random() < 0.3:
        ops.append(("infiltration", float(r.uniform(1, 30))))
    for _ in range(int(r.integers(0, 3))):
        a, b = int(r.integers(0, nr)), int(r.integers(0, nc))
        if mask[a, b]:
            peak = float(r.uniform(0.1, 5)) * dx
            times = [0.0, 0.3 * duration, 0.7 * duration]
            ops.append(("inflow", [a], [b], times, [0.0, peak, 0.0]))
    for side in SIDES:
        u = r.random()
        if u < 0.25:
            ops.append(("open", side))
        elif u < 0.45:
            lo = float(np.quantile(z, r.uniform(0.0, 0.5)))
            ops.append(("level", side, [0.0, duration], [lo, lo + float(r.uniform(-0.5, 3))]))
    if r.random() < 0.25:
        a, b = int(r.integers(0, nr - 5)), int(r.integers(0, nc - 5))
        cells = np.zeros((nr, nc), bool)
        cells[a : a + int(r.integers(3, 15)), b : b + int(r.integers(3, 15))] = True
        cells &= mask
        if cells.any():
            ops.append(("reservoir", cells, float(z[cells].max() + r.uniform(0.5, 5)),
                        float(r.uniform(0, duration / 2))))  # fmt: skip
    return cfg, ops


def build(cfg: dict, ops: list[tuple], stepping: str, alpha_factor: float = 1.0) -> FloodModel:
    """The model of one case with its forcing, under this stepping."""
    m = FloodModel(cfg["z"], cfg["mask"], cfg["dx"], manning=cfg["manning"], h0=cfg["h0"],
                   theta=cfg["theta"], alpha=0.5 * alpha_factor, dtype=cfg["dtype"],
                   time_stepping=stepping, lts_levels=cfg["levels"],
                   lts_tile=cfg["tile"])  # fmt: skip
    for op in ops:
        kind = op[0]
        if kind == "rain":
            m.set_rain(op[1], op[2])
        elif kind == "infiltration":
            m.set_infiltration(op[1])
        elif kind == "inflow":
            m.add_inflow(op[1], op[2], op[3], op[4])
        elif kind == "open":
            m.set_boundary(op[1], "open")
        elif kind == "level":
            m.set_boundary(op[1], "level", times_s=op[2], level_m=op[3])
        elif kind == "reservoir":
            m.add_reservoir(op[1], op[2], op[3])
    return m


def _run(cfg: dict, ops: list[tuple], stepping: str, alpha_factor: float = 1.0):
    """(model, least depth seen at any minute m, wall s)."""
    m = build(cfg, ops, stepping, alpha_factor)
    t, least, t0 = 0.0, np.inf, time.perf_counter()
    while t < cfg["duration"]:
        t = min(cfg["duration"], t + 60.0)
        m.advance(t)
        least = min(least, float(np.min(m.h)))
    return m, least, time.perf_counter() - t0


def row(seed: int, theta: float | None = None) -> dict:
    """The figures of one seed."""
    cfg, ops = case(seed, theta)
    g, lg, wg = _run(cfg, ops, "global")
    loc, ll, wl = _run(cfg, ops, "local")
    g9, _, _ = _run(cfg, ops, "global", 0.9)
    p99 = max_depth_p99(g.max_depth, loc.max_depth)
    noise = max_depth_p99(g.max_depth, g9.max_depth)
    eg, el = g.ledger()["error_rel"], loc.ledger()["error_rel"]
    tol = 1e-9 if cfg["dtype"] == np.float64 else 1e-5
    check = (max(abs(eg), abs(el)) > tol or min(lg, ll) < 0.0
             or (p99 > 0.05 and p99 > 2.0 * noise))  # fmt: skip
    forcing = ",".join(op[0] + (f":{op[1]}" if op[0] in ("open", "level") else "") for op in ops)
    return {"seed": seed, "shape": f"{cfg['z'].shape[0]}x{cfg['z'].shape[1]}", "dx": cfg["dx"],
            "tile": f"{cfg['tile']}/{cfg['levels']}", "dtype": np.dtype(cfg["dtype"]).name,
            "theta": cfg["theta"], "minutes": cfg["duration"] / 60, "p99": p99, "noise": noise,
            "mass_g": eg, "mass_l": el, "least": min(lg, ll),
            "hmax": f"{float(g.max_depth.max()):.2f}/{float(loc.max_depth.max()):.2f}",
            "wall": f"{wg:.2f}/{wl:.2f}", "check": check,
            "forcing": forcing + (",ponds" if cfg["h0"] is not None else "")}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs=2, type=int, default=[0, 60], metavar=("FIRST", "END"))
    ap.add_argument("--theta", type=float, default=None, help="one theta for every case")
    args = ap.parse_args()
    print(f"{'seed':>4s} {'grid':>7s} {'dx':>4s} {'tile':>4s} {'dtype':7s} {'theta':>5s} "
          f"{'min':>3s} {'p99 cm':>7s} {'noise cm':>8s} {'mass global':>11s} {'mass local':>10s} "
          f"{'least m':>8s} {'hmax g/l m':>11s} {'wall g/l s':>10s}  forcing")  # fmt: skip
    flagged, n = [], 0
    for seed in range(*args.seeds):
        r = row(seed, args.theta)
        n += 1
        if r["check"]:
            flagged.append(seed)
        print(f"{r['seed']:4d} {r['shape']:>7s} {r['dx']:4g} {r['tile']:>4s} {r['dtype']:7s} "
              f"{r['theta']:5.2f} {r['minutes']:3.0f} {100 * r['p99']:7.2f} "
              f"{100 * r['noise']:8.2f} {r['mass_g']:11.1e} {r['mass_l']:10.1e} "
              f"{r['least']:8.1e} {r['hmax']:>11s} {r['wall']:>10s}  {r['forcing']}"
              f"{'  CHECK' if r['check'] else ''}", flush=True)  # fmt: skip
    print(f"{n} cases; flagged (mass, a negative depth, or p99 > 5 cm and > 2 x noise): "
          f"{len(flagged)} {flagged}")  # fmt: skip


if __name__ == "__main__":
    main()
