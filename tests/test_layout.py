"""The package's shape: no import circle anywhere in bench/ (lazy imports inside functions included), the
analysis never imports the report, and no module grows past ~400 lines without saying why it is one concern."""

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "bench"
LONGEST = 400  # lines; a longer module says in its docstring why it is one concern ("one concern")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The bench modules `path` imports anywhere in it (top level or inside a function), each import of
    `from bench.x import y` counted as bench.x.y where that is a module, else bench.x."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upward
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, or None. A package's __init__ importing its own modules is not a circle with
    them unless one of them imports something that leads back to the package itself."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if m.startswith(n + "."):  # a module importing its own package's __init__ (the package runs first)
                continue
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_import_graph_of_bench_has_no_circle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_a_circle_through_a_lazy_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_analysis_never_imports_the_report():
    graph = import_graph()
    analysis = {m for m in graph if m == "bench.analysis" or m.startswith("bench.analysis.")}
    assert analysis, "bench/analysis/ is where the statistics and the decision rule live"
    for m in analysis:
        assert not {n for n in graph[m] if n.startswith("bench.report")}, m


def test_no_module_is_longer_than_about_400_lines_unless_it_says_why():
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text().splitlines())
        if lines > LONGEST:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "one concern" in doc.lower(), (
                f"{path.relative_to(ROOT)}: {lines} lines and no reason in its docstring"
            )
