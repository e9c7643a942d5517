"""The `outputs:` section."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from emtwin.scenarios._types import (
    PosDuration,
)
from emtwin.scenarios.models._common import _Model

# ---------------------------------------------------------------------------- outputs

RasterName = Literal["max_depth", "arrival_time", "hazard_class", "max_speed", "max_hr"]


class Outputs(_Model):
    """`outputs`: what a run writes."""

    every: PosDuration = 300.0
    map: bool = True
    report: bool = True
    rasters: list[RasterName] = Field(
        default_factory=lambda: ["max_depth", "arrival_time", "hazard_class"]
    )


