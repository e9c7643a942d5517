"""Executors of a batch: in this process, a local process pool, or Dask.

:func:`execute` hands :class:`~emtwin.batch.worker.RunTask` objects to workers and
calls back as each run starts and finishes, so the caller can commit every run to the
catalog at once. Workers return small dicts (metrics or an error), never Results.

- ``local``: a pool of ``spawn``-ed worker processes (safe with threads and Numba), each
  with its own pipe and one run in flight, so a worker that dies (a crash, ``os._exit``,
  out of memory) is charged to its own run only: *on_lost* decides whether that run is
  tried again, a fresh worker takes the dead one's place and the batch goes on. Workers
  die with the batch process, even on ``kill -9`` (a Linux parent-death signal and a
  watchdog thread on the parent's pid). ``workers=0`` runs every task in this process
  (no pool: for debugging and toy components).
- ``dask``: ``dask.distributed`` on a ``LocalCluster`` of *workers* single-threaded
  processes, or on a running scheduler given by its address.

One rich progress bar over the runs, with an ETA, is drawn when stderr is a terminal;
failures are logged as they happen.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from multiprocessing.connection import wait as mp_wait
from typing import Any

from emtwin.batch.worker import READY, RunTask, run_task, worker_main
from emtwin.errors import SimulationError

__all__ = ["execute", "WorkerLostError", "EXECUTORS", "default_workers"]

log = logging.getLogger(__name__)

#: Executors by name.
EXECUTORS = ("local", "dask")

OnStart = Callable[[RunTask], None]
OnDone = Callable[[RunTask, dict[str, Any]], None]
OnLost = Callable[[RunTask, str], bool]
OnTick = Callable[[], None]


class WorkerLostError(SimulationError):
    """A worker process of the local pool died as it started (before it said it was
    ready): the batch cannot go on; ``runs`` is empty (no run is charged)."""

    def __init__(self, message: str, runs: Sequence[RunTask]) -> None:
        super().__init__(message)
        self.runs = list(runs)


def default_workers() -> int:
    """The CPUs this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _failed(exc: BaseException) -> dict[str, Any]:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return {"status": "failed", "error": f"{type(exc).__name__}: {msg}", "warnings": []}


# ---------------------------------------------------------------------------- progress


class _Progress:
    """One bar over the runs (on a terminal only); counts done and failed runs."""

    def __init__(self, total: int, done: int, *, show: bool, console: Any, label: str) -> None:
        self.bar = None
        self.failed = 0
        if show:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = console or Console(stderr=True)
            if console.is_terminal:
                self.bar = Progress(
                    TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("runs, {task.fields[failed]} failed"), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
                )  # fmt: skip
                self.task = self.bar.add_task(label, total=total, completed=done, failed=0)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, failed: bool) -> None:
        self.failed += int(failed)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)


# ---------------------------------------------------------------------------- executors


def _in_process(tasks: Sequence[RunTask], on_start: OnStart, on_done: OnDone,
                on_tick: OnTick) -> None:  # fmt: skip
    for t in tasks:
        on_start(t)
        on_done(t, run_task(t))
        on_tick()


class _Worker:
    """One process of the local pool: its pipe, and the run it is on (None when idle)."""

    def __init__(self, ctx: Any, parent: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=worker_main, args=(child, parent),
                                name="emtwin-batch-worker", daemon=True)  # fmt: skip
        self.proc.start()
        child.close()
        self.task: RunTask | None = None
        self.ready = False  # it has started (sent READY)

    def stop(self, *, wait: float) -> None:
        """Close the pipe (an idle worker then exits); end the process if it does not."""
        self.conn.close()
        self.proc.join(timeout=wait)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)


def death(proc: Any) -> str:
    """How a worker process ended: ``exit code 3``, ``killed by SIGKILL (out of memory?)``."""
    proc.join(timeout=5)
    code = proc.exitcode
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


def _local(tasks: Sequence[RunTask], workers: int, on_start: OnStart, on_done: OnDone,
           on_lost: OnLost, on_tick: OnTick) -> None:  # fmt: skip
    """Run *tasks* on *workers* spawned processes, one run per worker at a time.

    Each worker has its own pipe, so the run of a worker that dies is known exactly:
    only that run is charged (*on_lost*; it is run again when *on_lost* says so) and a
    fresh worker takes its place. Workers die with this process (worker_main).
    """
    ctx = multiprocessing.get_context("spawn")
    parent = os.getpid()
    queue = deque(tasks)
    pool: list[_Worker] = []
    clean = False
    try:
        pool = [_Worker(ctx, parent) for _ in range(min(workers, len(queue)))]
        while True:
            for w in pool:
                if w.task is None and queue:
                    t = queue.popleft()
                    on_start(t)
                    try:
                        w.conn.send(t)
                        w.task = t
                    except (OSError, ValueError):  # a dead worker: its sentinel says so below
                        w.task = t
                    except Exception as exc:  # noqa: BLE001 - e.g. a task that cannot be pickled
                        on_done(t, _failed(exc))
            if not any(w.task is not None for w in pool):
                break
            handles = [h for w in pool for h in (w.conn, w.proc.sentinel)]
            ready = set(mp_wait(handles, timeout=1.0))
            alive: list[_Worker] = []
            fatal = None
            for w in pool:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    alive.append(w)
                    continue
                try:
                    while w.conn.poll():
                        out = w.conn.recv()
                        if out == READY:
                            w.ready = True
                        elif w.task is not None:
                            t, w.task = w.task, None
                            on_done(t, out)
                except (EOFError, OSError):
                    pass
                if w.proc.is_alive():
                    alive.append(w)
                    continue
                why = death(w.proc)
                w.conn.close()
                t, w.task = w.task, None
                if not w.ready:  # it could not start: no run is to blame
                    fatal = f"a worker process died as it started ({why})"
                elif t is not None:
                    if on_lost(t, why):
                        queue.append(t)
                    else:
                        on_done(t, {"status": "failed", "warnings": [],
                                    "error": f"WorkerLost: its worker process died ({why})"})
                if queue:
                    alive.append(_Worker(ctx, parent))
            pool = alive
            on_tick()
            if fatal:
                raise WorkerLostError(fatal, [])
        clean = True
    finally:
        for w in pool:
            w.stop(wait=5.0 if clean else 0.0)


