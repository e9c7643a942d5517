"""Batches and plan comparisons: from scenario files to a results table, resumably.

:func:`run_batch` runs one scenario (with its plan overlays) *runs* times, each run
with its own seed and its own draw of the ``uncertain`` values; :func:`run_comparison`
runs a base scenario and every plan on the same seeds and the same draws. Both keep a
catalog in the output folder (:mod:`emtwin.sim.batch.catalog`), commit every run as it
finishes, skip runs already done when the same command is run again, and write
``results.parquet`` (one row per run) and ``batch.json`` (what was run).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emtwin import __version__
from emtwin.errors import ScenarioError
from emtwin.scenarios.loader import load_scenario, locate, merge, read_yaml, resolve_paths
from emtwin.scenarios.models import Scenario
from emtwin.sim.batch import uncertain as unc
from emtwin.sim.batch.catalog import Catalog, RunRow
from emtwin.sim.batch.compare import comparison_table, headline
from emtwin.sim.batch.index import describe, index_columns
from emtwin.sim.batch.runner import WorkerLostError, execute
from emtwin.sim.batch.worker import RunTask, keep_folder

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
        Why the batch stopped early (a worker died), else None.
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


@dataclass
class ComparisonResult:
    """A comparison: its batch, the statistics table and the one-line headline."""

    batch: BatchResult
    stats: pd.DataFrame
    headline: str
    base: str
    plans: list[str]


def _fingerprint(plans: Sequence[PlanSpec], runs: int) -> str:
    doc = {"format": 1, "runs": runs, "plans": [
        [p.label, p.scenario.model_dump(mode="json", by_alias=True)] for p in plans]}  # fmt: skip
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _describe(plans: Sequence[PlanSpec], runs: int) -> str:
    sc = plans[0].scenario
    names = ", ".join(p.label or "(no plan)" for p in plans)
    return (f"scenario '{sc.name}' (seed {sc.seed}, files {', '.join(plans[0].files)}), "
            f"{runs} runs, plans: {names}")  # fmt: skip


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
) -> BatchResult:
    """Run every plan *runs* times on shared seeds and draws; resume what a folder holds.

    Parameters
    ----------
    plans
        The first is the base: its seed and ``uncertain`` section give every run's seed
        and draw, applied alike to every plan.
    runs
        Runs per plan, >= 1.
    out_dir
        The batch folder (created; an existing one is resumed if it holds this batch).
    workers, executor, scheduler
        As for :func:`emtwin.sim.batch.runner.execute`.
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
        :class:`~emtwin.sim.batch.worker.RunTask`; the CLI passes ``emtwin.viz:run_writers``).

    Raises
    ------
    ScenarioError
        Bad ``uncertain`` key paths or distributions, or ``runs < 1``.
    CatalogError
        When the folder holds another batch.
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
    cat = Catalog(folder, fingerprint=_fingerprint(plans, runs), describe=_describe(plans, runs))
    try:
        cat.add((p.label, i, seeds[i], {q.path: q.record(draws[i][q.path]) for q in params})
                for i in range(runs) for p in plans)  # fmt: skip (rows already there are kept)
        _write_meta(folder, plans, runs, method, params)
        cat.recover(retry_failed=retry_failed)
        by_key = {p.label: p for p in plans}
        todo = [r for r in cat.rows("pending")]
        todo.sort(key=lambda r: (r.run, [p.label for p in plans].index(r.plan)))
        before = cat.counts()
        tasks = [RunTask(
            plan=r.plan, run=r.run, seed=r.seed, data=by_key[r.plan].data,
            base_dir=by_key[r.plan].base_dir, changes=changes[r.plan, r.run], keep=keep,
            out_dir=keep_folder(folder, r.plan, r.run) if keep else None,
            allow_code=allow_code, components=tuple(components),
            writers=writers,
        ) for r in todo]  # fmt: skip
        failures: list[tuple[str, int, str]] = []
        warns: Counter[str] = Counter()

        def on_start(t: RunTask) -> None:
            cat.started(t.plan, t.run)

        def on_done(t: RunTask, out: dict[str, Any]) -> None:
            cat.finished(t.plan, t.run, out)
            warns.update(out.get("warnings") or [])
            if out.get("status") != "done":
                failures.append((t.plan, t.run, str(out.get("error"))))

        interrupted = None
        try:
            execute(tasks, on_start=on_start, on_done=on_done, executor=executor,
                    workers=workers, scheduler=scheduler, progress=progress, console=console,
                    total=len(plans) * runs, done=before["done"] + before["failed"],
                    label=base.scenario.name)  # fmt: skip
        except WorkerLostError as exc:
            cat.crashed((t.plan, t.run) for t in exc.runs)
            interrupted = str(exc)
        finally:
            table = results_table(cat.rows(), params, base.scenario, with_plan=len(plans) > 1
                                  or bool(base.label))  # fmt: skip
            _write_table(table, folder / "results.parquet")
        counts = cat.counts()
    finally:
        cat.close()
    counts["pending"] += counts.pop("running", 0)
    return BatchResult(
        folder=folder, table=table, counts=counts,
        executed=len(failures) + (counts["done"] - before["done"]),
        skipped=before["done"], failures=failures, warnings=dict(warns),
        index_note=describe(table, base.scenario.response_index), interrupted=interrupted,
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
    **options: Any,
) -> ComparisonResult:
    """Run the base and every plan on the same *runs* seeds and draws; compare them.

    Writes ``results.parquet`` (every run of every plan), ``comparison.parquet`` and
    ``comparison.csv`` (:func:`emtwin.sim.batch.compare.comparison_table`) to the
    folder (default ``out/NAME-compare``). Options as for :func:`run_ensemble`.

    Raises
    ------
    ScenarioError
        When no plan is given, or a plan sets ``uncertain`` or ``response_index``
        (they belong to the base: every plan shares them).
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
    batch = run_ensemble(specs, runs=runs, out_dir=folder, **options)
    stats = comparison_table(batch.table, base="base")
    stats.to_parquet(folder / "comparison.parquet", index=False)
    stats.to_csv(folder / "comparison.csv", index=False, float_format="%.10g")
    return ComparisonResult(batch, stats, headline(stats, base="base"), "base", labels)
