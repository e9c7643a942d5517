"""Checkpoints: the whole state of a run at one time, saved, resumed and forked.

A checkpoint is taken after every event at or before its time ``T`` has been
played (:meth:`emtwin.sim.Simulation.run_until`). It holds

- the scenario (with the plans and overrides it was loaded with);
- every component, the recorder (events and time series so far), the shared
  state (fields, road state) and the engine's own bookkeeping, pickled with
  the run's context objects (the SimPy environment, the World, the scenario,
  the Simulation) replaced by references: on restore they are the new run's;
- the SimPy queue: for each pending event its time, priority, sequence number
  and the tag of the process waiting on it (:mod:`emtwin.sim.timers`).

The World is not stored: it is built again from the scenario, whose data
files must still be where they were. Random generators are stored with their
components, so a resumed run draws exactly what the uninterrupted one would,
and a fork shares the original's random streams (common random numbers).

File format (version 1): the 8 bytes ``EMTWINCK``, one byte of format
version, then a zlib-compressed pickle (protocol 5) of a dict. Checkpoints
are Python pickles: load only files you trust, as you would a Python script.
"""

from __future__ import annotations

import io
import itertools
import math
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import simpy

from emtwin import __version__
from emtwin.errors import CheckpointError, ScenarioError
from emtwin.sim.plan import check_actions, coupling_step
from emtwin.sim.timers import ExactEvent, pending
from emtwin.sim.triggers import TriggerWatch

if TYPE_CHECKING:
    from emtwin.scenarios.models import Scenario
    from emtwin.sim.engine import Simulation

__all__ = ["Checkpoint", "take_checkpoint", "restore_checkpoint", "CheckpointError", "MAGIC"]

MAGIC = b"EMTWINCK"
FORMAT_VERSION = 1
#: Scenario keys a fork's plan may set: the actions still to come (and the output settings).
FORK_KEYS = frozenset({"actions", "outputs", "name", "description"})


@dataclass
class Checkpoint:
    """A run's state at ``time_s``; :meth:`save` writes it, :meth:`load` reads it back."""

    time_s: float
    scenario: Scenario
    blob: bytes
    queue: list[tuple[float, int, int, tuple]]
    env_now: float
    next_eid: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The checkpoint file's bytes (see the module docstring)."""
        payload = {
            "format": FORMAT_VERSION, "emtwin": __version__, "time_s": self.time_s,
            "scenario": self.scenario, "origins": self.scenario._origins, "blob": self.blob,
            "queue": self.queue, "env_now": self.env_now, "next_eid": self.next_eid,
            "meta": self.meta,
        }  # fmt: skip
        return MAGIC + bytes([FORMAT_VERSION]) + zlib.compress(pickle.dumps(payload, 5), 1)

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint to *path* (atomically: a temporary file renamed)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        """Read a checkpoint file.

        Raises
        ------
        CheckpointError
            If the file is not an emtwin checkpoint, or of another format version.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror})") from None
        return cls.from_bytes(data, label=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, *, label: str = "checkpoint") -> Checkpoint:
        """A checkpoint from the bytes of its file."""
        if not data.startswith(MAGIC):
            raise CheckpointError(f"{label}: not an emtwin checkpoint (it does not start with "
                                  f"{MAGIC.decode()})")  # fmt: skip
        version = data[len(MAGIC)]
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{label}: checkpoint format {version}; this emtwin reads "
                                  f"format {FORMAT_VERSION}")  # fmt: skip
        try:
            payload = pickle.loads(zlib.decompress(data[len(MAGIC) + 1:]))
        except Exception as exc:  # noqa: BLE001 - a damaged file, whatever the cause
            raise CheckpointError(f"{label}: damaged checkpoint ({exc})") from None
        sc = payload["scenario"]
        sc._origins = payload.get("origins") or []
        return cls(time_s=payload["time_s"], scenario=sc, blob=payload["blob"],
                   queue=payload["queue"], env_now=payload["env_now"],
                   next_eid=payload["next_eid"], meta=payload.get("meta", {}))  # fmt: skip


# ---------------------------------------------------------------------------- pickling


def _context(sim: Simulation) -> dict[int, Any]:
    """Objects of the run that are referenced, not stored: id -> persistent id."""
    w = sim.world
    ctx: dict[int, Any] = {id(sim.env): "env", id(w): "world", id(sim.scenario): "scenario",
                           id(sim): "sim"}  # fmt: skip
    for part in ("terrain", "roads", "places", "edge_cells"):
        obj = getattr(w, part, None)
        if obj is None:
            continue
        ctx[id(obj)] = ("world", part)
        for name, value in vars(obj).items():
            if isinstance(value, np.ndarray):
                ctx[id(value)] = ("world", part, name)
    return ctx


class _Pickler(cloudpickle.Pickler):
    """cloudpickle (closures and lambdas by value), with the run's context by reference."""

    def __init__(self, file: io.BytesIO, ctx: dict[int, Any]) -> None:
        super().__init__(file, protocol=5)
        self.ctx = ctx

    def persistent_id(self, obj: Any) -> Any:
        pid = self.ctx.get(id(obj))
        if pid is not None:
            return pid
        if isinstance(obj, simpy.Event):  # processes and timers are rebuilt from tags
            return "event"
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, sim: Simulation) -> None:
        super().__init__(file)
        self.sim = sim

    def persistent_load(self, pid: Any) -> Any:
        sim = self.sim
        if pid == "event":
            return None
        if isinstance(pid, tuple):
            obj = getattr(sim.world, pid[1])
            return getattr(obj, pid[2]) if len(pid) == 3 else obj
        return {"env": sim.env, "world": sim.world, "scenario": sim.scenario, "sim": sim}[pid]


