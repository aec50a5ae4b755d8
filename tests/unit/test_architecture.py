"""The structure's rules that import-linter does not check: no private names across packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("app.py", "chalicelib", "scripts/mlops", "jobs", "benchmarks")


def _python_files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        path = ROOT / source
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def _package_of(path: Path) -> str:
    return str(path.parent.relative_to(ROOT)).replace("/", ".")


def test_no_module_imports_another_packages_private_names():
    offences = []
    for path in _python_files():
        here = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            imported_package = node.module.rsplit(".", 1)[0]
            if private and not here.endswith(imported_package) and imported_package != here:
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.module} {private}")
    assert not offences, "private names imported across packages:\n" + "\n".join(offences)


def _modules(package: str, folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join([package, *parts]))
    return names


def test_every_module_of_the_lambda_package_and_the_cli_imports():
    """A stale import after a move fails here in a second, not in a deployed function."""
    import importlib

    modules = _modules("chalicelib", ROOT / "chalicelib") + _modules("mlops", ROOT / "scripts" / "mlops")
    failures = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failures.append(f"{name}: {exc!r}")
    assert not failures, "\n".join(failures)


def test_every_error_the_lambda_package_defines_belongs_to_the_project_hierarchy():
    """One hierarchy (chalicelib/errors.py), mapped to HTTP once: no stray exception class."""
    import importlib
    import inspect

    from chalicelib.errors import MlopsError

    strays = []
    for name in _modules("chalicelib", ROOT / "chalicelib"):
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            defined_here = inspect.isclass(value) and value.__module__ == name
            public_error = defined_here and issubclass(value, BaseException) and not attr.startswith("_")
            if public_error and not issubclass(value, MlopsError):
                strays.append(f"{name}.{attr}")
    assert not strays, "exceptions outside chalicelib.errors.MlopsError: " + ", ".join(strays)


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """A cycle in an import graph (module -> modules it imports), or [] if there is none. A package's
    ``__init__`` importing its own submodules (re-exports) does not count: it is not a design cycle."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = 1
        for imported in sorted(edges.get(module, ())):
            if module.startswith(imported + "."):
                continue
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported, [*path, imported])):
                return found
        state[module] = 2
        return []

    for module in sorted(edges):
        if module not in state and (found := visit(module, [module])):
            return found
    return []


def test_the_cycle_finder_finds_a_cycle_through_three_modules_and_none_in_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) == []  # a package and its own submodule


def test_no_module_of_the_lambda_package_is_part_of_an_import_cycle():
    """Imports inside functions count too (grimp sees them): no cycle hidden in a handler."""
    import grimp

    graph = grimp.build_graph("chalicelib")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert find_cycle(edges) == []
