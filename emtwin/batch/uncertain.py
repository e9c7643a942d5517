"""Uncertain parameters of a batch: key paths, distributions, Monte Carlo and Latin hypercube.

The scenario's ``uncertain:`` section maps key paths (``hazards.0.rain``,
``evacuation.departure.sigma``) to distributions. :func:`parameters` resolves each
path against the scenario schema and against the scenario itself (the key must exist
and hold a value), and parses the distribution's values in the key's own units (s for
durations, 1/s for rates). :func:`sample` draws every run's values from the scenario
seed, and :func:`edits` turns one run's draw into the raw values written into the
scenario dict, which is then validated again (so every run is a valid scenario).

Randomness: run *i* draws from ``SeedSequence(seed, spawn_key=(tag, i, crc32(path)))``
(Monte Carlo) or from one stratified permutation per parameter (Latin hypercube,
``SeedSequence(seed, spawn_key=(tag, crc32(path), runs))``), so a run's values do not
depend on the number of workers, on the order runs finish, or on the plan.
"""

from __future__ import annotations

import copy
import math
import types
import typing
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from emtwin import distributions as dists
from emtwin.errors import ScenarioError
from emtwin.scenarios._types import (
    Duration,
    NonNegDuration,
    PosDuration,
    Rate,
    Series,
    parse_duration,
    parse_rate,
)
from emtwin.scenarios.models import Scenario, UncertainChoice, UncertainValue

__all__ = [
    "Parameter",
    "parameters",
    "sample",
    "run_seed",
    "edits",
    "apply_edits",
    "REFUSED_KEYS",
]

#: Top-level keys that cannot be uncertain (they name or seed the batch itself).
REFUSED_KEYS = frozenset({"uncertain", "response_index", "seed", "name", "description", "crs"})

_TAG_SEED, _TAG_MC, _TAG_LHS = 0x5EED, 0x3C, 0x1A5  # spawn-key tags of the three streams
_U_MIN = 2.0**-53  # draws are kept inside (0, 1) so that every inverse CDF is finite

Kind = Literal["number", "int", "duration", "rate", "series", "other"]


def _funcs(alias: Any) -> set[Any]:
    return {getattr(m, "func", None) for m in typing.get_args(alias)[1:]} - {None}


_RATE = _funcs(Rate)
_DURATION = _funcs(Duration) | _funcs(NonNegDuration) | _funcs(PosDuration)
_SERIES = _funcs(Series)


# ---------------------------------------------------------------------------- schema walk


