"""Floods computed once: record a run's flood, replay it in the runs that share its inputs.

In a batch or a comparison the flood is often the same in every run: no draw and no
plan changes it. The first run of a flood *key* (:func:`flood_key`, a content hash
of everything the flood reads) runs the kernel through :class:`FloodRecorder`, which
records, at every time the engine brings the flood to (a *stop*), what the flood
publishes: the cell fields ``water__depth``, ``water__speed``, ``hazard__max_class``
(zlib-compressed bytes, exact), ``water__time``, the gauge fields and the depth along
every road edge; its time-series samples; and, at the end, its ``summary.json``
section and outputs (rasters, gauges table, map frames). Later runs of the key use
:class:`FloodReplayer`, the same component (name ``flood``, same fields) fed from the
recording instead of the kernel: it writes the road fields, closures and their events
through the flood's own code, so the other components see exactly the same flood.

The flood's trajectory also depends on the times it is stopped at (the kernel's last
step before a stop is cut to land on it): coupling steps, output times and the
off-step times of actions and warnings. A replay checks that it is stopped at the
recorded times, in order; if a run stops it elsewhere (say a plan moves a warning to
an off-step time) the replay raises :class:`FloodReplayDivergedError` and the worker
recomputes that run with the kernel, recording it as another variant of the key (at
most :data:`MAX_VARIANTS`), which later runs with the same stops replay. Results are
therefore bit-identical to recomputing in every case. See docs/batch.md.

The components stay unaware: the replay runs through ``Simulation(replace={"flood":
...})``, and the other components only read fields.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import os
import pickle
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emtwin import __version__, kernels
from emtwin.errors import SimulationError
from emtwin.sim.component import Component
from emtwin.sim.components.hazard import FloodComponent

__all__ = [
    "FORMAT", "CACHE_DIR", "FloodReplayDivergedError", "Recording", "FloodRecorder",
    "FloodReplayer", "flood_key", "load_recordings", "cache_size",
]  # fmt: skip

log = logging.getLogger(__name__)

#: Format of the recordings (part of the key: a new format never reads an old one).
FORMAT = 1
#: The cache's folder inside a batch folder.
CACHE_DIR = "flood-cache"
#: zlib level of the recorded grids (1: fast; the grids are mostly dry, zeros).
ZLEVEL = 1
#: Keys whose recordings a worker process keeps in memory.
MEMORY_SLOTS = 2
#: Recordings of one key at most, each for another schedule of stops (see the module doc).
MAX_VARIANTS = 4

#: The cell fields recorded at every stop.
_CELL_FIELDS = ("water__depth", "water__speed", "hazard__max_class")


class FloodReplayDivergedError(SimulationError):
    """A replayed flood was asked for something its recording lacks (another stop time)."""


# ---------------------------------------------------------------------------- the key


def _hash_array(h: Any, label: str, a: Any) -> None:
    if a is None:
        h.update(f"{label}:none;".encode())
        return
    arr = np.ascontiguousarray(np.asarray(a))
    h.update(f"{label}:{arr.dtype.str}:{arr.shape};".encode())
    h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    """A hash of the flood's code: the kernels, the flood component and this module."""
    files = sorted(Path(kernels.__file__).parent.glob("*.py"))
    files += [Path(__file__), Path(inspect.getfile(FloodComponent))]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _file_hashes(obj: Any, out: dict[str, str]) -> None:
    """Content hashes of the files named in the flood section (e.g. a reservoir's area)."""
    if isinstance(obj, dict):
        for v in obj.values():
            _file_hashes(v, out)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _file_hashes(v, out)
    elif isinstance(obj, str) and len(obj) < 4096:
        with contextlib.suppress(OSError, ValueError):
            p = Path(obj)
            if p.is_file():
                out[obj] = hashlib.sha256(p.read_bytes()).hexdigest()


def _threads() -> int:
    try:
        import numba
    except ImportError:  # pragma: no cover
        return 1
    return int(numba.get_num_threads())


