"""The Lambda package without what the functions never load (mlops.lambdazip), in both deploy paths.

The rules must remove what they say and nothing the functions load: a real run (tests/deploy/
lambda_probe.py: app.py and every chalicelib module imported, an onnxruntime session scoring a
model through the app's OnnxModel, numpy) records the files it loads, and the pruned package alone
must run it, with nothing but what the Lambda runtime provides beside it.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mlops.lambdazip import RULES, rule_for
from tests.support import PROJECT, built, holdout_records

PROBE = Path(__file__).with_name("lambda_probe.py")
# What the Lambda Python runtime provides (boto3 and what it needs), taken from this venv.
RUNTIME = ("boto3", "botocore", "s3transfer", "dateutil", "six.py", "urllib3")
ONNX_LIBRARY = re.compile(r"onnxruntime/capi/libonnxruntime\.so\.[0-9.]+")


@pytest.fixture(scope="module")
def packaged() -> Path:
    """``make package STAGE=dev``'s output, built as it builds it (reused while its inputs are unchanged)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "scripts")])}
    subprocess.run(
        [sys.executable, "-m", "mlops.package", "--stage", "dev"], cwd=PROJECT, env=env, check=True
    )
    return PROJECT / "build" / "package" / "dev"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A real candidate's model.onnx, input_schema.json and holdout records (trained by the job's code)."""
    artifacts, _ = built("forest")
    folder = tmp_path_factory.mktemp("model")
    files = [folder / "model.onnx", folder / "input_schema.json", folder / "records.json"]
    files[0].write_bytes(artifacts["model.onnx"])
    files[1].write_bytes(artifacts["input_schema.json"])
    files[2].write_text(json.dumps(holdout_records("forest", 20)))
    return files


def _probe(model_files: list[Path], *roots: Path, env: dict[str, str] | None = None) -> list[str]:
    """The files the probe loaded from ``roots`` (-I -S: no site-packages, no PYTHONPATH)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(PROBE), *map(str, model_files), *map(str, roots)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])["loaded"]
    return loaded


def _runtime(folder: Path) -> Path:
    site = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir()
    for name in RUNTIME:
        (folder / name).symlink_to(site / name)
    return folder


