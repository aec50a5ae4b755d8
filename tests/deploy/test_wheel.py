"""The wheel built from pyproject.toml ships every module of chalicelib and mlops.

The editable install the tests run under hides a missing package: its finder maps the source tree.
So the wheel is built from a copy of the project and installed into a fresh virtual environment
that sees the third-party dependencies but not the project, then every module is imported there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.support import PROJECT

# Package roots: where the import name starts, as pyproject.toml's packages.find `where` says.
ROOTS = {"chalicelib": PROJECT, "mlops": PROJECT / "scripts"}
# Generated or local state: not part of a build, and can be large.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "build",
    "dist",
    ".mlops",
    ".chalice",
    "__pycache__",
    "*.egg-info",
    ".*_cache",
)

_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.import_module(name).__file__
    except Exception as error:  # report every failure, not just the first
        found[name] = f"{type(error).__name__}: {error}"
print(json.dumps(found))
"""


def _source_modules() -> list[str]:
    """Every module under the package roots, from the files: a module added later is covered too."""
    names = []
    for package, root in ROOTS.items():
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _clean_env() -> dict[str, str]:
    # The test run's PYTHONPATH points at the source tree; the fresh environment must not see it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, check=True
    )


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_imports_every_module_from_its_own_site_packages(tmp_path: Path) -> None:
    # A copy, so the build's build/ and *.egg-info never land in the working tree.
    source = tmp_path / "source"
    shutil.copytree(PROJECT, source, ignore=NOT_SOURCE)
    wheels = tmp_path / "wheels"
    # The shared venv's setuptools, no build isolation, no index: no network.
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        wheels,
        ".",
        cwd=source,
    )
    (wheel,) = wheels.glob("serverless_mlops-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # pip comes from the shared venv (--python): no ensurepip
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).stdout.strip()
    )
    # Third-party dependencies come from the running venv. A path line in a .pth file is only appended
    # to sys.path: the .pth files in that directory (the editable install's finder) are not executed.
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "shared-deps.pth").write_text("".join(f"{path}\n" for path in sorted(shared)))
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", wheel, cwd=tmp_path)

    expected = _source_modules()
    assert {"chalicelib.validation", "chalicelib.registry", "mlops.cli"} <= set(expected)
    # -I: no PYTHONPATH, no user site, no current directory on sys.path; cwd outside the project anyway.
    probe = _run(python, "-I", "-c", _PROBE, *expected, cwd=tmp_path)
    found: dict[str, str] = json.loads(probe.stdout)

    not_from_wheel = {
        name: where
        for name, where in found.items()
        if not (where and Path(where).resolve().is_relative_to(site.resolve()))
    }
    assert not not_from_wheel, (
        "modules missing from the wheel or imported from elsewhere (a new package needs an __init__.py "
        f"to be found by pyproject.toml's packages.find): {not_from_wheel}"
    )
    assert (env_dir / "bin" / "mlops").exists(), "the wheel installs the mlops console script"
