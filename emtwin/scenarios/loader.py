"""Loading scenario files: safe YAML, plan overlays, every error with file, key and line.

``load_scenario("riverside.yaml", plans=["plan_a.yaml"])`` reads the base file,
lays each plan over it (mappings merged key by key, lists replaced whole),
validates the result and returns a :class:`~emtwin.scenarios.models.Scenario`.
A name without a path (``riverside``) picks a built-in scenario.

YAML is read with ``yaml.SafeLoader``: tags that would build Python objects are
refused, so a scenario file shared between agencies cannot run code.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from emtwin.errors import ScenarioError
from emtwin.scenarios._locate import locate_key
from emtwin.scenarios.limits import limit_problems
from emtwin.scenarios.models import Scenario

__all__ = [
    "load_scenario",
    "read_yaml",
    "merge",
    "locate",
    "resolve_paths",
    "builtin_scenarios",
    "builtin_path",
    "locate_key",
]

#: Keys whose string values are data paths, resolved against the file that holds them.
PATH_KEYS = frozenset({"dem", "source", "shelters", "stations", "hospitals", "area", "raster"})


# ---------------------------------------------------------------------------- YAML


#: Largest scenario or plan file read, bytes. Tables (households, calls, places)
#: belong in CSV or Parquet files that the scenario names.
MAX_YAML_BYTES = 1_000_000
#: Most values (mappings, lists and scalars) a file may hold once its aliases
#: (``*name``) are expanded: a few aliases nested ten deep reach billions.
MAX_YAML_VALUES = 200_000
#: Deepest nesting of mappings and lists a file may have.
MAX_YAML_DEPTH = 50

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# YAML 1.1 int and float without the base-60 forms (``3:00`` is 180 there): such a
# value stays a string, which the duration parser reads as hours:minutes.
_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader without base-60 numbers (``1:30`` is the string "1:30", not 90)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, _INT_RE if tag == _INT else _FLOAT_RE if tag == _FLOAT else rx)
        for tag, rx in resolvers
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line_map(root: yaml.Node) -> dict:
    """Map each key path of a composed YAML tree to its 1-based line number.

    An alias (``*name``) is not followed: its keys keep the line of the alias.
    """
    out: dict = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                p = (*path, key)
                out.setdefault(p, k.start_mark.line + 1)
                stack.append((v, p))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = (*path, i)
                out.setdefault(p, v.start_mark.line + 1)
                stack.append((v, p))
    return out


def _check_tree(root: yaml.Node) -> list[str]:
    """Problems of a composed tree: duplicate keys, too many values, too deep, cycles.

    Counts the values the tree holds with every alias expanded, without
    expanding them: the composer shares an anchor's node between its aliases,
    so each node's count is computed once and reused.
    """
    problems: list[str] = []
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]  # iterative post-order walk
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size:
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            kids = [v for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if not done:
            if key in entered:
                line = node.start_mark.line + 1
                return [*problems, f"line {line}: an alias (*name) refers to a value that "
                        "holds the alias itself"]  # fmt: skip
            entered.add(key)
            if isinstance(node, yaml.MappingNode):
                problems += _duplicates(node)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        size[key] = 1 + sum(size[id(k)] for k in kids)
        depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
        if size[key] > MAX_YAML_VALUES:
            return [*problems, (
                f"the file holds more than {MAX_YAML_VALUES:,} values once its aliases "
                "(*name) are expanded (limit); large tables belong in CSV or Parquet files "
                "that the scenario names")]  # fmt: skip
        if depth[key] > MAX_YAML_DEPTH:
            return [*problems, f"mappings and lists are nested more than {MAX_YAML_DEPTH} "
                    "levels deep (limit)"]  # fmt: skip
    return problems


def _duplicates(node: yaml.MappingNode) -> list[str]:
    """``line N: key 'k' appears twice (lines A and B)`` for each repeated key."""
    first: dict[str, int] = {}
    out = []
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
            continue
        line = k.start_mark.line + 1
        if k.value in first:
            out.append(
                f"line {line}: duplicate key '{k.value}' (lines {first[k.value]} and {line}); "
                "a key may appear once in a mapping"
            )
        else:
            first[k.value] = line
    return out


def read_yaml(path: Path) -> tuple[dict, dict]:
    """Read a YAML mapping safely; return (data, {key path: line}).

    Raise :class:`ScenarioError` naming the file (and line) when it is missing,
    too large, not YAML, uses object tags, repeats a key, expands to too many
    values through aliases, is nested too deep, or is not a mapping at the top.
    """
    label = str(path)
    if not path.exists():
        raise ScenarioError("file not found", file=label)
    if not path.is_file():
        raise ScenarioError("not a file", file=label)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ScenarioError(
            f"the file is {size / 1e6:.1f} MB; a scenario file may be at most "
            f"{MAX_YAML_BYTES / 1e6:g} MB. Put large tables (households, places, series) "
            "in CSV or Parquet files and name them in the scenario",
            file=label,
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the file as UTF-8 text ({exc})", file=label) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            problems = _check_tree(node)
            if problems:
                raise ScenarioError(problems, file=label)
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise ScenarioError(
            f"mappings and lists are nested too deep (the limit is {MAX_YAML_DEPTH} levels)",
            file=label,
        ) from None
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ScenarioError(
            f"line {line}: {exc.problem} (tags that build Python objects are not allowed)",
            file=label,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        # The parser notices a problem where it reads on, which may be lines
        # after the cause: say where the construct it was reading opened.
        opened = getattr(exc, "context_mark", None)
        if opened is not None:
            context = (getattr(exc, "context", None) or "").strip()
            start = f"line {opened.line + 1}, column {opened.column + 1}"
            problem += f" ({context} opened at {start})" if context else f" (opened at {start})"
        raise ScenarioError(f"{where}malformed YAML: {problem}", file=label) from None
    finally:
        loader.dispose()
    if data is None:
        raise ScenarioError("the file is empty; expected a mapping of scenario keys", file=label)
    if not isinstance(data, dict):
        raise ScenarioError(
            f"expected a mapping of scenario keys at the top, got a {type(data).__name__}",
            file=label,
        )
    return data, _line_map(node) if node is not None else {}


# ---------------------------------------------------------------------------- merging


def merge(base: Mapping, over: Mapping) -> dict:
    """Lay *over* on *base*: mappings merged key by key, everything else replaced.

    Neither argument is changed. ``None`` in *over* removes the key.
    """
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_paths(data: Any, base: Path) -> Any:
    """Make the data paths of a plan absolute against the plan's folder."""
    from emtwin.scenarios._types import resolve_path

    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if isinstance(v, str) and (k in PATH_KEYS or k in ("roads", "population")):
                out[k] = resolve_path(v, base)
            else:
                out[k] = resolve_paths(v, base)
        return out
    if isinstance(data, list):
        return [resolve_paths(v, base) for v in data]
    return data


