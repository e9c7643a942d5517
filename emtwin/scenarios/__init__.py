"""The scenario file: pydantic models, safe YAML loading, plans and built-ins."""

from emtwin.scenarios.loader import builtin_scenarios, load_scenario, merge
from emtwin.scenarios.models import ACTION_KINDS, Scenario

__all__ = ["ACTION_KINDS", "Scenario", "builtin_scenarios", "load_scenario", "merge"]
