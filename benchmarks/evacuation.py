"""Evacuation traffic benchmark: a K x K grid emptied through four exits.

Grid of K x K intersections 200 m apart; two-way roads, one lane each way,
50 km/h, 1800 veh/h. Beyond the midpoint of each side lies an exit node,
joined by a one-way outbound 200 m link of 2 lanes and 3600 veh/h (4 exits,
14,400 veh/h in all). N vehicles start at random grid nodes (seeded) and go to
the nearest exit by current travel time (any exit is acceptable), departing on
a Rayleigh curve (sigma = 600 s) truncated at 3600 s; routes are re-planned
every 300 s on current travel times (free time + queue discharge time).

Prints clearance (last arrival), t50, t90, wall time (the JIT compile or cache
load measured separately) and peak memory, for (K, N) = (15, 20000) and
(30, 100000). Each case runs in a fresh process so that its peak RSS is its own.

Each case runs twice: on the kernel alone (``QueueNetwork`` driven in 1800 s
chunks), and through the whole engine: a World built from the same arrays, one
person per household at the same random nodes, the Evacuation component on the
SimPy clock (60 s coupling steps, every event recorded, trips sampled), with the
same Rayleigh curve given as ``departure: {curve: rayleigh, sigma: 600,
max_delay: 3600}``.

With ``--reader`` the engine run's roads are read by the road reader
(``roads_from_lines``) from the grid as line features, two-way streets and
one-way exit links, as a user's file would be: the reader must keep the
one-way exit links (they lead into the exits and not back), else the exits
snap to the side midpoints and clearance beats the physical bound.

Usage::

    python benchmarks/evacuation.py                          # both cases, both ways
    python benchmarks/evacuation.py 30 100000                # one case, kernel only
    python benchmarks/evacuation.py --component 30 100000    # one case, through the engine
    python benchmarks/evacuation.py --reader 15 20000        # roads through the reader
    python benchmarks/evacuation.py --simpy 15 20000         # the rejected design (see docs)
    python benchmarks/evacuation.py --sleep-check [50 300000]  # sleeping queues vs none

With ``--sleep-check`` one case runs twice in one process on the kernel:
first with every active queue visited every step (``sleep_blocked=False``),
then with queues that cannot act asleep (the default); it prints both run
times, their ratio and whether every event and final array is identical
(exit status 1 if not).
"""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
import time

import numpy as np

SPACING_M = 200.0
SPEED_M_S = 50 / 3.6
ROAD_CAP_VEH_H = 1800.0
EXIT_CAP_VEH_H = 3600.0
SIGMA_S = 600.0
T_MAX_DEPART_S = 3600.0
CASES = ((15, 20_000), (30, 100_000))


def grid_network(k: int) -> dict[str, np.ndarray | int]:
    """Arrays of the K x K grid with 4 exits; exit node ids are ``k*k .. k*k+3``."""
    idx = np.arange(k * k).reshape(k, k)  # idx[row, col]
    h_u, h_v = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    v_u, v_v = idx[:-1, :].ravel(), idx[1:, :].ravel()
    u = np.concatenate([h_u, h_v, v_u, v_v])
    v = np.concatenate([h_v, h_u, v_v, v_u])
    n_road = u.shape[0]
    m = k // 2
    sides = [idx[m, 0], idx[m, k - 1], idx[0, m], idx[k - 1, m]]  # W, E, S, N midpoints
    exits = k * k + np.arange(4)
    u = np.concatenate([u, sides])
    v = np.concatenate([v, exits])
    n_e = u.shape[0]
    lanes = np.ones(n_e)
    cap = np.full(n_e, ROAD_CAP_VEH_H)
    lanes[n_road:] = 2
    cap[n_road:] = EXIT_CAP_VEH_H
    return {
        "edge_u": u, "edge_v": v, "length_m": np.full(n_e, SPACING_M),
        "speed_m_s": np.full(n_e, SPEED_M_S), "lanes": lanes, "capacity_veh_h": cap,
        "n_nodes": k * k + 4,
    }  # fmt: skip


