"""Batch throughput: runs per minute of a small riverside variant, 1 and 2 workers and Dask.

Runs the built-in ``riverside`` scenario cut to ``--duration`` (default 30 min of
simulated time; flood, roads, incidents and dispatch) ``--runs`` times with the local
process pool on 1 and on 2 workers, and on a Dask LocalCluster of 2 single-threaded
workers. Times are wall-clock for the whole batch, worker start-up included (each
worker imports emtwin and loads the Numba kernels once). Prints runs per minute, the
speed-up from 1 to 2 local workers, and whether the three result tables are identical
(wall times left out). Run on a quiet machine: other load on the cores shows up here.

    python benchmarks/batch.py [--runs 8] [--duration 30min] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from emtwin.batch import run_batch


def _batch(out: Path, runs: int, duration: str, **options: object) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    res = run_batch("riverside", runs=runs, overrides={"duration": duration}, out_dir=out,
                    **options)  # fmt: skip
    wall = time.perf_counter() - t0
    if res.counts["done"] != runs:
        raise SystemExit(f"{out.name}: only {res.counts['done']} of {runs} runs finished: "
                         f"{res.failures[:1]}")  # fmt: skip
    return wall, res.table


def main() -> None:
    """Run the three batches and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--duration", default="30min")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    cpus = len(os.sched_getaffinity(0))
    print(f"riverside, {args.duration} simulated, {args.runs} runs per batch; {cpus} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    w = args.workers
    configs = [("local, 1 worker", {"workers": 1}), (f"local, {w} workers", {"workers": w}),
               (f"dask, {w} workers", {"workers": w, "executor": "dask"})]  # fmt: skip
    walls, tables = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, opts) in enumerate(configs):
            wall, table = _batch(Path(tmp) / f"b{i}", args.runs, args.duration, **opts)
            walls[label], tables[label] = wall, table
            per_run = table["wall_s"].mean()
            print(f"{label:<18} {wall:7.1f} s  {60 * args.runs / wall:6.2f} runs/min  "
                  f"(one run {per_run:.1f} s inside its worker)")  # fmt: skip
    labels = [c[0] for c in configs]
    print(f"speed-up 1 -> {w} local workers: {walls[labels[0]] / walls[labels[1]]:.2f}x; "
          f"dask vs local {w}: {walls[labels[1]] / walls[labels[2]]:.2f}x")  # fmt: skip
    ref = tables[labels[0]]
    same = all(
        tables[k].drop(columns=[c for c in tables[k] if c.endswith("wall_s")]).equals(
            ref.drop(columns=[c for c in ref if c.endswith("wall_s")]))
        for k in labels[1:]
    )  # fmt: skip
    print(f"result tables identical across executors: {'yes' if same else 'NO'}; "
          f"load average after: {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
