"""Imports point one way: no cycle between modules, and each app imports only the layers below it.

The layers, bottom up: the foundation (``anima_site`` but for the modules that tie the
apps together); ``memories`` and ``keys``, side by side, each on the foundation alone;
``reflections`` on those; ``meta`` (operations) and ``benchmarks`` on any of them;
``anima_site.urls``, ``anima_site.exceptions``, ``wsgi`` and the settings on top.

Every module of those packages is read with ``ast`` (nothing is imported): every
``import`` and ``from … import`` at any depth — inside functions too, where lazy imports
hide — with relative imports resolved. Migrations are modules like any other.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("anima_site", "memories", "keys", "reflections", "meta", "benchmarks")
APPS = {"memories", "keys", "reflections", "meta", "benchmarks"}
#: The modules of ``anima_site`` that tie the apps together; the rest is the foundation.
SITE_MODULES = ("anima_site.urls", "anima_site.exceptions", "anima_site.wsgi", "anima_site.settings")
#: What each layer may not import (the foundation: any app).
FORBIDDEN = {
    "memories": {"meta", "keys", "reflections", "benchmarks"},
    "keys": {"memories", "reflections", "meta", "benchmarks"},
    "reflections": {"meta", "benchmarks"},
}


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file of ``packages`` under ``root``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement may load: ``from a import b`` gives ``a.b`` and ``a``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    return [f"{source}.{alias.name}" for alias in node.names] + [source]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` lands in: itself, or its longest module prefix."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module → the project modules it imports, anywhere in its body."""
    modules = project_modules(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            names = _imported_names(node, module, is_package)
            if isinstance(node, ast.ImportFrom) and names:
                # ``from a import b``: the module a.b when there is one, else a itself.
                *submodules, source = names
                found = [name for name in submodules if name in modules]
                names = found or [source]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, …, a]``) per strongly connected group of modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_cycle_through(group, graph) for group in groups]


def _cycle_through(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    came_from = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    path = [node]
                    while came_from[path[-1]] is not None:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(group)}")


def layer(module: str) -> str:
    """``foundation``, ``site`` (anima_site's modules above the apps) or the app's name."""
    package = module.split(".")[0]
    if package != "anima_site":
        return package
    return "site" if module.startswith(SITE_MODULES) else "foundation"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``a → b`` for every import that points up or sideways across the layers."""
    forbidden = {**FORBIDDEN, "foundation": APPS}
    return [
        f"{module} → {target}"
        for module in sorted(graph)
        for target in sorted(graph[module])
        if target.split(".")[0] in forbidden.get(layer(module), set())
    ]


def violations_from(graph: dict[str, set[str]], source: str) -> list[str]:
    return [line for line in layer_violations(graph) if layer(line.split(" → ")[0]) == source]


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT)


def test_every_package_is_walked(graph):
    walked = {module.split(".")[0] for module in graph}

    assert walked == set(PACKAGES)


def test_no_import_cycle_between_modules(graph):
    cycles = [" → ".join(cycle) for cycle in import_cycles(graph)]

    assert cycles == [], "\n".join(cycles)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("memories", id="memories imports no other app"),
        pytest.param("foundation", id="the foundation imports no app"),
        pytest.param("keys", id="keys imports the foundation only"),
        pytest.param("reflections", id="reflections imports neither meta nor benchmarks"),
    ],
)
def test_imports_point_down_the_layers(graph, source):
    violations = violations_from(graph, source)

    assert violations == [], "\n".join(violations)


def test_the_walk_finds_lazy_and_relative_imports_and_reports_their_cycle(tmp_path):
    package = tmp_path / "memories"
    (package / "services").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services" / "__init__.py").write_text("")
    (package / "services" / "a.py").write_text("from . import b\n")
    (package / "services" / "b.py").write_text("def f():\n    from ..tasks import run\n")
    (package / "tasks.py").write_text("def run():\n    import memories.services.a\n    from meta.views import v\n")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "views.py").write_text("v = 1\n")

    graph = import_graph(tmp_path, packages=("memories", "meta"))

    assert import_cycles(graph) == [["memories.services.a", "memories.services.b", "memories.tasks", "memories.services.a"]]
    assert violations_from(graph, "memories") == ["memories.tasks → meta.views"]