def rayleigh_departures(rng: np.random.Generator, n: int) -> np.ndarray:
    """Departure times, s: Rayleigh(sigma) truncated at T_MAX by inverse transform."""
    f_max = 1.0 - np.exp(-(T_MAX_DEPART_S**2) / (2 * SIGMA_S**2))
    u = rng.uniform(0.0, f_max, n)
    return SIGMA_S * np.sqrt(-2.0 * np.log1p(-u))


def run_case(k: int, n: int, seed: int = 42, sleep: bool = True) -> dict[str, float]:
    """Build, load and run one case; return its figures.

    ``sleep`` is the kernel's ``sleep_blocked``; ``digest`` in the result is a
    SHA-256 of every event and the final per-vehicle and per-link arrays.
    """
    from emtwin.kernels.traffic import QueueNetwork

    # JIT compile (or load from the cache) on a 2-link toy network
    t0 = time.perf_counter()
    toy = QueueNetwork([0, 1], [1, 2], [100.0, 100.0], [10.0, 10.0], [1, 1], [1800, 1800], 3)
    toy.add_vehicles([0, 0], [0.0, 1.0], dest_set=[2])
    toy.advance(100.0)
    t_jit = time.perf_counter() - t0
    rss_base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    arrays = grid_network(k)
    net = QueueNetwork(**arrays, reroute_every_s=300.0, seed=seed, sleep_blocked=sleep)
    rng = np.random.default_rng(seed)
    origins = rng.integers(0, k * k, n)
    depart = rayleigh_departures(rng, n)
    exits = np.arange(k * k, k * k + 4)
    net.add_vehicles(origins, depart, dest_set=exits)
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    t = 0.0
    n_events = 0
    digest = hashlib.sha256()
    while True:
        t += 1800.0
        ev = net.advance(t)
        n_events += ev.vehicle.shape[0]
        for a in (*ev, net.link_queue, net.link_peak_queue):
            digest.update(np.ascontiguousarray(a).tobytes())
        c = net.state_counts()
        # the cap leaves room for the 1M case, whose bound is 250,000 s
        if c["waiting"] + c["on_road"] == 0 or t > max(200_000, 4 * n / 14_400 * 3600):
            break
    t_run = time.perf_counter() - t0
    state_mb = sum(a.nbytes for a in vars(net).values() if isinstance(a, np.ndarray)) / 2**20
    arr = net.arrival_time_s
    ok = np.isfinite(arr)
    for a in (arr, net.dest_node, net.vehicle_state, net.link_passed):
        digest.update(np.ascontiguousarray(a).tobytes())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "K": k, "N": n, "arrived": int(ok.sum()), "stranded": c["stranded"],
        "clearance_s": float(arr[ok].max()), "t50_s": float(np.quantile(arr[ok], 0.5)),
        "t90_s": float(np.quantile(arr[ok], 0.9)), "bound_s": n / 14_400 * 3600,
        "jit_s": t_jit, "build_s": t_build, "run_s": t_run, "replans": net.n_replans,
        "events": n_events, "rss_mb": rss_mb, "rss_base_mb": rss_base_mb, "state_mb": state_mb,
        "n_edges": net.n_edges,
        "peak_queue_max": int(net.link_peak_queue.max()), "digest": digest.hexdigest(),
    }  # fmt: skip


def sleep_check(k: int, n: int) -> None:
    """Run one case with every queue visited every step, then with sleeping queues.

    Both runs in this process (the JIT load is in the first); prints each run
    time, their ratio, and whether every event and final array is identical.
    """
    ref = run_case(k, n, sleep=False)
    new = run_case(k, n, sleep=True)
    same = ref["digest"] == new["digest"] and ref["events"] == new["events"]
    print(
        f"K={k} N={n}: every queue every step {ref['run_s']:.2f} s | sleeping queues "
        f"{new['run_s']:.2f} s | ratio {ref['run_s'] / new['run_s']:.2f}x | results "
        f"{'identical' if same else 'DIFFERENT'} ({new['events']} events, clearance "
        f"{new['clearance_s']:.0f} s) | peak RSS {new['rss_mb']:.0f} MB"
    )
    if not same:
        sys.exit(1)


