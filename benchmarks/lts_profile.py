"""Where local time stepping stands: updates left, cost per update, and what would be needed.

Per built-in drill (flood only, ``--duration``, default 30 min), the same
scenario runs with ``time_stepping: global`` then ``local`` in this process,
and the script prints:

- the flood kernel's CPU time (``time.process_time`` around
  ``FloodModel.advance``: all threads; the figure to read on a shared
  machine) and wall time of each, and their ratio;
- the share of cell updates left under local stepping (local / global);
- the cost of one cell update, ns of CPU, under each, and their ratio;
- the tiles by level, averaged over the coupling times (share of tiles at
  level 0 .. Lm, and skipped as dry);
- the least share of updates the slope cap (``STEEP_BETA``) would leave, were
  every tile wet (as under rain), capped and at the longest step its slope
  allows: the floor of the scheme before 2026-12-07, when every tile was
  capped (now only tiles on open or level grid edges are; the others take the
  friction implicitly beyond the cap, docs/flood.md, *Implicit friction*);
- the share of cell updates that other level rules would leave, computed from
  the global run's depths at each coupling time (a level is the largest L with
  ``2^L <= sqrt(h_max / h)``, h the deepest water over the neighbourhood the
  rule looks at, at least 1 cm; cells dry with dry neighbours skipped):
  ``tiles`` the rule of 32-cell tiles each with its eight neighbouring
  tiles (the implemented rule until 2026-12-06, when a halo of ``2^Lm``
  cells around each tile replaced it; at ``Lm`` = 5 the two are close),
  ``cell halo`` a
  level per cell over a halo of ``2^Lm`` cells (what a halo of cells instead
  of whole tiles would give), ``own cell`` a level per cell from its own
  depth and its eight neighbours (the lower bound of any local stepping with
  these levels), and the same with up to 10 levels;
- where no rain falls (at the coupling times without rain, at the last macro
  step's levels): the share of cell updates the levels give, the part of it
  on cells wet or next to a wet cell (the rest is dry cells with dry
  neighbours inside active tiles, which compute nothing), and the part left
  if each tile skipped its rows holding no such cell: what skipping dry cells
  inside tiles could save;
- what would be needed: the speed-up at the measured share if a local update
  cost what a global one does (``1 / share``), and the share that a 3x
  speed-up needs at the measured cost ratio (``1 / (3 cost ratio)``).

    python benchmarks/lts_profile.py                       # surge, dam-break, riverside
    python benchmarks/lts_profile.py --drills riverside --duration 1h
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter

from emtwin.kernels.flood import DT_DEPTH_FLOOR_M, FloodModel
from emtwin.scenarios import load_scenario
from emtwin.scenarios._types import parse_duration
from emtwin.sim.engine import Simulation

DRILLS = ("surge", "dam-break", "riverside")
#: Level of a skipped tile (as in emtwin.kernels._flood_lts).
SKIP = 127


class KernelClock:
    """CPU and wall time of ``FloodModel.advance``, and a hook after each call."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self.after: Any = None
        self._orig = FloodModel.advance

    def __enter__(self) -> KernelClock:
        clock, orig = self, self._orig

        def advance(model: FloodModel, t_end_s: float) -> int:
            c0, w0 = time.process_time(), time.perf_counter()
            n = orig(model, t_end_s)
            clock.cpu += time.process_time() - c0
            clock.wall += time.perf_counter() - w0
            if clock.after is not None:
                clock.after(model)
            return n

        FloodModel.advance = advance  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        FloodModel.advance = self._orig  # type: ignore[method-assign]


def _levels(hn: np.ndarray, hmax: float, lm: int) -> np.ndarray:
    """Level per entry from the neighbourhood depth *hn*: largest L with 2^L <= sqrt(hmax/h)."""
    h = np.maximum(hn, DT_DEPTH_FLOOR_M)
    lev = np.floor(0.5 * np.log2(hmax / h) + 1e-12)
    return np.clip(lev, 0, lm)