def flood_key(scenario: Any, world: Any) -> tuple[str, dict[str, Any]]:
    """The cache key of a run's flood and the document it hashes (without the arrays).

    What the flood reads: its hazard section after draws and plans (with the content
    of the files it names), the terrain's arrays (bed, mask, Manning's n, water at
    rest, transform, cell size), the road edge->cell index and edge ids it publishes
    on, the scenario and World CRS, the coupling step, ``outputs.every``,
    ``duration``, the backend it resolves to with its precision and threads, the
    flood's code, and the flood component's seed stream where it draws random
    numbers (:attr:`FloodComponent.draws_random`; today it draws none, so every
    run of a batch shares one flood).
    """
    from emtwin.kernels.backend import select_backend
    from emtwin.sim.plan import coupling_step

    spec = scenario.flood
    dumped = spec.model_dump(mode="json", by_alias=True)
    files: dict[str, str] = {}
    _file_hashes(dumped, files)
    try:
        backend = select_backend(spec.backend)
    except Exception as exc:  # noqa: BLE001 - the run reports it; the key just differs
        backend = f"unavailable: {exc}"
    random = bool(getattr(FloodComponent, "draws_random", False))
    doc = {
        "format": FORMAT, "emtwin": __version__, "code": _code_hash(), "flood": dumped,
        "files": files, "crs": str(scenario.crs), "world_crs": world.crs.to_string(),
        "coupling_s": float(coupling_step(scenario)), "every_s": float(scenario.outputs.every),
        "duration_s": float(scenario.duration), "backend": backend, "threads": _threads(),
        "seed_stream": [int(scenario.seed), "flood"] if random else None,
    }  # fmt: skip
    h = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode())
    t = world.terrain
    for name in ("z", "mask", "manning", "water"):
        _hash_array(h, name, getattr(t, name))
    _hash_array(h, "transform", tuple(t.transform))
    _hash_array(h, "dx", float(t.dx))
    idx = world.edge_cells
    if idx is not None:
        for name in ("indptr", "cells", "deck_z"):
            _hash_array(h, f"edge.{name}", getattr(idx, name, None))
    roads = world.roads
    if roads is not None:
        _hash_array(h, "road_id", np.asarray(roads.road_id).astype(str))
    return h.hexdigest()[:32], doc


# ---------------------------------------------------------------------------- recordings