def grid_lines(k: int, x: np.ndarray, y: np.ndarray, crs: object) -> object:
    """The benchmark grid as line features for the road reader (two-way and one-way)."""
    import geopandas as gpd
    from shapely.geometry import LineString

    a = grid_network(k)
    u, v = a["edge_u"], a["edge_v"]
    n_road = 2 * k * (k - 1) * 2
    fwd = np.flatnonzero(u[:n_road] < v[:n_road])  # one line per two-way street
    ex = np.arange(n_road, u.shape[0])
    rows = np.concatenate([fwd, ex])
    return gpd.GeoDataFrame(
        {"oneway": ["no"] * fwd.size + ["yes"] * ex.size,
         "lanes": np.concatenate([np.full(fwd.size, 2), np.full(ex.size, 2)]),
         "capacity": a["capacity_veh_h"][rows], "maxspeed": SPEED_M_S * 3.6,
         "highway": "residential"},
        geometry=[LineString([(x[i], y[i]), (x[j], y[j])])
                  for i, j in zip(u[rows], v[rows], strict=True)], crs=crs,
    )  # fmt: skip


def grid_world(k: int, n: int, seed: int, reader: bool = False) -> tuple[object, object]:
    """A World and a Scenario of the benchmark grid for the engine run.

    *reader*: build the roads with the road reader from line features.
    """
    import geopandas as gpd
    import networkx as nx
    from affine import Affine
    from pyproj import CRS
    from shapely.geometry import LineString, Point

    from emtwin.geo.index import edge_cell_index
    from emtwin.geo.world import Places, RoadNetwork, Terrain, World
    from emtwin.scenarios.models import Scenario

    a = grid_network(k)
    m = k // 2
    x = np.concatenate([np.tile(np.arange(k), k), [-1, k, m, m]]) * SPACING_M
    y = np.concatenate([np.repeat(np.arange(k), k), [m, m, -1, k]]) * SPACING_M
    x0, y0 = 500_000.0, 5_500_000.0
    x, y = x + x0, y + y0
    u, v = a["edge_u"], a["edge_v"]
    ne = u.shape[0]
    roads = RoadNetwork(
        graph=nx.MultiDiGraph(), node_id=np.arange(a["n_nodes"]), node_x=x, node_y=y,
        edge_u=u, edge_v=v, length_m=a["length_m"], speed_m_s=a["speed_m_s"],
        lanes=a["lanes"], capacity_veh_h=a["capacity_veh_h"],
        road_id=np.array([f"e{i}" for i in range(ne)], dtype=object),
        name=np.full(ne, "", dtype=object), highway=np.full(ne, "residential", dtype=object),
        geometry=[LineString([(x[i], y[i]), (x[j], y[j])]) for i, j in zip(u, v, strict=True)],
    )  # fmt: skip
    if reader:
        from emtwin.geo.roads import roads_from_lines

        roads = roads_from_lines(grid_lines(k, x, y, CRS.from_epsg(32633)), crs=32633,
                                 source=f"grid{k}")  # fmt: skip
    dx = 100.0
    cols = int((k + 3) * SPACING_M / dx)
    z = np.zeros((cols, cols))
    west, north = x0 - 2 * SPACING_M, y0 + (k + 1) * SPACING_M
    terrain = Terrain(z=z, mask=np.ones_like(z, bool), dx=dx,
                      transform=Affine(dx, 0, west, 0, -dx, north))  # fmt: skip
    rng = np.random.default_rng(seed)
    count = np.bincount(rng.integers(0, k * k, n), minlength=k * k)
    at = np.flatnonzero(count)
    node = at
    if reader:
        node = roads.nearest_node(x[at], y[at])[0]
    crs = CRS.from_epsg(32633)

    def gdf(xy: list, **cols: object) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(cols, geometry=[Point(p) for p in xy], crs=crs)

    places = Places(
        population=gdf(list(zip(x[at], y[at], strict=True)), people=count[at].astype(float),
                       node=node, snap_m=np.zeros(at.size)),
        shelters=gdf([], name=[], capacity=[], node=[], snap_m=[]),
        stations=gdf([], name=[]), hospitals=gdf([], name=[]),
    )  # fmt: skip
    world = World(crs=crs, terrain=terrain, roads=roads, places=places,
                  edge_cells=edge_cell_index(roads, terrain), name=f"grid{k}")  # fmt: skip
    exits = [[float(x[i]), float(y[i])] for i in range(k * k, k * k + 4)]
    sc = Scenario.model_validate({
        "name": f"grid{k}", "seed": seed, "duration": "12h", "crs": "EPSG:32633",
        "outputs": {"every": "10min"},
        "world": {"terrain": {"dem": "grid.tif"}, "roads": "grid.geojson",
                  "population": {"total": n, "household_size": 1}},
        "evacuation": {"departure": {"curve": "rayleigh", "sigma": SIGMA_S,
                                     "max_delay": T_MAX_DEPART_S},
                       "exits": exits, "reroute_every": 300},
    }, context={"check_files": False})  # fmt: skip
    return world, sc


