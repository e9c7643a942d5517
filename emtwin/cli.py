"""The ``emtwin`` command.

Exit codes: 0 success; 1 the scenario, its data or the run failed (the message
says which file, key and problem); 2 the command line itself is wrong (unknown
option, missing argument). ``--debug`` shows the Python traceback.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from emtwin import __version__
from emtwin.errors import EmtwinError, ScenarioError

if TYPE_CHECKING:
    from emtwin.batch import BatchResult, ComparisonResult

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="emtwin: play floods, evacuations and emergency response forward on a digital twin.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        out.print(f"emtwin {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show info logs.")] = False,
) -> None:
    """emtwin: an emergency-management digital-twin simulation engine."""
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_time=False, show_path=debug)],
        force=True,
    )
    logging.captureWarnings(True)


def _fail(exc: BaseException) -> None:
    """Print a user-facing error and exit 1 (traceback only with --debug)."""
    if _state["debug"]:
        err.print_exception()
    if isinstance(exc, ScenarioError) and len(exc.errors) > 1:
        where = f" in {exc.file}" if exc.file else ""
        err.print(f"[red]error:[/red] {len(exc.errors)} problems{where}:")
        for e in exc.errors:
            err.print(f"  - {e}", markup=False)
    elif isinstance(exc, EmtwinError):
        err.print("[red]error:[/red] ", end="")
        err.print(str(exc), markup=False)
    else:
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: ", end="")
        err.print(str(exc), markup=False)
        if not _state["debug"]:
            err.print("(this is a bug in emtwin; run again with --debug for the traceback)")
    raise typer.Exit(1)


PlanOpt = Annotated[
    list[Path] | None,
    typer.Option("--plan", "-p", help="A partial scenario laid over the base (repeatable)."),
]
SeedOpt = Annotated[int | None, typer.Option(help="Override the scenario seed.")]
DurationOpt = Annotated[
    str | None, typer.Option(help="Override the duration (e.g. 2h, 90min).")
]
AllowCodeOpt = Annotated[
    bool, typer.Option("--allow-code", help="Allow Python code named in the scenario to run.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; "
                                         "`run` prints one line.")]


class Basemap(StrEnum):
    """Background map tiles of ``map.html`` (``emtwin.viz.map.BASEMAPS``)."""

    light = "light"
    dark = "dark"
    road = "road"


class Backend(StrEnum):
    """Where the flood kernel runs (``emtwin run --backend``)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a built-in name.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: out/NAME].")
    ] = None,
    seed: SeedOpt = None,
    duration: DurationOpt = None,
    plan: PlanOpt = None,
    allow_code: AllowCodeOpt = False,
    quiet: QuietOpt = False,
    backend: Annotated[
        Backend | None,
        typer.Option("--backend", help="Flood kernel backend, overriding the scenario's "
                     "hazards[0].backend: auto (CUDA if a GPU is found), cpu or cuda."),
    ] = None,
    basemap: Annotated[
        Basemap | None,
        typer.Option("--basemap", help="Background tiles of map.html, fetched from the network "
                     "(CARTO) when the map is opened [default: none, the map works offline]."),
    ] = None,
    checkpoint_at: Annotated[
        str | None,
        typer.Option("--checkpoint-at", help="Save the run's whole state at this simulated "
                     "time (e.g. 1h) into --checkpoint, then carry on."),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="The checkpoint file to write.")
    ] = None,
) -> None:
    """Run a scenario and write its results to an output folder."""
    from emtwin.scenarios import load_scenario
    from emtwin.sim import Simulation
    from emtwin.sim.outputs import prepare_out_dir, write_results

    overrides = {"seed": seed, "duration": duration}
    at_s = _checkpoint_options(checkpoint_at, checkpoint)
    try:
        sc = load_scenario(scenario, plans=plan or [], overrides=overrides)
        if backend is not None and sc.flood is not None:
            sc.flood.backend = backend.value
        target = prepare_out_dir(out_dir or Path("out") / sc.name)  # before the run, not after
        if at_s is not None and at_s > sc.duration:
            raise ScenarioError(f"--checkpoint-at: {checkpoint_at} is after the end of the run "
                                f"({sc.duration:g} s)")  # fmt: skip
        sim = Simulation(sc, allow_code=allow_code)
        if at_s is not None:
            sim.run_until(at_s)
            sim.checkpoint().save(checkpoint)
            err.print(f"checkpoint at {at_s:g} s written to {checkpoint}")
        results = sim.run(progress=not quiet)
        from emtwin.viz import run_writers

        writers = run_writers(results, basemap=basemap.value if basemap else None)
        folder = write_results(results, target, extra=writers)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message and exit 1
        _fail(exc)
    _run_report(results.summary, sc, folder, quiet)


