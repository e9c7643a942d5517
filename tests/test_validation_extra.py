"""Validation across the build: a facility on a piece of road cut off from the rest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import LineString

from emtwin.errors import NetworkError
from emtwin.geo.build import build_world
from emtwin.scenarios import load_scenario

UTM33 = "EPSG:32633"
X0, Y0 = 401000.0, 5551000.0  # inside the built-in riverside terrain, UTM 33N m


def _world_files(folder: Path, shelters: str) -> Path:
    """A 3 x 3 two-way grid (100 m) and a 3-node two-way island 300 m east of it."""
    lines = [LineString([(X0, Y0 + d), (X0 + 100, Y0 + d), (X0 + 200, Y0 + d)])
             for d in (0, 100, 200)]
    lines += [LineString([(X0 + d, Y0), (X0 + d, Y0 + 100), (X0 + d, Y0 + 200)])
              for d in (0, 100, 200)]
    lines += [LineString([(X0 + 500, Y0 + 200), (X0 + 600, Y0 + 200)]),
              LineString([(X0 + 600, Y0 + 200), (X0 + 700, Y0 + 200)])]  # fmt: skip
    gpd.GeoDataFrame(geometry=lines, crs=UTM33).to_file(folder / "roads.gpkg")
    (folder / "shelters.csv").write_text(shelters)
    p = folder / "s.yaml"
    p.write_text(textwrap.dedent("""\
        crs: EPSG:32633
        world:
          terrain: {builtin: riverside}
          roads: roads.gpkg
          population: {total: 900}
          shelters: shelters.csv
        """))  # fmt: skip
    return p


def test_shelter_on_a_road_island_fails_the_build(tmp_path: Path) -> None:
    # Island Hall stands 10 m from the island's middle node; the nearest node of the
    # kept grid, (X0 + 200, Y0 + 200), is hypot(400, 10) = 400 m away: under the
    # 1000 m limit, so it used to be snapped there silently.
    p = _world_files(
        tmp_path,
        f"name,capacity,x,y\nGrid School,500,{X0 + 110},{Y0 + 90}\n"
        f"Island Hall,300,{X0 + 600},{Y0 + 210}\n",
    )
    with pytest.raises(NetworkError) as exc:
        build_world(load_scenario(p))
    msg = str(exc.value)
    assert msg.startswith(f"{p}:6: world.shelters: 1 of 2 shelters cannot be reached by road: ")
    assert ("'Island Hall' (#1) is on a part of the road network cut off from the rest "
            "(3 nodes dropped); the nearest kept road node is 400 m away") in msg  # fmt: skip


def test_shelters_on_the_kept_network_build(tmp_path: Path) -> None:
    p = _world_files(tmp_path, f"name,capacity,x,y\nGrid School,500,{X0 + 110},{Y0 + 90}\n")
    w = build_world(load_scenario(p))
    assert w.roads.n_nodes == 9 and len(w.roads.dropped_xy) == 3
    (node,) = w.places.shelters["node"]
    assert (w.roads.node_x[node], w.roads.node_y[node]) == (X0 + 100, Y0 + 100)