def run_case_component(k: int, n: int, seed: int = 42, reader: bool = False) -> dict[str, float]:
    """The same case through the engine (Simulation + Evacuation component)."""
    from emtwin.sim import Simulation

    t0 = time.perf_counter()
    world, sc = grid_world(2, 10, seed)  # JIT compile or cache load, on a toy run
    Simulation(sc, world=world).run()
    t_jit = time.perf_counter() - t0
    rss_base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    world, sc = grid_world(k, n, seed, reader)
    sim = Simulation(sc, world=world)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = sim.run()
    t_run = time.perf_counter() - t0
    s = res.summary["evacuation"]
    net = sim.component("evacuation").net
    return {
        "K": k, "N": n, "arrived": s["out"], "stranded": s["stranded"],
        "clearance_s": s["clearance_s"], "t50_s": s["t50_s"], "t90_s": s["t90_s"],
        "bound_s": n / 14_400 * 3600, "jit_s": t_jit, "build_s": t_build, "run_s": t_run,
        "replans": net.n_replans, "events": len(res.events),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_base_mb": rss_base_mb,
        "state_mb": sum(a.nbytes for a in vars(net).values()
                        if isinstance(a, np.ndarray)) / 2**20,
        "n_edges": net.n_edges, "peak_queue_max": int(net.link_peak_queue.max()),
        "how": "engine, roads read" if reader else "engine",
    }  # fmt: skip


