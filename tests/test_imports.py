"""The library's modules import each other without circles (also through imports inside
functions, which hide a circle until the day someone moves them to the top)."""

import ast
from pathlib import Path

import course_lib

PACKAGE = Path(course_lib.__file__).resolve().parent
# Check modules and the hidden example are loaded by the grader as files, not imported.
NOT_MODULES = {("grading", "checks"), ("grading", "hidden_example")}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        if relative.parts[1:3] in NOT_MODULES:
            continue
        name = ".".join(relative.parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.startswith("course_lib")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else owner(node.module))
        # The package's own __init__ (setup, fast_mode) is imported by nearly everything.
        graph[name] = deps - {name, "course_lib", ""}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_in_course_lib():
    graph = _graph(_modules())
    assert "course_lib.grading.intake" in graph and "course_lib.experiments" in graph
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_selfsupervised_builds_on_shared_modules_not_on_chapter_07():
    deps = _graph(_modules())["course_lib.selfsupervised"]
    assert "course_lib.transfer" not in deps
    assert {"course_lib.cifar", "course_lib.finetuning"} <= deps