def _run_report(s: dict, sc: object, folder: Path, quiet: bool) -> None:
    """What `emtwin run` prints at the end: one line with --quiet, else the figures and
    where to look (report.html and the `emtwin view` command)."""
    from emtwin.viz.headline import one_line

    if quiet:
        out.print(f"{folder}: {one_line(s)}", markup=False)
        return
    out.print(f"[bold]{sc.name}[/bold]: seed {sc.seed}, {sc.duration / 3600:g} h simulated "
              f"in {s['run']['wall_s']:.1f} s wall time")
    for section in ("flood", "evacuation", "dispatch"):
        vals = {k: v for k, v in (s.get(section) or {}).items() if v is not None}
        if vals:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(vals.items())[:6])
            out.print(f"  {section}: {shown}")
    out.print(f"Results are in {folder}")
    page = next((folder / n for n in ("report.html", "map.html") if (folder / n).is_file()), None)
    if page is not None:
        out.print(f"Report: {page}; open it with: emtwin view {folder}", markup=False)
    out.print(f"Headline figures: emtwin summary {folder}", markup=False)


def _checkpoint_options(at: str | None, path: Path | None) -> float | None:
    """The checkpoint time, s, from ``--checkpoint-at`` / ``--checkpoint`` (both or neither)."""
    from emtwin.scenarios._types import parse_duration

    if at is None and path is None:
        return None
    if at is None or path is None:
        raise typer.BadParameter("give both --checkpoint-at and --checkpoint")
    try:
        at_s = parse_duration(at)
    except ValueError as exc:
        raise typer.BadParameter(f"--checkpoint-at: {exc}") from None
    return at_s


