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