def take_checkpoint(sim: Simulation) -> Checkpoint:
    """The state of *sim* now; see the module docstring.

    Raises
    ------
    CheckpointError
        If an event on the clock has no tag, or a component cannot be saved.
    """
    if not sim._started:
        raise CheckpointError("the run has not started: play it to the checkpoint time first")
    queue = pending(sim.env)
    state = {
        "components": sim.components, "recorder": sim.recorder, "state": sim.state,
        "watch": sim._watch, "fired": sim._fired, "sample_t": sim._sample_t,
        "wall_s": sim.wall_s,
    }  # fmt: skip
    buf = io.BytesIO()
    try:
        _Pickler(buf, _context(sim)).dump(state)
    except Exception as exc:  # noqa: BLE001 - whatever cannot be pickled
        raise CheckpointError(f"the run's state cannot be saved: {exc}") from None
    now = float(sim.env.now)
    next_eid = next(sim.env._eid)
    sim.env._eid = itertools.count(next_eid)
    return Checkpoint(time_s=_checkpoint_time(now), scenario=sim.scenario, blob=buf.getvalue(),
                      queue=queue, env_now=now, next_eid=next_eid,
                      meta={"seed": sim.scenario.seed, "name": sim.scenario.name})  # fmt: skip


def _checkpoint_time(now: float) -> float:
    """The checkpoint time T for a clock stopped just after it (``nextafter(T)``)."""
    return math.nextafter(now, -math.inf) if now > 0 else now


# ---------------------------------------------------------------------------- restoring


def _fork_scenario(base: Scenario, plans: Sequence[Any], time_s: float) -> Scenario:
    """The scenario of a fork: *base* with the plans' actions (at or after *time_s*)."""
    from emtwin.scenarios.loader import load_plans_over

    scenario, keys = load_plans_over(base, plans)
    problems = []
    for origin, key in keys:
        if key not in FORK_KEYS:
            problems.append(f"{origin}: {key}: a fork's plan may set only "
                            f"{', '.join(sorted(FORK_KEYS))}; the run's state up to the "
                            "checkpoint already holds the rest")  # fmt: skip
    for i, a in enumerate(scenario.actions):
        if a.at is not None and a.at < time_s:
            problems.append(f"{scenario.where('actions', i, 'at')}: {a.kind} at {a.at:g} s is "
                            f"before the checkpoint ({time_s:g} s); a fork can only change "
                            "what happens from then on")  # fmt: skip
    if problems:
        raise ScenarioError(problems, file=scenario.source)
    return scenario