@app.command()
def resume(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file (emtwin run "
                                                    "--checkpoint-at T --checkpoint FILE).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: out/NAME].")
    ] = None,
    plan: PlanOpt = None,
    allow_code: AllowCodeOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Continue a run from a checkpoint; with --plan, a fork that changes what comes next.

    A fork's plan may set only `actions` (at or after the checkpoint time, or
    triggered by `when:`); they replace the actions still to come. The fork
    continues the original's random streams, so differences are due to the plan.
    """
    from emtwin.sim import Simulation
    from emtwin.sim.outputs import prepare_out_dir, write_results

    try:
        sim = Simulation.from_checkpoint(checkpoint, plans=plan or [], allow_code=allow_code)
        sc = sim.scenario
        target = prepare_out_dir(out_dir or Path("out") / sc.name)  # before the run
        results = sim.run(progress=not quiet)
        from emtwin.viz import run_writers

        folder = write_results(results, target, extra=run_writers(results))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message and exit 1
        _fail(exc)
    out.print(f"[bold]{sc.name}[/bold]: resumed at {sim.resumed_at_s:g} s from {checkpoint}"
              f"{' with ' + ', '.join(map(str, plan)) if plan else ''}; results in {folder}")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


@app.command()
def validate(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a built-in name.")],
    plan: PlanOpt = None,
    world: Annotated[
        bool, typer.Option("--world/--no-world", help="Also build the World from the data "
                           "and set up the components on it.")
    ] = True,
    allow_code: AllowCodeOpt = False,
) -> None:
    """Check a scenario (and plans): print every problem, or a short summary.

    With the World, the components are set up as ``emtwin run`` sets them up
    (``--allow-code`` imports a user dispatch policy to check it), but nothing runs.
    """
    from emtwin.scenarios import load_scenario
    from emtwin.sim.engine import check_actions

    try:
        sc = load_scenario(scenario, plans=plan or [])
        problems = check_actions(sc)
        if problems:
            raise ScenarioError(problems, file=sc.source)
        summary = None
        if world:
            from emtwin.sim import Simulation

            if sc.flood is not None and sc.flood.backend == "auto":
                # nothing runs: no GPU probe, and no "no CUDA GPU, using the CPU" notice
                sc.flood.backend = "cpu"
            summary = Simulation(sc, allow_code=allow_code).world.summary()
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    out.print(f"[green]valid[/green]: {sc.source}")
    out.print(f"  name: {sc.name}   seed: {sc.seed}   duration: {sc.duration / 3600:g} h")
    parts = [h.type for h in sc.hazards]
    if sc.evacuation:
        parts.append("evacuation")
    if sc.response:
        parts.append(f"response ({sum(r.count for r in sc.response.resources)} units)")
    out.print(f"  components: {', '.join(parts) or 'none (world only)'}")
    out.print(f"  actions: {len(sc.actions)}")
    if summary:
        out.print(
            f"  world: {summary['crs']}, {summary['cells']:,} cells"
            f" of {summary['cell_size_m']:g} m,"
            f" {summary['edges']:,} road edges ({summary['road_km']:.1f} km),"
            f" {summary['people']:,.0f} people, {summary['shelters']} shelters,"
            f" {summary['stations']} stations, {summary['hospitals']} hospitals"
        )


@app.command()
def summary(
    outdir: Annotated[Path, typer.Argument(help="An output folder of `emtwin run`.")],
) -> None:
    """Print a run's headline figures (times as h:mm) from its summary.json."""
    from rich.table import Table

    from emtwin.viz.headline import headline_rows, read_summary

    try:
        s = read_summary(outdir)
        rows = headline_rows(s)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    run = s.get("run") or {}
    table = Table(title=f"{run.get('scenario', outdir)} (seed {run.get('seed', '?')}): {outdir}",
                  title_justify="left")  # fmt: skip
    table.add_column("section")
    table.add_column("figure")
    table.add_column("value", justify="right")
    last = None
    for section, key, text in rows:
        table.add_row(section if section != last else "", key, text)
        last = section
    out.print(table)


@app.command()
def scenarios() -> None:
    """List the built-in scenarios, one line each."""
    from emtwin.scenarios import builtin_scenarios

    for name, desc in builtin_scenarios().items():
        out.print(f"[bold]{name:<12}[/bold] {desc}")


@app.command()
def view(
    outdir: Annotated[Path, typer.Argument(help="An output folder of `emtwin run`.")],
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the folder over HTTP instead of opening a file.")
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to serve on (0: any free port).")
    ] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to bind when serving (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Open a run's report.html in a browser, or serve its folder (only that) with --serve."""
    from emtwin.viz.view import is_loopback, make_server, open_report

    try:
        if not serve:
            page, opened = open_report(outdir)
            if opened:
                out.print(f"Opening {page}")
            else:
                err.print(f"No web browser could be opened here. Open {page} yourself, or "
                          f"serve it with `emtwin view {outdir} --serve` and open the address "
                          "it prints.", markup=False)  # fmt: skip
            return
        server = make_server(outdir, host=host, port=port)
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host}:{bound_port}/"
    if not is_loopback(host):
        err.print(f"[yellow]warning:[/yellow] --host {host} is not a loopback address: anyone "
                  f"who can reach this machine on port {bound_port} can read {outdir.resolve()}")
    out.print(f"Serving {outdir.resolve()} at {url} (Ctrl-C stops)")
    import webbrowser

    if not webbrowser.open(url):
        err.print(f"No web browser could be opened here: open {url} in one.", markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class Executor(StrEnum):
    """Where the runs of a batch go."""

    local = "local"
    dask = "dask"


class Keep(StrEnum):
    """Which per-run output files a batch keeps."""

    maps = "maps"
    all = "all"


RunsOpt = Annotated[
    int, typer.Option("--runs", "-n", min=1, help="Runs per plan, each with its own seed and draw.")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", "-w", min=0,
                 help="Worker processes [default: the CPUs]; 0 runs in this process."),
]  # fmt: skip
ExecutorOpt = Annotated[Executor, typer.Option(help="local (process pool) or dask.")]
SchedulerOpt = Annotated[
    str | None, typer.Option(help="Address of a running Dask scheduler (implies dask).")
]
KeepOpt = Annotated[
    Keep | None,
    typer.Option(help="Keep per-run output folders: maps (map files) or all [default: none]."),
]
RetryOpt = Annotated[
    bool, typer.Option("--retry-failed", help="Run again the runs recorded as failed.")
]
FloodReuseOpt = Annotated[
    bool, typer.Option("--flood-reuse/--no-flood-reuse",
                       help="Compute a flood once and replay it in the runs and plans that "
                            "share its inputs (OUT/flood-cache; docs/batch.md).")
]  # fmt: skip
#: Metrics the batch and compare commands print (the full tables are in the folder).
#: What ``batch`` and ``compare`` print: the response index and its parts, then the
#: metrics the components declare ``shown`` (:mod:`emtwin.sim.metric`).
def _shown() -> tuple[str, ...]:
    from emtwin.batch.index import PARTS
    from emtwin.sim.components import declared_metrics

    return ("index.score", *(f"index.{p}" for p in PARTS), *(
        f"{sec}.{m.key}" for sec, ms in declared_metrics().items() for m in ms if m.shown))


