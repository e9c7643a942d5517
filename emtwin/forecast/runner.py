"""The forecast runner: prior members to "now", assimilation, members on from their checkpoints.

:func:`forecast` is the Python API of ``emtwin forecast``:

1. draw N members from the scenario's ``uncertain:`` section (the prior;
   :func:`emtwin.batch.uncertain.sample`, the draws of ``emtwin batch``);
2. run each member to T ("now") in a worker (the batch executors: a local
   process pool or Dask), save its checkpoint (``sim.run_until(T);
   sim.checkpoint()``) and return its gauge series up to T;
3. weigh the members on the gauge readings with the particle filter
   (:func:`emtwin.forecast.members.assimilate`) and resample them;
4. continue each resampled member from ITS parent's checkpoint
   (``Simulation.from_checkpoint(ck, plans=...)``, a fork when plans are
   given) to T + H, stepping at the coupling step and keeping the maximum
   depth and AIDR class over (T, T + H], the gauge series, each road edge's
   first closure and the shelter loads;
5. write the products (:mod:`emtwin.forecast.products`), ``summary.json``
   (``forecast.*``) and ``report.html``.

Observed rain (a :class:`~emtwin.forecast.observations.RainField`) replaces
each member's rain over the area it covers; elsewhere the member's own rain
(with its drawn scale) holds. The flood kernel takes rain as a uniform series
times a fixed per-cell multiplier, so the field is written in that form twice:
over [0, T] for the run to now and over [T, T + H] for the forecast
(:meth:`RainField.separable`; each cell keeps its rain depth over each window).
After its last time an observed rate holds (persistence).

Everything is deterministic given the scenario seed: the prior draws, the
member seeds (:func:`emtwin.batch.uncertain.run_seed`), the resampling
(a generator seeded from the scenario seed) and the members' runs do not
depend on the executor, the number of workers or the order runs finish in.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emtwin.errors import InputDataError, ScenarioError, SimulationError
from emtwin.forecast import members as mem
from emtwin.forecast import observations as obsmod
from emtwin.forecast import products as prod
from emtwin.forecast.assimilation import DEFAULT_FLOW_ERROR_REL, DEFAULT_SIGMA_M

__all__ = ["MemberTask", "ForecastResult", "forecast", "load_spec", "read_observations",
           "window_maxima", "FORECAST_SEED_TAG"]

log = logging.getLogger(__name__)

#: spawn-key tag of the resampling generator (``SeedSequence(seed, spawn_key=(tag,))``).
FORECAST_SEED_TAG = 0xF0CA57


# ---------------------------------------------------------------------------- one member


def _flood(sim: Any) -> Any:
    comp = sim.component("flood")
    if comp is None:
        raise ScenarioError("forecast: the scenario has no flood hazard (hazards: - type: flood)",
                            file=sim.scenario.source)  # fmt: skip
    return comp


def _set_rain(sim: Any, rain: obsmod.RainField | None, t0: float, t1: float) -> None:
    """Observed rain over its area, the member's own rain elsewhere, over [t0, t1] (s)."""
    if rain is None or t1 <= t0:
        return
    comp = _flood(sim)
    field = rain.merged(comp.spec.rain)
    times, r, m = field.separable(sim.world.terrain.mask, t0=t0, t1=t1)
    times = np.asarray(times, dtype=float)
    if times[0] > 0:  # the kernel's series starts at t = 0; before t0 is already played
        times, r = np.concatenate([[0.0], times]), np.concatenate([[0.0], r])
    comp.model.set_rain(times, r, multiplier=m)


def _reforce(sim: Any, spec: Any) -> None:
    """Give the flood of *sim* the rain and inflow hydrographs of the flood *spec* from now on.

    A resampled member whose parameters were jittered continues its parent's
    state with its own forcing. Only the forcing is changed (the rain series
    and the inflow hydrographs, in the scenario's order); other parameters
    (Manning's n, initial depth, evacuation keys) stay the parent's, since
    the state at T already holds them.
    """
    comp = _flood(sim)
    model = comp.model
    old = comp.spec
    if len(spec.inflows) != len(old.inflows):
        raise SimulationError("forecast: a member's inflows differ in number from its parent's")
    if spec.rain:
        t, r = zip(*spec.rain, strict=True)
        model.set_rain(np.array(t, dtype=float), np.array(r, dtype=float))
    inflows = getattr(model, "_inflows", None)
    if spec.inflows and inflows is None:
        raise SimulationError(f"forecast: the {model.backend} flood backend cannot change a "
                              "member's inflows; run members on the CPU")  # fmt: skip
    for i, inflow in enumerate(spec.inflows):
        t, q = zip(*inflow.hydrograph, strict=True)
        inflows[i]["t"], inflows[i]["q"] = [float(x) for x in t], [float(x) for x in q]
    if spec.inflows:
        model._rebuild_breakpoints()
    comp.spec = spec