def restore_checkpoint(
    cls: type[Simulation], checkpoint: Checkpoint | str | Path, *, plans: Sequence[Any] = (),
    allow_code: bool = False, world: Any = None,
) -> Simulation:
    """A Simulation of class *cls* continuing from *checkpoint*; see
    :meth:`emtwin.sim.Simulation.from_checkpoint` (*world*: the run's World, already
    built from the same scenario; built again when None)."""
    from emtwin.geo.build import build_world

    ck = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)
    fork = bool(plans)
    scenario = _fork_scenario(ck.scenario, plans, ck.time_s) if fork else ck.scenario
    problems = check_actions(scenario)
    if problems:
        raise ScenarioError(problems, file=scenario.source)
    sim = cls.__new__(cls)
    sim.scenario = scenario
    sim.allow_code = allow_code
    sim.world = world if world is not None else build_world(scenario)
    sim.env = simpy.Environment(initial_time=ck.env_now)
    sim.env._eid = itertools.count(ck.next_eid)
    sim.coupling_s = coupling_step(scenario)
    saved = _Unpickler(io.BytesIO(ck.blob), sim).load()
    sim.components = saved["components"]
    sim.recorder = saved["recorder"]
    sim.state = saved["state"]
    sim.roads = sim.state.roads
    sim._watch = saved["watch"]
    sim._fired = saved["fired"]
    sim._sample_t = saved["sample_t"]
    sim.wall_s = saved["wall_s"]
    sim._started = True
    #: the checkpoint time this run continues from, s
    sim.resumed_at_s = ck.time_s
    sim._handlers = {k: c for c in sim.components for k in c.actions}
    by_name = {c.name: c for c in sim.components}
    if fork:
        _fork_actions(sim, ck.time_s, base=ck.scenario)
    for time_s, priority, eid, tag in ck.queue:
        if fork and tag[:2] == ("engine", "action"):
            continue  # the base's actions still to come: the plan's replace them
        event = ExactEvent(sim.env, time_s, priority, eid)
        owner = sim if tag[0] == "engine" else by_name.get(tag[0])
        if owner is None:
            raise CheckpointError(f"the checkpoint has an event of component {tag[0]!r}, which "
                                  "this run does not have")  # fmt: skip
        owner.resume(tag, event)
    return sim


def _fork_actions(sim: Simulation, time_s: float, *, base: Scenario) -> None:
    """Put a fork's actions on the clock: timed ones at their time, triggers on watch.

    The ``warning_rules`` cannot change in a fork (only ``actions`` may): rule k,
    numbered ``len(base.actions) + k`` in the base run and ``len(actions) + k``
    here, keeps its state: a rule that fired before the checkpoint does not fire
    again, and a pending one keeps its rain window (the rain before the
    checkpoint counts). A ``when: {rain: ...}`` action of the fork's plan takes
    the rain history of a pending base trigger over the same cells and field,
    when there is one (else its window starts at the checkpoint).
    """
    from emtwin.sim.timers import tagged

    scenario = sim.scenario
    problems = []
    for i, a in enumerate(scenario.actions):
        handler = sim._handlers.get(a.kind)
        msg = handler.check_action(a) if handler is not None else None
        if msg:
            problems.append(f"{scenario.where('actions', i)}: {a.kind}: {msg}")
    if problems:
        raise ScenarioError(problems, file=scenario.source)
    for i, a in enumerate(scenario.actions):
        if a.at is not None and a.at <= sim.end_s:
            tagged(sim.env.process(sim._action(a)), "engine", "action", i)
    old_watch, old_fired = sim._watch, set(sim._fired)
    n_base, n_fork = len(base.actions), len(scenario.actions)
    carried = {n_base + k: n_fork + k for k in range(len(scenario.warning_rules))}
    sim._fired = {carried[i] for i in old_fired if i in carried}
    triggered = [(i, a) for i, a in scenario.triggered_actions() if i not in sim._fired]
    sim._watch = None
    if triggered:
        sim._watch = TriggerWatch(triggered, sim.state, sim.world, sim.recorder,
                                  scenario=scenario)
        sim._watch.hear_past(sim.recorder)
        if old_watch is not None:
            sim._watch.continue_rain(old_watch, carried)
