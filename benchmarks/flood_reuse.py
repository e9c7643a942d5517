"""Floods computed once: the wall time of a comparison against single runs of its base.

Measures, in one process and one run, on the built-in ``riverside`` cut to
``--duration`` (default 1 h of simulated time: flood, evacuation, incidents and
dispatch):

- ``single``: one run of the base (``emtwin batch BASE --runs 1``, the flood computed);
- ``compare BASE --plan early-warning --plan more-boats --runs N`` (neither plan touches
  the flood) with the flood reused, for two bases:
  ``fixed flood``: riverside without its flood draws (the inflow and rain factors), so
  every run of every plan has the same flood: computed once, replayed 3N - 1 times;
  ``drawn flood``: riverside as shipped, whose draws scale the inflow and the rain, so
  each run has its own flood, computed once and replayed by the 2 plans;
- with ``--off``, the fixed-flood comparison with ``--no-flood-reuse`` too (every
  flood computed).

Prints each wall time as a ratio to ``single`` (the target: at most 4.5 for the fixed
flood with N = 4), measured before the comparisons and again after them (the ratios
are printed against the mean of the two at the end), how each batch got its floods,
the flood cache's size on disk and whether the results tables with and without reuse
are identical (wall times left out).
Worker start-up is inside every figure. The machine may be shared: read the ratios, not
the seconds.

    python benchmarks/flood_reuse.py [--runs 4] [--duration 1h] [--workers 1] [--off]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from emtwin.batch import run_batch, run_comparison
from emtwin.batch.flood_cache import cache_size

ROOT = Path(__file__).resolve().parents[1]
PLANS = [ROOT / "examples/plans/riverside-early-warning.yaml",
         ROOT / "examples/plans/riverside-more-boats.yaml"]  # fmt: skip
BUILTIN = ROOT / "emtwin/scenarios/builtin/riverside.yaml"


def fixed_flood_base(folder: Path) -> Path:
    """Riverside without its flood draws: the same flood in every run."""
    data = yaml.safe_load(BUILTIN.read_text(encoding="utf-8"))
    params = data["uncertain"]["parameters"]
    for k in [k for k in params if k.startswith("hazards.")]:
        del params[k]
    p = folder / "riverside-fixed-flood.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def _timeless(t: pd.DataFrame) -> pd.DataFrame:
    return t.drop(columns=[c for c in t.columns if c.endswith("wall_s")])


def main() -> None:
    """Run the single run and the comparisons; print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--duration", default="1h")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--off", action="store_true",
                    help="also time the fixed-flood comparison without reuse")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    over = {"duration": args.duration}
    opts = {"workers": args.workers}
    print(f"riverside, {args.duration} simulated, compare with 2 plans x {args.runs} runs, "
          f"{args.workers} worker(s); {len(os.sched_getaffinity(0))} CPUs, load average "
          f"before: {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        fixed = fixed_flood_base(d)
        def one_run(tag: str) -> float:
            t0 = time.perf_counter()
            one = run_batch(fixed, runs=1, overrides=over, out_dir=d / f"single-{tag}",
                            flood_reuse=False, **opts)  # fmt: skip
            wall = time.perf_counter() - t0
            kernel = float(one.table["flood.kernel_wall_s"].iloc[0])
            print(f"{'single run of the base, ' + tag:<34} {wall:7.1f} s          (flood kernel "
                  f"{kernel:.1f} s, {kernel / one.table['wall_s'].iloc[0]:.0%} of the run)")
            return wall

        # the reference: the mean of a single run before and after the comparisons (the
        # machine's load drifts); the ratios below are printed again against it at the end
        single = one_run("before")
        walls: dict[str, float] = {}
        rows = [("fixed flood", fixed), ("drawn flood", "riverside")]
        for label, base in rows:
            tables = {}
            for reuse in (True, False) if args.off and label == "fixed flood" else (True,):
                out = d / f"{label.split()[0]}-{reuse}"
                t0 = time.perf_counter()
                res = run_comparison(base, PLANS, runs=args.runs, overrides=over, out_dir=out,
                                     flood_reuse=reuse, **opts)  # fmt: skip
                wall = time.perf_counter() - t0
                b = res.batch
                if b.counts["done"] != 3 * args.runs:
                    raise SystemExit(f"{label}: {b.counts}: {b.failures[:1]}")
                tables[reuse] = _timeless(b.table)
                how = ", ".join(f"{k} {v}" for k, v in sorted(b.floods.items()))
                size = cache_size(out) / 1e6
                name = f"compare, {label}, reuse {'on' if reuse else 'off'}"
                walls[name] = wall
                print(f"{name:<34} {wall:7.1f} s  {wall / single:5.2f}   (floods: {how}; "
                      f"cache {size:.1f} MB)")  # fmt: skip
                if reuse:
                    # inside the workers: a run that computes vs one that replays its flood
                    # (a replayed run reports its recording's kernel time, above its own)
                    t = b.table
                    own = t["flood.kernel_wall_s"] <= t["wall_s"]
                    if own.any() and (~own).any():
                        print(f"  one run: {t.loc[own, 'wall_s'].mean():.1f} s computing its "
                              f"flood, {t.loc[~own, 'wall_s'].mean():.2f} s replaying it")
            if len(tables) == 2:
                same = tables[True].equals(tables[False])
                print(f"  {label}: results.parquet with and without reuse identical: {same}")
        after = one_run("after")
        ref = (single + after) / 2
        print(f"in single runs of the base (mean of before and after, {ref:.1f} s):")
        for name, wall in walls.items():
            print(f"  {name:<32} {wall / ref:5.2f}")


if __name__ == "__main__":
    main()
