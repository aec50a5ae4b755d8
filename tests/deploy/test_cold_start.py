"""What a cold start imports, each probe in a fresh interpreter as a new Lambda container: the Lambda
side of training and the predict path load no heavy library, and an event handler imported alone (as
Lambda imports it, never app.py) has its middleware."""

from __future__ import annotations

import json
import subprocess
import sys

from app import app
from tests.support import PROJECT


def test_the_lambda_side_settings_do_not_import_scikit_learn() -> None:
    code = (
        "import sys, chalicelib.training\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'pandas', 'skl2onnx'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True)


def test_the_predict_path_imports_no_heavy_library_and_creates_no_tracer():
    probe = (
        "import sys, app\n"
        "from chalicelib.serving import predict, model\n"
        "import onnxruntime\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'pandas', 'skl2onnx', 'aws_xray_sdk') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    env = {"MLOPS_TRACING": "false", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_each_event_handler_has_its_middleware_when_lambda_imports_only_its_module():
    """Lambda imports ``chalicelib.entrypoints.<area>`` directly, never app.py (aws/chalice#1566)."""
    # Read from the app, not from the handlers: Chalice collects an app's middleware lazily, once.
    kinds = {
        "scheduled_retrain_check": "scheduled",
        "advance_rollouts": "scheduled",
        "sweep_uploads": "scheduled",
    }
    expected = {
        source.handler_string: len(list(app._get_middleware_handlers(kinds.get(source.name, "sqs"))))
        for source in app.event_sources
    }
    assert all(count >= 3 for count in expected.values()), expected
    probe = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for handler in sys.argv[1:]:\n"
        "    module, name = handler.rsplit('.', 1)\n"
        "    out[handler] = len(getattr(importlib.import_module(module), name).middleware_handlers)\n"
        "assert 'app' not in sys.modules, 'app.py was imported'\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *expected], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
