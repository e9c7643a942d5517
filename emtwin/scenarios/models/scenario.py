"""The whole scenario, and the registry of hazard types (a union tagged on `type`)."""

from __future__ import annotations

import math
import typing
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from emtwin.scenarios._locate import locate_key
from emtwin.scenarios._types import (
    PosDuration,
)
from emtwin.scenarios.consequences import Consequences
from emtwin.scenarios.models._common import _Model
from emtwin.scenarios.models.actions import (
    Action,
    WarningRule,
)
from emtwin.scenarios.models.evacuation import (
    Evacuation,
)
from emtwin.scenarios.models.flood import (
    FloodHazard,
)
from emtwin.scenarios.models.outputs import (
    Outputs,
)
from emtwin.scenarios.models.response import (
    Response,
)
from emtwin.scenarios.models.uncertain import (
    ResponseIndex,
    Uncertain,
)
from emtwin.scenarios.models.world import (
    World,
    _check_crs,
)

# ---------------------------------------------------------------------------- scenario


#: Longest scenario name, characters (it names the default output folder out/NAME).
MAX_NAME_CHARS = 100


def check_plain_name(v: str) -> str:
    """*v* if it is a plain file name (the default output folder is ``out/NAME``).

    Refused: empty, ``.`` and ``..``, a leading dot or space, path separators,
    control characters, a drive (``C:``) and more than :data:`MAX_NAME_CHARS`.
    """
    why = None
    if not v.strip():
        why = "it is empty"
    elif v in (".", ".."):
        why = f"'{v}' names a folder above or at the output folder"
    elif "/" in v or "\\" in v:
        why = "it holds a path separator (/ or \\)"
    elif v[0] in ". " or v[-1] in ". ":
        why = "it starts or ends with a dot or a space"
    elif any(ord(c) < 32 or ord(c) == 127 for c in v) or ":" in v:
        why = "it holds a control character or ':'"
    elif len(v) > MAX_NAME_CHARS:
        why = f"it is longer than {MAX_NAME_CHARS} characters"
    if why:
        raise ValueError(
            f"the name must be a plain file name, since it names the output folder out/NAME; "
            f"{why} (got {v!r})"
        )
    return v


class Scenario(_Model):
    """A whole scenario file.

    Attributes hold SI values (s, m, m3/s, 1/s). ``source`` is the file it came
    from (not a key of the file).
    """

    name: str = "scenario"
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    duration: PosDuration = 6 * 3600.0
    coupling: PosDuration | None = Field(
        None, description="coupling step of the engine's clock, s (default 60 s, or the flood's "
        "`coupling`); capped at outputs.every",
    )
    start: datetime | None = Field(
        None, description="wall-clock time of t = 0 (ISO 8601; no zone means UTC), for "
        "observations with timestamps"
    )
    crs: str = "EPSG:4326"
    world: World
    hazards: list[FloodHazard] = Field(
        default_factory=list, description="tagged on `type`; see register_hazard_model"
    )
    evacuation: Evacuation | None = None
    response: Response | None = None
    actions: list[Action] = Field(default_factory=list)
    warning_rules: list[WarningRule] = Field(
        default_factory=list, description="flash-flood rules: rain over an area fires an action"
    )
    outputs: Outputs = Field(default_factory=Outputs)
    uncertain: Uncertain | None = Field(None, description="what varies in a batch (emtwin batch)")
    response_index: ResponseIndex | None = Field(None, description="weights of the response index")
    consequences: Consequences | None = Field(None, description="damage, life loss, facilities")

    source: str | None = Field(None, exclude=True, description="file the scenario came from")
    #: (file, {key path: line}) of the base file and each plan, in merge order
    #: (set by the loader; used to name the file and line in later errors)
    _origins: list[tuple[str, dict]] = PrivateAttr(default_factory=list)

    def where(self, *loc: str | int) -> str:
        """``file:line: key.path`` of a key path as written in the file or plan that set it.

        Falls back to ``source: key.path`` where no line is known (a scenario
        built in Python, or a key filled by a default).
        """
        return locate_key(loc, self._origins or [(self.source or "", {})])

    @field_validator("crs", mode="before")
    @classmethod
    def _crs(cls, v: Any) -> Any:
        return _check_crs(v)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        return check_plain_name(v)

    def triggered_actions(self) -> list[tuple[int, Action]]:
        """The actions fired by a condition, numbered: the ``when:`` actions by their index
        in ``actions``, then those of ``warning_rules`` from ``len(actions)`` on."""
        out = [(i, a) for i, a in enumerate(self.actions) if a.when is not None]
        n = len(self.actions)
        return out + [(n + k, r.action()) for k, r in enumerate(self.warning_rules)]

    def hazards_of(self, type_: str) -> list[Any]:
        """The hazards of type *type_* (``flood``, ``typhoon``, ...), in file order."""
        return [h for h in self.hazards if h.type == type_]

    @property
    def flood(self) -> FloodHazard | None:
        """The flood hazard, if any (one per scenario)."""
        floods = [h for h in self.hazards if h.type == "flood"]
        return floods[0] if floods else None

    @model_validator(mode="after")
    def _checks(self) -> Scenario:
        if sum(1 for h in self.hazards if h.type == "flood") > 1:
            raise ValueError("hazards: at most one flood per scenario")
        if not math.isfinite(self.duration):
            raise ValueError("duration must be finite")
        return self


