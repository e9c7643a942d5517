"""The scenario file as pydantic models (the contract of scenario-format.md).

Every key of the contract parses here, including the sections whose components
come later, so that files written today keep working. Unknown keys are errors.
Values are stored in SI units: durations in s, rates in 1/s, depths in m,
coordinates as (x, y) in the file's ``crs``.
"""

from __future__ import annotations

from emtwin.scenarios.models._common import _Model as _Model
from emtwin.scenarios.models.actions import (
    ACTION_KINDS,
    TRIGGER_KINDS,
    Action,
    MoveUnits,
    RainOver,
    TimeAfter,
    Trigger,
    WarningRule,
)
from emtwin.scenarios.models.distribution import (
    Distribution,
)
from emtwin.scenarios.models.evacuation import (
    ContraflowRoad,
    Departure,
    Evacuation,
    Exit,
    WarningSpec,
    Zone,
)
from emtwin.scenarios.models.flood import (
    _HYDROGRAPH_POINTS as _HYDROGRAPH_POINTS,
)
from emtwin.scenarios.models.flood import (
    Breach,
    FloodHazard,
    Gauge,
    Infiltration,
    Inflow,
    LevelBoundary,
    ReleaseWhen,
    Reservoir,
    Side,
)
from emtwin.scenarios.models.outputs import (
    Outputs,
    RasterName,
)
from emtwin.scenarios.models.response import (
    DEFAULT_UNIT_TYPES,
    Incidents,
    IncidentType,
    ResourceGroup,
    Response,
    UnitType,
)
from emtwin.scenarios.models.scenario import (
    HAZARD_MODELS,
    MAX_NAME_CHARS,
    Scenario,
    check_plain_name,
    register_hazard_model,
    unregister_hazard_model,
)
from emtwin.scenarios.models.scenario import (
    _hazard_tag as _hazard_tag,
)
from emtwin.scenarios.models.scenario import (
    _hazards_annotation as _hazards_annotation,
)
from emtwin.scenarios.models.scenario import (
    _rebuild_hazards as _rebuild_hazards,
)
from emtwin.scenarios.models.uncertain import (
    IndexPart,
    ResponseIndex,
    Uncertain,
    UncertainChoice,
    UncertainValue,
)
from emtwin.scenarios.models.uncertain import (
    _si_value as _si_value,
)
from emtwin.scenarios.models.world import (
    ManningTable,
    Population,
    Roads,
    Terrain,
    World,
)
from emtwin.scenarios.models.world import (
    _check_crs as _check_crs,
)
from emtwin.scenarios.models.world import (
    _crs_problem as _crs_problem,
)
from emtwin.scenarios.models.world import (
    _source_shorthand as _source_shorthand,
)

__all__ = [
    "ManningTable",
    "Terrain",
    "Roads",
    "Population",
    "World",
    "Side",
    "LevelBoundary",
    "Inflow",
    "ReleaseWhen",
    "Reservoir",
    "Breach",
    "Gauge",
    "Infiltration",
    "FloodHazard",
    "Distribution",
    "WarningSpec",
    "Departure",
    "Zone",
    "ContraflowRoad",
    "Exit",
    "Evacuation",
    "UnitType",
    "DEFAULT_UNIT_TYPES",
    "ResourceGroup",
    "IncidentType",
    "Incidents",
    "Response",
    "ACTION_KINDS",
    "MoveUnits",
    "TimeAfter",
    "RainOver",
    "Trigger",
    "TRIGGER_KINDS",
    "Action",
    "WarningRule",
    "RasterName",
    "Outputs",
    "UncertainChoice",
    "UncertainValue",
    "Uncertain",
    "IndexPart",
    "ResponseIndex",
    "MAX_NAME_CHARS",
    "check_plain_name",
    "Scenario",
    "HAZARD_MODELS",
    "register_hazard_model",
    "unregister_hazard_model",
]
