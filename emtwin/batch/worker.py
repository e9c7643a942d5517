"""One run of a batch, as a worker process (or thread) executes it.

:func:`run_task` takes a :class:`RunTask` (the raw scenario dict, the run's seed and
the values its draw writes), validates the edited scenario, runs it and returns a
small dict: the run's flattened numeric metrics, or its error. Whole Results never
leave the worker, so a worker's memory stays bounded by one run. The function is a
plain module-level function, safe for ``spawn`` process pools and Dask workers.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunTask", "run_task", "flatten", "worker_main", "die_with_parent", "KEEP_MAP_FILES"]

#: Files kept per run with ``keep="maps"`` (besides rasters ``*.tif``).
KEEP_MAP_FILES = frozenset({"summary.json", "scenario.yaml", "roads.geojson", "map.html"})
#: Summary keys left out of the metrics (they are columns of the results table already).
_SKIP = frozenset({"run.wall_s", "run.seed"})


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (small and picklable).

    Attributes
    ----------
    plan, run, seed
        The plan's label, the run index and the run's seed.
    data
        The raw scenario dict (plans merged, data paths of plans made absolute).
    base_dir
        The folder that relative data paths of *data* are resolved against.
    changes
        ``((keys, value), ...)`` written into *data* (the run's draw).
    keep
        None, ``"maps"`` or ``"all"``: which output files to keep in *out_dir*.
    out_dir
        The run's output folder when *keep* is given.
    allow_code
        Whether Python code named in the scenario may run.
    components
        Extra component classes registered in the worker for this run (plugins, tests).
    writers
        ``"module:function"``: when outputs are kept, ``function(results)`` returns
        extra writers ``{file name: writer(path)}`` for ``write_results`` (the CLI
        passes the viz map and report writers); with ``keep="maps"`` only the map's.
    flood_cache
        The folder of the batch's flood cache (:mod:`emtwin.batch.flood_cache`):
        a flood already computed with the same inputs is replayed from it, a new one
        is recorded into it. None: every run computes its flood.
    """

    plan: str
    run: int
    seed: int
    data: Mapping[str, Any]
    base_dir: str
    changes: tuple[tuple[tuple[str | int, ...], Any], ...] = ()
    keep: str | None = None
    out_dir: str | None = None
    allow_code: bool = False
    components: tuple[type, ...] = ()
    writers: str | None = None
    flood_cache: str | None = None


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a nested summary, keyed by dotted path (``flood.peak_volume_m3``).

    Booleans, text, lists and nulls are left out; ``run.wall_s`` and ``run.seed`` too.
    """
    out: dict[str, float] = {}
    for k, v in summary.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        elif isinstance(v, bool) or key in _SKIP:
            continue
        elif isinstance(v, int | float) or (hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0):
            try:
                out[key] = float(v)
            except (TypeError, ValueError):
                continue
    return out


# ---------------------------------------------------------------------------- worker state

_reg_lock = threading.Lock()
_reg_count: dict[type, int] = {}


@contextlib.contextmanager
def _registered(classes: Sequence[type]) -> Iterator[None]:
    """Register extra component classes for the duration of a run (thread-safe)."""
    if not classes:
        yield
        return
    from emtwin.sim.components import REGISTRY

    added = []
    with _reg_lock:
        for c in classes:
            if c in REGISTRY and c not in _reg_count:
                continue  # registered by the caller itself
            _reg_count[c] = _reg_count.get(c, 0) + 1
            if c not in REGISTRY:
                REGISTRY.append(c)
            added.append(c)
    try:
        yield
    finally:
        with _reg_lock:
            for c in added:
                _reg_count[c] -= 1
                if _reg_count[c] == 0:
                    del _reg_count[c]
                    REGISTRY.remove(c)


class _Collect(logging.Handler):
    """Collects the warnings logged by one thread (the run's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and len(self.messages) < 20:
            msg = record.getMessage().strip().splitlines()
            if msg and msg[0] not in self.messages:
                self.messages.append(msg[0])


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    logging.captureWarnings(True)
    h = _Collect()
    root = logging.getLogger()
    root.addHandler(h)
    try:
        yield h.messages
    finally:
        root.removeHandler(h)


@contextlib.contextmanager
def _one_numba_thread() -> Iterator[None]:
    """Kernels use one thread per run: a batch's parallelism is its runs, and results do
    not depend on how many cores a worker has."""
    try:
        import numba
    except ImportError:  # pragma: no cover
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def init_worker() -> None:
    """Initializer of a worker process: quiet logs (warnings are returned with the run)."""
    logging.getLogger().setLevel(logging.WARNING)
    logging.captureWarnings(True)


#: Linux ``prctl`` option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
#: How often the watchdog thread looks at the parent's pid, s.
WATCH_S = 0.5


def _parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``
    through ctypes); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return False