def _pack(a: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    arr = np.ascontiguousarray(a)
    return arr.dtype.str, arr.shape, zlib.compress(arr.tobytes(), ZLEVEL)


def _unpack(p: tuple[str, tuple[int, ...], bytes]) -> np.ndarray:
    dtype, shape, blob = p
    return np.frombuffer(zlib.decompress(blob), dtype=dtype).reshape(shape)


@dataclass
class Stop:
    """What the flood published at one time it was brought to."""

    time_s: float
    water_time: float
    cells: dict[str, int]  # field -> index into Recording.blobs
    gauge_depth: dict[str, float]
    gauge_level: dict[str, float]
    edge_depth: int | None  # index into Recording.blobs
    gauge_flow: dict[str, float] = field(default_factory=dict)


@dataclass
class Recording:
    """A recorded flood: its stops, samples, summary section and outputs."""

    key: str
    stops: list[Stop] = field(default_factory=list)
    blobs: list[tuple[str, tuple[int, ...], bytes]] = field(default_factory=list)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    summary: bytes = b""
    outputs: bytes = b""

    def array(self, i: int) -> np.ndarray:
        """Blob *i* as a read-only array."""
        return _unpack(self.blobs[i])

    @property
    def nbytes(self) -> int:
        """Bytes held by the recorded grids and outputs."""
        return sum(len(b[2]) for b in self.blobs) + len(self.summary) + len(self.outputs)


_MEMORY: dict[tuple[str, str], list[Recording]] = {}
_MEMORY_LOCK = threading.Lock()


def _remember(key: tuple[str, str], recs: list[Recording]) -> None:
    with _MEMORY_LOCK:
        _MEMORY.pop(key, None)
        _MEMORY[key] = recs
        while len(_MEMORY) > MEMORY_SLOTS:
            _MEMORY.pop(next(iter(_MEMORY)))


def _path(cache: str | Path, key: str, variant: int) -> Path:
    return Path(cache) / key / f"recording-{variant}.pkl"


def load_recordings(cache: str | Path, key: str, *, fresh: bool = False) -> list[Recording]:
    """The recordings of *key* in folder *cache*, one per schedule of stops met so far
    (from memory when this process holds them, unless *fresh*)."""
    mem = (str(cache), key)
    with _MEMORY_LOCK:
        held = None if fresh else _MEMORY.get(mem)
    if held is not None:
        return held
    recs = []
    for v in range(MAX_VARIANTS):
        p = _path(cache, key, v)
        if not p.is_file():
            break
        try:
            with p.open("rb") as f:
                rec = pickle.load(f)  # noqa: S301 - the batch folder's own cache
        except Exception as exc:  # noqa: BLE001 - a broken cache entry is recomputed
            log.warning("flood cache %s unreadable (%s): recomputing the flood", p, exc)
            break
        if not isinstance(rec, Recording) or rec.key != key:
            break
        recs.append(rec)
    _remember(mem, recs)
    return recs


def _save(cache: str | Path, rec: Recording, variant: int, doc: dict[str, Any]) -> None:
    p = _path(cache, rec.key, variant)
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.parent / "key.json").write_text(json.dumps(doc, indent=1, sort_keys=True, default=str),
                                       encoding="utf-8")  # fmt: skip
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        pickle.dump(rec, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(p)
    with _MEMORY_LOCK:
        _MEMORY.pop((str(cache), rec.key), None)


def cache_size(folder: str | Path) -> int:
    """Bytes the flood cache of batch folder *folder* takes on disk."""
    root = Path(folder) / CACHE_DIR
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


# ---------------------------------------------------------------------------- components


class FloodRecorder(FloodComponent):
    """The flood, run by its kernel, recording what it publishes (see the module doc).

    A subclass made by :func:`run_with_cache` sets :attr:`cache`, :attr:`key` and
    :attr:`key_doc`.
    """

    cache: ClassVar[str] = ""
    key: ClassVar[str] = ""
    key_doc: ClassVar[dict[str, Any]] = {}
    variant: ClassVar[int] = 0

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self._rec = Recording(self.key)
        self._rng0 = json.dumps(rng.bit_generator.state, default=str, sort_keys=True)
        self._last: dict[str, tuple[np.ndarray, int]] = {}
        self._edge_now: np.ndarray | None = None
        self._summary: dict[str, Any] | None = None

    def _blob(self, name: str, a: np.ndarray) -> int:
        """Index of the blob holding *a* (the previous stop's when unchanged)."""
        prev = self._last.get(name)
        if prev is not None and prev[0].dtype == a.dtype and np.array_equal(prev[0], a):
            return prev[1]
        self._rec.blobs.append(_pack(a))
        i = len(self._rec.blobs) - 1
        self._last[name] = (np.array(a, copy=True), i)
        return i

    def _edge_depths(self) -> np.ndarray:
        depth = super()._edge_depths()
        self._edge_now = np.array(depth, copy=True)
        return depth

    def advance_to(self, time_s: float) -> None:
        new = not self._rec.stops or float(time_s) > self.model.t
        self._edge_now = None
        super().advance_to(time_s)
        if new:
            self._record(float(time_s))

    def _record(self, now: float) -> None:
        m = self.model
        cells = {"water__depth": self._blob("h", np.asarray(m.h)),
                 "water__speed": self._blob("speed", np.asarray(m.speed())),
                 "hazard__max_class": self._blob("aidr", np.asarray(m.max_aidr))}  # fmt: skip
        edge = None if self._edge_now is None else self._blob("edge", self._edge_now)
        self._rec.stops.append(Stop(now, float(m.t), cells, self._gauge_depths(),
                                    self._gauge_levels(), edge, self._gauge_flows()))  # fmt: skip

    def sample(self) -> dict[str, float]:
        row = super().sample()
        self._rec.samples.append((float(self.env.now), dict(row)))
        return row

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        self._summary = out
        return out

    def outputs(self) -> dict[str, Any]:
        out = super().outputs()
        if self._summary is None:
            return out
        rng = json.dumps(self.rng.bit_generator.state, default=str, sort_keys=True)
        if rng != self._rng0:
            log.warning("the flood drew random numbers: its recording is not kept "
                        "(set FloodComponent.draws_random)")  # fmt: skip
            return out
        self._rec.summary = pickle.dumps(self._summary, protocol=pickle.HIGHEST_PROTOCOL)
        self._rec.outputs = zlib.compress(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL),
                                          ZLEVEL)  # fmt: skip
        try:
            _save(self.cache, self._rec, self.variant, self.key_doc)
        except OSError as exc:
            log.warning("flood cache not written (%s)", exc)
        return out


