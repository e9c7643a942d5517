"""Readers of OpenStreetMap XML and PBF files and of GraphML, returning networkx graphs.

The graphs are turned into a :class:`~emtwin.geo.world.RoadNetwork` by
:func:`emtwin.geo.roads.roads_from_graph`.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import quoteattr

import networkx as nx

from emtwin.errors import InputDataError, NetworkError

__all__ = ["osm_xml_graph", "osm_pbf_graph", "load_graphml"]


def osm_xml_graph(
    path: Path, *, where: str, is_road: Callable[[dict], bool], keep: list[str]
) -> nx.MultiDiGraph:
    """OSM XML -> an osmnx graph in EPSG:4326 of the roads only, simplified.

    *is_road* tells from an edge's tags whether it is a road; simplification
    keeps a node wherever one of the *keep* attributes changes.
    """
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    try:
        G = ox.graph_from_xml(path, simplify=False, retain_all=True, bidirectional=False)
    except InsufficientResponseError as exc:
        raise NetworkError(f"no roads found in {where}: the file holds no OSM data") from exc
    except (ET.ParseError, OSError, EOFError, KeyError, ValueError) as exc:
        raise InputDataError(f"{where}: cannot read OSM XML: {exc}") from exc
    not_road = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not is_road(d)]
    G.remove_edges_from(not_road)
    G.remove_nodes_from(list(nx.isolates(G)))
    if G.number_of_edges() == 0:
        raise NetworkError(f"no roads found in {where}: no way with a drivable highway tag")
    G = ox.simplify_graph(G, edge_attrs_differ=keep)
    G.graph["crs"] = "EPSG:4326"
    return G


def osm_pbf_graph(
    path: Path, *, where: str, is_road: Callable[[dict], bool], keep: list[str]
) -> nx.MultiDiGraph:
    """OSM PBF -> (highway ways only) temporary OSM XML -> :func:`osm_xml_graph`."""
    try:
        import osmium
    except ImportError as exc:
        raise InputDataError(
            f"{where}: reading OSM PBF needs the optional `pbf` extra "
            "(pip install 'emtwin[pbf]', which installs osmium); or convert the "
            "file to .osm/.osm.bz2 (osmium cat, osmconvert) and use that"
        ) from exc
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    try:
        fp = osmium.FileProcessor(str(path)).with_locations()
        for obj in fp:
            if not obj.is_way() or "highway" not in obj.tags:
                continue
            refs = []
            for n in obj.nodes:
                if n.location.valid():
                    nodes[n.ref] = (n.location.lon, n.location.lat)
                    refs.append(n.ref)
            if len(refs) >= 2:
                ways.append((obj.id, refs, {t.k: t.v for t in obj.tags}))
    except RuntimeError as exc:
        raise InputDataError(f"{where}: cannot read OSM PBF: {exc}") from exc
    if not ways:
        raise NetworkError(f"no roads found in {where}: no way with a highway tag")
    with tempfile.TemporaryDirectory(prefix="emtwin-pbf-") as tmp:
        xml = Path(tmp) / "roads.osm"
        with xml.open("w", encoding="utf-8") as f:
            f.write("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">\n")
            for nid, (lon, lat) in nodes.items():
                f.write(f'<node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}"/>\n')
            for wid, refs, tags in ways:
                f.write(f'<way id="{wid}">')
                f.write("".join(f'<nd ref="{r}"/>' for r in refs))
                f.write(
                    "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
                )
                f.write("</way>\n")
            f.write("</osm>\n")
        return osm_xml_graph(xml, where=where, is_road=is_road, keep=keep)


def load_graphml(path: Path, *, where: str) -> nx.MultiDiGraph:
    """GraphML written by osmnx (typed by ``ox.load_graphml``) or by networkx."""
    import osmnx as ox

    try:
        return ox.load_graphml(path)
    except (ValueError, TypeError, AttributeError, KeyError, SyntaxError):
        pass  # not an osmnx file: plain networkx below
    except (ET.ParseError, nx.NetworkXError) as exc:
        raise InputDataError(f"{where}: cannot read GraphML: {exc}") from exc
    try:
        return nx.read_graphml(path, force_multigraph=True)
    except (ET.ParseError, nx.NetworkXError, ValueError, KeyError) as exc:
        raise InputDataError(f"{where}: cannot read GraphML: {exc}") from exc
