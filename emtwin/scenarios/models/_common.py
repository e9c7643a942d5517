"""The base of every section model of the scenario."""

from __future__ import annotations

from emtwin.scenarios._base import StrictModel

__all__ = ["_Model"]

#: Base of every section: unknown keys are errors, a key left empty takes its default.
_Model = StrictModel
