"""Building damage and life loss of the riverside drill's flood (kernel only, no engine).

Runs the flood of the built-in ``riverside`` scenario (its inflow hydrograph
and open east boundary) on the CPU kernel for the scenario's duration, and at
every 300 s step takes the depth into the consequence models exactly as a
component would: the running maximum over each of the town's building
footprints (:func:`emtwin.geo.synthetic_buildings.town_buildings`), and the
hazard at every home for the two life-loss methods. Nobody evacuates here
(every household stays at home): the worst case, for scale; the drill itself
moves people away. Prints the damage summary, the damage by kind of building
and the life-loss summaries.

    PYTHONPATH=. python benchmarks/consequences_riverside.py   # about 12 min on one core
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np

from emtwin.consequences.curves import builtin_curve, continent_of
from emtwin.consequences.damage import FootprintMaxDepth, assess_buildings, damage_summary
from emtwin.consequences.defaults import OCCUPANCIES, STOREY_HEIGHT_M
from emtwin.consequences.life_loss import LifeLossTracker, rise_rate_m_h
from emtwin.geo.build import builtin_town, to_world_xy
from emtwin.geo.buildings import prepare_buildings
from emtwin.geo.synthetic_buildings import town_buildings
from emtwin.kernels import FloodModel
from emtwin.scenarios import load_scenario
from emtwin.sim.components.hazard import line_cells

STEP_S = 300.0


def main() -> None:
    """Run the flood and print the consequences."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hours", type=float, default=None, help="stop earlier (default: 6 h)")
    args = ap.parse_args()
    sc = load_scenario("riverside")
    if args.hours:
        sc.duration = args.hours * 3600.0
    town = builtin_town("riverside", sc.world.terrain.scale)
    t = town.terrain
    world = SimpleNamespace(terrain=t, crs=town.crs)
    model = FloodModel(t.z, t.mask, t.dx, manning=t.manning)
    for inflow in sc.flood.inflows:
        rows, cols = line_cells(world, to_world_xy(inflow.along, sc.crs, world))
        times, q = zip(*inflow.hydrograph, strict=True)
        model.add_inflow(rows, cols, np.array(times), np.array(q))
    for side, spec in sc.flood.boundary.items():
        model.set_boundary(side, spec)

    table = town_buildings(town)
    b = prepare_buildings(table, t)
    xmin, ymin, xmax, ymax = t.bounds
    continent = continent_of(town.crs, (xmin + xmax) / 2, (ymin + ymax) / 2)
    curves = {o: builtin_curve(o, continent) for o in OCCUPANCIES}
    fmax = FootprintMaxDepth(b.indptr, b.cells)
    centre = b.table.geometry.centroid
    r, c = t.cell_of(centre.x.to_numpy(), centre.y.to_numpy())
    home = r * t.shape[1] + c
    people = table["occupants"].to_numpy()
    levels = b.table["levels"].to_numpy()
    ffh = b.table["first_floor_height_m"].to_numpy()
    trackers = {m: LifeLossTracker(people, method=m) for m in ("jonkman", "lifesim")}
    at_home = np.zeros(len(b), dtype=np.int64)

    before = np.zeros(t.shape)
    now, t0 = 0.0, time.perf_counter()
    while now < sc.duration:
        now = min(now + STEP_S, sc.duration)
        model.advance(now)
        h = model.h
        fmax.update(h, now)
        w = rise_rate_m_h(h, before, STEP_S).ravel()[home]
        hh, v = h.ravel()[home], model.speed().ravel()[home]
        for tr in trackers.values():
            tr.update(hh, v, w, at_home, top_floor_m=ffh + STOREY_HEIGHT_M * (levels - 1),
                      roof_m=ffh + STOREY_HEIGHT_M * levels)  # fmt: skip
        before = h.copy()
    print(
        f"flood {sc.duration / 3600:g} h in {time.perf_counter() - t0:.0f} s; curves: {continent}"
    )
    res = assess_buildings(b.table, fmax.max_depth_m, curves=curves,
                           time_of_max_s=fmax.time_of_max_s)  # fmt: skip
    print(damage_summary(res))
    res["kind"] = b.table["kind"].to_numpy()
    by_kind = res.groupby("kind").agg(
        buildings=("damage", "size"),
        damaged=("damage_ratio", lambda x: int((x > 0).sum())),
        damage=("damage", "sum"),
        max_depth_m=("max_depth_m", "max"),
    )
    print(by_kind.to_string(float_format=lambda x: f"{x:,.2f}"))
    for name, tr in trackers.items():
        print(
            f"life loss, {name}, nobody leaves:", {k: round(v, 2) for k, v in tr.summary().items()}
        )


if __name__ == "__main__":
    main()
