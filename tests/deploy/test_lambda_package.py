"""The Lambda package (requirements.txt) must hold what the functions import, and nothing heavy."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.support import PROJECT

# Provided by the Lambda Python runtime (boto3 and its dependencies) or vendored by Chalice itself.
RUNTIME = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
    "certifi",
    "chalice",
}
HEAVY = {"scikit-learn", "scipy", "pandas", "pyarrow", "skl2onnx", "onnx", "polars", "matplotlib"}

_PROBE = """
import importlib.metadata as md, json, sys
import app
dists = md.packages_distributions()
tops = {m.split('.')[0] for m in list(sys.modules)}
print(json.dumps(sorted({d for t in tops for d in dists.get(t, [])})))
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: set[str]) -> set[str]:
    """The named distributions and everything they require (as installed here)."""
    import importlib.metadata as md

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    return seen


def _imported_by_app() -> set[str]:
    # A fresh interpreter: what the tests imported before must not count.
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    return {_norm(d) for d in json.loads(out.stdout.splitlines()[-1])} - {"serverless-mlops", "setuptools"}


def _requirements() -> set[str]:
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    return {
        _norm(re.split(r"[\s<>=!~\[;]", line, maxsplit=1)[0])
        for line in lines
        if line.strip() and not line.startswith("#")
    }


def test_every_distribution_the_functions_import_is_packaged_or_provided_by_the_runtime():
    provided = _closure(_requirements()) | {_norm(n) for n in RUNTIME}
    missing = _imported_by_app() - provided
    assert not missing, f"the app imports {sorted(missing)}: add them to requirements.txt"


def test_the_functions_import_nothing_heavy():
    assert not _imported_by_app() & {_norm(n) for n in HEAVY}
    assert not _requirements() & {_norm(n) for n in HEAVY}
