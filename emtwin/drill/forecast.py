"""The ensemble forecast from the drill's "now" (``POST /api/forecast``): the risk map.

A drill has no gauge feed, so there is no assimilation: the members are the
live state forked N times. The live run's checkpoint at the current simulated
time T is the common start of every member; member *i* continues it to T + H
with the flood forcing of draw *i* of the scenario's ``uncertain:`` section
(:func:`emtwin.batch.uncertain.sample`, the draws of ``emtwin batch`` and
``emtwin forecast``): its rain and inflow hydrographs from T on
(:func:`emtwin.forecast.runner._reforce`, as a jittered member of
``emtwin forecast`` gets them). Uncertain parameters that are not forcing
(Manning's n, departure times, call rates ...) are already in the live state
and stay as played; the forecast lists them as ``held``. Members share the
live run's random streams (a fork), so they differ by their forcing alone.

Members run with the batch executors (:func:`emtwin.batch.runner.execute`):
by default one worker process at a lower CPU priority (``nice`` 10), so that
the live drill keeps its own core and goes first when the cores are busy; the
World is handed to the workers as a pickle, the checkpoint as a file. The
products are those of ``emtwin forecast`` (:mod:`emtwin.forecast.products`):
the gauge quantiles (p5, p50, p95), ``prob_depth_0.3m`` and
``prob_hazard_h3``, road closures and the forecast page (``report.html``,
:mod:`emtwin.viz.forecast_report`), written to a scratch folder per forecast; they
are made in a worker process too (:class:`DrillProducts`), so that the seconds they
take do not hold the live run back.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import pickle
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emtwin.errors import EmtwinError

__all__ = ["DrillMember", "DrillProducts", "DrillForecasts", "ForecastError", "member_floods",
           "MAX_MEMBERS"]

log = logging.getLogger(__name__)

#: The largest ensemble a drill forecast takes.
MAX_MEMBERS = 64
#: The risk map in JSON holds at most this many cells (max-pooled blocks beyond it).
JSON_CELLS = 62_500
#: Worker processes loaded once per World file (a worker runs several members).
_WORLDS: dict[str, Any] = {}
#: Whether this worker process has lowered its priority already.
_NICED = False
#: How much a worker process lowers its CPU priority (``os.nice``).
NICE = 10


class ForecastError(EmtwinError, ValueError):
    """A forecast that cannot be made; the message says why."""


# ---------------------------------------------------------------------------- the members


def _forcing_path(keys: tuple[str | int, ...], flood_index: int) -> bool:
    """Whether uncertain key path *keys* is forcing of the flood hazard (rain, inflows)."""
    if len(keys) < 3 or keys[0] != "hazards" or keys[1] != flood_index:
        return False
    return keys[2] == "rain" or (keys[2] == "inflows" and keys[-1] == "hydrograph")


def member_floods(scenario: Any, members: int) -> tuple[list[Any], list[str], list[str]]:
    """The flood hazard of each member, and the uncertain paths varied and held.

    Parameters
    ----------
    scenario
        The drill's scenario (its ``uncertain:`` section is the prior).
    members
        The ensemble size N.

    Returns
    -------
    (floods, varied, held)
        *floods*: N copies of the scenario's flood hazard, each with member i's
        rain and inflow hydrographs; *varied*: the paths drawn per member;
        *held*: the other uncertain paths (kept as the live run played them).

    Raises
    ------
    ForecastError
        Without a flood, or without an uncertain rain or inflow to draw.
    """
    from emtwin.batch import uncertain as unc

    flood = scenario.flood
    if flood is None:
        raise ForecastError("forecast: the scenario has no flood hazard (hazards: - type: flood)")
    params = unc.parameters(scenario)
    index = next(i for i, h in enumerate(scenario.hazards) if h is flood)
    varied = [p for p in params if _forcing_path(p.keys, index)]
    if not varied:
        raise ForecastError(
            "forecast: the scenario's `uncertain:` section has no flood forcing to draw "
            f"members from; expected hazards.{index}.rain or "
            f"hazards.{index}.inflows.N.hydrograph (e.g. `hazards.{index}.rain: "
            "{scale: {lognormal: {mean: 1, sd: 0.3}}}`)")  # fmt: skip
    method = scenario.uncertain.method if scenario.uncertain else "monte_carlo"
    draws = unc.sample(params, seed=int(scenario.seed), runs=members, method=method)
    floods = []
    for draw in draws:
        f = flood.model_copy(deep=True)
        for keys, value in unc.edits(scenario, varied, draw):
            node: Any = f
            for k in keys[2:-1]:
                node = node[k] if isinstance(k, int) else getattr(node, k)
            setattr(node, str(keys[-1]), [(float(t), float(v)) for t, v in value])
        floods.append(f)
    held = [p.path for p in params if p not in varied]
    return floods, [p.path for p in varied], held


def _lower_priority(nice: int) -> None:
    """In a worker process (never in the drill's own), lower the CPU priority by *nice*
    once, so that the live drill goes first when the cores are busy."""
    global _NICED
    import multiprocessing
    import os

    if _NICED or nice <= 0 or multiprocessing.parent_process() is None:
        return
    with contextlib.suppress(AttributeError, OSError):  # not on this platform
        os.nice(nice)
    _NICED = True


def _load_world(path: Any) -> Any:
    """The World of a member: read from its pickle file (once per process), or as given."""
    if not isinstance(path, str):
        return path  # a World in memory, or None
    if path not in _WORLDS:
        with open(path, "rb") as fh:
            _WORLDS.clear()  # one drill's World at a time
            _WORLDS[path] = pickle.load(fh)  # noqa: S301 - written by this drill
    return _WORLDS[path]


@dataclass(frozen=True)
class DrillMember:
    """One member of a drill forecast, run by the batch executors (in a worker or in process).

    Attributes
    ----------
    member
        Its number, 0 .. N - 1.
    checkpoint
        The live run's checkpoint file at T.
    world
        A pickled World file, the World itself (in process), or None (built again from
        the scenario's files).
    flood
        The member's flood hazard (its forcing from T on); None keeps the live forcing.
    at_s, end_s
        T and T + H, s.
    allow_code
        As ``emtwin run --allow-code``.
    nice
        In a worker process, lower its CPU priority by this much (0: leave it).
    """

    member: int
    checkpoint: str
    world: Any
    flood: Any
    at_s: float
    end_s: float
    allow_code: bool = False
    nice: int = NICE

    # the batch executors' bookkeeping reads these
    @property
    def run(self) -> int:
        return self.member

    @property
    def plan(self) -> str:
        return "drill forecast"

    def __call__(self) -> dict[str, Any]:
        """Play the member; ``{status: done, max_depth, hazard_class, gauges, first_closed_s}``."""
        out = _worker_task(self.nice, self._play)
        out["warnings"] = []
        return out

    def _play(self) -> dict[str, Any]:
        from emtwin.batch.worker import _one_numba_thread
        from emtwin.forecast.runner import _gauge_table, _reforce, window_maxima
        from emtwin.sim.engine import Simulation

        with _one_numba_thread():
            sim = Simulation.from_checkpoint(self.checkpoint, world=_load_world(self.world),
                                             allow_code=self.allow_code)  # fmt: skip
            if self.flood is not None:
                _reforce(sim, self.flood)
            depth, cls = window_maxima(sim, self.at_s, self.end_s)
            mask = sim.world.terrain.mask
            g = _gauge_table(sim)
            g = g[(g["time_s"] > self.at_s) & (g["time_s"] <= self.end_s)]
            roads = sim.roads
            return {
                "max_depth": np.where(mask, depth, np.nan).astype(np.float32),
                "hazard_class": np.where(mask, cls, np.nan).astype(np.float32),
                "gauges": g.reset_index(drop=True),
                "first_closed_s": roads.first_closed_s.copy() if roads is not None
                else np.zeros(0),
            }  # fmt: skip


def _worker_task(nice: int, work: Any) -> dict[str, Any]:
    """Run *work* (a callable returning a dict) as a task of a forecast's worker process: at
    a lower CPU priority; its outcome with ``status`` (``done``, or ``failed`` with the
    ``error`` on one line, reported by the forecast) and ``wall_s``."""
    _lower_priority(nice)
    t0 = time.perf_counter()
    try:
        out = {**work(), "status": "done"}
    except Exception as exc:  # noqa: BLE001 - reported; the forecast names the task
        msg = " ".join(str(exc).split()) or type(exc).__name__
        out = {"status": "failed", "error": f"{type(exc).__name__}: {msg}"}
    out["wall_s"] = time.perf_counter() - t0
    return out


@dataclass(frozen=True)
class DrillProducts:
    """The products of a drill forecast, made from its members' outcomes in a worker process.

    They take seconds (rasters, the forecast page, its charts), and made in the drill's
    own process they held the live run back: a decision taken while they were made
    waited up to 0.7 s for its frame (``benchmarks/drill_forecast.py``).

    Attributes
    ----------
    outs
        The members' outcomes (:meth:`DrillMember.__call__`), in member order.
    world
        As :attr:`DrillMember.world`.
    name
        The scenario's name (the page's title).
    job
        The job's ``id, at_s, to_s, varied, held, closed_now``.
    folder
        Where the files go.
    """

    outs: tuple[dict[str, Any], ...]
    world: Any
    name: str
    job: dict[str, Any]
    folder: str
    nice: int = NICE

    # the batch executors' bookkeeping reads these
    @property
    def run(self) -> int:
        return len(self.outs)

    @property
    def plan(self) -> str:
        return "drill forecast products"

    def __call__(self) -> dict[str, Any]:
        """Make the products; ``{status: done, ...what the page shows}``."""
        return _worker_task(self.nice, lambda: _products(
            list(self.outs), _load_world(self.world), self.name, self.job, Path(self.folder)))


# ---------------------------------------------------------------------------- the jobs


class DrillForecasts:
    """The forecasts of one drill: started from the live state, run in the background.

    Parameters
    ----------
    session
        The drill (:class:`emtwin.drill.session.DrillSession`).
    workers
        Worker processes of the members (0: in a thread of this process).
    executor
        ``local`` or ``dask`` (as for ``emtwin batch``).
    """

    def __init__(self, session: Any, *, workers: int = 1, executor: str = "local") -> None:
        self.session = session
        self.workers = int(workers)
        self.executor = executor
        self.jobs: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, Path] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._scratch: Path | None = None
        self._world_file: str | None = None

    def _folder(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="emtwin-drill-forecast-"))
            weakref.finalize(self, shutil.rmtree, self._scratch, True)
        return self._scratch

    def running(self) -> str | None:
        """The id of the forecast under way, if any."""
        return next((k for k, j in self.jobs.items() if j["state"] == "running"), None)

    def start(self, members: int = 8, horizon_s: float = 2 * 3600.0, *, role: str = "control",
              background: bool = True) -> dict[str, Any]:  # fmt: skip
        """Fork the live state now and forecast *horizon_s* (s) ahead with *members* members.

        Returns the job (``id``, ``state`` "running", ``at_s``, ``to_s`` ...); the
        result lands in :meth:`get`. One forecast runs at a time.

        Raises
        ------
        ForecastError
            Bad sizes, a drill that is over, one already running, or a scenario
            without a flood or uncertain forcing.
        """
        s = self.session
        if not (isinstance(members, int) and 2 <= members <= MAX_MEMBERS):
            raise ForecastError(f"members: expected 2 to {MAX_MEMBERS}, got {members!r}")
        h = float(horizon_s)
        if not (math.isfinite(h) and h > 0):
            raise ForecastError(f"horizon: expected a duration > 0, got {horizon_s!r}")
        if s.state in ("finishing", "done", "failed"):
            raise ForecastError(f"the drill is {s.state}: no forecast")
        floods, varied, held = member_floods(s.scenario, members)
        with self._lock:
            busy = self.running()
            if busy is not None:
                raise ForecastError(f"forecast {busy} is still running; wait for it")
            with s.locked():
                t0 = float(s.time_s)
                try:
                    ck = s.sim.checkpoint()
                except EmtwinError as exc:
                    raise ForecastError(f"forecast: cannot fork the live run ({exc})") from None
                rs = s.sim.roads
                closed_now = sorted({str(r) for r in s.world.roads.road_id[~rs.open]}) \
                    if rs is not None else []  # fmt: skip
            end = min(t0 + h, s.end_s)
            if end <= t0:
                raise ForecastError(f"the event ends at {s.end_s:g} s: nothing to forecast")
            fid = str(next(self._ids))
            job = {"id": fid, "state": "running", "at_s": t0, "to_s": end, "horizon_s": end - t0,
                   "members": members, "done": 0, "varied": varied, "held": held,
                   "assimilation": "none", "closed_now": closed_now,
                   "started": time.time()}  # fmt: skip
            self.jobs[fid] = job
        s.decisions.add(t0, role, f"forecast from now: {members} members, "
                        f"{(end - t0) / 3600:g} h ahead", source="control")  # fmt: skip
        s._changed()
        if background:
            threading.Thread(target=self._work, args=(job, ck, floods), daemon=True,
                             name=f"emtwin-forecast-{fid}").start()  # fmt: skip
        else:
            self._work(job, ck, floods)
        return self.get(fid) or job

    def get(self, fid: str) -> dict[str, Any] | None:
        """The job *fid*: its state, and its products once done (see the module notes)."""
        job = self.jobs.get(fid)
        return None if job is None else {k: v for k, v in job.items() if k != "started"}

    def brief(self, fid: str | None = None) -> dict[str, Any] | None:
        """The state of forecast *fid* (default: the latest) without its products."""
        fid = fid if fid is not None else (max(self.jobs, key=int) if self.jobs else None)
        job = self.jobs.get(fid) if fid is not None else None
        if job is None:
            return None
        keys = ("id", "state", "at_s", "to_s", "members", "done", "error", "wall_s")
        return {k: job[k] for k in keys if k in job}

    def report(self, fid: str) -> Path | None:
        """The forecast page (``report.html``) of a finished forecast."""
        folder = self.folders.get(fid)
        p = folder / "report.html" if folder else None
        return p if p is not None and p.is_file() else None

    def _world(self) -> str:
        if self._world_file is None:
            path = self._folder() / "world.pickle"
            with open(path, "wb") as fh:
                pickle.dump(self.session.world, fh, protocol=5)
            self._world_file = str(path)
        return self._world_file

    def _work(self, job: dict[str, Any], ck: Any, floods: list[Any]) -> None:
        from emtwin.batch.runner import execute

        w0 = time.perf_counter()
        folder = self._folder() / f"forecast-{job['id']}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            ck_file = str(ck.save(folder / "now.ck"))
            world = self._world() if self.workers > 0 else self.session.world
            code = self.session.allow_code
            tasks = [DrillMember(i, ck_file, world, f, job["at_s"], job["to_s"], code)
                     for i, f in enumerate(floods)]  # fmt: skip
            outs: dict[int, dict[str, Any]] = {}

            def done(t: DrillMember, out: dict[str, Any]) -> None:
                outs[t.member] = out
                job["done"] = len(outs)

            if self.workers == 0:  # in this thread, on the live World
                for t in tasks:
                    done(t, t())
            else:
                execute(tasks, on_start=lambda t: None, on_done=done, executor=self.executor,
                        workers=self.workers, label="drill forecast")  # fmt: skip
            failed = [(m, o.get("error")) for m, o in sorted(outs.items())
                      if o.get("status") != "done"]  # fmt: skip
            if failed or len(outs) != len(tasks):
                lines = "; ".join(f"member {m}: {e}" for m, e in failed[:3])
                raise ForecastError(f"{len(tasks) - len(outs) + len(failed)} member(s) failed"
                                    f"{': ' + lines if lines else ''}")  # fmt: skip
            members_wall = time.perf_counter() - w0
            result = self._products([outs[i] for i in range(len(tasks))], world, job, folder)
            job.update(result)
            job["wall_s"] = round(time.perf_counter() - w0, 2)
            job["members_wall_s"] = round(members_wall, 2)
            job["state"] = "done"
            self.folders[job["id"]] = folder
            self.session.kept[f"forecasts/forecast-{job['id']}"] = folder
        except Exception as exc:  # noqa: BLE001 - shown on the page
            log.exception("the drill forecast failed")
            job["state"] = "failed"
            job["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            (folder / "now.ck").unlink(missing_ok=True)
        self.session._changed()

    def _products(self, outs: list[dict[str, Any]], world: Any, job: dict[str, Any],
                  folder: Path) -> dict[str, Any]:  # fmt: skip
        """The products of *outs*: in a worker process, as the members were (see
        :class:`DrillProducts`), or in this thread with ``workers=0``."""
        from emtwin.batch.runner import execute

        name = self.session.scenario.name
        if self.workers == 0:  # world is the live World itself
            return _products(outs, world, name, job, folder)
        keys = ("id", "at_s", "to_s", "varied", "held", "closed_now")
        task = DrillProducts(tuple(outs), world, name, {k: job[k] for k in keys}, str(folder))
        got: dict[str, Any] = {}
        execute([task], on_start=lambda t: None, on_done=lambda t, out: got.update(out),
                executor=self.executor, workers=1, label="drill forecast products")  # fmt: skip
        if got.get("status") != "done":
            raise ForecastError(f"the forecast's products failed: {got.get('error')}")
        return {k: v for k, v in got.items() if k not in ("status", "wall_s")}

    def close(self) -> None:
        """Remove the scratch folder (the forecasts' files)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


# ---------------------------------------------------------------------------- products


def _products(outs: list[dict[str, Any]], world: Any, name: str, job: dict[str, Any],
              folder: Path) -> dict[str, Any]:  # fmt: skip
    """The products (files in *folder*, and what the page shows) of the members *outs*."""
    from types import SimpleNamespace

    from emtwin.forecast import products as prod
    from emtwin.viz.forecast_report import write_report

    at_s, end_s = float(job["at_s"]), float(job["to_s"])
    depth = np.stack([o["max_depth"] for o in outs]).astype(float)
    hazard = np.stack([o["hazard_class"] for o in outs]).astype(float)
    gauges = prod.gauges_forecast_table([o["gauges"] for o in outs], at_s=at_s,
                                        horizon_s=end_s - at_s)  # fmt: skip
    quantiles = prod.gauge_quantiles(gauges)
    roads = None
    if world.roads is not None and world.roads.n_edges:
        first = np.stack([o["first_closed_s"] for o in outs])
        roads = prod.road_closures(first, world.roads.road_id, until_s=end_s)
    summary = prod.forecast_summary(members=len(outs), at_s=at_s, horizon_s=end_s - at_s,
                                    method="none", varied=job["varied"], held=job["held"],
                                    drill=True)  # fmt: skip
    products = prod.ForecastProducts(rasters=prod.risk_map(depth, hazard), gauges=gauges,
                                     gauge_quantiles=quantiles, roads=roads,
                                     summary=summary)  # fmt: skip
    prod.write_products(folder, products, world)
    write_report(folder, SimpleNamespace(products=products), world,
                 title=f"{name} (drill, from T+{at_s / 3600:.2f} h)")  # fmt: skip
    out: dict[str, Any] = {
        "gauges": _gauge_series(quantiles),
        "fan_charts": _fan_charts(quantiles, at_s),
        "prob_depth_0.3m": _risk_json(products.rasters["prob_depth_0.3m"], world),
        "report": f"/api/forecast/{job['id']}/report.html",
    }
    if roads is not None:  # the roads open now that may close within the horizon
        top = roads[(roads["p_closed"] > 0) & ~roads["road_id"].astype(str).isin(
            job["closed_now"])].sort_values("p_closed", ascending=False).head(10)
        out["roads"] = [{"road_id": str(r.road_id), "p_closed": round(float(r.p_closed), 3),
                         "median_closure_s": _num(r.median_closure_if_closed_s)}
                        for r in top.itertuples()]  # fmt: skip
    return out


def _num(v: Any) -> float | None:
    v = float(v)
    return round(v, 3) if math.isfinite(v) else None


def _gauge_series(q: Any) -> list[dict[str, Any]]:
    """Each gauge's and quantity's quantiles as arrays over time (m)."""
    out = []
    for (g, qty), rows in q.groupby(["gauge", "quantity"], sort=False):
        rows = rows.sort_values("time_s")
        item: dict[str, Any] = {"gauge": str(g), "quantity": str(qty),
                                "time_s": [float(t) for t in rows["time_s"]]}  # fmt: skip
        for col in ("mean", "p5", "p50", "p95"):
            item[col] = [round(float(v), 4) for v in rows[col]]
        out.append(item)
    return out


def _fan_charts(q: Any, at_s: float) -> dict[str, str]:
    """A fan chart of each gauge's level (PNG data URIs; :mod:`emtwin.viz.forecast_charts`)."""
    import base64

    from emtwin.viz.charts import png_bytes
    from emtwin.viz.forecast_charts import fan_charts

    return {g: "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")
            for g, fig in fan_charts(q, at_s=at_s).items()}  # fmt: skip


def _risk_json(prob: np.ndarray, world: Any) -> dict[str, Any]:
    """The probability map for the page: values (max-pooled blocks), an image and its corners."""
    from affine import Affine
    from matplotlib import colormaps
    from PIL import Image

    from emtwin.viz._common import grid_corners_lonlat, max_pool, png_data_uri

    t = world.terrain
    nrows, ncols = t.shape
    f = max(1, math.ceil(math.sqrt(nrows * ncols / JSON_CELLS)))
    p = max_pool(np.where(t.mask, prob, np.nan), f)
    rgba = (colormaps["YlOrRd"](np.nan_to_num(p, nan=0.0)) * 255).astype(np.uint8)
    rgba[..., 3] = np.where(np.isfinite(p) & (p > 0), 200, 0).astype(np.uint8)
    bounds = grid_corners_lonlat(world.crs, t.transform @ Affine.scale(f, f), p.shape)
    values = [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in p]
    wet = np.isfinite(prob) & t.mask
    return {"factor": f, "shape": list(p.shape), "values": values, "bounds": bounds,
            "image": png_data_uri(Image.fromarray(rgba, mode="RGBA")),
            "max": _num(np.nanmax(np.where(wet, prob, np.nan))) if wet.any() else None,
            "cells_over_half": int((np.where(wet, prob, 0.0) >= 0.5).sum()),
            "cell_area_m2": float(abs(t.transform.a * t.transform.e))}  # fmt: skip
