"""Dispatch benchmark: 200 units and about 20,000 calls over 24 h on the riverside town, scale 8.

A dry-land drill (no flood): background calls at the homes of 160,000
residents (32 km of valley, 16 stations, 8 hospitals), ambulances and fire
engines at every station, closest-idle dispatch over the road network, hospital
transports. Prints the world build time, the run's wall time, the events it
recorded and events per second, and the dispatch figures.

Run: ``.venv/bin/python benchmarks/dispatch.py [--hours 24] [--rate 20000/day]``
"""

from __future__ import annotations

import argparse
import time

from emtwin.geo.build import build_world
from emtwin.scenarios.models import Scenario
from emtwin.sim import Simulation


def scenario(hours: float, rate: str, scale: float) -> Scenario:
    """The benchmark scenario: 16 stations x (8 ambulances + 4 fire engines) + 8 ambulances."""
    n_mod = max(1, int(round(scale)))
    stations = ["North", "River"]
    stations += [f"{s} {k}" for k in range(2, n_mod + 1) for s in ("North", "River")]
    resources = []
    for s in stations:
        resources += [{"type": "ambulance", "station": s, "count": 8},
                      {"type": "fire_engine", "station": s, "count": 4}]  # fmt: skip
    resources.append({"type": "ambulance", "station": "North", "count": 200 - 12 * len(stations)})
    data = {
        "name": "dispatch-benchmark", "seed": 1, "duration": f"{hours}h", "crs": "EPSG:32633",
        "world": {"terrain": {"builtin": "riverside", "scale": scale},
                  "roads": "builtin:riverside", "population": {"source": "builtin:riverside"},
                  "stations": "builtin:riverside", "hospitals": "builtin:riverside"},
        "response": {
            "dispatch": "closest_idle",
            "resources": resources,
            "incidents": {
                "background_rate": rate,
                "types": [
                    {"name": "medical", "share": 0.8, "priority": 1, "needs": "ambulance",
                     "on_scene": {"exponential": "5min"}, "to_hospital": 0.2, "handover": "5min"},
                    {"name": "fire", "share": 0.2, "priority": 2, "needs": "fire_engine",
                     "on_scene": {"lognormal": {"mean": "10min", "sd": "4min"}}},
                ],
                "from_hazard": False,
            },
        },
        "outputs": {"every": "15min"},
    }  # fmt: skip
    return Scenario.model_validate(data, context={"check_files": False})


def main() -> None:
    """Build the world, run the drill, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--rate", default="20000/day")
    ap.add_argument("--scale", type=float, default=8.0)
    a = ap.parse_args()
    sc = scenario(a.hours, a.rate, a.scale)
    t0 = time.perf_counter()
    world = build_world(sc)
    t_world = time.perf_counter() - t0
    sim = Simulation(sc, world=world)
    units = len(sim.component("dispatch").core.units)
    t0 = time.perf_counter()
    res = sim.run()
    wall = time.perf_counter() - t0
    s = res.summary["dispatch"]
    n_ev = len(res.events)
    print(f"world: riverside scale {a.scale:g}, {world.roads.n_nodes} nodes, "
          f"{world.roads.n_edges} edges, {len(world.places.stations)} stations, "
          f"{len(world.places.hospitals)} hospitals; built in {t_world:.1f} s")
    print(f"units: {units}; calls: {s['calls']} over {a.hours:g} h ({a.rate})")
    print(f"run wall time: {wall:.1f} s; events: {n_ev}; events/s: {n_ev / wall:,.0f}; "
          f"calls/s: {s['calls'] / wall:,.0f}")
    print(f"served {s['served']}, unserved {s['unserved']}, response p50 "
          f"{s['response_p50_s']:.0f} s, p90 {s['response_p90_s']:.0f} s, mean wait "
          f"{s['wait_mean_s']:.0f} s, utilisation {s['utilisation_mean']:.2f} "
          f"({', '.join(f'{k} {v:.2f}' for k, v in s['utilisation_by_unit_type'].items())}), "
          f"hospital transports {s['hospital_transports']}")


if __name__ == "__main__":
    main()
