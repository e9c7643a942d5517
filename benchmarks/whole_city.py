"""The whole city: riverside at scale 8 with flood, evacuation and dispatch, phase by phase.

Runs ``terrain: {builtin: riverside, scale: 8}`` (about 960k cells, 20k road
edges, 160k people) for ``--duration`` (default 6 h) with the built-in
riverside scenario's flood, evacuation, incidents and dispatch, writes its
output folder and map into a temporary folder, and prints where the wall time
goes:

============================  ===============================================
phase                         what is timed
============================  ===============================================
JIT compile / cache load      a 10 min run of riverside at scale 1 first (not
                              in the total: a process pays it once)
world build                   ``build_world`` (town, roads, places, index)
set-up                        ``Simulation(...)``: the components' set-up
flood kernel                  ``FloodModel.advance`` (the time steps)
coupling reads                grid reads of the flood state: edge depths and
                              road fields, flood statistics, the cell fields
                              (depth, speed, hazard class) read by others
evacuation                    the evacuation component (households, traffic
                              kernel, walkers, exposure)
dispatch                      incidents and units
consequences                  building damage, life loss, facilities (the
                              riverside scenario has them)
samples                       the time-series samples and the flood's frames
engine                        the rest of the run: SimPy, recorder, actions
outputs writing               ``write_results`` less the map and the report
map                           ``map.html``
report                        ``report.html`` and its charts
============================  ===============================================

Each phase's time is *exclusive*: a phase called from inside another (the
flood's speed grid read by the evacuation's exposure check) counts in the
inner one. The timing wraps the entry points of each part (methods, and each
resumption of its SimPy processes), so it adds next to nothing to the run.

Also prints the peak memory (max RSS) of the process, the counts of cells,
road edges and people, and, unless ``--skip-vehicles``, the figure of 1M
evacuating vehicles on a K = 100 grid with the settings of
``benchmarks/evacuation.py`` (its kernel run, in a fresh process).

    python benchmarks/whole_city.py                      # 6 h, and the 1M vehicles
    python benchmarks/whole_city.py --duration 1h --skip-vehicles
    python benchmarks/whole_city.py --stepping local     # the flood with local stepping
    python benchmarks/whole_city.py --precision float32  # the flood in float32
"""

from __future__ import annotations

import argparse
import functools
import inspect
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emtwin.scenarios import load_scenario
from emtwin.scenarios._types import parse_duration

ORDER = ("JIT compile / cache load", "world build", "set-up", "flood kernel", "coupling reads",
         "evacuation", "dispatch", "consequences", "samples", "engine", "outputs writing", "map",
         "report")


class PhaseClock:
    """Exclusive wall and CPU time per phase: a stack of open phases, each charged its own.

    The CPU time (``time.process_time``: all threads of the process) is the
    figure to read on a shared machine, where the wall time also counts the
    waits for a core.
    """

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[str] = []
        self._since = time.perf_counter()
        self._cpu_since = time.process_time()

    def _switch(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self._stack:
            top = self._stack[-1]
            self.spent[top] = self.spent.get(top, 0.0) + now - self._since
            self.cpu[top] = self.cpu.get(top, 0.0) + cpu - self._cpu_since
        self._since, self._cpu_since = now, cpu

    def enter(self, label: str) -> None:
        """Open phase *label* (the open one stops counting until it closes)."""
        self._switch()
        self._stack.append(label)
        self.calls[label] = self.calls.get(label, 0) + 1

    def leave(self) -> None:
        """Close the innermost phase."""
        self._switch()
        self._stack.pop()

    @contextmanager
    def phase(self, label: str) -> Iterator[None]:
        """``with clock.phase(label):`` times the block as *label*."""
        self.enter(label)
        try:
            yield
        finally:
            self.leave()

    def wrap(self, fn: Callable, label: str) -> Callable:
        """*fn* timed as *label*; a generator function is timed at each resumption."""
        clock = self
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*a: Any, **k: Any) -> Any:
                g = fn(*a, **k)
                value: Any = None
                exc: BaseException | None = None
                while True:
                    clock.enter(label)
                    try:
                        out = g.throw(exc) if exc is not None else g.send(value)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        clock.leave()
                    try:
                        value, exc = (yield out), None
                    except BaseException as e:  # noqa: BLE001 - handed on to the generator
                        value, exc = None, e

            return gen

        @functools.wraps(fn)
        def call(*a: Any, **k: Any) -> Any:
            clock.enter(label)
            try:
                return fn(*a, **k)
            finally:
                clock.leave()

        return call

    def wrap_class(self, cls: type, label: str, names: tuple[str, ...] | None = None) -> None:
        """Time the functions defined on *cls* (all, or *names*) as *label*."""
        for name, fn in list(vars(cls).items()):
            if names is not None and name not in names:
                continue
            if names is None and (name.startswith("__") or not inspect.isfunction(fn)
                                  or hasattr(fn, "_phase")):
                continue
            wrapped = self.wrap(fn, label)
            wrapped._phase = label  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)


