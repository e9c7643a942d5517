"""Whole-event speed: global against local flood time stepping, and the whole city.

Part 1, per built-in drill (surge, dam-break, riverside; flood only, 2 h of
simulated time by default): the same scenario run twice in this process, with
``time_stepping: global`` and ``local``. Prints the flood kernel wall time of
each and their ratio, the cell updates, and the agreement of local with global:

- the 99th percentile of |max depth difference| over cells wet (max depth
  >= 0.05 m) in either run (target <= 5 cm);
- the RMSE of the gauge depth series (target <= 2 cm);
- the share of cells whose arrival time (0.05 m) agrees within one output step,
  over the cells reached in either run (target >= 99 %);
- the mass error of each run (target |error_rel| <= 1e-9).

With ``--noise``, each drill's global stepping runs once more with a step 10 %
shorter (``alpha`` x 0.9), and the same agreement figures of that run against
the first say how far the reference itself moves with its step (on typhoon's
steep ground, decimetres: docs/flood.md, *One pass or two*).

Part 2 (``--city``): ``terrain: {builtin: riverside, scale: 8}`` with flood,
evacuation and dispatch for 6 h (``--city-duration``), local stepping, with the
wall time of the whole run (world build included) broken down into world build,
flood kernel, coupling reads (road state, gauges, samples of the hazard),
evacuation, dispatch (incidents and units), outputs and the map (written to a
temporary folder). Target: under 60 s on 2 cores. ``benchmarks/whole_city.py``
profiles the same city phase by phase (wall and CPU time, exclusive, with a
lighter timer than cProfile) and prints the 1M-vehicle figure;
``benchmarks/lts_profile.py`` says why local stepping is not yet faster.

    python benchmarks/whole_event.py                 # the three drills, 2 h
    python benchmarks/whole_event.py --city          # and the whole city
    python benchmarks/whole_event.py --drills surge --duration 30min
    python benchmarks/whole_event.py --drills cloudburst typhoon   # any built-in drill
    python benchmarks/whole_event.py --drills typhoon --noise      # and the reference's noise
    python benchmarks/whole_event.py --drills riverside --scale 8  # the whole city's flood
    python benchmarks/whole_event.py --backend cuda  # both kinds of stepping on a GPU
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np

from emtwin.scenarios import load_scenario
from emtwin.scenarios._types import parse_duration
from emtwin.sim.engine import Simulation

DRILLS = ("surge", "dam-break", "riverside")
WET_M = 0.05


def _flood_only(name: str, duration_s: float, stepping: str, backend: str = "cpu",
                scale: float | None = None):  # fmt: skip
    sc = load_scenario(name)
    sc.duration = duration_s
    if scale is not None:
        if sc.world.terrain.builtin is None:
            raise SystemExit(f"--scale: drill {name!r} has no built-in terrain to scale")
        sc.world.terrain.scale = scale
    sc.evacuation = None
    sc.response = None
    sc.actions = []
    sc.warning_rules = []  # (their warnings need the evacuation)
    for h in sc.hazards:
        if getattr(h, "evacuation_warning", None) is not None:
            h.evacuation_warning = None
    flood = next(h for h in sc.hazards if h.type == "flood")  # typhoon: after the storm
    flood.time_stepping = stepping
    flood.backend = backend
    return sc


def _run_drill(name: str, duration_s: float, stepping: str, world=None, alpha_factor=1.0,
               backend: str = "cpu", scale: float | None = None):  # fmt: skip
    sc = _flood_only(name, duration_s, stepping, backend, scale)
    if alpha_factor != 1.0:
        flood = next(h for h in sc.hazards if h.type == "flood")
        flood.alpha *= alpha_factor
    sim = Simulation(sc, world=world)
    res = sim.run()
    comp = sim.component("flood")
    return sim.world, comp, res


def max_depth_p99(mg: np.ndarray, ml: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The 99th percentile of |max depth difference| (m) over the cells (of *mask*) wet,
    max depth >= WET_M, in either of the max-depth grids *mg* and *ml*; 0 where none is."""
    mg, ml = mg.astype(np.float64), ml.astype(np.float64)
    wet = (mg >= WET_M) | (ml >= WET_M)
    if mask is not None:
        wet &= mask
    return float(np.percentile(np.abs(mg - ml)[wet], 99)) if wet.any() else 0.0


