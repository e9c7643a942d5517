"""Batches and plan comparisons: from scenario files to a results table, resumably.

:func:`run_batch` runs one scenario (with its plan overlays) *runs* times, each run
with its own seed and its own draw of the ``uncertain`` values; :func:`run_comparison`
runs a base scenario and every plan on the same seeds and the same draws. Both keep a
catalog in the output folder (:mod:`emtwin.batch.catalog`), commit every run as it
finishes, skip runs already done when the same command is run again, and write
``results.parquet`` (one row per run) and ``batch.json`` (what was run).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emtwin import __version__
from emtwin.batch import uncertain as unc
from emtwin.batch.catalog import MAX_CRASHES, Catalog, RunRow
from emtwin.batch.compare import comparison_table, headline
from emtwin.batch.flood_cache import CACHE_DIR
from emtwin.batch.index import describe, index_columns
from emtwin.batch.runner import WorkerLostError, execute
from emtwin.batch.worker import RunTask, keep_folder
from emtwin.errors import ScenarioError
from emtwin.scenarios.loader import load_scenario, locate, merge, read_yaml, resolve_paths
from emtwin.scenarios.models import Scenario

__all__ = [
    "PlanSpec",
    "BatchResult",
    "ComparisonResult",
    "load_plan",
    "run_ensemble",
    "run_batch",
    "run_comparison",
    "results_table",
    "KEEP",
]

#: Values of ``keep``: which per-run output files are written.
KEEP = ("maps", "all")
#: ``results.parquet`` is rewritten at most every WRITE_FACTOR times its last write's time.
WRITE_FACTOR = 20.0
#: Keys a compared plan may not set: every plan shares the base's uncertainties and index.
_BASE_ONLY = ("uncertain", "response_index")


@dataclass
class PlanSpec:
    """One scenario of a batch: its label, raw merged dict and validated Scenario.

    ``data`` is the scenario as written with the plans laid over it (their data paths
    made absolute); ``base_dir`` resolves the base file's relative paths.
    """

    label: str
    data: dict[str, Any]
    base_dir: str
    scenario: Scenario
    files: tuple[str, ...] = ()


def load_plan(
    source: str | Path,
    *,
    plans: Sequence[str | Path] = (),
    overrides: Mapping[str, Any] | None = None,
    label: str = "",
) -> PlanSpec:
    """Read a scenario (file or built-in name) with *plans* laid over it, as a batch needs it.

    Raises
    ------
    ScenarioError
        With every problem, as :func:`emtwin.scenarios.load_scenario` reports them.
    """
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    scenario = load_scenario(source, plans=plans, overrides=over)
    path = locate(source)
    data, _ = read_yaml(path)
    for plan in plans:
        pdata, _ = read_yaml(Path(plan))
        data = merge(data, resolve_paths(pdata, Path(plan).resolve().parent))
    data = merge(data, over)
    files = (str(path), *map(str, plans))
    return PlanSpec(label, data, str(path.resolve().parent), scenario, files)


@dataclass
class BatchResult:
    """What a batch (or the batch of a comparison) left in its folder.

    Attributes
    ----------
    folder
        The batch folder (``results.parquet``, ``catalog.sqlite``, ``batch.json``).
    table
        The results table (also in ``results.parquet``).
    counts
        Runs by state after this call: done, failed, pending.
    executed
        Runs this call ran; ``skipped``: runs already done before it.
    failures
        ``(plan, run, error)`` of the runs that failed in this call.
    warnings
        Distinct warnings the runs of this call logged, with how many runs logged each.
    index_note
        Which parts the response index was built from (and which were left out).
    interrupted
        Why the batch stopped early (a worker process could not start), else None.
    reused
        Runs copied from another batch folder (``reuse``) instead of run.
    floods
        How this call's runs got their flood: ``{recorded, replayed, recomputed, none,
        off: runs}`` (see :mod:`emtwin.batch.flood_cache`).
    """

    folder: Path
    table: pd.DataFrame
    counts: dict[str, int]
    executed: int = 0
    skipped: int = 0
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)
    index_note: str = ""
    interrupted: str | None = None
    reused: int = 0
    floods: dict[str, int] = field(default_factory=dict)


@dataclass
class ComparisonResult:
    """A comparison: its batch, the statistics table and the one-line headline."""

    batch: BatchResult
    stats: pd.DataFrame
    headline: str
    base: str
    plans: list[str]


def _legacy_fingerprint(plans: Sequence[PlanSpec], runs: int) -> str:
    """The fingerprint of a whole batch in catalogs written before per-plan fingerprints."""
    doc = {"format": 1, "runs": runs, "plans": [
        [p.label, p.scenario.model_dump(mode="json", by_alias=True)] for p in plans]}  # fmt: skip
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _fingerprint(plan: PlanSpec, runs: int, method: str) -> str:
    """What decides a plan's runs: its merged scenario (seed and `uncertain:` included), the
    folder its relative paths start from and, for Latin hypercube draws (which depend on
    the number of runs), the number of runs. Monte Carlo run *i* depends on *i* alone, so
    such a batch can grow."""
    doc = {"format": 2, "base_dir": plan.base_dir, "runs": runs if method == "lhs" else None,
           "scenario": plan.scenario.model_dump(mode="json", by_alias=True)}  # fmt: skip
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _describe(plan: PlanSpec, runs: int, method: str) -> str:
    sc = plan.scenario
    text = f"scenario '{sc.name}' (seed {sc.seed}, files {', '.join(plan.files)})"
    if plan.label:
        text += f", plan {plan.label}"
    return text + (f", Latin hypercube draws for {runs} runs" if method == "lhs" else "")


class _TableWriter:
    """Keeps ``results.parquet`` current: rewritten (atomically) after every finished run,
    unless writing it is slow against the time between runs: then at most every
    :data:`WRITE_FACTOR` times its last write's duration (the executor's ticks finish a
    deferred write)."""

    def __init__(self, build: Any, path: Path) -> None:
        self.build, self.path = build, path
        self.dirty = False
        self.last = -math.inf
        self.cost = 0.0
        self.writes = 0

    def changed(self) -> None:
        self.dirty = True
        self.flush()

    def flush(self, *, force: bool = False) -> pd.DataFrame | None:
        if not (self.dirty or force):
            return None
        t0 = time.monotonic()
        if not force and t0 - self.last < WRITE_FACTOR * self.cost:
            return None
        table = self.build()
        _write_table(table, self.path)
        self.last = time.monotonic()
        self.cost = self.last - t0
        self.dirty = False
        self.writes += 1
        return table


def results_table(rows: Sequence[RunRow], params: Sequence[unc.Parameter],
                  scenario: Scenario, *, with_plan: bool) -> pd.DataFrame:  # fmt: skip
    """The results table: one row per run; run, seed, sampled values, status, metrics, index.

    Columns: ``plan`` (comparisons only), ``run``, ``seed``, ``status`` (done, failed,
    pending), ``wall_s``, ``error``, ``param.PATH`` / ``scale.PATH`` (the draw, SI or a
    multiplier), ``index.*`` (the response index and its parts), then the run's
    flattened numeric metrics (``flood.peak_volume_m3``, ...); NaN where missing.
    """
    recs = []
    for r in rows:
        rec: dict[str, Any] = {"plan": r.plan, "run": r.run, "seed": r.seed,
                               "status": "pending" if r.status == "running" else r.status,
                               "wall_s": r.wall_s if r.wall_s is not None else math.nan,
                               "error": r.error}  # fmt: skip
        for p in params:
            rec[p.column] = r.params.get(p.path)
        recs.append(rec)
    head = pd.DataFrame(recs, columns=["plan", "run", "seed", "status", "wall_s", "error",
                                       *[p.column for p in params]])  # fmt: skip
    metrics = pd.DataFrame([
        {k: (math.nan if v is None else v) for k, v in (r.metrics or {}).items()} for r in rows
    ], index=head.index, dtype=float)  # fmt: skip
    ix = index_columns(metrics, scenario.response_index)
    ix[head["status"] != "done"] = math.nan
    out = pd.concat([head, ix, metrics], axis=1)
    out = out.astype({"run": "int64", "seed": "int64"})
    return out if with_plan else out.drop(columns="plan")


def _write_table(table: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)


def run_ensemble(
    plans: Sequence[PlanSpec],
    *,
    runs: int,
    out_dir: str | Path,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    keep: str | None = None,
    allow_code: bool = False,
    progress: bool = False,
    console: Any = None,
    retry_failed: bool = False,
    components: Sequence[type] = (),
    writers: str | None = None,
    reuse: Mapping[str, str | Path] | None = None,
    flood_reuse: bool = True,
) -> BatchResult:
    """Run every plan *runs* times on shared seeds and draws; resume what a folder holds.

    Parameters
    ----------
    plans
        The first is the base: its seed and ``uncertain`` section give every run's seed
        and draw, applied alike to every plan.
    runs
        Runs per plan, >= 1. A folder holding fewer runs of the same plans grows (only
        the new runs are run) unless the draws are Latin hypercube (they depend on
        *runs*); one holding more shows its first *runs*.
    out_dir
        The batch folder (created; an existing one is resumed if it holds these plans;
        plans new to it are added).
    workers, executor, scheduler
        As for :func:`emtwin.batch.runner.execute`.
    keep
        None (no per-run folders), ``maps`` (summary, scenario, rasters, roads, map) or
        ``all`` (the whole output folder), in ``OUT/runs/[PLAN/]RUN``.
    allow_code
        Whether Python code named in the scenario may run.
    progress, console
        Show a progress bar over the runs (on a terminal), on this rich console.
    retry_failed
        Run again the runs a previous call recorded as failed.
    components
        Extra component classes registered in the workers (plugins, tests).
    writers
        ``"module:function"`` giving a run's extra output writers when *keep* (see
        :class:`~emtwin.batch.worker.RunTask`; the CLI passes ``emtwin.viz:run_writers``).
    reuse
        ``{plan label: batch folder}``: the finished runs of that folder's batch of the
        same scenario (same fingerprint: scenario, seeds, draws) are copied in, not run.
    flood_reuse
        Compute a flood once and replay it in every run and plan with the same flood
        inputs (:mod:`emtwin.batch.flood_cache`; the cache is ``OUT/flood-cache``).
        False: every run computes its own flood (the results are the same).

    Raises
    ------
    ScenarioError
        Bad ``uncertain`` key paths or distributions, or ``runs < 1``.
    CatalogError
        When the folder holds another batch under one of these labels, or a *reuse*
        folder holds no batch of that plan.
    """
    if runs < 1:
        raise ScenarioError(f"--runs: expected at least 1 run, got {runs}")
    if keep is not None and keep not in KEEP:
        raise ScenarioError(f"--keep: expected one of {', '.join(KEEP)}, got {keep!r}")
    base = plans[0]
    params = unc.parameters(base.scenario, label=base.label or None)
    for p in plans[1:]:
        unc.parameters(p.scenario, label=p.label)
    method = base.scenario.uncertain.method if base.scenario.uncertain else "monte_carlo"
    seed = int(base.scenario.seed)
    draws = unc.sample(params, seed=seed, runs=runs, method=method)
    seeds = [unc.run_seed(seed, i) for i in range(runs)]
    changes = {}
    for p in plans:
        for i in range(runs):
            ch = unc.edits(p.scenario, params, draws[i])
            if i == 0:
                try:
                    unc.apply_edits(p.data, ch)
                except ValueError as exc:
                    raise ScenarioError(f"uncertain.parameters: {exc}",
                                        file=p.files[0] if p.files else None) from None
            changes[p.label, i] = tuple(ch)

    folder = Path(out_dir)
    labels = [p.label for p in plans]
    cat = Catalog(folder, plans={p.label: _fingerprint(p, runs, method) for p in plans},
                  describe={p.label: _describe(p, runs, method) for p in plans},
                  legacy=_legacy_fingerprint(plans, runs))  # fmt: skip
    try:
        reused = sum(cat.reuse(src, fingerprint=_fingerprint(by, runs, method), label=lab,
                               runs=runs)
                     for lab, src in (reuse or {}).items()
                     for by in plans if by.label == lab)  # fmt: skip
        cat.add((p.label, i, seeds[i], {q.path: q.record(draws[i][q.path]) for q in params})
                for i in range(runs) for p in plans)  # fmt: skip (rows already there are kept)
        _write_meta(folder, plans, runs, method, params)
        for stale in folder.glob(".results.parquet.tmp-*"):  # a killed batch's; we hold the lock
            stale.unlink(missing_ok=True)
        cat.recover(retry_failed=retry_failed)

        def mine() -> list[RunRow]:
            """The rows of this batch: its plans, runs below *runs* (a folder may hold more)."""
            return [r for r in cat.rows() if r.plan in labels and r.run < runs]

        by_key = {p.label: p for p in plans}
        todo = [r for r in mine() if r.status == "pending"]
        todo.sort(key=lambda r: (r.run, labels.index(r.plan)))
        before = Counter(r.status for r in mine())
        tasks = [RunTask(
            plan=r.plan, run=r.run, seed=r.seed, data=by_key[r.plan].data,
            base_dir=by_key[r.plan].base_dir, changes=changes[r.plan, r.run], keep=keep,
            out_dir=keep_folder(folder, r.plan, r.run) if keep else None,
            allow_code=allow_code, components=tuple(components),
            writers=writers,
            flood_cache=str((folder / CACHE_DIR).resolve()) if flood_reuse else None,
        ) for r in todo]  # fmt: skip
        floods: Counter[str] = Counter()
        failures: list[tuple[str, int, str]] = []
        warns: Counter[str] = Counter()
        with_plan = len(plans) > 1 or bool(base.label)
        writer = _TableWriter(lambda: results_table(mine(), params, base.scenario,
                                                    with_plan=with_plan),
                              folder / "results.parquet")  # fmt: skip

        def on_start(t: RunTask) -> None:
            cat.started(t.plan, t.run)

        def on_done(t: RunTask, out: dict[str, Any]) -> None:
            cat.finished(t.plan, t.run, out)
            warns.update(out.get("warnings") or [])
            if out.get("flood"):
                floods[out["flood"]] += 1
            if out.get("status") != "done":
                failures.append((t.plan, t.run, str(out.get("error"))))
            writer.changed()

        def on_lost(t: RunTask, why: str) -> bool:
            return cat.crashed(t.plan, t.run) < MAX_CRASHES

        interrupted = None
        try:
            execute(tasks, on_start=on_start, on_done=on_done, on_lost=on_lost,
                    on_tick=writer.flush, executor=executor, workers=workers,
                    scheduler=scheduler, progress=progress, console=console,
                    total=len(plans) * runs, done=before["done"] + before["failed"],
                    label=base.scenario.name)  # fmt: skip
        except WorkerLostError as exc:
            interrupted = str(exc)
        finally:
            table = writer.flush(force=True)
        after = Counter(r.status for r in mine())
    finally:
        cat.close()
    counts = {"pending": after["pending"] + after["running"], "done": after["done"],
              "failed": after["failed"]}  # fmt: skip
    return BatchResult(
        folder=folder, table=table, counts=counts,
        executed=len(failures) + (counts["done"] - before["done"]),
        skipped=before["done"], failures=failures, warnings=dict(warns),
        index_note=describe(table, base.scenario.response_index), interrupted=interrupted,
        reused=reused, floods=dict(floods),
    )  # fmt: skip


def _write_meta(folder: Path, plans: Sequence[PlanSpec], runs: int, method: str,
                params: Sequence[unc.Parameter]) -> None:  # fmt: skip
    sc = plans[0].scenario
    doc = {
        "emtwin": __version__, "scenario": sc.name, "seed": sc.seed, "runs": runs,
        "method": method, "plans": {p.label: list(p.files) for p in plans},
        "parameters": [{"path": p.path, "column": p.column, "kind": p.kind, "mode": p.mode,
                        "distribution": p.dist, "args": p.args, "choices": list(p.choices),
                        "weights": list(p.weights)} for p in params],
        "run_seeds": "SeedSequence(seed, spawn_key=(0x5EED, run)), 63 bits",
    }  # fmt: skip
    (folder / "batch.json").write_text(json.dumps(doc, indent=2, default=str) + "\n",
                                       encoding="utf-8")  # fmt: skip


def run_batch(
    scenario: str | Path,
    *,
    runs: int,
    plans: Sequence[str | Path] = (),
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    **options: Any,
) -> BatchResult:
    """Run one scenario (with *plans* laid over it) *runs* times; see :func:`run_ensemble`.

    The default folder is ``out/NAME-batch``.
    """
    spec = load_plan(scenario, plans=plans, overrides=overrides)
    folder = out_dir or Path("out") / f"{spec.scenario.name}-batch"
    return run_ensemble([spec], runs=runs, out_dir=folder, **options)


def plan_labels(files: Sequence[str | Path], base: str = "base") -> list[str]:
    """Labels of compared plans: their file stems, made unique (``a``, ``a-2``)."""
    seen: Counter[str] = Counter([base])
    out = []
    for f in files:
        stem = Path(f).stem or "plan"
        seen[stem] += 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def run_comparison(
    base: str | Path,
    plans: Sequence[str | Path],
    *,
    runs: int,
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    base_batch: str | Path | None = None,
    **options: Any,
) -> ComparisonResult:
    """Run the base and every plan on the same *runs* seeds and draws; compare them.

    Writes ``results.parquet`` (every run of every plan), ``comparison.parquet`` and
    ``comparison.csv`` (:func:`emtwin.batch.compare.comparison_table`) to the
    folder (default ``out/NAME-compare``). Options as for :func:`run_ensemble`.

    Every plan's runs are kept in the folder's catalog: adding a plan to a comparison
    runs only the new plan, and more (Monte Carlo) runs only the new runs. *base_batch*,
    the folder of an ``emtwin batch`` of the same base scenario (same seed, draws and
    overrides), lends its finished runs as the base's runs, which are then not run again.

    Raises
    ------
    ScenarioError
        When no plan is given, or a plan sets ``uncertain`` or ``response_index``
        (they belong to the base: every plan shares them).
    CatalogError
        When *base_batch* is not a batch folder of this base.
    """
    if not plans:
        raise ScenarioError("--plan: give at least one plan to compare with the base")
    for f in plans:
        data, lines = read_yaml(Path(f))
        for key in _BASE_ONLY:
            if key in data:
                raise ScenarioError(
                    f"{f}:{lines.get((key,), '?')}: {key}: a compared plan cannot set it; every "
                    f"plan shares the base's `{key}` (common random numbers and one index). "
                    "Move it into the base scenario"
                )
    labels = plan_labels(plans)
    specs = [load_plan(base, overrides=overrides, label="base")]
    specs += [load_plan(base, plans=[f], overrides=overrides, label=lab)
              for f, lab in zip(plans, labels, strict=True)]  # fmt: skip
    folder = Path(out_dir or Path("out") / f"{specs[0].scenario.name}-compare")
    reuse = {"base": base_batch} if base_batch is not None else None
    batch = run_ensemble(specs, runs=runs, out_dir=folder, reuse=reuse, **options)
    stats = comparison_table(batch.table, base="base")
    stats.to_parquet(folder / "comparison.parquet", index=False)
    stats.to_csv(folder / "comparison.csv", index=False, float_format="%.10g")
    return ComparisonResult(batch, stats, headline(stats, base="base"), "base", labels)
