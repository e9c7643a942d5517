"""A contract test over every registered component: declarations are complete and consistent."""

from __future__ import annotations

import pytest

from emtwin.sim.components import REGISTRY, declared_metrics, summary_keys
from emtwin.sim.engine import SUMMARY_KEYS
from emtwin.sim.metric import Metric
from emtwin.sim.state import FIELDS
from emtwin.viz._html import HEADLINES


@pytest.mark.parametrize("cls", REGISTRY, ids=lambda c: c.name)
def test_component_declarations(cls) -> None:  # noqa: ANN001
    assert cls.name and cls.name.isidentifier()
    for name in (*cls.reads, *cls.writes):
        assert name in FIELDS, f"{cls.name} declares an unknown field {name!r}"
    keys = [m.key for m in cls.metrics]
    assert len(keys) == len(set(keys)), f"{cls.name} declares a metric twice"
    for m in cls.metrics:
        assert isinstance(m, Metric) and m.label
        assert m.better in (None, "lower", "higher")
        # simulated times carry unit s; wall times "wall s"
        assert (m.unit == "s") == (m.key.endswith("_s") and "wall" not in m.key)


def test_component_names_are_unique() -> None:
    names = [c.name for c in REGISTRY]
    assert len(names) == len(set(names))


def test_the_contract_keys_are_declared_once_and_derived_everywhere() -> None:
    # scenario-format.md: the headline keys of summary.json
    contract = {
        "flood": {"peak_flooded_area_m2", "peak_volume_m3", "roads_closed", "mass_error_rel",
                  "max_depth_by_gauge", "cells", "steps", "kernel_wall_s"},
        "evacuation": {"households", "people", "sheltered", "out", "stranded", "never_left",
                       "t50_s", "t90_s", "clearance_s"},
        "dispatch": {"calls", "served", "unserved", "response_p50_s", "response_p90_s",
                     "wait_mean_s", "utilisation_mean"},
        "run": {"wall_s", "seed", "scenario"},
    }  # fmt: skip
    keys = summary_keys()
    for section, want in contract.items():
        assert want <= set(keys[section])
    assert keys == SUMMARY_KEYS
    assert {s: [k for k, _, _ in rows] for s, rows in HEADLINES.items()} == {
        s: list(k) for s, k in keys.items()
    }
    assert list(declared_metrics())[-1] == "run"
