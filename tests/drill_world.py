"""A small drill World and scenario for the drill tests: a 6 x 6 grid of streets, two
shelters, two stations and a hospital, a flood from steady rain, an evacuation and a
response (built by hand, independent of the geo readers)."""

from __future__ import annotations

from typing import Any

from conftest import UTM33, points
from test_evacuation import X0, Y0, node_xy, world_of

from emtwin.geo.world import World
from emtwin.scenarios.models import Scenario


def drill_world(k: int = 6, people: int = 40) -> World:
    """A k x k grid of two-way streets 200 m apart (as test_evacuation's grid_world) on
    20 m cells, people at every node, shelters West and East, stations A (node 0) and B
    (node 35), hospital General (node 14)."""
    nodes = {r * k + c: (c * 200.0, r * 200.0) for r in range(k) for c in range(k)}
    links = []
    for r in range(k):
        for c in range(k):
            n = r * k + c
            if c + 1 < k:
                links += [(n, n + 1, f"h{r}-{c}", 13.9), (n + 1, n, f"h{r}-{c}", 13.9)]
            if r + 1 < k:
                links += [(n, n + k, f"v{r}-{c}", 13.9), (n + k, n, f"v{r}-{c}", 13.9)]
    w = world_of(nodes, links, homes=[(n, people) for n in nodes],
                 shelters=[("West", 2 * k, 300), ("East", 3 * k + k - 1, 200)],
                 cells=64, dx=20.0)  # fmt: skip
    nodes = [0, 35, 14]
    xy = [node_xy(w, k) for k in nodes]
    w.places.stations = points(UTM33, xy[:2], name=["A", "B"], node=nodes[:2],
                               snap_m=[0.0, 0.0])  # fmt: skip
    w.places.hospitals = points(UTM33, xy[2:], name=["General"], node=nodes[2:], snap_m=[0.0])
    return w


def drill_scenario(world: World, *, actions: list[dict] | None = None, **over: Any) -> Scenario:
    """One hour of rain on the grid, a zone warned at 30 min, ambulances answering calls."""
    data: dict[str, Any] = {
        "name": "drill-t", "seed": 11, "duration": "1h", "crs": "EPSG:32633",
        "outputs": {"every": "5min", "map": False, "report": False},
        "world": {"terrain": {"dem": "d.tif"}, "roads": "r.geojson",
                  "population": {"total": 1, "household_size": 2.5}},
        "hazards": [{"type": "flood", "rain": [[0, 36.0]]}],
        "evacuation": {
            "warning": {"at": "40min", "reach": "exponential", "reach_time": "5min"},
            "departure": {"curve": "rayleigh", "sigma": "10min"}, "on_foot_share": 0.2,
            "exits": [node_xy(world, 0), node_xy(world, 35)],
            "zones": [{"name": "north", "area": [[X0, Y0], [X0 + 1200, Y0],
                                                 [X0 + 1200, Y0 - 300], [X0, Y0 - 300]]}],
        },
        "response": {
            "resources": [{"type": "ambulance", "station": "A", "count": 2},
                          {"type": "ambulance", "station": "B", "count": 1}],
            "incidents": {"background_rate": "6/h",
                          "types": [{"name": "medical", "needs": "ambulance",
                                     "on_scene": "10min", "priority": 2}]},
        },
        "actions": actions if actions is not None else [{"at": "20min", "close_road": "v2-2"}],
    }  # fmt: skip
    data.update(over)
    return Scenario.model_validate(data, context={"check_files": False})
