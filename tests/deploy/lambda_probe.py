"""Run as a script in a process that sees only a Lambda package (and what the Lambda runtime provides):
``python -I -S lambda_probe.py MODEL SCHEMA RECORDS ROOT...`` (the roots go first on sys.path).

It does what the functions do with their dependencies: imports app.py (every route and handler) and
every module of chalicelib, opens an onnxruntime session on a real model through the app's own
``OnnxModel`` and scores records with it, and runs the numpy the code uses (drift statistics,
random generators, string arrays, BLAS). Its last stdout line is one JSON object: the files the
process loaded from the roots (Python modules and mapped shared objects), each relative to its root.
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
import sys
from pathlib import Path

model_path, schema_path, records_path, *roots = (Path(a).resolve() for a in sys.argv[1:])
sys.path[:0] = [str(r) for r in roots]

import app  # noqa: E402,F401  (what Lambda imports first)
import chalicelib  # noqa: E402

for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(info.name)

import numpy as np  # noqa: E402

from chalicelib.serving.model import OnnxModel  # noqa: E402
from chalicelib.validation.drift import ks_2samp  # noqa: E402

model = OnnxModel(model_path.read_bytes(), json.loads(schema_path.read_text()))
records = json.loads(records_path.read_text())
scores = model.score_records(records)
assert scores.probabilities is not None and scores.probabilities.shape[0] == len(records)
assert np.allclose(scores.probabilities.sum(axis=1), 1.0, atol=1e-5), scores.probabilities

rng = np.random.default_rng(7)
a, b = rng.normal(size=2000), rng.normal(0.5, size=2000)
statistic, pvalue = ks_2samp(a, b)
assert 0.1 < statistic < 0.4 and pvalue < 1e-6, (statistic, pvalue)
words = np.array([" A ", "bB", "c"])
assert np.char.str_len(np.char.strip(np.char.lower(words))).tolist() == [1, 2, 1]
m = rng.normal(size=(64, 64)) + 64 * np.eye(64)
assert np.allclose(m @ np.linalg.solve(m, np.ones(64)), 1.0)
assert math.isclose(float(np.percentile(np.arange(101), 90)), 90.0)

loaded = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
with open("/proc/self/maps") as maps:
    loaded |= {line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line}


def relative(path: Path) -> str | None:
    """``path`` relative to the innermost root that holds it, or None (the standard library, say):
    the project's own virtual environment lies inside the project root, and its site-packages is
    the root the installed dependencies are named from."""
    holding = [root for root in roots if path.is_relative_to(root)]
    return str(path.relative_to(max(holding, key=lambda r: len(r.parts)))) if holding else None


inside = {relative(Path(f).resolve()) for f in loaded if f}
print(json.dumps({"loaded": sorted(name for name in inside if name)}))