def instrument(clock: PhaseClock) -> None:
    """Wrap the entry points of each part of a run (classes patched for this process)."""
    from emtwin.kernels.flood import FloodModel
    from emtwin.sim.components.consequences import ConsequencesComponent
    from emtwin.sim.components.dispatch import DispatchComponent
    from emtwin.sim.components.evacuation import EvacuationComponent
    from emtwin.sim.components.hazard import FloodComponent
    from emtwin.sim.components.incidents import IncidentsComponent
    from emtwin.sim.components.roads import RoadsComponent
    from emtwin.sim.dispatch.core import DispatchCore
    from emtwin.sim.recorder import Recorder

    parts = ((EvacuationComponent, "evacuation"), (IncidentsComponent, "dispatch"),
             (DispatchComponent, "dispatch"), (FloodComponent, "coupling reads"),
             (RoadsComponent, "coupling reads"),
             (ConsequencesComponent, "consequences"))  # fmt: skip
    # named ones first: the rest of each class is wrapped after them
    for cls, _label in parts:
        clock.wrap_class(cls, "set-up", ("__init__",))
        clock.wrap_class(cls, "outputs writing", ("outputs", "summary"))
    # the flood's records, and the engine's sample rows
    clock.wrap_class(FloodComponent, "samples", ("sample", "_keep_frame"))
    clock.wrap_class(Recorder, "samples", ("sample",))
    for cls, label in parts:
        clock.wrap_class(cls, label)
    clock.wrap_class(DispatchCore, "dispatch")
    # the reads of the flood's state, whoever asks
    clock.wrap_class(FloodModel, "coupling reads",
                     ("velocity", "speed", "edge_depths", "depths_at", "depth_stats"))
    clock.wrap_class(FloodModel, "flood kernel", ("advance",))


def warm_up() -> tuple[float, float]:
    """A short scale-1 riverside run: loads (or compiles) the kernels; its wall and CPU s."""
    from emtwin.sim.engine import Simulation

    t0, c0 = time.perf_counter(), time.process_time()
    sc = load_scenario("riverside")
    sc.duration = 600.0
    Simulation(sc).run()
    return time.perf_counter() - t0, time.process_time() - c0