# ---------------------------------------------------------------------------- hazard registry

#: Hazard models by their ``type`` tag: `hazards: - type: flood`. A new hazard
#: adds its model with :func:`register_hazard_model` (through
#: :func:`emtwin.sim.components.register_hazard`), and nothing else here changes.
HAZARD_MODELS: dict[str, type[BaseModel]] = {"flood": FloodHazard}


def _hazard_tag(v: Any) -> str | None:
    """The class name of the model for hazard item *v* (by its ``type``), or None."""
    t = v.get("type", "flood") if isinstance(v, dict) else getattr(v, "type", None)
    cls = HAZARD_MODELS.get(t) if isinstance(t, str) else None
    return cls.__name__ if cls is not None else None


def _hazards_annotation() -> Any:
    """``list[...]`` of the registered hazard models, a union tagged on ``type``."""
    models = list(HAZARD_MODELS.values())
    if len(models) == 1:
        return list[models[0]]  # type: ignore[valid-type]
    members = tuple(Annotated[m, Tag(m.__name__)] for m in models)
    known = ", ".join(HAZARD_MODELS)
    return list[  # type: ignore[valid-type]
        Annotated[
            typing.Union[members],  # noqa: UP007 (a runtime tuple of members)
            Discriminator(_hazard_tag, custom_error_type="hazard_type",
                          custom_error_message=f"unknown hazard type; known types: {known}"),
        ]
    ]  # fmt: skip


def register_hazard_model(model: type[BaseModel]) -> None:
    """Add a hazard model to ``Scenario.hazards`` under its ``type`` tag.

    *model* must have a ``type: Literal["name"]`` field with that default.
    Registering the same model again changes nothing.

    Raises
    ------
    ValueError
        If the tag is missing or already used by another model.
    """
    tag = model.model_fields["type"].default if "type" in model.model_fields else None
    if not isinstance(tag, str):
        raise ValueError(f"{model.__name__} needs a field `type: Literal[...]` with a default")
    if HAZARD_MODELS.get(tag, model) is not model:
        raise ValueError(f"hazard type {tag!r} is already registered")
    HAZARD_MODELS[tag] = model
    _rebuild_hazards()


def unregister_hazard_model(tag: str) -> None:
    """Remove the hazard model of type *tag* (tests; the flood stays)."""
    if tag != "flood" and HAZARD_MODELS.pop(tag, None) is not None:
        _rebuild_hazards()


def _rebuild_hazards() -> None:
    Scenario.model_fields["hazards"].annotation = _hazards_annotation()
    Scenario.model_rebuild(force=True)


# the built-in hazards besides the flood (their components register in emtwin.sim.components)
from emtwin.scenarios.typhoon import TyphoonHazard  # noqa: E402

register_hazard_model(TyphoonHazard)