def _watch_parent(parent_pid: int) -> None:
    """Watchdog: end this process once its parent is gone (it is re-parented, so its
    parent pid changes). Portable fallback of the parent-death signal; it needs the GIL,
    which a long compiled kernel may hold, so it can be late where the signal is not."""
    while True:
        time.sleep(WATCH_S)
        if os.getppid() != parent_pid:
            os._exit(70)


def die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when the batch process *parent_pid* dies, even by
    ``kill -9``: the parent-death signal where Linux offers it, and a watchdog thread."""
    _parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(70)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="emtwin-parent-watch",
                     daemon=True).start()  # fmt: skip


#: What a local pool's worker sends once it has started, before any outcome.
READY = "emtwin-worker-ready"


def worker_main(conn: Any, parent_pid: int) -> None:
    """A local pool's worker process: say :data:`READY`, then receive RunTasks on *conn* and
    send back their outcomes.

    Ends when the batch process closes the pipe (EOF) or dies (:func:`die_with_parent`).
    """
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch process's to handle
    init_worker()
    try:
        conn.send(READY)
    except (EOFError, OSError):
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            out = run_task(task)
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt in a worker: report it
            out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "warnings": []}
        try:
            conn.send(out)
        except (EOFError, OSError):
            return


# ---------------------------------------------------------------------------- the run


def _validate(data: Mapping[str, Any], base_dir: str) -> Any:
    from pydantic import ValidationError

    from emtwin.errors import ScenarioError
    from emtwin.scenarios.limits import limit_problems
    from emtwin.scenarios.loader import format_validation_error
    from emtwin.scenarios.models import Scenario

    try:
        sc = Scenario.model_validate(data, context={"base_dir": base_dir, "check_files": True})
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, data)) from None
    # a draw may push a value past the run limits the loader checks for the base
    over = limit_problems(sc)
    if over:
        raise ScenarioError([f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in over])
    return sc


def _resolve(spec: str) -> Any:
    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn)


def _keep(results: Any, task: RunTask) -> list[str]:
    """Write the run's output folder; with ``maps`` keep only the files a map needs."""
    from emtwin.sim.outputs import write_results

    notes: list[str] = []
    extra: dict[str, Any] = {}
    if task.writers:
        try:
            extra = dict(_resolve(task.writers)(results))
        except Exception as exc:  # noqa: BLE001 - the run's metrics matter more than its map
            notes.append(f"maps and reports not written: {task.writers} failed ({exc})")
        if task.keep == "maps":
            extra = {k: v for k, v in extra.items() if k in KEEP_MAP_FILES}
    try:
        folder = write_results(results, task.out_dir, extra=extra)
    except Exception as exc:  # noqa: BLE001 - a failed map must not lose the run's metrics
        if not extra:
            raise
        notes.append(f"{', '.join(extra)} not written ({type(exc).__name__}: {exc})")
        folder = write_results(results, task.out_dir)
    if task.keep == "maps":
        for p in folder.iterdir():
            if p.name not in KEEP_MAP_FILES and p.suffix != ".tif":
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
    return notes


def run_task(task: RunTask) -> dict[str, Any]:
    """Run one task; return ``{status, metrics | error, wall_s, warnings}``.

    ``status`` is ``done`` (with ``metrics``: the summary's numeric leaves by dotted
    key) or ``failed`` (with ``error``, one line naming the problem, and
    ``traceback``). Exceptions are caught and returned; KeyboardInterrupt is not.
    """
    from emtwin.batch.uncertain import apply_edits

    if not isinstance(task, RunTask) and callable(task):
        return task()  # a task that runs itself (e.g. a forecast member's stage)
    t0 = time.perf_counter()
    with _registered(task.components), _collect_warnings() as warns, _one_numba_thread():
        try:
            data = apply_edits(task.data, task.changes)
            data["seed"] = task.seed
            scenario = _validate(data, task.base_dir)
            flood = "off"
            if task.flood_cache:
                from emtwin.batch.flood_cache import run_with_cache

                results, flood = run_with_cache(scenario, task.flood_cache,
                                                allow_code=task.allow_code)  # fmt: skip
            else:
                from emtwin.sim.engine import Simulation

                results = Simulation(scenario, allow_code=task.allow_code).run()
            metrics = flatten(results.summary)
            if task.keep and task.out_dir:
                warns.extend(_keep(results, task))
            del results
            status: dict[str, Any] = {"status": "done", "metrics": metrics, "flood": flood}
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the batch goes on
            msg = " ".join(str(exc).split()) or type(exc).__name__
            status = {"status": "failed", "error": f"{type(exc).__name__}: {msg}",
                      "traceback": traceback.format_exc(limit=-8)}  # fmt: skip
    wall = time.perf_counter() - t0
    return {**status, "wall_s": round(wall, 4) if math.isfinite(wall) else None,
            "warnings": list(warns)}  # fmt: skip


def keep_folder(out: str | Path, plan: str, run: int) -> str:
    """The folder of a kept run: ``OUT/runs/PLAN/RUN`` (run zero-padded to 5 digits)."""
    return str(Path(out) / "runs" / plan / f"{run:05d}")