def _batch_options(workers: int | None, executor: Executor, scheduler: str | None,
                   keep: Keep | None, allow_code: bool, quiet: bool,
                   retry_failed: bool, flood_reuse: bool = True) -> dict:  # fmt: skip
    return {
        "flood_reuse": flood_reuse,
        "workers": workers, "executor": executor.value, "scheduler": scheduler,
        "keep": keep.value if keep else None, "allow_code": allow_code, "progress": not quiet,
        "console": err, "retry_failed": retry_failed,
        "writers": "emtwin.viz:run_writers" if keep else None,
    }  # fmt: skip


def _batch_report(res: BatchResult) -> None:
    """Print how a batch went: counts, distinct warnings, failures, where the table is."""
    c = res.counts
    out.print(f"{c['done']} runs done, {c['failed']} failed, {c['pending']} pending "
              f"({res.executed} run now, {res.skipped} done before"
              + (f", {res.reused} of them reused from --base-batch" if res.reused else "")
              + f"); results in {res.folder / 'results.parquet'}")  # fmt: skip
    fl = res.floods
    if fl.get("replayed") or fl.get("recorded"):
        out.print(f"  flood: computed in {fl.get('recorded', 0) + fl.get('recomputed', 0)} runs, "
                  f"replayed in {fl.get('replayed', 0)} (--no-flood-reuse computes every one)")
    for msg, n in sorted(res.warnings.items(), key=lambda kv: -kv[1])[:10]:
        err.print(f"[yellow]warning[/yellow] ({n} runs): ", end="")
        err.print(msg, markup=False)


def _batch_exit(res: BatchResult) -> None:
    if res.interrupted:
        err.print(f"[red]error:[/red] {res.interrupted}. Finished runs are kept; run the same "
                  "command again to go on.")  # fmt: skip
        raise typer.Exit(1)
    if res.counts["failed"]:
        err.print(f"[red]error:[/red] {res.counts['failed']} runs failed (column `error` of "
                  f"{res.folder / 'results.parquet'}); --retry-failed runs them again")  # fmt: skip
        raise typer.Exit(1)