def test_no_rule_matches_a_file_the_functions_load(model_files):
    # The installed dependencies are the wheels the package holds (the same pins), unpruned.
    pins = dict(
        re.match(r"([\w.-]+)==([\w.]+)", line).groups()  # type: ignore[union-attr]
        for line in (PROJECT / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {name: md.version(name) for name in pins} == pins
    site = Path(sysconfig.get_paths()["purelib"])
    loaded = _probe(model_files, PROJECT, site)
    assert "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-x86_64-linux-gnu.so" in loaded
    assert "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so" in loaded
    # The runtime's rules remove what the functions load from the Lambda runtime instead.
    matched = {
        name: rule.pattern for name in loaded if (rule := rule_for(name)) is not None and not rule.runtime
    }
    assert not matched, f"files the functions load that a prune rule removes: {matched}"
    # onnxruntime's C library is installed beside its Python extension, and a session never loads it.
    assert any(
        ONNX_LIBRARY.fullmatch(str(p.relative_to(site))) for p in (site / "onnxruntime/capi").iterdir()
    )
    assert not [name for name in loaded if ONNX_LIBRARY.fullmatch(name)]


def test_every_rule_removed_what_it_names_from_the_built_package_and_nothing_it_names_is_left(packaged):
    removed: dict[str, Any] = json.loads((packaged / "pruned.json").read_text())
    assert set(removed) == {rule.pattern for rule in RULES}, "a rule matched nothing: drop or fix it"
    for pattern, entry in removed.items():
        assert entry["entries"], pattern
        assert {rule_for(name).pattern for name in entry["entries"]} == {pattern}  # type: ignore[union-attr]
    with zipfile.ZipFile(packaged / "deployment.zip") as z:
        names = z.namelist()
    left = [name for name in names if rule_for(name) is not None]
    assert not left, f"entries the rules remove are still in the package: {left[:5]}"
    assert any(n.startswith("onnxruntime/capi/onnxruntime_pybind11_state") for n in names)
    assert "app.py" in names and any(n.startswith("chalicelib/") for n in names)


def test_the_pruned_package_alone_runs_the_app_an_onnxruntime_session_and_numpy(
    packaged, model_files, tmp_path
):
    package = tmp_path / "package"
    with zipfile.ZipFile(packaged / "deployment.zip") as z:
        z.extractall(package)
        for info in z.infolist():  # as Lambda unpacks it: with the modes the zip records
            if mode := info.external_attr >> 16:
                (package / info.filename).chmod(mode & 0o777)
    loaded = _probe(model_files, package, _runtime(tmp_path / "runtime"))
    # What the process loaded came from the package (not from this venv): its engine among them.
    assert "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-x86_64-linux-gnu.so" in loaded
    assert "app.py" in loaded and "chalicelib/serving/model.py" in loaded


_DEPLOY_BUILD = """
import json, os, sys, zipfile
from pathlib import Path
from chalice.cli.factory import CLIFactory
from chalice.deploy import models
from chalice.deploy.deployer import create_build_stage
from chalice.deploy.swagger import TemplatedSwaggerGenerator
from chalice.utils import UI, OSUtils
from mlops.chalicedeploy import prepare_package

project = Path(sys.argv[1])
prepared = prepare_package("dev", project)
# As Chalice's deployer does: its configuration (app.py imported), then its build stage.
config = CLIFactory(project_dir=str(project), environ=dict(os.environ)).create_config_obj(
    chalice_stage_name="dev"
)
config.chalice_app
package = models.DeploymentPackage(models.Placeholder.BUILD_STAGE)
create_build_stage(OSUtils(), UI(), TemplatedSwaggerGenerator(), config).execute(config, [package])
print(json.dumps({"prepared": str(prepared), "uploaded": package.filename}))
"""


def test_chalice_deploy_uploads_the_pruned_package(packaged):
    # `make deploy` runs mlops.chalicedeploy: it prepares the package, then Chalice's deployer builds.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "scripts")])}
    done = subprocess.run(
        [sys.executable, "-c", _DEPLOY_BUILD, str(PROJECT)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    paths = json.loads(done.stdout.splitlines()[-1])
    assert "Reusing existing deployment package" in done.stdout
    assert paths["uploaded"] == paths["prepared"]
    with zipfile.ZipFile(paths["uploaded"]) as z:
        names = z.namelist()
    assert not [name for name in names if rule_for(name) is not None]
    assert any(n.startswith("onnxruntime/capi/onnxruntime_pybind11_state") for n in names)
    # The same dependencies as `make package` (app.py and chalicelib aside, which Chalice adds as they are).
    with zipfile.ZipFile(packaged / "deployment.zip") as z:
        packaged_names = z.namelist()
    assert sorted(n for n in names if not n.startswith(("chalicelib/", "app.py"))) == sorted(
        n for n in packaged_names if not n.startswith(("chalicelib/", "app.py"))
    )


# dev and prod set MLOPS_TRACING=true: app.py then creates a Powertools Tracer, which inside Lambda
# imports the X-Ray SDK (until issue 19 the package lacked it: every function failed at import).
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_pruned_package_imports_the_app_with_a_deployed_stage_s_environment(
    packaged, model_files, tmp_path, stage
):
    config = json.loads((PROJECT / ".chalice" / "config.json").read_text())
    package = tmp_path / "package"
    with zipfile.ZipFile(packaged / "deployment.zip") as z:
        z.extractall(package)
    env = {
        **os.environ,
        **config["stages"][stage]["environment_variables"],
        # As in Lambda: Powertools' Tracer is on only where this is set.
        "AWS_LAMBDA_FUNCTION_NAME": f"serverless-mlops-{stage}-api_handler",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    _probe(model_files, package, _runtime(tmp_path / "runtime"), env=env)