def _names(tasks: Sequence[RunTask]) -> str:
    return ", ".join(f"run {t.run}" + (f" of {t.plan}" if t.plan else "") for t in tasks)


def _dask_client(workers: int, scheduler: str | None) -> tuple[Any, AbstractContextManager]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
        raise SimulationError(f"the dask executor needs dask.distributed ({exc})") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise SimulationError(f"cannot reach the Dask scheduler at {scheduler} "
                                  f"({exc})") from None  # fmt: skip
        return client, nullcontext()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)  # fmt: skip
    return Client(cluster), cluster


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Keep a library's info logs (Dask's scheduler chatter) out of the batch's output,
    unless debug logs are on."""
    lg = logging.getLogger(name)
    old = lg.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        lg.setLevel(old)


def _dask(
    tasks: Sequence[RunTask], workers: int, scheduler: str | None, on_start: OnStart,
    on_done: OnDone, on_tick: OnTick,
) -> None:  # fmt: skip
    from distributed import as_completed

    with ExitStack() as stack:
        stack.enter_context(_quiet("distributed"))
        client, cluster = _dask_client(workers, scheduler)
        stack.enter_context(cluster)
        stack.enter_context(client)
        slots = sum(client.nthreads().values()) or max(workers, 1)
        window = 2 * slots
        queue = deque(tasks)
        futures: dict[Any, RunTask] = {}
        ac = as_completed()

        def submit() -> None:
            t = queue.popleft()
            on_start(t)
            key = f"emtwin-run-{t.plan}-{t.run}-{uuid.uuid4().hex[:8]}"
            f = client.submit(run_task, t, pure=False, key=key)
            futures[f] = t
            ac.add(f)

        try:
            while queue and len(futures) < window:
                submit()
            for f in ac:
                t = futures.pop(f)
                try:
                    out = f.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker and friends
                    out = _failed(exc)
                on_done(t, out)
                on_tick()
                f.release()
                if queue:
                    submit()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def execute(
    tasks: Sequence[RunTask],
    *,
    on_start: OnStart,
    on_done: OnDone,
    on_lost: OnLost | None = None,
    on_tick: OnTick | None = None,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    console: Any = None,
    total: int | None = None,
    done: int = 0,
    label: str = "batch",
) -> None:
    """Run *tasks*, calling *on_start* as each is handed out and *on_done* with its outcome.

    Parameters
    ----------
    tasks
        The runs to do, in the order they are handed out.
    on_start, on_done
        Callbacks, called in this process.
    executor
        ``local`` (a process pool; ``workers=0``: in this process) or ``dask``.
    workers
        Worker processes (default: the CPUs available, at most one per task).
    scheduler
        The address of a running Dask scheduler (``tcp://host:8786``); implies dask.
    progress
        Show a progress bar over the runs (on a terminal only).
    console
        The rich console of the bar (default: stderr).
    total, done
        Runs of the whole batch and runs already finished, for the bar.
    label
        The bar's label.

    Raises
    ------
    WorkerLostError
        When a worker process of the local pool died as it started (the pool cannot
        work; the run handed to it is not charged); finished runs were reported
        through *on_done*.
    """
    if scheduler:
        executor = "dask"
    if executor not in EXECUTORS:
        raise SimulationError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is None:
        workers = min(default_workers(), max(len(tasks), 1))
    if workers < 0:
        raise SimulationError(f"workers must be >= 0, got {workers}")
    bar = _Progress(total if total is not None else len(tasks), done, show=progress,
                    console=console, label=label)  # fmt: skip

    def finished(t: RunTask, out: dict[str, Any]) -> None:
        on_done(t, out)
        failed = out.get("status") != "done"
        if failed:
            log.warning("%s failed: %s", _names([t]), out.get("error"))
        bar.advance(failed)

    lost = on_lost or (lambda t, why: False)
    tick = on_tick or (lambda: None)

    def died(t: RunTask, why: str) -> bool:
        again = lost(t, why)
        log.warning("the worker of %s died (%s)%s", _names([t]), why,
                    "; it is run again" if again else "")  # fmt: skip
        return again

    if not tasks:
        return
    with bar:
        if executor == "dask":
            _dask(tasks, max(workers, 1), scheduler, on_start, finished, tick)
        elif workers == 0:
            _in_process(tasks, on_start, finished, tick)
        else:
            _local(tasks, workers, on_start, finished, died, tick)