@app.command()
def batch(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a built-in name.")],
    runs: RunsOpt,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = Executor.local,
    scheduler: SchedulerOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Batch folder [default: out/NAME-batch].")
    ] = None,
    keep: KeepOpt = None,
    plan: PlanOpt = None,
    seed: SeedOpt = None,
    duration: DurationOpt = None,
    retry_failed: RetryOpt = False,
    flood_reuse: FloodReuseOpt = True,
    allow_code: AllowCodeOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a scenario many times (seeds and `uncertain:` draws); one table row per run.

    Re-running the same command in the same folder skips the runs already done; a larger
    --runs runs only the new runs (Monte Carlo draws; Latin hypercube draws depend on --runs).
    Exit 1 when a run failed or a worker died (finished runs are kept).
    """
    from emtwin.batch import run_batch
    from emtwin.batch.compare import metric_bounds, t_interval
    from emtwin.sim.outputs import prepare_out_dir

    overrides = {"seed": seed, "duration": duration}
    try:
        if out_dir is not None:
            prepare_out_dir(out_dir, replace=False)  # writable, before any run
        res = run_batch(scenario, runs=runs, plans=plan or [], overrides=overrides, out_dir=out_dir,
                        **_batch_options(workers, executor, scheduler, keep, allow_code, quiet,
                                         retry_failed, flood_reuse))  # fmt: skip
    except KeyboardInterrupt:
        err.print("interrupted; finished runs are kept: run the same command again to go on")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    _batch_report(res)
    done = res.table[res.table["status"] == "done"]
    for m in _shown():
        if m in done and done[m].notna().any():
            x = done[m].dropna().to_numpy()
            mean, lo, hi, _ = t_interval(x, bounds=metric_bounds(m, done))
            ci = f" [95% CI {lo:.4g} to {hi:.4g}]" if x.size > 1 else ""
            out.print(f"  {m}: mean {mean:.4g}{ci}, range {x.min():.4g} to {x.max():.4g}")
    out.print(f"  {res.index_note}")
    _batch_exit(res)


@app.command()
def compare(
    base: Annotated[str, typer.Argument(help="The base scenario file, or a built-in name.")],
    plan: Annotated[
        list[Path], typer.Option("--plan", "-p", help="A plan to compare with the base "
                                 "(a partial scenario; repeatable).")
    ],  # fmt: skip
    runs: RunsOpt,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = Executor.local,
    scheduler: SchedulerOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder [default: out/NAME-compare].")
    ] = None,
    keep: KeepOpt = None,
    base_batch: Annotated[
        Path | None, typer.Option("--base-batch", help="The folder of a batch of BASE "
                                  "(emtwin batch BASE --runs N --out DIR): its finished runs "
                                  "are the base's runs, not run again.")
    ] = None,  # fmt: skip
    seed: SeedOpt = None,
    duration: DurationOpt = None,
    retry_failed: RetryOpt = False,
    flood_reuse: FloodReuseOpt = True,
    allow_code: AllowCodeOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the base and every plan on the same seeds and draws; compare with paired intervals.

    The folder keeps every plan's runs: a new plan, or a larger --runs, runs only what is new.

    Writes comparison.csv/.parquet (every metric: mean and 95% interval per plan, paired
    difference from the base with its interval and significance) and comparison.html.
    """
    from emtwin.batch import run_comparison
    from emtwin.sim.outputs import prepare_out_dir

    overrides = {"seed": seed, "duration": duration}
    try:
        if out_dir is not None:
            prepare_out_dir(out_dir, replace=False)  # writable, before any run
        opts = _batch_options(workers, executor, scheduler, keep, allow_code, quiet,
                              retry_failed, flood_reuse)  # fmt: skip
        res = run_comparison(base, plan, runs=runs, overrides=overrides, out_dir=out_dir,
                             base_batch=base_batch, **opts)  # fmt: skip
        report = _comparison_report(res)
    except KeyboardInterrupt:
        err.print("interrupted; finished runs are kept: run the same command again to go on")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    _batch_report(res.batch)
    st = res.stats
    for m in _shown():
        rows = st[(st["metric"] == m) & (st["n"] > 0)]
        if rows.empty:
            continue
        out.print(f"  [bold]{m}[/bold]")
        for r in rows.itertuples():
            text = f"    {r.plan:<14} {r.mean:.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]"
            if r.plan != res.base:
                text += (f"  diff {r.diff_mean:+.4g} [{r.diff_ci_low:+.4g}, "
                         f"{r.diff_ci_high:+.4g}] {r.verdict}")  # fmt: skip
            out.print(text, markup=False)
    out.print(f"  {res.batch.index_note}")
    out.print(f"[bold]{res.headline}[/bold]")
    out.print(f"Comparison: {res.batch.folder / 'comparison.csv'}; report: {report}")
    _batch_exit(res.batch)


