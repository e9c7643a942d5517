"""The live run of a drill: a Simulation stepped in a background thread, paced in wall time.

The thread plays the run one coupling step at a time (``sim.run_until``), each
step due ``step / speed`` wall seconds after the one before (``speed``: simulated
seconds per wall second; when the machine cannot keep up it plays as fast as it
can and :attr:`DrillSession.keep_up` says how fast that is). Between steps, under
one lock, decisions are carried out at the current simulated time
(``sim.apply``), injects are released at their times, the page reads what it
shows, and every ``checkpoint_every_s`` an in-memory checkpoint is kept so that
control can jump back.

Stopping, or the end of the event, writes the normal output folder
(:func:`emtwin.sim.outputs.write_results`) with ``decisions.jsonl`` and
``after-action.html`` in it.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from emtwin.drill.decisions import DecisionLog, describe_action
from emtwin.drill.injects import Inject
from emtwin.drill.live import MapFeed, headline
from emtwin.errors import EmtwinError
from emtwin.scenarios.models import ACTION_KINDS, Action, Scenario
from emtwin.sim.engine import Simulation
from emtwin.sim.outputs import mark_output, prepare_out_dir

__all__ = ["DrillSession", "ActionError", "ROLES", "MAX_SPEED"]

log = logging.getLogger(__name__)

#: The roles of a drill: control sees everything and may inject, pause, jump and fork.
ROLES = ("control", "player")
#: The largest pacing speed accepted, simulated s per wall s ("as fast as it can").
MAX_SPEED = 1e6


class ActionError(EmtwinError, ValueError):
    """A decision that cannot be carried out; the message says why (as ``validate`` would)."""


class DrillSession:
    """One drill: the live run, its pacing, decisions, injects, checkpoints and the ending.

    Parameters
    ----------
    scenario
        The validated scenario (its scripted actions play as in ``emtwin run``).
    out_dir
        The output folder written when the drill ends.
    world
        A World already built for the scenario (built when None).
    speed
        Simulated seconds per wall second.
    injects
        The master schedule (see :mod:`emtwin.drill.injects`).
    checkpoint_every_s
        Simulated time between in-memory checkpoints, s (0: none).
    keep_checkpoints
        The most checkpoints kept (the oldest are dropped).
    after_action
        Whether the ending re-runs the event (scripted plan, no actions) for the review.
    allow_code
        As ``emtwin run --allow-code``.
    """

    def __init__(self, scenario: Scenario, out_dir: str | Path, *, world: Any = None,
                 speed: float = 60.0, injects: list[Inject] | None = None,
                 checkpoint_every_s: float = 1800.0, keep_checkpoints: int = 24,
                 after_action: bool = True, allow_code: bool = False) -> None:  # fmt: skip
        self.scenario = scenario
        self.out_dir = Path(out_dir)
        self.allow_code = allow_code
        self.sim = Simulation(scenario, world=world, allow_code=allow_code)
        self.world = self.sim.world
        self.feed = MapFeed(self.world)
        self.lock = threading.RLock()
        #: threads waiting for the lock to read or decide (the clock lets them in first)
        self._want = 0
        self._want_lock = threading.Lock()
        self.speed = self._check_speed(speed)
        self.paused = False
        self.injects = list(injects or [])
        self.released: list[dict[str, Any]] = []
        # the live log is written into the output folder as the drill goes: the folder is
        # checked (never a user's folder) and marked as emtwin's now, so that
        # write_results replaces it with the whole output folder at the end
        prepare_out_dir(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        mark_output(self.out_dir)
        self.decisions = DecisionLog(self.out_dir / "decisions.jsonl")
        self.checkpoint_every_s = float(checkpoint_every_s)
        self.keep_checkpoints = int(keep_checkpoints)
        self.checkpoints: dict[float, Any] = {}
        self.after_action = after_action
        #: folders copied into the output folder at the end, by their name there
        #: (the drill's forecasts: ``forecasts/forecast-ID``)
        self.kept: dict[str, Path] = {}
        #: bumped whenever what the page shows changes
        self.version = 0
        self.state = "ready"  # ready, running, finishing, done, failed
        self.error: str | None = None
        self.folder: Path | None = None
        self.whatif: dict[str, Any] | None = None
        self.end_s = float(scenario.duration)
        self._t = 0.0
        self._target: float | None = None
        self._stop = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._anchor = (time.monotonic(), 0.0)
        #: wall time spent in the simulation's steps, s, and the simulated time they covered
        self.compute_s = 0.0
        self.computed_sim_s = 0.0
        self.listeners: list[Callable[[], None]] = []
        self.lock_waits: list[float] = []
        with self.lock:
            self.sim.run_until(0.0)
            self._release_injects(0.0)
            self._keep_checkpoint()

    # ------------------------------------------------------------------ reading

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's lock between two steps, before the clock takes its next step."""
        with self._want_lock:
            self._want += 1
        try:
            with self.lock:
                yield
        finally:
            with self._want_lock:
                self._want -= 1

    @property
    def time_s(self) -> float:
        """The simulated time the run stands at, s."""
        return self._t

    @property
    def running(self) -> bool:
        """Whether simulated time is advancing (not paused, not finished)."""
        return self.state == "running" and not self.paused

    @property
    def keep_up(self) -> float | None:
        """Simulated seconds per wall second of computing alone (the fastest the run can go)."""
        return self.computed_sim_s / self.compute_s if self.compute_s > 0 else None

    def status(self) -> dict[str, Any]:
        """``GET /api/state``: the clock, the pacing and the headline figures."""
        with self.locked():
            head = headline(self.sim)
        head.update(
            time_s=self._t, end_s=self.end_s, running=self.running, paused=self.paused,
            speed=self.speed, state=self.state, scenario=self.scenario.name,
            keep_up=round(self.keep_up, 1) if self.keep_up else None,
            checkpoints=sorted(self.checkpoints), decisions=len(self.decisions.items),
            folder=str(self.folder) if self.folder else None, error=self.error,
        )  # fmt: skip
        return head

    def frame(self) -> dict[str, Any]:
        """The map's moving parts now (see :class:`emtwin.drill.live.MapFeed`)."""
        with self.locked():
            return self.feed.frame(self.sim)

    def messages(self, role: str) -> list[dict[str, Any]]:
        """Injects released so far that *role* sees (control sees all)."""
        return [m for m in self.released if role == "control" or not _for_control(m["to"])]

    def decisions_seen(self, role: str, last: int = 30) -> list[dict[str, Any]]:
        """The *last* decisions *role* sees (players do not see injects meant for control)."""
        items = [d for d in self.decisions.items
                 if role == "control" or not _for_control(d.extra.get("to", ""))]
        return [dict(vars(d)) for d in items[-last:]]

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Start the clock in a background thread."""
        if self._thread is not None:
            return
        self.state = "running"
        self._anchor = (time.monotonic(), self._t)
        self._thread = threading.Thread(target=self._loop, name="emtwin-drill", daemon=True)
        self._thread.start()

    def _check_speed(self, speed: float) -> float:
        s = float(speed)
        if not (math.isfinite(s) and 0 < s <= MAX_SPEED):
            raise ActionError(f"speed: expected simulated seconds per wall second in (0, "
                              f"{MAX_SPEED:g}], got {speed!r}")  # fmt: skip
        return s

    def _next_time(self) -> float:
        cs = self.sim.coupling_s
        nxt = (math.floor(self._t / cs + 1e-9) + 1) * cs
        due = [i.at_s for i in self.injects if not i.released and i.at_s > self._t]
        cands = [nxt, self.end_s, *due[:1]]
        if self._target is not None and self._target > self._t:
            cands.append(self._target)
        return min(cands)

    def _loop(self) -> None:
        try:
            while not self._stop and self._t < self.end_s:
                if self.paused and self._target is None:
                    self._wake.wait(0.25)
                    self._wake.clear()
                    continue
                nxt = self._next_time()
                if self._target is None:
                    w0, t0 = self._anchor
                    wait = w0 + (nxt - t0) / self.speed - time.monotonic()
                    if wait > 0:
                        if self._wake.wait(wait):
                            self._wake.clear()
                            continue
                    elif wait < -2.0:  # behind: do not rush to catch up later
                        self._anchor = (time.monotonic(), self._t)
                self._step(nxt)
            self.finish()
        except Exception as exc:  # noqa: BLE001 - the page shows the failure
            log.exception("the drill failed")
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"
            self._changed()

    def step_to(self, t: float) -> None:
        """Play the run to simulated time *t* (s) step by step, as the clock would (injects
        released and checkpoints kept on the way), without pacing."""
        while self._t < min(float(t), self.end_s):
            self._step(min(self._next_time(), float(t)))

    def _step(self, t: float) -> None:
        """Play the run to simulated time *t* (s), releasing injects due by then."""
        deadline = time.monotonic() + 1.0
        while self._want > 0 and time.monotonic() < deadline:
            time.sleep(0.001)  # a decision or the page is waiting: it goes first
        with self.lock:
            if t <= self._t:
                return
            w = time.perf_counter()
            self.sim.run_until(t)
            self.compute_s += time.perf_counter() - w
            self.computed_sim_s += t - self._t
            self._t = float(t)
            self._release_injects(self._t)
            if self._target is not None and self._t >= self._target:
                self._target = None
                self._anchor = (time.monotonic(), self._t)
            if self.checkpoint_every_s > 0 and self._t % self.checkpoint_every_s < 1e-6:
                self._keep_checkpoint()
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        for cb in list(self.listeners):
            try:
                cb()
            except Exception:  # noqa: BLE001 - a listener must not stop the run
                log.debug("drill listener failed", exc_info=True)

    def _keep_checkpoint(self) -> None:
        try:
            self.checkpoints[self._t] = self.sim.checkpoint()
        except EmtwinError as exc:  # e.g. a flood on a GPU: no jumping back
            log.warning("no checkpoint at %g s: %s", self._t, exc)
            self.checkpoint_every_s = 0.0
            return
        while len(self.checkpoints) > self.keep_checkpoints:
            self.checkpoints.pop(min(self.checkpoints))

    def _release_injects(self, t: float) -> None:
        for inj in self.injects:
            if inj.released or inj.at_s > t + 1e-9:
                continue
            inj.released = True
            msg = inj.as_json() | {"released_s": t}
            self.released.append(msg)
            self.decisions.add(t, "control", f"inject to {inj.to}: {inj.message}",
                               source="inject", row=inj.row, to=inj.to)  # fmt: skip
            if inj.action is not None:
                try:
                    self._apply(inj.action, "control", source="inject")
                except ActionError as exc:
                    msg["error"] = str(exc)
                    log.warning("inject row %d: %s", inj.row, exc)

    # ------------------------------------------------------------------ deciding

    def parse_action(self, body: Any, *, at: float = 0.0) -> Action:
        """The Action of a decision *body* (an action without ``at``), checked against the World.

        Raises
        ------
        ActionError
            With the message ``emtwin validate`` gives for such an action.
        """
        if not isinstance(body, dict):
            raise ActionError(f"expected an action as a JSON object, e.g. "
                              f'{{"close_road": "bridge-east"}}, got {body!r}')  # fmt: skip
        if "at" in body or "when" in body:
            raise ActionError("a decision is carried out now: leave out `at` and `when`")
        try:
            action = Action.model_validate({**body, "at": at})
        except ValidationError as exc:
            parts = []
            for e in exc.errors():
                loc = ".".join(str(x) for x in e.get("loc", ()))
                msg = str(e.get("msg", "")).removeprefix("Value error, ")
                parts.append(f"{loc}: {msg}" if loc else msg)
            raise ActionError("; ".join(parts)) from None
        msg = self.sim.check_action(action)
        if msg:
            raise ActionError(f"{action.kind}: {msg}")
        return action

    def act(self, body: Any, role: str = "player") -> float:
        """Carry out decision *body* now; return the simulated time it was applied at, s.

        Raises
        ------
        ActionError
            When the action is malformed, names what the World lacks, or the drill is over.
        """
        t = self._apply(body, role, source="page")
        self._changed()
        return t

    def _apply(self, body: Any, role: str, *, source: str) -> float:
        asked = time.perf_counter()
        with self.locked():
            #: how long each decision waited for the step under way, wall s
            self.lock_waits.append(time.perf_counter() - asked)
            if self.state in ("finishing", "done", "failed"):
                raise ActionError(f"the drill is {self.state}: no more decisions")
            action = self.parse_action(body, at=self._t)
            self.sim.apply(action, by=role)
            shown = action.value
            shown = shown.model_dump(by_alias=True) if hasattr(shown, "model_dump") else shown
            act = {action.kind: shown}
            self.decisions.add(self._t, role, describe_action(act), action=act, source=source)
            return self._t

    def inject_now(self, to: str, message: str, action: dict[str, Any] | None = None, *,
                   role: str = "control") -> float:  # fmt: skip
        """Release an inject now (exercise control); its action, if any, is carried out."""
        with self.locked():
            if action is not None:
                self.parse_action(action, at=self._t)  # refuse a bad one before anything
            inj = Inject(self._t, to or "players", message, action, row=0)
            self.injects.append(inj)
            self._release_injects(self._t)
        self._changed()
        return self._t

    # ------------------------------------------------------------------ control

    def control(self, command: str | None = None, *, speed: float | None = None,
                role: str = "control") -> dict[str, Any]:  # fmt: skip
        """Pause, resume or stop the drill and/or set its speed."""
        if speed is not None:
            self.speed = self._check_speed(speed)
            self._anchor = (time.monotonic(), self._t)
            self.decisions.add(self._t, role, f"speed {self.speed:g}x", source="control")
        if command not in (None, "pause", "resume", "stop"):
            raise ActionError(f"command: expected pause, resume or stop, got {command!r}")
        if command == "pause":
            self.paused = True
            self.decisions.add(self._t, role, "pause", source="control")
        elif command == "resume":
            self.paused = False
            self._anchor = (time.monotonic(), self._t)
            self.decisions.add(self._t, role, "resume", source="control")
        elif command == "stop":
            self.decisions.add(self._t, role, "stop", source="control")
            self.stop()
        self._wake.set()
        self._changed()
        return {"time_s": self._t, "paused": self.paused, "speed": self.speed,
                "state": self.state}  # fmt: skip

    def jump(self, t: float, role: str = "control") -> float:
        """Go to simulated time *t* (s): forward by playing there at full speed, back from the
        latest checkpoint at or before it (what was decided after it is undone)."""
        t = float(t)
        if not (0 <= t <= self.end_s):
            raise ActionError(f"time_s: expected 0 to {self.end_s:g} s, got {t:g}")
        with self.locked():
            if t < self._t:
                earlier = [c for c in self.checkpoints if c <= t]
                if not earlier:
                    raise ActionError(f"no checkpoint at or before {t:g} s to go back to")
                ck_t = max(earlier)
                self.sim = Simulation.from_checkpoint(self.checkpoints[ck_t], world=self.world,
                                                      allow_code=self.allow_code)  # fmt: skip
                for k in [c for c in self.checkpoints if c > ck_t]:
                    self.checkpoints.pop(k)
                for inj in self.injects:
                    if inj.at_s > ck_t:
                        inj.released = False
                self.released = [m for m in self.released if m["released_s"] <= ck_t]
                self.decisions.add(t, role, f"back to T+{t / 60:.0f} min (from the checkpoint "
                                   f"at {ck_t:g} s)", source="control")  # fmt: skip
                self._t = ck_t
            else:
                self.decisions.add(t, role, f"jump to T+{t / 60:.0f} min", source="control")
            self._target = t if t > self._t else None
        self._wake.set()
        if self._thread is None:  # not started (tests): play there now
            while self._target is not None:
                self._step(self._next_time())
        self._changed()
        return t

    def stop(self) -> None:
        """End the drill now; the background thread writes the outputs."""
        self._stop = True
        self._wake.set()
        if self._thread is None:
            self.finish()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the drill to end (outputs written); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return self.state in ("done", "failed")

    # ------------------------------------------------------------------ ending

    def finish(self) -> Path | None:
        """Write the output folder, ``decisions.jsonl`` and ``after-action.html``."""
        from emtwin.drill.after_action import write_after_action
        from emtwin.sim.outputs import write_results
        from emtwin.viz import run_writers

        if self.state in ("finishing", "done"):
            return self.folder
        self.state = "finishing"
        self._changed()
        with self.lock:
            results = self.sim.results()
            results.summary["run"]["stopped_at_s"] = self._t
            results.summary["run"]["drill"] = True
        writers = run_writers(results)
        decisions = self.decisions.text()
        writers["decisions.jsonl"] = lambda p: p.write_text(decisions, encoding="utf-8")
        if self.after_action:
            writers["after-action.html"] = lambda p: write_after_action(self, results, p)
        for name, src in list(self.kept.items()):
            if src.is_dir():
                writers[name] = lambda p, src=src: shutil.copytree(src, p)
        self.folder = write_results(results, self.out_dir, extra=writers)
        self.state = "done"
        self._changed()
        return self.folder

    # ------------------------------------------------------------------ what-if

    def fork(self, alternative: str | Path | None = None, *, hours: float = 2.0,
             role: str = "control", background: bool = True) -> dict[str, Any]:  # fmt: skip
        """Fork the current state: play the next *hours* under the current decisions and under
        *alternative* (a plan file, or None: no further action) on the same random streams.

        The result lands in :attr:`whatif` (see :func:`emtwin.drill.whatif.run_whatif`).
        """
        from emtwin.drill.whatif import run_whatif

        with self.locked():
            ck = self.sim.checkpoint()
            t0 = self._t
        horizon = min(t0 + float(hours) * 3600.0, self.end_s)
        label = str(alternative) if alternative else "no further action"
        self.whatif = {"state": "running", "from_s": t0, "to_s": horizon, "alternative": label}
        self.decisions.add(t0, role, f"what-if from now: current decisions vs {label}",
                           source="control")  # fmt: skip
        self._changed()

        def work() -> None:
            try:
                plan = Path(alternative) if alternative else _no_action_plan()
                self.whatif = run_whatif(ck, plan, horizon, label=label, world=self.world,
                                         allow_code=self.allow_code)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - shown on the page
                log.exception("what-if failed")
                self.whatif = {"state": "failed", "error": f"{type(exc).__name__}: {exc}",
                               "from_s": t0, "to_s": horizon, "alternative": label}  # fmt: skip
            self._changed()

        if background:
            threading.Thread(target=work, name="emtwin-whatif", daemon=True).start()
        else:
            work()
        return self.whatif


def _for_control(to: str) -> bool:
    """Whether an inject addressed *to* is for exercise control alone."""
    return str(to).strip().lower() in ("control", "exercise control")


def _no_action_plan() -> Path:
    """A plan file that drops every action still to come."""
    path = Path(tempfile.gettempdir()) / "emtwin-drill-no-further-action.yaml"
    if not path.exists():
        path.write_text("# no further action\nactions: []\n", encoding="utf-8")
    return path


def action_kinds() -> dict[str, str]:
    """The action kinds a decision may take, and what each names."""
    return dict(ACTION_KINDS)
