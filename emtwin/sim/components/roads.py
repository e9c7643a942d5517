"""The Roads component: plan closures and reopenings of named roads."""

from __future__ import annotations

from typing import ClassVar

from emtwin.scenarios.models import Action, Scenario
from emtwin.sim.component import Component

__all__ = ["RoadsComponent"]


class RoadsComponent(Component):
    """Carries out ``close_road`` and ``open_road`` and counts closed edges.

    A road is named by its ``road_id`` (OSM way id, or the source's ``id``) or
    by its street ``name``; every directed edge of that road changes together.
    """

    name: ClassVar[str] = "roads"
    requires: ClassVar[tuple[str, ...]] = ("roads",)
    actions: ClassVar[frozenset[str]] = frozenset({"close_road", "open_road"})
    samples: ClassVar[dict[str, str]] = {
        "roads_closed": "directed edges closed for any reason",
        "roads_closed_by_plan": "directed edges closed by plan actions",
    }

    @classmethod
    def enabled(cls, scenario: Scenario) -> bool:
        """Enabled whenever the World has roads."""
        return scenario.world.roads is not None

    def check_action(self, action: Action) -> str | None:
        """The named road must exist."""
        if len(self.world.roads.edges_named(str(action.value))) == 0:
            return f"no road with id or name '{action.value}' in the network"
        return None

    def on_action(self, action: Action) -> None:
        """Close or reopen every edge of the named road."""
        edges = self.world.roads.edges_named(str(action.value))
        closed = action.kind == "close_road"
        self.sim.roads.set_plan_closed(edges, closed, self.env.now)
        self.sim.recorder.event(
            self.env.now,
            "road_closed" if closed else "road_opened",
            str(action.value),
            edge=int(edges[0]),
            edges=len(edges),
            cause="plan",
        )

    def sample(self) -> dict[str, float]:
        """Closed edge counts."""
        rs = self.sim.roads
        return {
            "roads_closed": int((~rs.open).sum()),
            "roads_closed_by_plan": int(rs.closed_by_plan.sum()),
        }