def window_maxima(sim: Any, at_s: float, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Play *sim* from *at_s* to *end_s* (s) and keep each cell's maximum depth (m) and AIDR
    hazard class, read at every coupling step in (at_s, end_s]; shape of the World grid."""
    from emtwin.kernels.hazard_rating import aidr_class

    shape = sim.world.terrain.shape
    max_depth, max_class = np.zeros(shape), np.zeros(shape)
    step = float(sim.coupling_s)
    k = 1
    while True:
        t = min(at_s + k * step, end_s)
        sim.run_until(t)
        h = np.asarray(sim.state.get("water__depth"), dtype=float)
        v = np.asarray(sim.state.get("water__speed"), dtype=float)
        np.maximum(max_depth, h, out=max_depth)
        np.maximum(max_class, np.asarray(aidr_class(h, v), dtype=float), out=max_class)
        if t >= end_s:
            return max_depth, max_class
        k += 1


def _gauge_table(sim: Any) -> pd.DataFrame:
    g = _flood(sim).gauge_table()
    cols = ["time_s", "gauge", "depth_m", "level_m"] + ["flow_m3_s"] * ("flow_m3_s" in g)
    return g[cols].reset_index(drop=True)


@dataclass(frozen=True)
class MemberTask:
    """One member's part of a forecast, run in a worker (a callable the batch worker runs).

    Attributes
    ----------
    stage
        ``prior``: build the member's scenario, run it to *at_s*, save its
        checkpoint to *checkpoint*. ``forecast``: continue *checkpoint* to
        *end_s*, keeping the window's maxima.
    member
        The member's number (for messages and the executors' bookkeeping).
    seed
        The member's seed (prior stage).
    data, base_dir, changes
        The raw scenario dict, the folder its relative paths are resolved
        against, and the member's draw as edits (prior stage).
    at_s, end_s
        T and T + H, s.
    checkpoint
        The checkpoint file written (prior) or read (forecast).
    plans
        Plan files the forecast stage forks with (their actions from T on).
    rain
        Observed rain, or None.
    allow_code
        Whether Python code named in the scenario may run.
    """

    stage: str
    member: int
    seed: int
    data: Mapping[str, Any]
    base_dir: str
    at_s: float
    end_s: float
    checkpoint: str
    changes: tuple[tuple[tuple[str | int, ...], Any], ...] = ()
    plans: tuple[str, ...] = ()
    rain: obsmod.RainField | None = None
    allow_code: bool = False

    # the batch executors' bookkeeping reads these
    @property
    def run(self) -> int:
        return self.member

    @property
    def plan(self) -> str:
        return self.stage

    def __call__(self) -> dict[str, Any]:
        """Run this stage; ``{status: done, ...}`` or ``{status: failed, error}``."""
        from emtwin.batch.worker import _one_numba_thread

        t0 = time.perf_counter()
        try:
            with _one_numba_thread():
                out = self._prior() if self.stage == "prior" else self._forecast()
            out["status"] = "done"
        except Exception as exc:  # noqa: BLE001 - reported, the forecast names the member
            msg = " ".join(str(exc).split()) or type(exc).__name__
            out = {"status": "failed", "error": f"{type(exc).__name__}: {msg}",
                   "traceback": traceback.format_exc(limit=-8)}  # fmt: skip
        out["wall_s"] = time.perf_counter() - t0
        out["warnings"] = []
        return out

    def _prior(self) -> dict[str, Any]:
        from emtwin.batch.uncertain import apply_edits
        from emtwin.batch.worker import _validate
        from emtwin.sim.engine import Simulation

        data = apply_edits(self.data, self.changes)
        data["seed"] = self.seed
        data["duration"] = float(self.end_s)
        scenario = _validate(data, self.base_dir)
        sim = Simulation(scenario, allow_code=self.allow_code)
        _set_rain(sim, self.rain, 0.0, self.at_s)
        sim.run_until(self.at_s)
        sim.checkpoint().save(self.checkpoint)
        return {"gauges": _gauge_table(sim)}

    def _forecast(self) -> dict[str, Any]:
        from emtwin.sim.engine import Simulation

        sim = Simulation.from_checkpoint(self.checkpoint, plans=list(self.plans),
                                         allow_code=self.allow_code)  # fmt: skip
        if self.changes:  # a jittered copy: its own forcing from T on
            from emtwin.batch.uncertain import apply_edits
            from emtwin.batch.worker import _validate

            data = apply_edits(self.data, self.changes)
            data["duration"] = float(self.end_s)
            _reforce(sim, _validate(data, self.base_dir).flood)
        _set_rain(sim, self.rain, self.at_s, self.end_s)
        mask = sim.world.terrain.mask
        max_depth, max_class = window_maxima(sim, self.at_s, self.end_s)
        results = sim.run()  # to the end (T + H): closes the records
        gauges = _gauge_table(sim)
        window = gauges[(gauges["time_s"] > self.at_s) & (gauges["time_s"] <= self.end_s)]
        roads = sim.roads
        first = roads.first_closed_s.copy() if roads is not None else np.zeros(0)
        evac = sim.component("evacuation")
        shelters: dict[str, float] = {}
        if evac is not None:
            sh = evac.shelters
            shelters = {str(n): float(o) for n, o in zip(sh.names, sh.occupancy, strict=True)}
        return {
            "gauges": window.reset_index(drop=True),
            "max_depth": np.where(mask, max_depth, np.nan).astype(np.float32),
            "hazard_class": np.where(mask, max_class, np.nan).astype(np.float32),
            "first_closed_s": first,
            "shelters": shelters,
            "summary": results.summary,
        }


# ---------------------------------------------------------------------------- running members


def _run_tasks(tasks: Sequence[MemberTask], *, executor: str, workers: int | None,
               scheduler: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """Run *tasks* with the batch executors; their outcomes in task order; any failure raises."""
    from emtwin.batch.runner import execute

    outs: dict[int, dict[str, Any]] = {}

    def done(t: Any, out: dict[str, Any]) -> None:
        outs[t.member] = out

    execute(list(tasks), on_start=lambda t: None, on_done=done, executor=executor,
            workers=workers, scheduler=scheduler, label=f"forecast {tasks[0].stage}")  # fmt: skip
    failed = [(t.member, outs.get(t.member, {}).get("error", "no outcome")) for t in tasks
              if outs.get(t.member, {}).get("status") != "done"]  # fmt: skip
    if failed:
        lines = "; ".join(f"member {m}: {e}" for m, e in failed[:5])
        raise SimulationError(f"forecast ({tasks[0].stage} stage): {len(failed)} member(s) "
                              f"failed: {lines}")  # fmt: skip
    return [outs[t.member] for t in tasks]


# ---------------------------------------------------------------------------- observations


def read_observations(
    files: Sequence[str | Path], scenario: Any, world: Any | None = None
) -> tuple[list[obsmod.GaugeObservations], obsmod.RainField | None]:
    """Read observation files: gauge tables, rain-gauge tables and rain-raster folders.

    A table with a ``rain_mm_h`` column is a rain-gauge table (spread by
    inverse-distance weighting); a folder is a series of rain rasters; any other
    table is gauge readings. Several rain sources are an error (merge them first).
    A gauge table read as ``FILE:QUANTITY`` (``level_m``, ``depth_m`` or
    ``flow_m3_s``) uses that column; the same file may be given once per
    quantity (e.g. a run's ``gauges.csv:level_m`` and ``gauges.csv:flow_m3_s``).
    """
    gauges: list[obsmod.GaugeObservations] = []
    rains: list[obsmod.RainField] = []
    for f in files:
        name, quantity = str(f), None
        for q in obsmod.GAUGE_QUANTITIES:
            if name.endswith(f":{q}"):
                name, quantity = name[: -len(q) - 1], q
        p = Path(name)
        if p.is_dir():
            rains.append(obsmod.read_rain_rasters(p, scenario, _world(scenario, world)))
            continue
        if p.suffix.lower() == ".csv" and p.is_file():
            cols = pd.read_csv(p, nrows=0).columns
        elif p.suffix.lower() in (".parquet", ".pq") and p.is_file():
            cols = pd.read_parquet(p).columns
        else:
            cols = []
        if "rain_mm_h" in cols:
            w = _world(scenario, world)
            rains.append(obsmod.rain_field_from_gauges(obsmod.read_rain_gauges(p, scenario, w), w))
        else:
            gauges.append(obsmod.read_gauge_observations(p, scenario, quantity=quantity))
    if len(rains) > 1:
        raise InputDataError(f"{', '.join(r.source for r in rains)}: more than one rain "
                             "source; give one rain-gauge table or one raster folder")  # fmt: skip
    return gauges, (rains[0] if rains else None)


def _world(scenario: Any, world: Any | None) -> Any:
    if world is not None:
        return world
    from emtwin.geo.build import build_world

    return build_world(scenario)


# ---------------------------------------------------------------------------- the forecast


@dataclass
class ForecastResult:
    """What :func:`forecast` made.

    Attributes
    ----------
    folder
        The output folder.
    products
        The products written (tables, rasters, the ``forecast`` summary).
    parents
        For each forecast member, the prior member whose checkpoint it continued.
    prior_gauges
        Each prior member's gauge table up to T.
    weights
        The particle filter's weights of the prior members (equal without assimilation).
    max_depth, hazard_class
        Each forecast member's maximum depth (m) and AIDR class over (T, T + H],
        shape (n_members, nrows, ncols), NaN outside the domain.
    files
        The files written.
    """

    folder: Path
    products: prod.ForecastProducts
    parents: np.ndarray
    prior_gauges: list[pd.DataFrame]
    weights: np.ndarray
    max_depth: np.ndarray
    hazard_class: np.ndarray
    files: list[Path] = field(default_factory=list)


def load_spec(scenario: str | Path | Any, uncertain: Mapping[str, Any] | None = None) -> Any:
    """The PlanSpec of a scenario file, built-in name or PlanSpec, its prior replaced when given.

    *uncertain* replaces the whole ``uncertain:`` section (a wider or narrower
    prior); the scenario is validated again.
    """
    from emtwin.batch.ensemble import PlanSpec, load_plan
    from emtwin.batch.worker import _validate

    spec = scenario if isinstance(scenario, PlanSpec) else load_plan(scenario)
    if uncertain is None:
        return spec
    data = {**spec.data, "uncertain": dict(uncertain)}
    return PlanSpec(spec.label, data, spec.base_dir, _validate(data, spec.base_dir), spec.files)


def forecast(
    scenario: str | Path | Any,
    observations: Sequence[str | Path] = (),
    *,
    at_s: float,
    horizon_s: float,
    members: int,
    assimilate: bool = True,
    plans: Sequence[str | Path] = (),
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    out_dir: str | Path,
    sigma_m: float = DEFAULT_SIGMA_M,
    flow_error_rel: float = DEFAULT_FLOW_ERROR_REL,
    min_ess: float | None = None,
    jitter: float | None = 0.9,
    allow_code: bool = False,
    report: bool = True,
    uncertain: Mapping[str, Any] | None = None,
) -> ForecastResult:
    """Forecast from *at_s* to *at_s* + *horizon_s* with *members* members, weighed on observations.

    Parameters
    ----------
    scenario
        A scenario file or built-in name (or a :class:`~emtwin.batch.ensemble.PlanSpec`).
        Its ``uncertain:`` section is the prior.
    observations
        Gauge tables (``time_s, gauge, level_m | depth_m``, e.g. a run's
        ``gauges.csv``), a rain-gauge table (``rain_mm_h``) or a rain-raster folder.
    at_s
        "Now", T, s since t = 0 (> 0).
    horizon_s
        H, s (> 0).
    members
        Ensemble size N (>= 2 to assimilate).
    assimilate
        False: the prior members go on unweighed (gauge readings are not used).
    plans
        Plan files whose actions the forecast members take from T on (a fork).
    executor, workers, scheduler
        As for ``emtwin batch``: ``local`` (``workers=0``: in this process) or ``dask``.
    out_dir
        The output folder (created).
    sigma_m
        The gauge observation error sd, m (level and depth readings).
    flow_error_rel
        The relative error of discharge readings (``flow_m3_s``; see
        :func:`emtwin.forecast.assimilation.flow_sigma`).
    min_ess
        Temper the likelihood to keep at least this effective sample size
        (default N / 2; see :func:`emtwin.forecast.assimilation.tempering_exponent`).
    jitter
        The Liu & West (2001) discount delta of the resampled parameters (None:
        copies keep their parent's values). A jittered copy continues its
        parent's state with its own rain and inflows from T on.
    allow_code
        Whether Python code named in the scenario may run.
    report
        Write ``report.html`` (fan charts and the probability map).
    uncertain
        An ``uncertain:`` section replacing the scenario's (e.g. a wider prior).

    Raises
    ------
    ScenarioError
        A scenario without a flood, without ``uncertain:`` parameters, bad times.
    InputDataError
        Bad observation files (naming the file and the row).
    """
    from emtwin.batch import uncertain as unc

    t_start = time.perf_counter()
    at_s, horizon_s = float(at_s), float(horizon_s)
    if not at_s > 0:
        raise ScenarioError(f"--at: expected a forecast time after t = 0, got {at_s:g} s")
    if not horizon_s > 0:
        raise ScenarioError(f"--horizon: expected a horizon > 0, got {horizon_s:g} s")
    if members < 1 or (assimilate and members < 2):
        raise ScenarioError(f"--members: expected at least 2 members, got {members}")
    spec = load_spec(scenario, uncertain)
    sc = spec.scenario
    if sc.flood is None:
        raise ScenarioError("forecast: the scenario has no flood hazard", file=spec.files[0])
    params = unc.parameters(sc)
    if not params:
        raise ScenarioError("forecast: the scenario has no `uncertain:` parameters, the prior "
                            "the members are drawn from", file=spec.files[0])  # fmt: skip
    end_s = at_s + horizon_s
    from emtwin.geo.build import build_world

    world = build_world(sc)
    gauge_obs, rain = read_observations(observations, sc, world)
    if assimilate and not gauge_obs:
        raise InputDataError("forecast: assimilation needs gauge observations "
                             "(--observations FILE with time_s, gauge, level_m); or give "
                             "--no-assimilation")  # fmt: skip
    method = sc.uncertain.method if sc.uncertain else "monte_carlo"
    seed = int(sc.seed)
    draws = unc.sample(params, seed=seed, runs=members, method=method)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    work = folder / "_checkpoints"
    work.mkdir(exist_ok=True)
    plan_files = tuple(str(Path(p).resolve()) for p in plans)
    try:
        prior = [MemberTask(
            stage="prior", member=i, seed=unc.run_seed(seed, i), data=spec.data,
            base_dir=spec.base_dir, at_s=at_s, end_s=end_s,
            checkpoint=str(work / f"member{i:04d}.ck"),
            changes=tuple(unc.edits(sc, params, draws[i])), rain=rain, allow_code=allow_code,
        ) for i in range(members)]  # fmt: skip
        outs = _run_tasks(prior, executor=executor, workers=workers, scheduler=scheduler)
        prior_gauges = [o["gauges"] for o in outs]
        t_prior = time.perf_counter() - t_start
        values = mem.parameter_arrays(params, draws)
        if assimilate:
            ss = np.random.SeedSequence(seed, spawn_key=(FORECAST_SEED_TAG,))
            rng = np.random.default_rng(ss)
            step = mem.assimilate(gauge_obs, prior_gauges, values, at_s=at_s, rng=rng,
                                  sigma=sigma_m, flow_error_rel=flow_error_rel,
                                  min_ess=min_ess or members / 2.0,
                                  jitter_discount=jitter,
                                  bounds=mem.parameter_bounds(params))  # fmt: skip
            parents = np.asarray(step.result.indices, dtype=np.int64)
            weights = step.result.weights
            posterior, ess, used = step.result.posterior, step.result.ess, step.summary_entries()
            extra = {"tempering_exponent": step.result.exponent, "readings_left_out": step.dropped,
                     "jitter_discount": jitter}
            if any(o["quantity"] == "flow_m3_s" for o in used):
                extra["observation_flow_error_rel"] = flow_error_rel
            new_draws = mem.resampled_draws(draws, step.result)
        else:
            parents = np.arange(members)
            weights = np.full(members, 1.0 / members)
            from emtwin.forecast.assimilation import posterior_summary

            posterior, ess, used, extra = posterior_summary(values), None, [], {}
            new_draws = list(draws)
        own = [() if new_draws[k] == draws[int(i)] else tuple(unc.edits(sc, params, new_draws[k]))
               for k, i in enumerate(parents)]  # fmt: skip
        fc = [MemberTask(
            stage="forecast", member=k, seed=prior[int(i)].seed, data=spec.data,
            base_dir=spec.base_dir, at_s=at_s, end_s=end_s, checkpoint=prior[int(i)].checkpoint,
            changes=own[k], plans=plan_files, rain=rain, allow_code=allow_code,
        ) for k, i in enumerate(parents)]  # fmt: skip
        fouts = _run_tasks(fc, executor=executor, workers=workers, scheduler=scheduler)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - t_start
    products, stacks = _products(fouts, world, at_s=at_s, horizon_s=horizon_s, members=members,
                                 used=used, posterior=posterior, ess=ess, sigma_m=sigma_m,
                                 method="particle_filter" if assimilate else "none",
                                 extra={**extra, "plans": [Path(p).name for p in plan_files],
                                        "parents": [int(i) for i in parents],
                                        "rain_observed": rain.source if rain else None,
                                        "wall_s": round(wall, 3),
                                        "prior_wall_s": round(t_prior, 3)})  # fmt: skip
    files = prod.write_products(folder, products, world)
    summary = {"scenario": sc.name, "seed": seed, "forecast": products.summary}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=_jsonable))
    files.append(folder / "summary.json")
    result = ForecastResult(folder, products, parents, prior_gauges, np.asarray(weights),
                            stacks[0], stacks[1], files)  # fmt: skip
    if report:
        from emtwin.viz.forecast_report import write_report

        obs_table = obsmod.observation_table(gauge_obs, at_s=at_s) if gauge_obs else None
        files.append(write_report(folder, result, world, observations=obs_table, title=sc.name))
    return result


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _products(
    outs: Sequence[Mapping[str, Any]], world: Any, *, at_s: float, horizon_s: float,
    members: int, used: Any, posterior: Any, ess: float | None, sigma_m: float, method: str,
    extra: dict[str, Any],
) -> tuple[prod.ForecastProducts, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The products of the forecast members (equal weights: they are resampled)."""
    depth = np.stack([o["max_depth"] for o in outs]).astype(float)
    hazard = np.stack([o["hazard_class"] for o in outs]).astype(float)
    tables = [o["gauges"] for o in outs]
    gauges = prod.gauges_forecast_table(tables, at_s=at_s, horizon_s=horizon_s)
    roads = None
    if world.roads is not None and world.roads.n_edges:
        first = np.stack([o["first_closed_s"] for o in outs])
        roads = prod.road_closures(first, world.roads.road_id, until_s=at_s + horizon_s)
    shelters = None
    names = list(outs[0]["shelters"])
    if names:
        loads = np.array([[o["shelters"][n] for n in names] for o in outs])
        shelters = prod.shelter_loads(loads, names)
    summary = prod.forecast_summary(members=members, at_s=at_s, horizon_s=horizon_s,
                                    observations=used, posterior=posterior, ess=ess,
                                    method=method, sigma_m=sigma_m if method != "none" else None,
                                    **extra)  # fmt: skip
    if shelters is not None:
        summary["expected_shelter_load"] = {r.shelter: float(r.mean)
                                            for r in shelters.itertuples()}  # fmt: skip
    p = prod.ForecastProducts(
        rasters=prod.risk_map(depth, hazard), gauges=gauges,
        gauge_quantiles=prod.gauge_quantiles(gauges), roads=roads, shelters=shelters,
        summary=summary,
    )  # fmt: skip
    return p, (depth, hazard)