# ---------------------------------------------------------------------------- schema walk


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes reachable through Optional/Union/list/dict/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin in (typing.Union, types.UnionType):
        out: list[type[BaseModel]] = []
        for a in typing.get_args(annotation):
            out += _models_in(a)
        return out
    return []


def _item_models(annotation: Any) -> tuple[str, list[type[BaseModel]]]:
    """('list'|'dict'|'one', models) for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item_models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(annotation):
            kind, models = _item_models(a)
            if models and kind != "one":
                return kind, models
        return "one", _models_in(annotation)
    if origin is list:
        return "list", _models_in(typing.get_args(annotation)[0])
    if origin is dict:
        return "dict", _models_in(typing.get_args(annotation)[1])
    return "one", _models_in(annotation)


def _field_names(model: type[BaseModel]) -> dict[str, Any]:
    names = {}
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        names[f.alias or name] = f.annotation
    return names


def _tagged(models: list[type[BaseModel]], item: Any) -> type[BaseModel] | None:
    """The model of a union tagged on ``type`` that *item* names (default: the first)."""
    if not isinstance(item, dict):
        return None
    first = models[0].model_fields.get("type")
    want = item.get("type", first.default if first is not None else None)
    for m in models:
        f = m.model_fields.get("type")
        if f is not None and f.default == want:
            return m
    return None


def unknown_keys(data: Any, model: type[BaseModel], path: tuple = ()) -> list[tuple[tuple, str]]:
    """Every key in *data* that *model* does not know, with a 'did you mean' hint."""
    out: list[tuple[tuple, str]] = []
    if not isinstance(data, dict):
        return out
    fields = _field_names(model)
    for key, value in data.items():
        p = (*path, key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            allowed = ", ".join(sorted(fields))
            out.append((p, f"unknown key '{key}'{hint} (allowed here: {allowed})"))
            continue
        kind, models = _item_models(fields[key])
        if kind == "list" and len(models) > 1 and isinstance(value, list):
            for i, item in enumerate(value):  # a union tagged on `type` (hazards)
                sub = _tagged(models, item)
                if sub is not None:
                    out += unknown_keys(item, sub, (*p, i))
            continue
        if len(models) != 1:
            continue
        sub = models[0]
        if kind == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                out += unknown_keys(item, sub, (*p, i))
        elif kind == "dict" and isinstance(value, dict):
            for k, item in value.items():
                out += unknown_keys(item, sub, (*p, k))
        elif kind == "one" and isinstance(value, dict):
            out += unknown_keys(value, sub, p)
    return out


# ---------------------------------------------------------------------------- builtins


def builtin_path(name: str) -> Path | None:
    """The packaged file of built-in scenario *name*, or None."""
    root = resources.files("emtwin.scenarios") / "builtin"
    p = root / f"{name}.yaml"
    return Path(str(p)) if p.is_file() else None


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names and their one-line descriptions."""
    root = Path(str(resources.files("emtwin.scenarios") / "builtin"))
    out = {}
    for f in sorted(root.glob("*.yaml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        desc = str(data.get("description", "")).strip().splitlines()
        out[f.stem] = desc[0] if desc else ""
    return out


def locate(source: str | Path) -> Path:
    """Path of a scenario given as a file path or a built-in scenario's name."""
    p = Path(source)
    if p.suffix.lower() in (".yaml", ".yml") or p.exists() or "/" in str(source):
        return p
    b = builtin_path(str(source))
    if b is None:
        names = ", ".join(builtin_scenarios())
        raise ScenarioError(
            f"no scenario file or built-in scenario named '{source}' (built-ins: {names})"
        )
    return b


# ---------------------------------------------------------------------------- loading


def _fmt(loc: Iterable, msg: str, origins: list[tuple[str, dict]]) -> str:
    loc = tuple(loc)
    if not loc:
        label = origins[-1][0] if origins else ""
        return f"{label}: {msg}" if label else msg
    return f"{locate_key(loc, origins)}: {msg}"


def load_scenario(
    source: str | Path,
    *,
    plans: Iterable[str | Path] = (),
    overrides: Mapping[str, Any] | None = None,
    check_files: bool = True,
) -> Scenario:
    """Read, merge and validate a scenario file (or built-in name) and its plans.

    Parameters
    ----------
    source
        A scenario file path, or the name of a built-in scenario.
    plans
        Partial scenario files laid over the base in order.
    overrides
        Top-level values set last (for example ``{"seed": 3, "duration": "2h"}``;
        None values are ignored). A problem with one is named ``--KEY``, the
        command-line option that gives it.
    check_files
        Check that data files named in the scenario exist.

    Raises
    ------
    ScenarioError
        With every problem found, each naming the file, the line and the key path.
    """
    path = locate(source)
    data, lines = read_yaml(path)
    origins: list[tuple[str, dict]] = [(str(path), lines)]
    base_dir = path.resolve().parent
    problems = [_fmt(loc, msg, origins) for loc, msg in unknown_keys(data, Scenario)]
    for plan in plans:
        ppath = Path(plan)
        pdata, plines = read_yaml(ppath)
        porigin = [(str(ppath), plines)]
        problems += [_fmt(loc, msg, porigin) for loc, msg in unknown_keys(pdata, Scenario)]
        data = merge(data, resolve_paths(pdata, ppath.resolve().parent))
        origins.append((str(ppath), plines))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given:
        data = merge(data, given)
    unknown = [loc for loc, _ in unknown_keys(data, Scenario)]
    try:
        scenario = Scenario.model_validate(
            data, context={"base_dir": str(base_dir), "check_files": check_files}
        )
    except ValidationError as exc:
        found = _validation_problems(exc, data, unknown)
        # an override is named as the command-line option that gave it, not the
        # file line it replaced
        ours = [(loc, msg) for loc, msg in found if loc and str(loc[0]) in given]
        problems += [_fmt(loc, msg, origins) for loc, msg in found if (loc, msg) not in ours]
        from_files = bool(problems)
        problems += [f"--{'.'.join(map(str, loc))}: {msg}" for loc, msg in ours]
        raise ScenarioError(_dedupe(problems), file=str(path) if from_files else None) from None
    for loc, msg in limit_problems(scenario):
        if str(loc[0]) in given:
            problems.append(f"--{loc[0]}: {msg}")
        elif loc[0] == "outputs" and "duration" in given:
            problems.append(f"--duration: {msg}")
        else:
            problems.append(_fmt(loc, msg, origins))
    if problems:
        from_files = any(not p.startswith("--") for p in problems)
        raise ScenarioError(_dedupe(problems), file=str(path) if from_files else None)
    scenario.source = str(path)
    scenario._origins = origins
    return scenario


#: Names pydantic gives the members of a union (and other inner schemas) in error
#: locations: ``float``, ``constrained-float``, ``function-after[...]``,
#: ``literal['a','b']``, a model's class name.
_TYPE_TAGS = frozenset(
    {"float", "int", "str", "bool", "bytes", "none", "list", "dict", "tuple", "set",
     "frozenset", "any", "date", "time", "datetime", "timedelta", "decimal", "url",
     "uuid", "json", "callable", "generator", "model", "dataclass", "enum", "literal"}
)  # fmt: skip


def _is_union_tag(x: Any) -> bool:
    """True if loc part *x* looks like a pydantic schema tag rather than a key.

    Tags are bracketed (``function-before[...]``), hyphenated (``constrained-float``,
    ``lax-or-strict``), a core type name (``float``) or a class name (``ManningTable``);
    scenario keys are lower case without hyphens.
    """
    return isinstance(x, str) and bool(x) and (
        "[" in x or "-" in x or x in _TYPE_TAGS or x[0].isupper()
    )


def _strip_tags(loc: tuple, data: Any) -> tuple[tuple, tuple | None]:
    """Key path of an error location without pydantic's tags, and the union point.

    A loc part is a tag only if it looks like one and is not a key (or index) of
    the data at that point, so a user's key such as ``boat-2`` stays. Returns the
    cleaned path and the path up to the last tag (where the innermost union was
    tried: a hazard of the tagged ``hazards`` union holds unions of its own), or
    None when the location has no tag.
    """
    out: list = []
    union_at: tuple | None = None
    node = data
    for x in loc:
        is_key = (isinstance(node, dict) and x in node) or (
            isinstance(node, list) and isinstance(x, int) and 0 <= x < len(node)
        )
        if not is_key and _is_union_tag(x):
            union_at = tuple(out)
            continue
        out.append(x)
        node = node[x] if is_key else None
    return tuple(out), union_at


def _under(loc: tuple, prefix: tuple) -> bool:
    return loc[: len(prefix)] == prefix


def _validation_problems(
    exc: ValidationError, data: Any, unknown: list[tuple]
) -> list[tuple[tuple, str]]:
    """(key path, message) for each pydantic error worth showing.

    *unknown* holds the key paths already reported as unknown keys. Dropped: an
    error at or under such a path, and the errors of a union's members at a key
    whose value holds an unknown key (``manning: {rastr: x.tif}`` is a mistyped
    ``{raster: ...}``, not also "not a number" and "not a file path"); an error
    deeper inside a member (a bad value next to the typo) is kept.
    """
    errors = exc.errors()
    stripped = [_strip_tags(tuple(e["loc"]), data) for e in errors]
    extra = [loc for (loc, _), e in zip(stripped, errors, strict=True)
             if e["type"] == "extra_forbidden"]  # fmt: skip
    suspects = unknown + extra
    out: list[tuple[tuple, str]] = []
    for err, (loc, union_at) in zip(errors, stripped, strict=True):
        if err["type"] == "extra_forbidden":
            shown_already = loc in unknown
        else:
            shown_already = any(_under(loc, u) for u in unknown) or (
                union_at is not None
                and (loc == union_at or err["type"] == "missing")
                and any(_under(u, union_at) for u in suspects)
            )
        if shown_already:
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] not in ("value_error", "extra_forbidden", "missing"):
            msg += f" (got {err.get('input')!r})" if "input" in err else ""
        out.append((loc, msg))
    return out


def format_validation_error(exc: ValidationError, data: Any) -> list[str]:
    """``key.path: what was expected`` for each error of validating *data* (no file lines;
    pydantic's union tags left out)."""
    return _dedupe([f"{'.'.join(map(str, loc))}: {msg}"
                    for loc, msg in _validation_problems(exc, data, [])])  # fmt: skip


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for s in items:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def load_plans_over(
    base: Scenario, plans: Iterable[str | Path]
) -> tuple[Scenario, list[tuple[str, str]]]:
    """Lay plan files over an already validated scenario (a fork of a checkpoint).

    Returns the new scenario and, for every top-level key a plan sets, ``(file:line,
    key)`` so that the caller can refuse keys it cannot apply.

    Raises
    ------
    ScenarioError
        With every problem found in the plans, naming the file, line and key.
    """
    # None marks an optional key left out (a None a validator would refuse, e.g. an unused
    # departure-curve parameter): leave it out again
    data = base.model_dump(mode="python", by_alias=True, exclude={"source"}, exclude_none=True)
    origins = list(base._origins or [(base.source or "", {})])
    problems: list[str] = []
    keys: list[tuple[str, str]] = []
    for plan in plans:
        ppath = Path(plan)
        pdata, plines = read_yaml(ppath)
        porigin = [(str(ppath), plines)]
        problems += [_fmt(loc, msg, porigin) for loc, msg in unknown_keys(pdata, Scenario)]
        keys += [(locate_key((k,), porigin), str(k)) for k in pdata]
        data = merge(data, resolve_paths(pdata, ppath.resolve().parent))
        origins.append((str(ppath), plines))
    try:
        scenario = Scenario.model_validate(data, context={"check_files": False})
    except ValidationError as exc:
        found = _validation_problems(exc, data, [])
        problems += [_fmt(loc, msg, origins) for loc, msg in found]
    if problems:
        raise ScenarioError(_dedupe(problems), file=origins[-1][0])
    scenario.source = base.source
    scenario._origins = origins
    return scenario, keys
