"""The base of every scenario section: unknown keys are errors, empty keys take defaults.

Every section model derives from it: models.py (as ``_Model``), and the sections in
their own modules (scenarios/typhoon.py, scenarios/consequences.py), which models.py
imports without an import cycle.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Base of every section: unknown keys are errors.

    An optional key left empty in YAML (``actions:`` with nothing after it) takes
    its default.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fields = cls.model_fields
            return {
                k: v
                for k, v in data.items()
                if not (v is None and k in fields and not fields[k].is_required())
            }
        return data
