"""The Lambda package without what the functions never load, in both deploy paths.

Chalice zips every file of every wheel ``requirements.txt`` pulls in. About a third of that zip is
never loaded by a function: a second copy of onnxruntime's engine as a C library, test suites, type
stubs, build and model-conversion tooling, and two distributions only that tooling imports; and
botocore with its dependencies, which the functions load from the Lambda runtime. The rules below
(``RULES``) name each, with the reason it can go; nothing else is touched, and the app's own code
(``app.py``, ``chalicelib/``, Chalice's runtime ``chalice/``) never is.

Both deploy paths use the zip Chalice caches in ``.chalice/deployments/<hash>-<python>.zip`` (the
hash covers requirements.txt, app.py, chalicelib and vendor/): when that file exists, ``chalice
package`` and ``chalice deploy`` reuse it as it is. So :func:`prepare` builds it with Chalice's own
packager, exactly as they would, and prunes it in place before either runs: ``mlops.package``
(``make package``) and ``mlops.chalicedeploy`` (``make deploy``) call it. A ``<zip>.pruned.json``
beside it lists what each rule removed.

tests/deploy/test_lambda_package_prune.py checks that each rule removes what it says, that no
rule but the runtime's matches a file the functions load (recorded from a real run: every module of
the app, an onnxruntime session scoring a model, numpy), and that the pruned package alone, with
what the runtime provides, runs all of that, with a deployed stage's tracing on too.
Figures in docs/BENCHMARKS.md ("Lambda package budget").
"""

from __future__ import annotations

import fnmatch
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Rule:
    """Zip entries matching ``pattern`` (``fnmatch``: ``*`` also matches ``/``) are left out."""

    pattern: str
    reason: str
    # The Lambda Python runtime provides it (boto3 and its dependencies): the functions load it, from
    # the runtime; packaged, an older or newer copy would shadow the runtime's.
    runtime: bool = False

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)


_STUBS = "Type stubs and marker files: read by type checkers, never imported."
_NUMPY_TESTS = "numpy's test suite, run by `numpy.test()` with pytest; the functions never run it."
_NUMPY_TEST_EXTENSIONS = (
    "Extension modules built only for numpy's tests (`numpy/_core/tests` imports them); "
    "numpy itself does not."
)

_RUNTIME = (
    "Provided by the Lambda Python runtime with boto3 (pulled in by aws-xray-sdk's requirement of "
    "botocore); the packaged copy would shadow the runtime's."
)

RULES: tuple[Rule, ...] = (
    Rule(
        "onnxruntime/capi/libonnxruntime.so.*",
        "onnxruntime's engine as a C library, for the C/C++ API and plugin execution providers. The "
        "Python extension (onnxruntime_pybind11_state) carries the whole engine itself: it neither "
        "links this file (its NEEDED entries are libc, libstdc++, libm, libgcc_s, libdl, librt, "
        "libpthread) nor loads it (a session scores with the file absent).",
    ),
    Rule(
        "onnxruntime/transformers/*",
        "Offline optimisation and benchmarking of transformer models (imports onnx, torch, "
        "transformers: none is packaged).",
    ),
    Rule(
        "onnxruntime/quantization/*",
        "Offline model quantisation (imports onnx, not packaged).",
    ),
    Rule(
        "onnxruntime/tools/*",
        "Command-line model tooling: ORT-format conversion (flatbuffers), mobile and QNN helpers, "
        "symbolic shape inference (onnx). InferenceSession never imports it.",
    ),
    Rule(
        "onnxruntime/backend/*",
        "The ONNX backend-test API (imports onnx, not packaged: it cannot be imported here).",
    ),
    Rule(
        "onnxruntime/datasets/*",
        "Three sample models for onnxruntime's tutorials.",
    ),
    Rule(
        "google/protobuf/*",
        "protobuf (a requirement of onnxruntime): only onnxruntime's tools, quantization and "
        "transformers folders (removed above) import it; the app never does.",
    ),
    Rule("google/_upb/*", "protobuf's C extension (see google/protobuf)."),
    Rule("protobuf-*.dist-info/*", "protobuf's metadata (the distribution is removed)."),
    Rule(
        "flatbuffers/*",
        "flatbuffers (a requirement of onnxruntime): only onnxruntime/tools' ORT-format model "
        "conversion imports it; the app never does.",
    ),
    Rule("flatbuffers-*.dist-info/*", "flatbuffers' metadata (the distribution is removed)."),
    Rule("numpy/tests/*", _NUMPY_TESTS),
    Rule("numpy/*/tests/*", _NUMPY_TESTS),
    Rule("numpy/conftest.py", _NUMPY_TESTS),
    Rule("numpy/_core/_multiarray_tests.*", _NUMPY_TEST_EXTENSIONS),
    Rule("numpy/_core/_operand_flag_tests.*", _NUMPY_TEST_EXTENSIONS),
    Rule("numpy/_core/_rational_tests.*", _NUMPY_TEST_EXTENSIONS),
    Rule("numpy/_core/_struct_ufunc_tests.*", _NUMPY_TEST_EXTENSIONS),
    Rule("numpy/_core/_umath_tests.*", _NUMPY_TEST_EXTENSIONS),
    Rule(
        "numpy/_core/_simd.*",
        "numpy's SIMD test module (`numpy/_core/tests/test_simd*.py`, `np.show_runtime()`); the "
        "ufuncs dispatch to SIMD code inside _multiarray_umath, not through this module.",
    ),
    Rule(
        "numpy/f2py/*",
        "F2PY, the Fortran-to-Python wrapper generator: a build tool (`numpy.f2py` is imported "
        "only on access).",
    ),
    Rule(
        "numpy/_core/include/*",
        "C headers for compiling extensions against numpy (`numpy.get_include()`).",
    ),
    Rule(
        "numpy/_core/lib/*",
        "The static npymath library and pkg-config files, for compiling extensions against numpy.",
    ),
    Rule("numpy/random/_examples/*", "Example Cython, CFFI and Numba code for numpy.random."),
    Rule("numpy/_pyinstaller/*", "PyInstaller hooks, for freezing applications."),
    Rule("*.pxd", "Cython declarations, for compiling against numpy; never imported."),
    Rule("*.pyi", _STUBS),
    Rule("*/py.typed", _STUBS),
    *(
        Rule(pattern, _RUNTIME, runtime=True)
        for pattern in (
            "botocore/*",
            "botocore-*.dist-info/*",
            "dateutil/*",
            "python_dateutil-*.dist-info/*",
            "six.py",
            "six-*.dist-info/*",
            "urllib3/*",
            "urllib3-*.dist-info/*",
        )
    ),
    Rule(
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.*",
        "The Swagger UI page's JavaScript and CSS, served only by Powertools' own event handler "
        "with `enable_swagger()`; the API is a Chalice app.",
    ),
)

