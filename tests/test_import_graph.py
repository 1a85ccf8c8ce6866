"""The package's import graph: no cycles, and no module imports a layer above its own.

Every `import` statement counts, also those inside functions (a lazy import that closes a cycle
is still a cycle). The layers, bottom to top, are those of ARCHITECTURE.md.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "audiogen")

# Bottom to top: a module may import its own package and the packages of lower layers only.
LAYERS = [
    ["files", "hashing", "temperatures", "losses", "schedules", "threads", "replicas", "progress"],
    ["audio", "midi"],
    ["config", "plots"],
    ["precision", "loss_scaling"],
    ["kernels"],
    ["rnn"],
    ["data"],
    ["samplernn", "musicvae"],
    ["training"],
    ["cli", "doctor"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path):
    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name):
    path = os.path.join(ROOT, *name.split("."))
    return os.path.isdir(path) or os.path.exists(path + ".py")


def imports_of(path):
    """The audiogen modules `path` imports (`from a.b import c` counts as `a.b.c` when `c` is a
    module, else as `a.b`)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "audiogen"}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] != "audiogen":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if is_module(full) else node.module)
    return found


def package_graph():
    graph = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                graph[module_name(path)] = imports_of(path)
    return graph


def find_cycle(graph):
    """One cycle of `graph` ({node: targets}) as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_of(module):
    """The top-level part of `audiogen.x.y` ("x"), or None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.fixture(scope="module")
def graph():
    return package_graph()


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle(graph):
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_every_package_has_a_layer(graph):
    unplaced = sorted({layer_of(m) for m in graph} - set(RANK) - {None})
    assert not unplaced, f"add {unplaced} to LAYERS (and to ARCHITECTURE.md)"


def test_nothing_imports_upwards(graph):
    upward = []
    for module, targets in graph.items():
        source = layer_of(module)
        for target in targets:
            dest = layer_of(target)
            if source is None or dest is None or dest == source:
                continue
            if RANK[dest] >= RANK[source]:
                upward.append(f"{module} imports {target}")
    assert not upward, "\n".join(sorted(upward))


def test_only_the_cli_imports_the_cli_and_models_import_no_training(graph):
    for module, targets in graph.items():
        layer = layer_of(module)
        if layer != "cli":
            assert not any(layer_of(t) == "cli" for t in targets), module
        if layer in ("samplernn", "musicvae"):
            assert not any(layer_of(t) in ("cli", "training") for t in targets), module


def test_no_file_is_over_400_lines():
    long = []
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    count = sum(1 for _ in f)
                if count > 400:
                    long.append(f"{os.path.relpath(os.path.join(folder, name), ROOT)}: {count}")
    assert not long, "\n".join(long)
