"""The base of every scenario section: unknown keys are errors, empty keys take defaults.

Section models outside models.py (scenarios/typhoon.py) derive from it, so that
models.py can import them for the hazards union without an import cycle.
models.py's ``_Model`` has the same behaviour; the integrator is to make it
``_Model = StrictModel`` (one definition) when registering the typhoon.
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