# The app's own code, which Chalice adds to the zip: never pruned, whatever a rule says.
PROTECTED = ("app.py", "chalicelib/", "chalice/")


def rule_for(name: str, rules: Iterable[Rule] = RULES) -> Rule | None:
    """The first rule that leaves ``name`` out of the package, or None (it stays)."""
    if name == PROTECTED[0] or name.startswith(PROTECTED[1:]):
        return None
    return next((rule for rule in rules if rule.matches(name)), None)


def prune_zip(path: Path, rules: Iterable[Rule] = RULES) -> dict[str, Any]:
    """Rewrite the zip at ``path`` without the entries a rule matches (the others byte for byte, with
    their metadata); returns what was removed by rule: ``{pattern: {"entries": [...], "bytes": n,
    "zipped_bytes": n}}``. A zip with nothing to remove is left as it is."""
    rules = tuple(rules)
    removed: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(path) as source:
        infos = source.infolist()
        drop = {}
        for info in infos:
            rule = rule_for(info.filename, rules)
            if rule is not None:
                drop[info.filename] = rule
                entry = removed.setdefault(rule.pattern, {"entries": [], "bytes": 0, "zipped_bytes": 0})
                entry["entries"].append(info.filename)
                entry["bytes"] += info.file_size
                entry["zipped_bytes"] += info.compress_size
        if not drop:
            return removed
        tmp = path.with_name(path.name + ".pruning")
        with zipfile.ZipFile(tmp, "w") as target:
            for info in infos:
                if info.filename not in drop:
                    # Same name, metadata and bytes; compressed again as Chalice compresses (deflate,
                    # zlib's default level), as its own inject_latest_app rewrites its zips.
                    with source.open(info) as raw_in:
                        data = raw_in.read()
                    target.writestr(info, data, compress_type=info.compress_type)
    os.replace(tmp, path)
    return removed


def prepare(project_dir: Path, stage: str) -> Path:
    """Build the zip ``chalice package`` and ``chalice deploy`` would build for ``stage`` (with
    Chalice's packager and the stage's configuration: same name, same contents), unless it is
    cached, and prune it in place. Chalice then reuses it. Returns its path.

    Chalice hashes every file under chalicelib/ into the name: call this after the last change to
    them and with bytecode writing off (``mlops.package.drop_bytecode``, ``sys.dont_write_bytecode``),
    or Chalice computes another name and builds an unpruned zip."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.packager import DependencyBuilder, LambdaDeploymentPackager, PipRunner, SubprocessPip
    from chalice.utils import UI, OSUtils

    # A copy of the environment: Chalice's factory writes the stage's variables into what it is given.
    factory = CLIFactory(project_dir=str(project_dir), environ=dict(os.environ))
    config = factory.create_config_obj(chalice_stage_name=stage)
    if config.automatic_layer:  # the dependencies would go to a layer Chalice builds apart
        raise SystemExit("automatic_layer is set in .chalice/config.json: mlops.lambdazip prunes no layer")
    osutils = OSUtils()
    packager = LambdaDeploymentPackager(
        osutils=osutils,
        dependency_builder=DependencyBuilder(
            osutils=osutils,
            pip_runner=PipRunner(pip=SubprocessPip(osutils=osutils), osutils=osutils),
            architecture=config.lambda_architecture,
        ),
        ui=UI(),
        architecture=config.lambda_architecture,
    )
    path = Path(packager.create_deployment_package(str(project_dir), config.lambda_python_version))
    removed = prune_zip(path)
    report = report_path(path)
    if removed or not report.exists():
        report.write_text(json.dumps(removed, indent=1, sort_keys=True) + "\n")
    return path


def report_path(package: Path) -> Path:
    """What :func:`prepare` removed from ``package``, by rule (JSON)."""
    return package.with_name(package.name + ".pruned.json")