class FloodReplayer(FloodComponent):
    """The flood replayed from recordings: the same fields, road state, events, samples,
    summary and outputs as the run that recorded it; no kernel.

    A subclass made by :func:`run_with_cache` sets :attr:`recordings`: those of one key,
    each for another schedule of stops. They agree up to the first stop where their
    schedules part, so the replay follows those whose stops are this run's stops and
    publishes from the first of them.
    """

    recordings: ClassVar[list[Recording]] = []

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:  # noqa: D107
        Component.__init__(self, sim, rng)  # not the flood's: no kernel, no grids
        self.cands = list(self.recordings)
        if not self.cands:
            raise FloodReplayDivergedError("no recording to replay")
        self.spec = self.scenario.flood
        self.i = 0
        self.j = 0
        self._arrays: dict[int, np.ndarray] = {}
        n = self.world.roads.n_edges if self.world.roads else 0
        self.ever_closed = np.zeros(n, dtype=bool)
        st, me = self.fields, self.name
        for f in _CELL_FIELDS:
            st.provide(f, functools.partial(self._cell, f), writer=me)
        st.provide("water__time", lambda: self._stop.water_time, writer=me)
        st.provide("gauge__depth", lambda: dict(self._stop.gauge_depth), writer=me)
        st.provide("gauge__level", lambda: dict(self._stop.gauge_level), writer=me)
        st.provide("gauge__flow", lambda: dict(self._stop.gauge_flow), writer=me)

    @property
    def rec(self) -> Recording:
        """The recording published from (the first that still follows this run)."""
        return self.cands[0]

    @property
    def _stop(self) -> Stop:
        return self.rec.stops[self.i]

    def _keep(self, ok: Any, what: str) -> None:
        """Keep the candidates for which *ok(recording)* holds; none left: diverged."""
        keep = [r for r in self.cands if ok(r)]
        if not keep:
            raise FloodReplayDivergedError(what)
        if keep[0] is not self.cands[0]:
            self._arrays = {}
        self.cands = keep

    def _cell(self, name: str) -> np.ndarray:
        b = self._stop.cells[name]
        if b not in self._arrays:
            self._arrays = {k: v for k, v in self._arrays.items()
                            if k in self._stop.cells.values()}  # fmt: skip
            self._arrays[b] = self.rec.array(b)
        return self._arrays[b]

    def advance_to(self, time_s: float) -> None:
        now = float(time_s)
        if now > self._stop.water_time:
            nxt = self.i + 1
            self._keep(lambda r: nxt < len(r.stops) and r.stops[nxt].time_s == now,
                       f"the flood is brought to t = {now:g} s, a time no recording has next")
            self.i = nxt
        if self._stop.edge_depth is not None and self.sim.roads is not None:
            self._apply_edge_depths(now, self.rec.array(self._stop.edge_depth))

    def sample(self) -> dict[str, float]:
        now, j = float(self.env.now), self.j
        self._keep(lambda r: j < len(r.samples) and r.samples[j][0] == now,
                   f"the flood is sampled at t = {now:g} s, not recorded")
        self.j += 1
        return dict(self.rec.samples[j][1])

    def summary(self) -> dict[str, Any]:
        i, j = self.i, self.j
        self._keep(lambda r: i == len(r.stops) - 1 and j == len(r.samples),
                   "the run ended before its recorded flood did")
        return pickle.loads(self.rec.summary)  # noqa: S301 - our own recording

    def outputs(self) -> dict[str, Any]:
        return pickle.loads(zlib.decompress(self.rec.outputs))  # noqa: S301


