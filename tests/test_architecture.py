"""The shape of the code base: no import cycles among the project's modules (imports inside functions
count), no source file over 700 lines, the library free of the server, and reading a config free of torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("adapters_core", "hub", "frontend")
MAX_LINES = 700
SERVER_PACKAGES = ("django", "rest_framework", "celery", "psycopg", "hub", "frontend")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, module: str, modules) -> set[str]:
    """The module names the file's import statements name, wherever the statement sits. ``from package
    import submodule`` names the submodule (as ``import package.submodule`` does), not the package."""
    names = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                names.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    return {
        module: {
            target
            for name in imported_names(path, module, modules)
            if (target := owner(name)) not in (None, module)
        }
        for module, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from adapters_core.io import load\n")
    assert any(isinstance(node, ast.ImportFrom) for node in ast.walk(tree))


def test_no_import_cycles_among_project_modules():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_source_file_is_over_700_lines(package):
    too_long = {
        str(path.relative_to(REPO_ROOT)): count
        for name, path in project_modules().items()
        if name.split(".")[0] == package
        and (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_the_library_imports_nothing_of_the_server():
    graph, modules = import_graph(), project_modules()
    library = {name for name in modules if name.split(".")[0] == "adapters_core"}
    server_imports = {
        module: sorted(
            name
            for name in imported_names(modules[module], module, modules)
            if name.split(".")[0] in SERVER_PACKAGES
        )
        for module in library
    }
    assert {module: names for module, names in server_imports.items() if names} == {}
    assert all(target.split(".")[0] == "adapters_core" for module in library for target in graph[module])


def test_reading_configs_and_the_directory_contract_imports_neither_torch_nor_django():
    code = (
        "import sys, adapters_core, adapters_core.configuration, adapters_core.directory;"
        "adapters_core.AdapterConfig.load('pfeiffer', reduction_factor=12);"
        "print(sorted(m for m in ('torch', 'transformers', 'django') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