def _members(annotation: Any, metadata: Sequence[Any] = ()) -> list[tuple[Any, tuple[Any, ...]]]:
    """The members of a (possibly Optional/Union/Annotated) annotation with their metadata."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        return _members(base, (*metadata, *meta))
    if origin in (typing.Union, types.UnionType):
        out: list[tuple[Any, tuple[Any, ...]]] = []
        for a in typing.get_args(annotation):
            if a is not type(None):
                out += _members(a, metadata)
        return out
    return [(annotation, tuple(metadata))]


def _kind(members: list[tuple[Any, tuple[Any, ...]]]) -> Kind:
    """The kind of value a leaf key holds, from its annotation."""
    for base, meta in members:
        funcs = {getattr(m, "func", None) for m in meta}
        if funcs & _RATE:
            return "rate"
        if funcs & _DURATION:
            return "duration"
        if funcs & _SERIES:
            return "series"
        if base is float:
            return "number"
        if base is int:
            return "int"
    return "other"


def _field(model: type[BaseModel], key: str) -> tuple[str, Any] | None:
    for name, f in model.model_fields.items():
        if (f.alias or name) == key and not f.exclude:
            return name, f
    return None


def _resolve_schema(keys: tuple[str | int, ...]) -> Kind:
    """Walk *keys* down the Scenario schema; return the leaf kind or raise ValueError."""
    members: list[tuple[Any, tuple[Any, ...]]] = [(Scenario, ())]
    done: list[str] = []
    for pos, key in enumerate(keys):
        nxt: list[tuple[Any, tuple[Any, ...]]] = []
        for base, meta in members:
            origin = typing.get_origin(base)
            if isinstance(base, type) and issubclass(base, BaseModel) and isinstance(key, str):
                hit = _field(base, key)
                if hit is not None:
                    nxt += _members(hit[1].annotation, hit[1].metadata)
            elif origin is list and isinstance(key, int) and _kind([(base, meta)]) != "series":
                nxt += _members(typing.get_args(base)[0])
            elif origin is dict and isinstance(key, str):
                ktype, vtype = typing.get_args(base)
                allowed = typing.get_args(ktype) if typing.get_origin(ktype) is Literal else ()
                if not allowed or key in allowed:
                    nxt += _members(vtype)
        if not nxt:
            where = ".".join(done) or "the top level"
            raise ValueError(f"no key '{key}' under {where} in the scenario format"
                             + _hint(members))  # fmt: skip
        if _kind(nxt) == "series" and pos < len(keys) - 1:
            raise ValueError(f"{'.'.join(map(str, (*done, key)))} is a series; vary it as a "
                             "whole with `scale:`")  # fmt: skip
        members = nxt
        done.append(str(key))
    return _kind(members)


def _hint(members: list[tuple[Any, tuple[Any, ...]]]) -> str:
    names = []
    for base, _ in members:
        if isinstance(base, type) and issubclass(base, BaseModel):
            names += [f.alias or n for n, f in base.model_fields.items() if not f.exclude]
        elif typing.get_origin(base) is list:
            names.append("a list index 0, 1, ...")
    return f" (expected one of: {', '.join(names)})" if names else ""


def _split(path: str) -> tuple[str | int, ...]:
    return tuple(int(k) if k.isdigit() else k for k in path.split("."))


def _lookup(obj: Any, keys: tuple[str | int, ...]) -> Any:
    """The value at *keys* in a validated Scenario; raise ValueError naming the missing part."""
    done: list[str] = []
    for key in keys:
        if obj is None:
            raise ValueError(f"the scenario has no `{'.'.join(done)}`, so nothing to vary there")
        if isinstance(obj, BaseModel):
            name, _ = _field(type(obj), str(key)) or (str(key), None)
            obj = getattr(obj, name)
        elif isinstance(obj, list | tuple):
            if not isinstance(key, int) or key >= len(obj):
                raise ValueError(f"`{'.'.join(done)}` has {len(obj)} item(s); "
                                 f"there is no item {key}")  # fmt: skip
            obj = obj[key]
        elif isinstance(obj, Mapping):
            if key not in obj:
                raise ValueError(f"`{'.'.join(done)}` has no entry '{key}' "
                                 f"(entries: {', '.join(map(str, obj)) or 'none'})")  # fmt: skip
            obj = obj[key]
        done.append(str(key))
    if obj is None:
        raise ValueError(f"`{'.'.join(done)}` is not set in this scenario; give it a value "
                         "to vary it")  # fmt: skip
    return obj


# ---------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameter:
    """One uncertain value of a batch, its distribution parsed in the key's units.

    Attributes
    ----------
    path
        The key path as written (``evacuation.departure.sigma``).
    keys
        The path split into mapping keys (str) and list indices (int).
    kind
        What the key holds: ``number``, ``int``, ``duration`` (s), ``rate`` (1/s),
        ``series`` or ``other`` (text, flags).
    mode
        ``set`` (the draw is the value) or ``scale`` (the draw multiplies the value,
        or every value of a series).
    dist
        ``uniform``, ``normal``, ``lognormal``, ``triangular`` or ``choice``.
    args
        The distribution's parameters in SI (s, 1/s) or as multipliers.
    choices, weights
        For ``choice``: the values as written, and their probabilities.
    """

    path: str
    keys: tuple[str | int, ...]
    kind: Kind
    mode: Literal["set", "scale"]
    dist: str
    args: dict[str, float] = field(default_factory=dict)
    choices: tuple[Any, ...] = ()
    weights: tuple[float, ...] = ()

    @property
    def column(self) -> str:
        """Its column in the results table: ``param.PATH`` (a value) or ``scale.PATH``."""
        return f"{'scale' if self.mode == 'scale' else 'param'}.{self.path}"

    @property
    def law(self) -> dists.Law:
        """The distribution of a numeric parameter, from :mod:`emtwin.distributions`."""
        a = self.args
        if self.dist == "uniform":
            return dists.uniform(a["low"], a["high"])
        if self.dist == "triangular":
            return dists.triangular(a["low"], a["mode"], a["high"])
        if self.dist == "normal":
            return dists.normal(a["mean"], a["sd"], a.get("min"), a.get("max"))
        if self.dist == "lognormal":  # with the mean and sd of the value itself
            return dists.lognormal(a["mean"], a["sd"])
        raise ValueError(f"{self.path}: `{self.dist}` has no continuous law")

    def values(self, u: np.ndarray) -> list[Any]:
        """The values at cumulative probabilities *u* (the inverse CDF), SI or as written."""
        if self.dist == "choice":
            cum = np.cumsum(self.weights)
            idx = np.minimum(np.searchsorted(cum, u * cum[-1], side="right"), len(cum) - 1)
            return [self.choices[i] for i in idx]
        a = self.args
        v = self.law.ppf(np.clip(np.asarray(u, dtype=float), _U_MIN, 1 - _U_MIN))
        v = np.clip(v, a.get("min", -math.inf), a.get("max", math.inf))
        return [float(x) for x in v]

    def record(self, value: Any) -> Any:
        """The value as kept in the results table: SI float where the key is numeric."""
        if self.mode == "scale" or self.dist != "choice":
            return value
        return _parse(value, self.kind, self.path) if self.kind in _NUMERIC else value


_NUMERIC = ("number", "duration", "rate")


def _parse(v: Any, kind: Kind, path: str) -> float:
    """A distribution value in SI for a key of *kind*; ValueError naming what was expected."""
    if kind == "rate":
        return parse_rate(v)
    if kind == "duration":
        return parse_duration(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number for {path}, got {v!r}")
    return float(v)


def _make(path: str, keys: tuple[str | int, ...], kind: Kind, spec: UncertainValue) -> Parameter:
    """A Parameter from its spec; ValueError when the distribution does not fit the key."""
    mode: Literal["set", "scale"] = "set"
    if spec.scale is not None:
        if kind not in ("series", *_NUMERIC):
            raise ValueError(f"`scale:` multiplies numbers or series; this key holds {kind} "
                             "values (use `choice:`)")  # fmt: skip
        mode, spec, kind_v = "scale", spec.scale, "number"
    else:
        if kind == "series":
            raise ValueError("a series is varied with `scale: DIST` (a multiplier of its values)")
        kind_v = kind
    dist = next(k for k in ("uniform", "normal", "lognormal", "triangular", "choice")
                if getattr(spec, k) is not None)  # fmt: skip
    raw = getattr(spec, dist)
    if dist == "choice":
        c = raw if isinstance(raw, UncertainChoice) else UncertainChoice(values=raw)
        w = c.weights or [1.0] * len(c.values)
        if kind_v in _NUMERIC:
            vals = [_parse(v, kind_v, path) for v in c.values]
            if mode == "scale" and min(vals) < 0:
                raise ValueError("scale factors must not be negative")
        return Parameter(path, keys, kind, mode, dist, {}, tuple(c.values),
                         tuple(float(x) / sum(w) for x in w))  # fmt: skip
    if kind_v not in _NUMERIC:
        raise ValueError(f"this key holds {kind_v} values; give it a `choice:` of values")
    names = {"uniform": ("low", "high"), "triangular": ("low", "mode", "high")}
    if isinstance(raw, dict):
        args = {k: _parse(v, kind_v, path) for k, v in raw.items()}
    else:
        args = {k: _parse(v, kind_v, path) for k, v in zip(names[dist], raw, strict=True)}
    if mode == "scale" and (
        (dist in ("uniform", "triangular") and args["low"] < 0)
        or (dist == "normal" and args.get("min", -1.0) < 0)
    ):
        raise ValueError("scale factors must not be negative: give a low end >= 0 "
                         "(for normal, `min: 0`)")  # fmt: skip
    return Parameter(path, keys, kind, mode, dist, args)


def parameters(scenario: Scenario, *, label: str | None = None) -> list[Parameter]:
    """The uncertain parameters of *scenario*, each resolved and checked.

    Parameters
    ----------
    scenario
        A validated scenario; its ``uncertain`` section is read (none: no parameters).
    label
        Shown in messages (for example the plan the check was made for).

    Raises
    ------
    ScenarioError
        Listing every key path that the scenario format does not have, that this
        scenario does not set, or whose distribution does not fit the key.
    """
    spec = scenario.uncertain
    if spec is None:
        return []
    out, problems = [], []
    for path, value in spec.parameters.items():
        where = f"uncertain.parameters.{path}"
        keys = _split(path)
        try:
            if not path or "" in keys:
                raise ValueError("expected a key path such as evacuation.departure.sigma")
            if keys[0] in REFUSED_KEYS:
                raise ValueError(f"`{keys[0]}` cannot be uncertain")
            kind = _resolve_schema(keys)
            current = _lookup(scenario, keys)
            if kind == "series" and not isinstance(current, list):
                raise ValueError("expected a series here")
            out.append(_make(path, keys, kind, value))
        except ValueError as exc:
            suffix = f" (in {label})" if label else ""
            problems.append(f"{where}: {exc}{suffix}")
    if problems:
        raise ScenarioError(problems, file=scenario.source)
    return out


# ---------------------------------------------------------------------------- draws


def run_seed(seed: int, run: int) -> int:
    """The seed of run *run* of a batch on scenario seed *seed* (63-bit, >= 0)."""
    ss = np.random.SeedSequence(seed, spawn_key=(_TAG_SEED, run))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _key(path: str) -> int:
    return zlib.crc32(path.encode())


def sample(
    params: Sequence[Parameter], *, seed: int, runs: int, method: str = "monte_carlo"
) -> list[dict[str, Any]]:
    """Every run's values: one ``{path: value}`` per run (SI, multipliers, or as written).

    Parameters
    ----------
    params
        From :func:`parameters`.
    seed
        The scenario seed.
    runs
        The number of runs, >= 1.
    method
        ``monte_carlo``: run *i*'s values depend only on (seed, i, path).
        ``lhs``: Latin hypercube; each parameter's range is cut into *runs* strata
        of equal probability and every stratum holds exactly one run (the strata
        depend on *runs*).
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    cols = []
    for p in params:
        if method == "lhs":
            rng = np.random.default_rng(np.random.SeedSequence(
                seed, spawn_key=(_TAG_LHS, _key(p.path), runs)))  # fmt: skip
            u = (rng.permutation(runs) + rng.random(runs)) / runs
        elif method == "monte_carlo":
            u = np.array([
                np.random.default_rng(np.random.SeedSequence(
                    seed, spawn_key=(_TAG_MC, i, _key(p.path)))).random()
                for i in range(runs)
            ])  # fmt: skip
        else:
            raise ValueError(f"method must be monte_carlo or lhs, got {method!r}")
        cols.append(p.values(u))
    return [{p.path: col[i] for p, col in zip(params, cols, strict=True)} for i in range(runs)]