# ---------------------------------------------------------------------------- in a worker


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on *path* (``flock``; released by the OS if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock, at worst computed twice
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def replayable(scenario: Any) -> bool:
    """Whether the flood of *scenario* depends on nothing but its key: no other running
    component writes a field the flood reads (a storm's ``rain__rate`` or ``sea__level``),
    and no reservoir breaches by its state (``release_when``: its ``breach`` event is not
    recorded). Other floods are computed in every run."""
    from emtwin.sim.components import REGISTRY

    reads = set(FloodComponent.reads)
    for cls in REGISTRY:
        if cls is not FloodComponent and cls.enabled(scenario) and reads & set(cls.writes):
            return False
    for b in scenario.flood.breaches:
        res = getattr(b, "reservoir", None)
        if res is not None and getattr(res, "release_when", None) is not None:
            return False
    return True


def run_with_cache(scenario: Any, cache: str | Path, *, world: Any = None,
                   allow_code: bool = False) -> tuple[Any, str]:  # fmt: skip
    """Run *scenario* with its flood recorded in, or replayed from, folder *cache*.

    *world*: the scenario's World when already built. Returns the Results and what
    happened to the flood: ``replayed``, ``recorded``, ``recomputed`` (no recording
    of the key had this run's stops: it computes its flood, and records it as another
    variant of the key while there are fewer than :data:`MAX_VARIANTS`), ``none`` (no
    flood) or ``off`` (another flood component is plugged in).

    A run that computes a flood holds a lock on its key while it records, so the runs
    of the same key in other workers wait for its recording instead of computing it
    too.
    """
    from emtwin.geo.build import build_world
    from emtwin.sim.components import REGISTRY
    from emtwin.sim.engine import Simulation

    if scenario.flood is None:
        return Simulation(scenario, world=world, allow_code=allow_code).run(), "none"
    if FloodComponent not in REGISTRY or not replayable(scenario):
        return Simulation(scenario, world=world, allow_code=allow_code).run(), "off"
    world = world if world is not None else build_world(scenario)
    key, doc = flood_key(scenario, world)

    def replay(recs: list[Recording]) -> Any:
        if not recs:
            return None
        cls = type("FloodReplay", (FloodReplayer,), {"recordings": recs})
        try:
            return Simulation(scenario, world=world, allow_code=allow_code,
                              replace={"flood": cls}).run()  # fmt: skip
        except FloodReplayDivergedError as exc:
            log.info("flood replay diverged (%s)", exc)
            return None

    seen = load_recordings(cache, key)
    res = replay(seen)
    if res is not None:
        return res, "replayed"
    with _locked(Path(cache) / key / "lock"):
        recs = load_recordings(cache, key, fresh=True)
        if len(recs) > len(seen):  # recorded meanwhile, by another worker
            res = replay(recs)
            if res is not None:
                return res, "replayed"
        how = "recomputed" if recs else "recorded"
        if len(recs) >= MAX_VARIANTS:
            return Simulation(scenario, world=world, allow_code=allow_code).run(), how
        cls = type("FloodRecord", (FloodRecorder,), {"cache": str(cache), "key": key,
                                                     "key_doc": doc, "variant": len(recs)})
        return Simulation(scenario, world=world, allow_code=allow_code,
                          replace={"flood": cls}).run(), how