def _comparison_report(res: ComparisonResult) -> Path:
    """comparison.html: the viz comparison page with the paired statistics."""
    import math

    from emtwin.viz.compare import DEFAULT_METRICS, comparison_html

    table = res.batch.table
    done = table[table["status"] == "done"]
    metrics = [c for c in done.columns if c.startswith(("flood.", "evacuation.", "dispatch.",
                                                        "index.")) and done[c].notna().any()]
    records = {}
    for p in [res.base, *res.plans]:
        recs = []
        for row in done[done["plan"] == p].to_dict("records"):
            s: dict = {"run": {"seed": row["seed"], "scenario": p}}
            for m in metrics:
                if isinstance(row[m], float) and math.isfinite(row[m]):
                    sec, _, rest = m.partition(".")
                    s.setdefault(sec, {})[rest] = row[m]
            recs.append(s)
        records[p] = recs or [{}]
    shown = [m for m in (*_shown()[:6], *DEFAULT_METRICS) if m in metrics]
    page = comparison_html(records, metrics=list(dict.fromkeys(shown)), baseline=res.base,
                           title=f"Plan comparison: {', '.join(res.plans)} against the base",
                           paired=res.stats, headline=res.headline,
                           note=f"{res.batch.index_note}.")  # fmt: skip
    path = res.batch.folder / "comparison.html"
    path.write_text(page, encoding="utf-8")
    return path

@app.command()
def drill(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a built-in name.")],
    plan: PlanOpt = None,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 60.0,
    port: Annotated[int, typer.Option(help="The port of the web page.")] = 8000,
    host: Annotated[str, typer.Option(help="The address to listen on (other than 127.0.0.1 "
                                      "exposes the drill to the network).")] = "127.0.0.1",
    token: Annotated[str | None, typer.Option(help="The control token [default: a new "
                                              "random one].")] = None,
    injects: Annotated[Path | None, typer.Option(help="The master schedule of injects: a CSV "
                                                  "file with at, to, message[, action].")] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser.")
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: out/NAME-drill].")
    ] = None,
    seed: SeedOpt = None,
    duration: DurationOpt = None,
    allow_code: AllowCodeOpt = False,
) -> None:
    """Play a scenario live as a drill on a local web page (docs/drill.md)."""
    import webbrowser

    from emtwin.drill.app import create_app, new_token
    from emtwin.drill.injects import read_injects
    from emtwin.drill.session import DrillSession
    from emtwin.scenarios import load_scenario

    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the drill extra is missing
        _fail(EmtwinError("emtwin drill needs fastapi and uvicorn: pip install 'emtwin[drill]'"))
    try:
        sc = load_scenario(scenario, plans=plan or [],
                           overrides={"seed": seed, "duration": duration})  # fmt: skip
        msel = read_injects(injects) if injects else []
        if sc.flood is not None and sc.flood.backend == "auto":
            sc.flood.backend = "cpu"  # measured there; checkpoints copy a GPU state back
        session = DrillSession(sc, out_dir or Path("out") / f"{sc.name}-drill", speed=speed,
                               injects=msel, allow_code=allow_code)  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        _fail(exc)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach this "
                  "address and has the token can play the drill")
    control = token or new_token()
    player = new_token()
    web = create_app(session, token=control, player_token=player)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{shown}:{port}/?token={control}"
    out.print(f"[bold]{sc.name}[/bold] drill at {speed:g}x: exercise control: {url}")
    out.print(f"  players: http://{shown}:{port}/?token={player}")
    out.print(f"  results go to {session.out_dir} when the exercise ends (End exercise, or Ctrl-C)")
    session.start()
    if not no_browser:
        _later(1.0, lambda: webbrowser.open(url))
    server = uvicorn.Server(uvicorn.Config(web, host=host, port=port, log_level="warning"))
    finished = {"done": False}

    def watch() -> None:
        session.wait()
        finished["done"] = True
        server.should_exit = True

    _later(0.0, watch)
    server.run()
    if not finished["done"]:
        session.stop()
        session.wait()
    if session.state == "failed":
        _fail(EmtwinError(f"the drill failed: {session.error}"))
    out.print(f"Results, decisions.jsonl and after-action.html are in {session.folder}")


