"""Does warning earlier lower the expected loss of life in the riverside drill? Paired runs.

Runs the built-in ``riverside`` drill *N* times (default 20) with its base plan and
*N* times with a plan that warns earlier, on common random numbers: run *i* of both
plans has the same seed and the same draws of the drill's ``uncertain`` section
(``emtwin.batch.run_comparison``), so the pair differs only by the plan. The
flood's own draws (inflow and rain factors) are taken out, so every run has the
same flood: it is computed once and replayed in the other 2N - 1 runs (the flood
cache, docs/batch.md), which keeps the 2N runs cheap.

The earlier plan (``--plan`` replaces it with a plan file): the valley zone is
warned at 0 instead of 10 min and the rest of the town at 30 min instead of 1 h
(everything else as the drill).

Prints, per pair, the base's and the plan's ``consequences.life_loss_mean`` and
their difference; then the mean difference with its 95 % paired t interval, and
how many pairs the earlier plan lowered (and tied). The batch folder (``--out``,
default a temporary folder) keeps the flood recording: a second call with the same
folder runs nothing new.

    PYTHONPATH=. python benchmarks/consequences_paired.py [--runs 20] [--duration 6h]
        [--workers 1] [--out DIR] [--plan FILE]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from flood_reuse import fixed_flood_base  # the same fixed-flood base (benchmarks/ is on the path)

from emtwin.batch import run_comparison
from emtwin.batch.compare import t_interval

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ROOT / "emtwin/scenarios/builtin/riverside.yaml"
METRIC = "consequences.life_loss_mean"

#: The plan that warns earlier: the valley at once, the town 30 min sooner.
EARLIER = {
    "evacuation": {
        "warning": {"at": "30min", "reach": "exponential", "reach_time": "10min",
                    "never": 0.03},
        "zones": None,  # replaced below by the drill's zones with the valley's warning at 0
    }
}  # fmt: skip


def earlier_plan(folder: Path) -> Path:
    """Write the earlier-warning plan (the drill's zones, the valley warned at 0)."""
    data = yaml.safe_load(BUILTIN.read_text(encoding="utf-8"))
    zones = data["evacuation"]["zones"]
    for z in zones:
        if z["name"] == "valley":
            z["warning"] = {**z["warning"], "at": 0}
    plan = {"evacuation": {**EARLIER["evacuation"], "zones": zones}}
    p = folder / "riverside-warn-earlier.yaml"
    p.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return p


def paired(table: object, plan: str, metric: str = METRIC) -> tuple[np.ndarray, np.ndarray]:
    """(base, plan) values of *metric*, run by run, over the runs both finished."""
    done = table[table["status"] == "done"]
    b = done[done["plan"] == "base"].set_index("run")[metric]
    p = done[done["plan"] == plan].set_index("run")[metric]
    runs = b.index.intersection(p.index).sort_values()
    return b.loc[runs].to_numpy(float), p.loc[runs].to_numpy(float)


def main() -> None:
    """Run the pairs and print the paired difference of the expected loss of life."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--duration", default="6h")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="batch folder (kept)")
    ap.add_argument("--plan", type=Path, default=None, help="plan file (default: warn earlier)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "paired"
        out.mkdir(parents=True, exist_ok=True)
        base = fixed_flood_base(out)
        plan = args.plan or earlier_plan(out)
        print(f"riverside, {args.duration}, {args.runs} pairs, plan {plan.name}; "
              f"{len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.2f}")
        t0 = time.perf_counter()
        res = run_comparison(base, [plan], runs=args.runs, overrides={"duration": args.duration},
                             out_dir=out, workers=args.workers)  # fmt: skip
        wall = time.perf_counter() - t0
        b = res.batch
        label = res.plans[0]
        how = ", ".join(f"{k} {v}" for k, v in sorted(b.floods.items()))
        print(f"wall {wall:.1f} s; runs {b.counts}; floods: {how}")
        x, y = paired(b.table, label)
        d = y - x
        print(f"{'pair':>4} {'base':>10} {'earlier':>10} {'difference':>11}")
        for i, (u, v, w) in enumerate(zip(x, y, d, strict=True)):
            print(f"{i:>4} {u:10.4g} {v:10.4g} {w:+11.4g}")
        m, lo, hi, p = t_interval(d)
        print(f"life_loss_mean: base {x.mean():.4g}, earlier {y.mean():.4g}; difference "
              f"{m:+.4g} (95 % interval {lo:+.4g} to {hi:+.4g}, p = {p:.2g}); lower in "
              f"{int((d < 0).sum())} of {d.size} pairs, equal in {int((d == 0).sum())}")
        for key in ("consequences.people_exposed", "evacuation.out", "evacuation.sheltered",
                    "evacuation.never_left"):
            if key in b.table:
                u, v = paired(b.table, label, key)
                print(f"{key}: base {u.mean():.1f}, earlier {v.mean():.1f}")


if __name__ == "__main__":
    main()