def agreement(g, loc, mask: np.ndarray, duration_s: float) -> tuple[float, float, float]:
    """p99 of |max depth difference| over wet cells (m), gauge RMSE (m) and the share of
    reached cells whose arrival times agree within one output step, of two flood
    components *g* (the reference) and *loc* over the same world."""
    p99 = max_depth_p99(g.model.max_depth, loc.model.max_depth, mask)
    cols = ["time_s", "gauge", "depth_m"]
    gg = g.gauge_table()[cols].set_index(["time_s", "gauge"]).depth_m
    gl = loc.gauge_table()[cols].set_index(["time_s", "gauge"]).depth_m
    rmse = float(np.sqrt(np.mean((gg - gl.reindex(gg.index)) ** 2))) if len(gg) else 0.0
    ag = g.model.arrival_time
    al = loc.model.arrival_time
    reached = mask & (np.isfinite(ag) | np.isfinite(al))
    step = float(g.scenario.outputs.every)
    both = np.isfinite(ag) & np.isfinite(al)
    ok = both & (np.abs(np.where(both, ag - al, 0.0)) <= step)
    # a cell reached in one run only agrees if the other's first arrival would
    # come within one output step of the end
    end = duration_s
    one = reached & ~both
    late = np.where(np.isfinite(ag), ag, al)
    ok |= one & (end - np.where(one, late, 0.0) <= step)
    share = float(ok[reached].mean()) if reached.any() else 1.0
    return p99, rmse, share


def drill_row(name: str, duration_s: float, noise: bool = False, backend: str = "cpu",
              scale: float | None = None) -> dict:  # fmt: skip
    """Run *name* with global then local stepping; the figures of the table. With
    *noise*, also global stepping with a step 10 % shorter (``alpha`` x 0.9) against
    the first: how far the reference itself moves with its step. *scale*: the
    terrain scale (None: the drill's own)."""
    world, g, _ = _run_drill(name, duration_s, "global", backend=backend, scale=scale)
    _, loc, _ = _run_drill(name, duration_s, "local", world=world, backend=backend, scale=scale)
    mask = world.terrain.mask
    p99, rmse, share = agreement(g, loc, mask, duration_s)
    extra = {}
    if noise:
        _, g2, _ = _run_drill(name, duration_s, "global", world=world, alpha_factor=0.9,
                              backend=backend, scale=scale)  # fmt: skip
        n99, nrmse, nshare = agreement(g, g2, mask, duration_s)
        extra = {"noise_p99_cm": 100 * n99, "noise_rmse_cm": 100 * nrmse,
                 "noise_arrival_ok": 100 * nshare}  # fmt: skip
    return {**extra,
        "drill": name,
        "cells": int(mask.sum()),
        "global_s": g.model.wall_s,
        "local_s": loc.model.wall_s,
        "ratio": g.model.wall_s / max(loc.model.wall_s, 1e-9),
        "updates": loc.model.cell_updates / max(g.model.cell_updates, 1),
        "global_steps": loc.model.lts_global_steps / max(loc.model.steps, 1),
        "p99_cm": 100 * p99,
        "gauge_rmse_cm": 100 * rmse,
        "arrival_ok": 100 * share,
        "mass_g": g.model.ledger()["error_rel"],
        "mass_l": loc.model.ledger()["error_rel"],
    }


#: Parts of a run, by the source files their own time is spent in (cProfile).
PARTS = {
    "flood kernel": ("kernels/flood.py", "_flood_lts.py", "_flood_numba.py", "flood_cuda.py"),
    "coupling reads (road state, gauges, samples)": (
        "components/hazard.py", "components/roads.py", "road_state.py", "hazard_rating.py",
        "sim/roadstate.py"),
    "evacuation": ("components/evacuation.py", "sim/evacuation/", "kernels/traffic.py",
                   "_traffic_numba.py", "water_route.py"),
    "dispatch (incidents, units)": ("components/dispatch.py", "components/incidents.py",
                                    "sim/dispatch/"),
}


