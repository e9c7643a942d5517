"""Checkpoint cost on a built-in drill: size, time to save and to load, against a replay.

Prints, for ``--scenario`` (default riverside) checkpointed at ``--at`` (default 1 h):
the file's size, the wall time to take and write it, the wall time to load it (World
rebuilt included) and the wall time of replaying the event from the start to the same
time, measured in the same process. A resumed run is checked equal to the
uninterrupted one by tests/test_checkpoint.py; here only the costs are measured.

    python benchmarks/checkpoint.py [--scenario riverside] [--at 1h]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from emtwin.scenarios import load_scenario
from emtwin.scenarios._types import parse_duration
from emtwin.sim import Simulation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="riverside")
    ap.add_argument("--at", default="1h")
    args = ap.parse_args()
    at_s = parse_duration(args.at)
    sc = load_scenario(args.scenario)
    Simulation(load_scenario(args.scenario, overrides={"duration": "10min"})).run()  # compile
    t0 = time.perf_counter()
    sim = Simulation(sc)
    sim.run_until(at_s)
    replay = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ck.emtwin"
        t0 = time.perf_counter()
        sim.checkpoint().save(path)
        save = time.perf_counter() - t0
        size = path.stat().st_size
        t0 = time.perf_counter()
        Simulation.from_checkpoint(path)
        load = time.perf_counter() - t0
    print(f"{args.scenario}, checkpoint at {at_s:g} s")
    print(f"  size               {size / 1e6:8.2f} MB")
    print(f"  take and write     {save:8.2f} s")
    print(f"  load (World built) {load:8.2f} s")
    print(f"  replay to {at_s:g} s  {replay:8.2f} s (build included)")
    print(f"  load / replay      {load / replay:8.3f}")


if __name__ == "__main__":
    main()
