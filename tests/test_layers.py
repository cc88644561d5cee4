"""The house's layering (ARCHITECTURE.md, "Import rules"), checked on the source: every import of every module,
those inside functions included and those under `if TYPE_CHECKING:` left out.

    harness.protocol  <-  mock_vapi  <-  harness
    harness.protocol  <-  reference_proxy

No package cycle (counting `harness.protocol` as a package of its own), no module cycle, no import across the
layers but those drawn, and locust or gevent imported only under `harness/load/`.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "mock_vapi", "reference_proxy")
# package -> the packages it may import (besides itself)
ALLOWED = {
    "harness.protocol": set(),
    "mock_vapi": {"harness.protocol"},
    "harness": {"mock_vapi", "harness.protocol"},
    "reference_proxy": {"harness.protocol"},
}
LOAD_ONLY = ("locust", "gevent")


def module_names(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module under the packages: dotted name -> file."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(imported name, line) for each import that runs, relative imports resolved."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                stack.extend(child.orelse)  # the else branch runs
                continue
            if isinstance(child, ast.Import):
                yield from ((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = module.split(".")
                    keep = len(parts) - child.level + (1 if is_package else 0)
                    base = ".".join([*parts[:keep], *([base] if base else [])])
                yield base, child.lineno
                yield from ((f"{base}.{alias.name}", child.lineno) for alias in child.names)
            stack.append(child)


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, dict[str, int]]:
    """module -> {imported module of ours or third-party top-level name: first line}."""
    modules = module_names(root, packages)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for imported, line in _imports(tree, name, path.name == "__init__.py"):
            target = imported if imported in modules else None
            if target is None and imported.split(".")[0] not in packages:
                target = imported.split(".")[0]  # third party: its top-level name
            if target is not None and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def package_of(module: str) -> str:
    """The layer a module belongs to: `harness.protocol` is its own."""
    if module == "harness.protocol" or module.startswith("harness.protocol."):
        return "harness.protocol"
    return module.split(".")[0]


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def problems(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Every breach of the layering, one line each; [] when the house is in order."""
    graph = import_graph(root, packages)
    ours = set(graph)
    found = [f"module cycle: {' <-> '.join(c)}" for c in cycles({m: set(e) & ours for m, e in graph.items()})]
    layers: dict[str, dict[str, str]] = {}
    for module, edges in graph.items():
        for target, line in edges.items():
            if target in ours and package_of(target) != package_of(module):
                layers.setdefault(package_of(module), {}).setdefault(package_of(target), f"{module}:{line}")
            if target in LOAD_ONLY and not module.startswith("harness.load"):
                found.append(f"{module}:{line} imports {target}: only harness/load/ may")
    found += [f"package cycle: {' <-> '.join(c)}" for c in cycles(layers)]
    for package, targets in sorted(layers.items()):
        for target, where in sorted(targets.items()):
            if package in ALLOWED and target not in ALLOWED[package]:
                found.append(f"{where}: {package} imports {target}, which the layering does not allow")
    return found


def test_the_house_is_layered() -> None:
    assert problems(ROOT) == []


def test_every_package_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {m for m, path in module_names(ROOT).items() if path.name == "__init__.py"}
    assert on_disk | {"harness.suites"} == listed


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # two modules of one package importing each other, one of them inside a function
            {"harness/__init__.py": "", "harness/a.py": "from harness import b\n",
             "harness/b.py": "def f():\n    from harness.a import x\n"},
            ["module cycle: harness.a <-> harness.b"],
        ),
        (  # the lower layer importing the higher one
            {"harness/__init__.py": "", "harness/a.py": "import mock_vapi.m\n",
             "mock_vapi/__init__.py": "", "mock_vapi/m.py": "from harness.a import x\n"},
            ["module cycle: harness.a <-> mock_vapi.m", "package cycle: harness <-> mock_vapi",
             "mock_vapi.m:1: mock_vapi imports harness, which the layering does not allow"],
        ),
        (  # relative imports resolve; harness.protocol is a layer of its own
            {"harness/__init__.py": "", "harness/protocol/__init__.py": "from . import sse\n",
             "harness/protocol/sse.py": "from ..checks import x\n", "harness/checks.py": ""},
            ["harness.protocol.sse:1: harness.protocol imports harness, which the layering does not allow"],
        ),
        (  # locust outside harness/load/; harness importing reference_proxy
            {"harness/__init__.py": "", "harness/runner.py": "import gevent\nfrom reference_proxy import app\n",
             "harness/load/__init__.py": "import locust\n", "reference_proxy/__init__.py": "",
             "reference_proxy/app.py": ""},
            ["harness.runner:1 imports gevent: only harness/load/ may",
             "harness.runner:2: harness imports reference_proxy, which the layering does not allow"],
        ),
        (  # under TYPE_CHECKING: not an import that runs
            {"harness/__init__.py": "", "harness/a.py": "from harness import b\n",
             "harness/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness import a\n"},
            [],
        ),
    ],
)  # fmt: skip
def test_a_planted_breach_is_found(tmp_path: Path, files: Mapping[str, str], expected: list[str]) -> None:
    _write(tmp_path, files)
    assert sorted(problems(tmp_path)) == sorted(expected)
