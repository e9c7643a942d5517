"""The engine seam: declared fields, the engine's clock, hazards plugged in by registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import pytest

from emtwin.errors import ScenarioError
from emtwin.scenarios.models import Scenario, _Model
from emtwin.sim import Component, Simulation
from emtwin.sim.components import REGISTRY, register_hazard, unregister_hazard
from emtwin.sim.state import register_field

register_field("heat__temperature", "cell", "K", "air temperature (a toy hazard of this file)")


class HeatWave(_Model):
    """A toy hazard: air temperature rising linearly from `start_k` at `rate_k_h` per hour."""

    type: Literal["heat"] = "heat"
    start_k: float = 300.0
    rate_k_h: float = 1.0


class HeatComponent(Component):
    """Writes ``heat__temperature`` on every cell, the same everywhere."""

    name: ClassVar[str] = "heat"
    hazard_type: ClassVar[str | None] = "heat"
    writes: ClassVar[tuple[str, ...]] = ("heat__temperature",)
    samples: ClassVar[dict[str, str]] = {"temperature_k": "air temperature, K"}

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.spec = self.scenario.hazards_of("heat")[0]
        self.t = np.full(self.world.terrain.shape, self.spec.start_k)
        self.fields.set("heat__temperature", self.t, writer=self.name)
        self.steps: list[float] = []

    def advance_to(self, time_s: float) -> None:
        if self.steps and self.steps[-1] == time_s:
            return
        self.steps.append(time_s)
        self.t[:] = self.spec.start_k + self.spec.rate_k_h * time_s / 3600.0

    def sample(self) -> dict[str, float]:
        return {"temperature_k": float(self.t.mean())}

    def summary(self) -> dict[str, Any]:
        return {"peak_temperature_k": float(self.t.max())}


class Thermometer(Component):
    """Reads the toy hazard's field (required) at every coupling step."""

    name: ClassVar[str] = "thermometer"
    reads: ClassVar[dict[str, bool]] = {"heat__temperature": True}

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        return True

    def __init__(self, sim: Any, rng: np.random.Generator) -> None:
        super().__init__(sim, rng)
        self.seen: list[tuple[float, float]] = []

    def advance_to(self, time_s: float) -> None:
        if not self.seen or self.seen[-1][0] != time_s:
            self.seen.append((time_s, float(self.fields["heat__temperature"][0, 0])))


@pytest.fixture
def heat() -> Iterator[None]:
    register_hazard(HeatWave, HeatComponent)
    yield
    unregister_hazard(HeatWave, HeatComponent)
    if Thermometer in REGISTRY:
        REGISTRY.remove(Thermometer)


def scenario(**over: Any) -> Scenario:
    data = {"name": "t", "seed": 1, "duration": "1h", "outputs": {"every": "10min"},
            "coupling": "5min", "world": {"terrain": {"dem": "dem.tif"}}}  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})


def test_a_toy_hazard_plugs_in_through_the_registry(small_world, heat) -> None:
    REGISTRY.append(Thermometer)
    sc = scenario(hazards=[{"type": "heat", "start_k": 290.0, "rate_k_h": 6.0}])
    sim = Simulation(sc, world=small_world)
    res = sim.run()
    # the engine's clock: every coupling step (5 min) from 0 to the end, hazards first
    reader = sim.component("thermometer")
    times = [t for t, _ in reader.seen]
    assert times == [300.0 * k for k in range(13)]
    # the reader saw the value the hazard wrote at the same step: 290 K + 6 K/h * t
    assert [v for _, v in reader.seen] == pytest.approx([290.0 + 6.0 * t / 3600 for t in times])
    assert res.timeseries["temperature_k"].tolist() == pytest.approx(
        [290.0 + 6.0 * t / 3600 for t in range(0, 3601, 600)]
    )
    assert res.summary["heat"]["peak_temperature_k"] == pytest.approx(296.0)


def test_unknown_hazard_type_is_refused_with_the_known_types(heat) -> None:
    with pytest.raises(ValueError, match="unknown hazard type; known types: flood, typhoon, heat"):
        scenario(hazards=[{"type": "volcano"}])


def test_a_read_without_a_writer_is_refused(small_world, heat) -> None:
    REGISTRY.append(Thermometer)
    with pytest.raises(ScenarioError) as err:
        Simulation(scenario(), world=small_world)
    msg = str(err.value)
    assert "the thermometer component reads the field 'heat__temperature'" in msg
    assert "written by the heat component, which this run does not have" in msg


def test_coupling_step_defaults_and_caps() -> None:
    from emtwin.sim.engine import DEFAULT_COUPLING_S, coupling_step

    assert coupling_step(scenario(coupling=None)) == DEFAULT_COUPLING_S == 60.0
    assert coupling_step(scenario(coupling="20min")) == 600.0  # capped at outputs.every
    flood = {"type": "flood", "coupling": "2min"}
    assert coupling_step(scenario(coupling=None, hazards=[flood])) == 120.0  # round-1 key