def rule_shares(h: np.ndarray, dry: float, tile: int, lm: int) -> dict[str, float]:
    """Share of the global cell updates each level rule would leave with depths *h* (m)."""
    h = np.where(np.isfinite(h), h, 0.0)
    hmax = max(float(h.max()), DT_DEPTH_FLOOR_M)
    out = {}
    # own cell and its eight neighbours
    n1 = maximum_filter(h, size=3, mode="constant")
    for name, lmax in (("own cell", lm), ("own cell, 10 levels", 10)):
        lev = _levels(n1, hmax, lmax)
        out[name] = float(np.where(n1 >= dry, 2.0**-lev, 0.0).mean())
    # a halo of 2^Lm cells
    nh = maximum_filter(h, size=2 * 2**lm + 1, mode="constant")
    out["cell halo"] = float(np.where(nh >= dry, 2.0 ** -_levels(nh, hmax, lm), 0.0).mean())
    # tiles with their eight neighbouring tiles (the implemented rule, less the inflow
    # tiles at level 0, the one-level steps between neighbours and the rain)
    nr, nc = h.shape
    pr, pc = -nr % tile, -nc % tile
    hp = np.pad(h, ((0, pr), (0, pc)))
    tmax = hp.reshape(hp.shape[0] // tile, tile, hp.shape[1] // tile, tile).max(axis=(1, 3))
    tn = maximum_filter(tmax, size=3, mode="constant")
    per_tile = np.where(tn >= dry, 2.0 ** -_levels(tn, hmax, lm), 0.0)
    cells = np.kron(per_tile, np.ones((tile, tile)))[:nr, :nc]
    out["tiles"] = float(cells.mean())
    return out


def cap_share(m: FloodModel) -> float:
    """The least share of the global cell updates that the slope cap leaves (tiles
    stepping at the longest step their slope allows, ``STEEP_BETA sqrt(dx / (g S))``,
    none skipped), at the model's deepest water now: a floor for local stepping
    wherever every tile is wet (rain)."""
    c = m.alpha * m.dx / np.sqrt(9.81)
    dt0 = c / np.sqrt(max(float(m.h.max()), DT_DEPTH_FLOOR_M))
    with np.errstate(divide="ignore"):
        lev = np.floor(np.log2(np.maximum(m._tcap / dt0, 1.0)))  # noqa: SLF001
    lev = np.clip(lev, 0, m.lts_levels)
    nr, nc, b = m.nrows, m.ncols, m.lts_tile
    rows = np.minimum(np.arange(lev.shape[0]) * b + b, nr) - np.arange(lev.shape[0]) * b
    cols = np.minimum(np.arange(lev.shape[1]) * b + b, nc) - np.arange(lev.shape[1]) * b
    return float((np.outer(rows, cols) * 2.0**-lev).sum() / (nr * nc))


def dry_inside(m: FloodModel) -> tuple[float, float, float]:
    """At the levels of *m*'s last macro step: the share of the global cell updates they
    give, the part on cells wet (deeper than ``dry_tol``) or next to a wet cell (8
    neighbours), and the part in tile rows holding such a cell."""
    h = np.asarray(m.h, np.float64)
    nr, nc, b = m.nrows, m.ncols, m.lts_tile
    tl = m._tlev  # noqa: SLF001
    lev = np.kron(tl, np.ones((b, b), np.int64))[:nr, :nc]
    act = lev != SKIP
    w = np.where(act, 2.0 ** -np.where(act, lev, 0), 0.0)
    near = maximum_filter((h > m.dry_tol).astype(np.uint8), size=3, mode="constant") > 0
    hp = np.pad(near, ((0, -nr % b), (0, -nc % b)))
    rows = hp.reshape(hp.shape[0], hp.shape[1] // b, b).any(axis=2)
    rows = np.repeat(rows, b, axis=1)[:nr, :nc]
    return float(w.mean()), float((w * near).mean()), float((w * rows).mean())


def run(name: str, duration_s: float, stepping: str, world: Any = None,
        lts_cost: Any = "default") -> dict[str, Any]:  # fmt: skip
    """One flood-only run of drill *name*; its kernel figures and per-coupling records.

    *lts_cost*: the model's ``lts_cost`` (None: every macro step local), or the default.
    """
    sc = load_scenario(name)
    sc.duration = duration_s
    sc.evacuation = None
    sc.response = None
    sc.consequences = None
    sc.actions = []
    sc.hazards[0].time_stepping = stepping
    sc.hazards[0].backend = "cpu"
    rows: list[dict[str, float]] = []
    levels: list[np.ndarray] = []
    caps: list[float] = []
    dry: list[tuple[float, float, float]] = []
    sim = Simulation(sc, world=world)
    model = sim.component("flood").model
    if lts_cost != "default":
        model.lts_cost = lts_cost

    def after(m: FloodModel) -> None:
        if stepping == "global":
            rows.append(rule_shares(np.asarray(m.h, np.float64), m.dry_tol, m.lts_tile,
                                    m.lts_levels))  # fmt: skip
        else:
            tl = m._tlev  # noqa: SLF001 - the levels of the last macro step
            counts = [(tl == lev).mean() for lev in range(m.lts_levels + 1)]
            levels.append(np.array([*counts, (tl == SKIP).mean()]))
            caps.append(cap_share(m))
            if m._rain_rate(m.t) == 0.0:  # noqa: SLF001
                dry.append(dry_inside(m))

    with KernelClock() as clock:
        clock.after = after
        sim.run()
    return {
        "world": sim.world, "cpu": clock.cpu, "wall": clock.wall, "updates": model.cell_updates,
        "rules": {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {},
        "levels": np.mean(levels, axis=0) if levels else None, "lm": model.lts_levels,
        "cap": float(np.mean(caps)) if caps else None,
        "tile": model.lts_tile, "steps": model.steps,
        "global_steps": getattr(model, "_lts_global", 0),
        "dry": (np.mean(dry, axis=0), len(dry), len(levels)) if dry else None,
    }  # fmt: skip


def main() -> None:
    """Print the profile."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--drills", nargs="*", default=list(DRILLS))
    ap.add_argument("--duration", default="30min", help="simulated time per drill")
    ap.add_argument("--lts-cost", default="default",
                    help="FloodModel lts_cost of the local run ('none': every macro step local, "
                         "to measure the cost of a local update alone)")  # fmt: skip
    args = ap.parse_args()
    dur = parse_duration(args.duration)
    # load (or compile) both kernels before timing
    for stepping in ("global", "local"):
        run("riverside", 60.0, stepping)
    print(f"flood only, {dur / 60:g} min simulated per drill; CPU = process time of "
          "FloodModel.advance (all threads)")
    for name in args.drills:
        g = run(name, dur, "global")
        cost_arg = args.lts_cost
        if cost_arg != "default":
            cost_arg = None if cost_arg == "none" else float(cost_arg)
        loc = run(name, dur, "local", world=g["world"], lts_cost=cost_arg)
        share = loc["updates"] / g["updates"]
        ns_g = 1e9 * g["cpu"] / g["updates"]
        ns_l = 1e9 * loc["cpu"] / max(loc["updates"], 1)
        cost = ns_l / ns_g
        lev = loc["levels"]
        print(f"\n{name}: kernel CPU global {g['cpu']:.1f} s, local {loc['cpu']:.1f} s "
              f"(ratio {g['cpu'] / loc['cpu']:.2f}x; wall {g['wall']:.1f} / {loc['wall']:.1f} s, "
              f"{g['wall'] / loc['wall']:.2f}x)")
        print(f"  cell updates left: {share:.3f}; ns of CPU per update: global {ns_g:.1f}, "
              f"local {ns_l:.1f} (cost ratio {cost:.2f}); base steps made as global steps "
              f"(lts_cost): {loc['global_steps']:,} of {loc['steps']:,}")
        print("  tiles by level (mean over coupling times): "
              + ", ".join(f"L{i} {100 * v:.0f} %" for i, v in enumerate(lev[:-1]))
              + f", skipped {100 * lev[-1]:.0f} %")
        print(f"  the slope cap, were it on every tile (every tile wet, at its longest step): "
              f"at least "
              f"{loc['cap']:.3f} of the updates (mean over coupling times)")
        if loc["dry"] is not None:
            (sh, near, rows), nd, nt = loc["dry"]
            print(f"  without rain ({nd} of {nt} coupling times): the levels give {sh:.3f} of "
                  f"the updates, {near:.3f} on cells wet or next to one; skipping the tiles' "
                  f"rows without such a cell would leave {rows:.3f}")
        print("  updates left under other level rules (from the global run's depths): "
              + ", ".join(f"{k} {v:.3f}" for k, v in g["rules"].items()))
        print(f"  needed: at this share, a local update as cheap as a global one gives "
              f"{1 / share:.2f}x; at this cost ratio, 3x needs a share <= {1 / (3 * cost):.3f}, "
              f"2x <= {1 / (2 * cost):.3f}")


if __name__ == "__main__":
    main()