def _later(delay_s: float, fn: object) -> None:
    """Run *fn* in a daemon thread after *delay_s* wall seconds."""
    import threading

    t = threading.Timer(delay_s, fn)  # type: ignore[arg-type]
    t.daemon = True
    t.start()


@app.command("forecast")
def forecast_cmd(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a built-in name; its "
                                                  "`uncertain:` section is the prior.")],
    observations: Annotated[list[Path] | None, typer.Option(
        "--observations", help="Gauge readings (time_s, gauge, level_m | depth_m | flow_m3_s; "
        "e.g. a run's gauges.csv; FILE:flow_m3_s picks the column), a rain-gauge table "
        "(rain_mm_h) or a folder of rain rasters (repeatable).")] = None,
    at: Annotated[str, typer.Option("--at", help="Forecast time, now (e.g. 1h, 3600).")] = "",
    horizon: Annotated[str, typer.Option("--horizon", help="How far ahead (e.g. 3h).")] = "",
    members: Annotated[int, typer.Option("--members", "-n", min=1, help="Ensemble size.")] = 16,
    no_assimilation: Annotated[bool, typer.Option(
        "--no-assimilation", help="Run the prior members on, unweighed.")] = False,
    plan: PlanOpt = None,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = Executor.local,
    scheduler: SchedulerOpt = None,
    sigma: Annotated[float, typer.Option(help="Gauge observation error sd, m.")] = 0.05,
    flow_error: Annotated[float, typer.Option(
        "--flow-error",
        help="Relative error of discharge readings (flow_m3_s), e.g. 0.1 for 10 %.")] = 0.1,
    outdir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("forecast"),
    watch: Annotated[Path | None, typer.Option(
        "--watch", help="Re-forecast whenever a new observation file lands here.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls of --watch.")] = 5.0,
    allow_code: AllowCodeOpt = False,
) -> None:
    """Forecast from now: members from `uncertain:`, weighed on observations (particle filter)."""
    from emtwin.scenarios._types import parse_duration

    try:
        at_s, horizon_s = parse_duration(at), parse_duration(horizon)
    except ValueError as exc:
        raise typer.BadParameter(f"--at/--horizon: {exc}") from None
    if not flow_error > 0:
        raise typer.BadParameter(f"--flow-error: expected a relative error > 0, got {flow_error}")
    kw = dict(horizon_s=horizon_s, members=members, assimilate=not no_assimilation,
              plans=list(plan or []), executor=executor.value, workers=workers,
              scheduler=scheduler, sigma_m=sigma, flow_error_rel=flow_error,
              allow_code=allow_code)

    def say(res: object) -> None:
        f = res.products.summary  # type: ignore[attr-defined]
        ess = f.get("effective_sample_size")
        out.print(f"{res.folder}: forecast at {f['at_s'] / 3600:.2f} h for "  # type: ignore[attr-defined]
                  f"{f['horizon_s'] / 3600:.2f} h, {f['members']} members"
                  + (f", ESS {ess:.1f}" if ess is not None else ", no assimilation")
                  + f", {f['wall_s']:.1f} s")  # fmt: skip

    try:
        if watch is not None:
            from emtwin.forecast.command import run_watch

            run_watch(scenario, watch, observations=observations or [], at_s=at_s,
                      out_dir=outdir, interval_s=interval, on_forecast=say, **kw)  # fmt: skip
        else:
            from emtwin.forecast.runner import forecast

            say(forecast(scenario, observations or [], at_s=at_s, out_dir=outdir, **kw))
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001
        _fail(exc)


def run_cli() -> None:  # pragma: no cover - console entry point helper
    """Entry point that never shows a traceback for user errors."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    run_cli()