def run_case_simpy(k: int, n: int, seed: int = 42) -> dict[str, float]:
    """The rejected design, for the record: one SimPy process per vehicle.

    Each vehicle follows its free-flow shortest path to the nearest exit (no
    re-planning, no storage limit or spillback: less than the kernel does) and
    on each link waits its free time, then holds the link's exit (a
    ``simpy.Resource`` of capacity 1) for one headway ``3600 / C``.
    """
    import simpy
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    a = grid_network(k)
    u, v = a["edge_u"], a["edge_v"]
    tt = a["length_m"] / a["speed_m_s"]
    headway = 3600.0 / a["capacity_veh_h"]
    nn = a["n_nodes"]
    rev = csr_matrix((tt, (v, u)), shape=(nn, nn))
    _, pred, _ = dijkstra(rev, indices=np.arange(k * k, nn), min_only=True,
                          return_predecessors=True)  # fmt: skip
    link = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(u, v, strict=True))}

    def path(node: int) -> list[int]:
        out = []
        while pred[node] >= 0:
            out.append(link[(node, int(pred[node]))])
            node = int(pred[node])
        return out

    rng = np.random.default_rng(seed)
    origins = rng.integers(0, k * k, n)
    depart = rayleigh_departures(rng, n)
    t0 = time.perf_counter()
    env = simpy.Environment()
    exits = [simpy.Resource(env, capacity=1) for _ in range(u.shape[0])]
    paths = {o: path(int(o)) for o in np.unique(origins)}
    arrival = np.full(n, np.nan)

    def vehicle(i: int, p: list[int], t_dep: float):  # noqa: ANN202
        yield env.timeout(t_dep)
        for e in p:
            yield env.timeout(tt[e])
            with exits[e].request() as req:
                yield req
                yield env.timeout(headway[e])
        arrival[i] = env.now

    for i in range(n):
        env.process(vehicle(i, paths[int(origins[i])], float(depart[i])))
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    env.run()
    t_run = time.perf_counter() - t0
    return {
        "K": k, "N": n, "arrived": int(np.isfinite(arrival).sum()), "stranded": 0,
        "clearance_s": float(np.nanmax(arrival)), "t50_s": float(np.nanquantile(arrival, 0.5)),
        "t90_s": float(np.nanquantile(arrival, 0.9)), "bound_s": n / 14_400 * 3600,
        "jit_s": 0.0, "build_s": t_build, "run_s": t_run, "replans": 0, "events": 0,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_base_mb": 0.0, "state_mb": 0.0, "n_edges": u.shape[0], "peak_queue_max": 0,
        "how": "simpy process per vehicle",
    }  # fmt: skip


def _print(r: dict[str, float]) -> None:
    ratio = r["clearance_s"] / r["bound_s"]
    print(
        f"[{r.get('how', 'kernel')}] "
        f"K={r['K']:>3} N={r['N']:>7} links={r['n_edges']:>5} | "
        f"clearance {r['clearance_s']:8.0f} s (bound {r['bound_s']:6.0f} s, ratio {ratio:.3f})"
        f" | t50 {r['t50_s']:7.0f} s  t90 {r['t90_s']:7.0f} s | arrived {r['arrived']}"
        f" stranded {r['stranded']}\n"
        f"        JIT/cache {r['jit_s']:5.2f} s | build {r['build_s']:5.2f} s | run "
        f"{r['run_s']:6.2f} s | wall (build+run) {r['build_s'] + r['run_s']:6.2f} s | "
        f"replans {r['replans']} | events {r['events']}\n"
        f"        peak RSS {r['rss_mb']:.0f} MB (after imports + JIT {r['rss_base_mb']:.0f} MB) | "
        f"model state arrays {r['state_mb']:.1f} MB"
    )


def main() -> None:
    """Run the cases given on the command line, or each default case in its own process."""
    args = sys.argv[1:]
    if args[:1] == ["--sleep-check"]:
        k, n = (int(args[1]), int(args[2])) if len(args) == 3 else (50, 300_000)
        sleep_check(k, n)
        return
    if len(args) == 3 and args[0] == "--component":
        _print(run_case_component(int(args[1]), int(args[2])))
        return
    if len(args) == 3 and args[0] == "--reader":
        _print(run_case_component(int(args[1]), int(args[2]), reader=True))
        return
    if len(args) == 3 and args[0] == "--simpy":
        _print(run_case_simpy(int(args[1]), int(args[2])))
        return
    if len(args) == 2:
        _print(run_case(int(args[0]), int(args[1])))
        return
    print("Sanity bound: no clearance can beat N / 14,400 veh/h (4 exits x 3600 veh/h).")
    for k, n in CASES:
        subprocess.run([sys.executable, __file__, str(k), str(n)], check=True)
        subprocess.run([sys.executable, __file__, "--component", str(k), str(n)], check=True)


if __name__ == "__main__":
    main()