def city(duration_s: float, scale: float) -> None:
    """The whole city with flood, evacuation and dispatch: wall time and where it goes."""
    from emtwin.geo.build import build_world
    from emtwin.sim.outputs import write_results
    from emtwin.viz import run_writers

    sc = load_scenario("riverside")
    sc.world.terrain.scale = scale
    sc.duration = duration_s
    t0 = time.perf_counter()
    world = build_world(sc)
    t_world = time.perf_counter() - t0
    prof = cProfile.Profile()
    ts = time.perf_counter()
    prof.enable()
    sim = Simulation(sc, world=world)
    res = sim.run()
    prof.disable()
    t_sim = time.perf_counter() - ts
    to = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_results(res, Path(d) / "out", extra=run_writers(res))
    t_out = time.perf_counter() - to
    wall = time.perf_counter() - t0
    flood = sim.component("flood")
    st = pstats.Stats(prof)
    own = dict.fromkeys(PARTS, 0.0)
    for (fn, _line, _func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        path = fn.replace("\\", "/")
        for label, files in PARTS.items():
            if any(f in path for f in files):
                own[label] += tt
                break
    n = world.summary()
    share = flood.model.cell_updates / max(flood.model.steps * flood.model.h.size, 1)
    print(f"\nwhole city: riverside scale {scale:g}, {n['cells']:,} cells, {n['edges']:,} road "
          f"edges, {n['people']:,.0f} people, {duration_s / 3600:g} h; flood "
          f"{flood.model.time_stepping} stepping, {flood.model.steps} base steps, "
          f"cell updates {share:.3f} of global")
    print(f"{'part':<50} {'s':>7}")
    print(f"{'world build':<50} {t_world:7.1f}")
    print(f"{'simulation':<50} {t_sim:7.1f}")
    for label, v in own.items():
        print(f"{'  ' + label:<50} {v:7.1f}")
    print(f"{'  the rest (SimPy, recorder, engine)':<50} {t_sim - sum(own.values()):7.1f}")
    print(f"{'outputs and map':<50} {t_out:7.1f}")
    print(f"{'total wall':<50} {wall:7.1f}   (target < 60 s on 2 cores)")
    print("\ntop 15 functions by own time in the simulation:")
    st.sort_stats("tottime").print_stats(15)


def main() -> None:
    """Print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--drills", nargs="*", default=list(DRILLS))
    ap.add_argument("--duration", default="2h", help="simulated time per drill")
    ap.add_argument("--noise", action="store_true",
                    help="also run each drill's global stepping with a step 10 %% shorter "
                         "(alpha x 0.9) and print its agreement with the first: the "
                         "reference's own sensitivity to its step")  # fmt: skip
    ap.add_argument("--backend", choices=("cpu", "cuda"), default="cpu",
                    help="where the drills' flood steps (cuda: the GPU, both kinds of "
                         "stepping on it; exits when Numba finds none)")  # fmt: skip
    ap.add_argument("--scale", type=float, default=None,
                    help="terrain scale of the drills (default: each drill's own); "
                         "'--drills riverside --scale 8' is the whole city's flood")  # fmt: skip
    ap.add_argument("--city", action="store_true", help="also run the whole city")
    ap.add_argument("--city-duration", default="6h")
    ap.add_argument("--city-scale", type=float, default=8.0)
    args = ap.parse_args()
    dur = parse_duration(args.duration)
    if args.backend == "cuda":
        from emtwin.kernels.backend import cuda_available

        if not cuda_available():
            print("--backend cuda: Numba finds no CUDA GPU here; nothing to measure")
            return
    if args.drills:
        print(f"flood only, {dur / 3600:g} h simulated, global vs local time stepping (same run), "
              f"backend {args.backend}")
        head = (f"{'drill':<10} {'cells':>8} {'global s':>9} {'local s':>8} {'ratio':>6} "
                f"{'updates':>8} {'p99 |dmax| cm':>13} {'gauge RMSE cm':>13} "
                f"{'arrival ok %':>12} {'mass global':>11} {'mass local':>10} "
                f"{'as global %':>11}")  # fmt: skip
        rows = []
        for name in args.drills:
            r = drill_row(name, dur, args.noise, args.backend, args.scale)
            rows.append(r)
            if len(rows) == 1:
                print(head)
            print(f"{r['drill']:<10} {r['cells']:8,d} {r['global_s']:9.1f} {r['local_s']:8.1f} "
                  f"{r['ratio']:5.1f}x {r['updates']:8.3f} {r['p99_cm']:13.2f} "
                  f"{r['gauge_rmse_cm']:13.2f} {r['arrival_ok']:12.2f} {r['mass_g']:11.1e} "
                  f"{r['mass_l']:10.1e} {100 * r['global_steps']:11.1f}", flush=True)  # fmt: skip
            if args.noise:
                print(f"{'':<10} global against global with alpha x 0.9: p99 "
                      f"{r['noise_p99_cm']:.2f} cm, gauge RMSE {r['noise_rmse_cm']:.2f} cm, "
                      f"arrival ok {r['noise_arrival_ok']:.2f} %", flush=True)  # fmt: skip
        print("targets: ratio >= 3x (surge, dam-break; aim 5x), >= 2x (riverside); p99 <= 5 cm; "
              "RMSE <= 2 cm; arrival >= 99 %; |mass| <= 1e-9. 'updates': local cell updates "
              "/ global; 'as global %': base steps local stepping made as global steps "
              "(lts_cost), which leave out dry blocks (docs/flood.md).")
    if args.city:
        city(parse_duration(args.city_duration), args.city_scale)


if __name__ == "__main__":
    main()
