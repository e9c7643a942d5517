"""The package's modules import each other without cycles (docs/engine.md, layout).

Every import of the package counts, at module level or inside a function (an
import moved into a function hides a cycle, it does not remove it); only
imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import emtwin


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(x) for x in ast.walk(node))
    return ids


def import_graph(root: Path) -> nx.DiGraph:
    """Directed graph module -> module it imports, over the package at ``root``."""
    pkg = root.name
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        hidden = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                wanted = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for target in wanted:
                if target.split(".")[0] != pkg:
                    continue
                while target and target not in modules:  # an attribute, not a module
                    target = target.rpartition(".")[0]
                # a module's own package is imported before it anyway
                if target and target != name and not name.startswith(target + "."):
                    graph.add_edge(name, target)
    return graph


def _cycles(root: Path) -> list[set[str]]:
    return [c for c in nx.strongly_connected_components(import_graph(root)) if len(c) > 1]


def test_the_detector_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from toy.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n    return x\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy import a\n"
    )
    (pkg / "d.py").write_text("import toy.c\n")
    assert _cycles(pkg) == [{"toy.a", "toy.sub.b"}]
    assert import_graph(pkg).has_edge("toy.d", "toy.c")
    assert not import_graph(pkg).has_edge("toy.c", "toy.a")  # TYPE_CHECKING only


def test_emtwin_has_no_import_cycles() -> None:
    root = Path(emtwin.__file__).parent
    graph = import_graph(root)
    assert graph.number_of_nodes() > 100 and graph.number_of_edges() > 200
    assert _cycles(root) == []
