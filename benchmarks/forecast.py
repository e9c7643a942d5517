"""Forecast skill by a twin experiment on a built-in drill (default: riverside).

A hidden truth run has the river inflow and the rain at 1.5 times the
scenario's, away from the prior's centre (the prior below: both scales drawn
from U[0.6, 1.8], centre 1.2). Its gauge levels up to T, with 2 cm of
Gaussian noise, are the observations. The same ensemble is forecast to T + H
with and without assimilation (particle filter, emtwin.forecast.runner), and
scored against the truth over (T, T + H]:

- the ensemble-mean RMSE of the gauge levels (target: with assimilation at
  most half of without);
- the mean CRPS of the gauge levels (Gneiting & Raftery 2007);
- the share of wet cells (truth's maximum depth over the window >= 5 cm)
  where the truth's maximum depth lies inside the members' 5-95 % band
  (target: at least 90 %);
- the wall time of the forecast with assimilation (both stages).

The truth is run through the same member machinery (to T, checkpoint, on to
T + H), so its window maximum is measured exactly as the members' are.

Run: ``python benchmarks/forecast.py [--members 16 --at 2h --horizon 3h --workers 2]``
from the repository root. On a shared, loaded machine use a shorter horizon.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emtwin.batch import uncertain as unc
from emtwin.forecast import products as prod
from emtwin.forecast import skill
from emtwin.forecast.runner import MemberTask, forecast, load_spec
from emtwin.scenarios._types import parse_duration

#: The prior of the twin experiment (both scales centred on 1.2, the truth at 1.5).
PRIOR = {
    "method": "lhs",
    "parameters": {
        "hazards.0.inflows.0.hydrograph": {"scale": {"uniform": [0.6, 1.8]}},
        "hazards.0.rain": {"scale": {"uniform": [0.6, 1.8]}},
    },
}
TRUTH_SCALE = 1.5
NOISE_M = 0.02
WET_M = 0.05


def truth_run(scenario: str, at_s: float, end_s: float, folder: Path) -> dict:
    """The hidden truth: gauges over [0, T + H] and the maximum depth over (T, T + H]."""
    spec = load_spec(scenario, PRIOR)
    params = unc.parameters(spec.scenario)
    draw = {p.path: TRUTH_SCALE for p in params}
    ck = str(folder / "truth.ck")
    common = dict(member=0, seed=unc.run_seed(int(spec.scenario.seed), 10**6), data=spec.data,
                  base_dir=spec.base_dir, at_s=at_s, end_s=end_s, checkpoint=ck)
    a = MemberTask(stage="prior", changes=tuple(unc.edits(spec.scenario, params, draw)),
                   **common)()  # fmt: skip
    if a["status"] != "done":
        raise SystemExit(f"truth run failed: {a['error']}")
    b = MemberTask(stage="forecast", **common)()
    if b["status"] != "done":
        raise SystemExit(f"truth run failed: {b['error']}")
    return {"before": a["gauges"], "window": b["gauges"], "max_depth": b["max_depth"]}


def score(res: object, truth: dict) -> dict[str, float]:
    """RMSE and CRPS of gauge levels over the window, and the max-depth band coverage."""
    g = res.products.gauges  # type: ignore[attr-defined]
    wide = g.pivot_table(index=["gauge", "time_s"], columns="member", values="level_m")
    tr = truth["window"].set_index(["gauge", "time_s"])["level_m"].reindex(wide.index)
    x, y = wide.to_numpy().T, tr.to_numpy()
    p5, _, p95 = prod.quantile_rasters(res.max_depth)  # type: ignore[attr-defined]
    true_max = truth["max_depth"].astype(float)
    wet = true_max >= WET_M
    return {
        "rmse_m": skill.ensemble_mean_rmse(x, y),
        "crps_m": float(np.mean(skill.crps_ensemble(x, y))),
        "coverage": skill.coverage(p5, p95, true_max, where=wet),
        "wet_cells": int(wet.sum()),
        "spread_m": float(np.mean(x.std(axis=0))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="riverside")
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--at", default="2h")
    ap.add_argument("--horizon", default="3h")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default="local")
    ap.add_argument("--out", default=None, help="Keep the forecast folders here.")
    args = ap.parse_args()
    at_s, horizon_s = parse_duration(args.at), parse_duration(args.horizon)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        truth = truth_run(args.scenario, at_s, at_s + horizon_s, root)
        t_truth = time.perf_counter() - t0
        obs = truth["before"][truth["before"]["time_s"] <= at_s][["time_s", "gauge", "level_m"]]
        rng = np.random.default_rng(2024)
        obs = obs.assign(level_m=obs["level_m"] + rng.normal(0.0, NOISE_M, len(obs)))
        obs_file = root / "observations.csv"
        obs.to_csv(obs_file, index=False)
        runs = {}
        for label, da in (("with", True), ("without", False)):
            res = forecast(args.scenario, [obs_file] if da else [], at_s=at_s,
                           horizon_s=horizon_s, members=args.members, assimilate=da,
                           executor=args.executor, workers=args.workers,
                           out_dir=root / label, uncertain=PRIOR,
                           sigma_m=0.05)  # fmt: skip
            runs[label] = (res, score(res, truth))
    fa, sa = runs["with"][0].products.summary, runs["with"][1]
    sb = runs["without"][1]
    print(f"twin experiment: {args.scenario}, truth at {TRUTH_SCALE}x rain and inflow, prior "
          f"U[0.6, 1.8] on both; T = {at_s / 3600:g} h, H = {horizon_s / 3600:g} h, "
          f"{args.members} members, {args.workers} workers ({args.executor}); "
          f"{len(obs)} readings, noise {NOISE_M} m; truth run {t_truth:.0f} s")  # fmt: skip
    print(f"posterior: {json.dumps(fa['posterior'])}")
    print(f"ESS {fa['effective_sample_size']:.1f}, tempering exponent "
          f"{fa['tempering_exponent']:.3g}")  # fmt: skip
    print(f"{'':24s}{'with DA':>12s}{'without':>12s}")
    for k, label in (("rmse_m", "gauge RMSE, m"), ("crps_m", "gauge CRPS, m"),
                     ("spread_m", "gauge spread, m"), ("coverage", "max-depth 5-95 % cover")):
        print(f"{label:24s}{sa[k]:12.4f}{sb[k]:12.4f}")  # fmt: skip
    print(f"wet cells {sa['wet_cells']}; RMSE ratio {sa['rmse_m'] / sb['rmse_m']:.3f} "
          f"(target <= 0.5): {'PASS' if sa['rmse_m'] <= 0.5 * sb['rmse_m'] else 'FAIL'}; "
          f"coverage {sa['coverage']:.3f} (target >= 0.9): "
          f"{'PASS' if sa['coverage'] >= 0.9 else 'FAIL'}")  # fmt: skip
    print(f"wall time of the forecast with assimilation: {fa['wall_s']:.1f} s "
          f"(to now: {fa['prior_wall_s']:.1f} s)")  # fmt: skip
    pd.set_option("display.width", 120)


if __name__ == "__main__":
    main()
