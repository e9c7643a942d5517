"""Size and build time of the built-in riverside World at several scales.

Prints, per scale: grid cells, road nodes and directed edges, road km, residents,
places, edge->cell pairs, and the wall time of ``build_world`` (synthetic town,
road network, places, snapping, edge->cell index), best of ``--repeat`` builds.

    python benchmarks/world_build.py --scales 1 2 4 8
"""

from __future__ import annotations

import argparse
import time

from emtwin.geo.build import build_world, builtin_town
from emtwin.scenarios import load_scenario


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", type=float, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(f"{'scale':>5} {'cells':>10} {'nodes':>7} {'edges':>7} {'road km':>8} "
          f"{'people':>8} {'shelters':>8} {'pairs':>9} {'build s':>8}")  # fmt: skip
    for scale in args.scales:
        sc = load_scenario("riverside")
        sc.world.terrain.scale = scale
        best = float("inf")
        for _ in range(args.repeat):
            builtin_town.cache_clear()
            t0 = time.perf_counter()
            w = build_world(sc)
            best = min(best, time.perf_counter() - t0)
        s = w.summary()
        print(f"{scale:5g} {s['cells']:10,d} {s['nodes']:7,d} {s['edges']:7,d} "
              f"{s['road_km']:8.1f} {s['people']:8,.0f} {s['shelters']:8d} "
              f"{w.edge_cells.cells.size:9,d} {best:8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