# ---------------------------------------------------------------------------- applying


def _write(value: float, kind: Kind) -> Any:
    """A value in the form the scenario file takes for a key of *kind*."""
    if kind == "rate":
        return f"{value!r}/s"
    return float(value)


def edits(
    scenario: Scenario, params: Sequence[Parameter], draw: Mapping[str, Any]
) -> list[tuple[tuple[str | int, ...], Any]]:
    """The raw values one run writes into the scenario dict: ``[(keys, value), ...]``.

    A ``set`` parameter writes its draw; a ``scale`` parameter writes the scenario's
    current value (every value of a series) times its draw.
    """
    out = []
    for p in params:
        x = draw[p.path]
        if p.mode == "scale":
            current = _lookup(scenario, p.keys)
            factor = _parse(x, "number", p.path)
            if p.kind == "series":
                out.append((p.keys, [[float(t), float(v) * factor] for t, v in current]))
            else:
                out.append((p.keys, _write(float(current) * factor, p.kind)))
        elif p.dist == "choice":
            out.append((p.keys, copy.deepcopy(x)))
        else:
            out.append((p.keys, _write(x, p.kind)))
    return out


def apply_edits(data: Mapping[str, Any], changes: Sequence[tuple[tuple, Any]]) -> dict[str, Any]:
    """A copy of the raw scenario dict *data* with *changes* written in.

    Mappings missing on the way (keys left at their defaults) are created; a list
    item or a value written in a short form (``roads: file.osm``) cannot be
    stepped into and raises ValueError naming the path.
    """
    out = copy.deepcopy(dict(data))
    for keys, value in changes:
        node: Any = out
        for i, k in enumerate(keys[:-1]):
            where = ".".join(map(str, keys[: i + 1]))
            if isinstance(node, list) and isinstance(k, int) and k < len(node):
                node = node[k]
            elif isinstance(node, dict) and not isinstance(k, int):
                if node.get(k) is None:
                    node[k] = {}
                node = node[k]
            else:
                raise ValueError(f"cannot vary {'.'.join(map(str, keys))}: write `{where}` out "
                                 "in full in the scenario file")  # fmt: skip
            if not isinstance(node, dict | list):
                raise ValueError(f"cannot vary {'.'.join(map(str, keys))}: `{where}` is written "
                                 "in a short form; write it out as a mapping")  # fmt: skip
        last = keys[-1]
        fits = (isinstance(node, list) and isinstance(last, int) and last < len(node)) or (
            isinstance(node, dict) and not isinstance(last, int)
        )
        if fits:
            node[last] = value
        else:
            raise ValueError(f"cannot vary {'.'.join(map(str, keys))}: write it out in full "
                             "in the scenario file")  # fmt: skip
    return out
