"""The ``emtwin`` command.

Exit codes: 0 success; 1 the scenario, its data or the run failed (the message
says which file, key and problem); 2 the command line itself is wrong (unknown
option, missing argument). ``--debug`` shows the Python traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from emtwin import __version__
from emtwin.errors import EmtwinError, ScenarioError

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


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="A scenario file, or a built-in name.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: out/NAME].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario seed.")] = None,
    duration: Annotated[
        str | None, typer.Option(help="Override the duration (e.g. 2h, 90min).")
    ] = None,
    plan: PlanOpt = None,
    allow_code: Annotated[
        bool,
        typer.Option("--allow-code", help="Allow Python code named in the scenario to run."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario and write its results to an output folder."""
    from emtwin.scenarios import load_scenario
    from emtwin.sim import Simulation
    from emtwin.sim.outputs import write_results

    try:
        sc = load_scenario(
            scenario, plans=plan or [], overrides={"seed": seed, "duration": duration}
        )
        target = out_dir or Path("out") / sc.name
        sim = Simulation(sc, allow_code=allow_code)
        results = sim.run(progress=not quiet)
        folder = write_results(results, target)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message and exit 1
        _fail(exc)
    s = results.summary
    out.print(f"[bold]{sc.name}[/bold]: seed {sc.seed}, {sc.duration / 3600:g} h simulated "
              f"in {s['run']['wall_s']:.1f} s wall time")
    for section in ("flood", "evacuation", "dispatch"):
        vals = {k: v for k, v in s.get(section, {}).items() if v is not None}
        if vals:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(vals.items())[:6])
            out.print(f"  {section}: {shown}")
    out.print(f"Results are in {folder}")


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
        bool, typer.Option("--world/--no-world", help="Also build the World from the data.")
    ] = True,
) -> None:
    """Check a scenario (and plans): print every problem, or a short summary."""
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

            summary = Simulation(sc).world.summary()
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
def scenarios() -> None:
    """List the built-in scenarios, one line each."""
    from emtwin.scenarios import builtin_scenarios

    for name, desc in builtin_scenarios().items():
        out.print(f"[bold]{name:<12}[/bold] {desc}")


def run_cli() -> None:  # pragma: no cover - console entry point helper
    """Entry point that never shows a traceback for user errors."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    run_cli()