def city_run(duration_s: float, scale: float, stepping: str | None,
             precision: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the city once with its phases timed; the figures."""
    from emtwin.geo.build import build_world
    from emtwin.sim.engine import Simulation
    from emtwin.sim.outputs import write_results
    from emtwin.viz import run_writers

    jit, jit_cpu = warm_up()
    clock = PhaseClock()
    instrument(clock)
    sc = load_scenario("riverside")
    sc.world.terrain.scale = scale
    sc.duration = duration_s
    if stepping:
        sc.hazards[0].time_stepping = stepping
    if precision:
        sc.hazards[0].precision = precision
    t0, c0 = time.perf_counter(), time.process_time()
    with clock.phase("engine"):
        with clock.phase("world build"):
            world = build_world(sc)
        with clock.phase("set-up"):
            sim = Simulation(sc, world=world)
        res = sim.run()
    with clock.phase("outputs writing"), tempfile.TemporaryDirectory() as d:
        writers = run_writers(res)
        for name, fn in list(writers.items()):
            label = "map" if name == "map.html" else "report"
            writers[name] = clock.wrap(fn, label)
        write_results(res, Path(d) / "out", extra=writers)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    flood = sim.component("flood")
    n = world.summary()
    m = flood.model
    spent = dict(clock.spent)
    spent["JIT compile / cache load"] = jit
    spent_cpu = dict(clock.cpu)
    spent_cpu["JIT compile / cache load"] = jit_cpu
    return {
        "wall_s": wall, "cpu_s": cpu, "spent": spent, "spent_cpu": spent_cpu,
        "cells": n["cells"], "edges": n["edges"],
        "people": n["people"], "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": m.steps, "stepping": m.time_stepping, "precision": str(m.h.dtype),
        "updates_share": m.cell_updates / max(m.steps * m.h.size, 1),
        "kernel_wall_s": m.wall_s, "events": len(res.events), "updates": m.cell_updates,
    }  # fmt: skip


def vehicles_figure() -> str:
    """The 1M-vehicle K = 100 case of benchmarks/evacuation.py (kernel run, own process)."""
    script = Path(__file__).with_name("evacuation.py")
    out = subprocess.run([sys.executable, str(script), "100", "1000000"], check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def main() -> None:
    """Print the phase table (and the 1M-vehicle figure)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", default="6h", help="simulated time (default 6h)")
    ap.add_argument("--scale", type=float, default=8.0, help="riverside scale (default 8)")
    ap.add_argument("--stepping", choices=["global", "local"], default=None,
                    help="flood time stepping (default: the scenario's)")
    ap.add_argument("--precision", choices=["float64", "float32"], default=None,
                    help="flood precision (default: the scenario's, float64)")
    ap.add_argument("--skip-vehicles", action="store_true",
                    help="leave out the 1M-vehicle K=100 figure (about 1 min)")
    args = ap.parse_args()
    dur = parse_duration(args.duration)
    # the vehicles first: Linux keeps a process's peak RSS across fork and exec, so
    # a child started after the city would report the city's peak as its own
    vehicles = None if args.skip_vehicles else vehicles_figure()
    r = city_run(dur, args.scale, args.stepping, args.precision)
    print(f"whole city: riverside scale {args.scale:g}, {r['cells']:,} cells, {r['edges']:,} road "
          f"edges, {r['people']:,.0f} people, {dur / 3600:g} h simulated; flood "
          f"{r['stepping']} stepping, {r['precision']}, {r['steps']:,} base steps, cell updates "
          f"{r['updates_share']:.3f} of global; {r['events']:,} events")
    total = r["wall_s"]
    cpu = r["cpu_s"]
    print(f"{'phase':<28} {'wall s':>8} {'share':>7} {'CPU s':>8} {'share':>7}")
    for label in ORDER:
        v, c = r["spent"].get(label, 0.0), r["spent_cpu"].get(label, 0.0)
        jit = label.startswith("JIT")
        share = "" if jit else f"{100 * v / total:6.1f}%"
        cshare = "" if jit else f"{100 * c / cpu:6.1f}%"
        print(f"{label:<28} {v:8.1f} {share:>7} {c:8.1f} {cshare:>7}")
    print(f"{'total (JIT left out)':<28} {total:8.1f} {'':>7} {cpu:8.1f}   "
          "(target: wall < 60 s on 2 cores)")
    print(f"peak memory (max RSS) {r['rss_mb']:,.0f} MB; flood kernel per base step "
          f"{1000 * r['kernel_wall_s'] / max(r['steps'], 1):.1f} ms, "
          f"{r['updates'] / max(r['kernel_wall_s'], 1e-9) / 1e6:.0f} M cell updates/s")
    if vehicles is not None:
        print("\n1M evacuating vehicles, K = 100 grid (benchmarks/evacuation.py 100 1000000, "
              "run first, in its own process):")
        print(vehicles, flush=True)


if __name__ == "__main__":
    main()
