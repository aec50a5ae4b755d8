"""The Lambda package's prune rules (mlops.lambdazip) on a zip of known entries."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlops.lambdazip import RULES, prune_zip, rule_for

# One entry each rule is meant to remove (the built package's entries are checked in tests/deploy).
REMOVED = {
    "onnxruntime/capi/libonnxruntime.so.1.32.0": "onnxruntime/capi/libonnxruntime.so.*",
    "onnxruntime/transformers/optimizer.py": "onnxruntime/transformers/*",
    "onnxruntime/quantization/quantize.py": "onnxruntime/quantization/*",
    "onnxruntime/tools/ort_format_model/__init__.py": "onnxruntime/tools/*",
    "onnxruntime/backend/backend.py": "onnxruntime/backend/*",
    "onnxruntime/datasets/sigmoid.onnx": "onnxruntime/datasets/*",
    "google/protobuf/message.py": "google/protobuf/*",
    "google/_upb/_message.abi3.so": "google/_upb/*",
    "protobuf-7.36.2.dist-info/METADATA": "protobuf-*.dist-info/*",
    "flatbuffers/builder.py": "flatbuffers/*",
    "flatbuffers-25.12.19.dist-info/RECORD": "flatbuffers-*.dist-info/*",
    "numpy/tests/test_public_api.py": "numpy/tests/*",
    "numpy/_core/tests/test_multiarray.py": "numpy/*/tests/*",
    "numpy/f2py/tests/util.py": "numpy/*/tests/*",
    "numpy/conftest.py": "numpy/conftest.py",
    "numpy/_core/_multiarray_tests.cpython-312-x86_64-linux-gnu.so": "numpy/_core/_multiarray_tests.*",
    "numpy/_core/_operand_flag_tests.cpython-312-x86_64-linux-gnu.so": "numpy/_core/_operand_flag_tests.*",
    "numpy/_core/_rational_tests.cpython-312-x86_64-linux-gnu.so": "numpy/_core/_rational_tests.*",
    "numpy/_core/_struct_ufunc_tests.cpython-312-x86_64-linux-gnu.so": "numpy/_core/_struct_ufunc_tests.*",
    "numpy/_core/_umath_tests.cpython-312-x86_64-linux-gnu.so": "numpy/_core/_umath_tests.*",
    "numpy/_core/_simd.cpython-312-x86_64-linux-gnu.so": "numpy/_core/_simd.*",
    "numpy/f2py/crackfortran.py": "numpy/f2py/*",
    "numpy/_core/include/numpy/ndarrayobject.h": "numpy/_core/include/*",
    "numpy/_core/lib/libnpymath.a": "numpy/_core/lib/*",
    "numpy/random/_examples/cython/extending.pyx": "numpy/random/_examples/*",
    "numpy/_pyinstaller/hook-numpy.py": "numpy/_pyinstaller/*",
    "numpy/random/bit_generator.pxd": "*.pxd",
    "numpy/__init__.pyi": "*.pyi",
    "msgspec/py.typed": "*/py.typed",
    "botocore/data/s3/2006-03-01/service-2.json.gz": "botocore/*",
    "botocore-1.44.8.dist-info/METADATA": "botocore-*.dist-info/*",
    "dateutil/tz/tz.py": "dateutil/*",
    "python_dateutil-2.9.0.post0.dist-info/METADATA": "python_dateutil-*.dist-info/*",
    "six.py": "six.py",
    "six-1.17.0.dist-info/METADATA": "six-*.dist-info/*",
    "urllib3/connectionpool.py": "urllib3/*",
    "urllib3-2.8.0.dist-info/METADATA": "urllib3-*.dist-info/*",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui-bundle.min.js": (
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.*"
    ),
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui.min.css": (
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.*"
    ),
}
# What the functions load, near what the rules remove, and the app's own code whatever its name.
KEPT = [
    "app.py",
    "chalice/app.py",
    "chalicelib/__init__.py",
    "chalicelib/tests/fixture.pyi",
    "chalicelib/console/static/chart.umd.min.js",
    "onnxruntime/__init__.py",
    "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-x86_64-linux-gnu.so",
    "onnxruntime/capi/libonnxruntime_providers_shared.so",
    "onnxruntime/capi/onnxruntime_inference_collection.py",
    "onnxruntime/LICENSE",
    "onnxruntime/ThirdPartyNotices.txt",
    "numpy/__init__.py",
    "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
    "numpy/testing/__init__.py",
    "numpy/typing/__init__.py",
    "numpy/random/_generator.cpython-312-x86_64-linux-gnu.so",
    "numpy.libs/libscipy_openblas64_-4b78795a.so",
    "numpy-2.5.5.dist-info/METADATA",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/html.py",
    "aws_lambda_powertools/utilities/idempotency/__init__.py",
    "msgspec/_core.cpython-312-x86_64-linux-gnu.so",
    "typing_extensions.py",
    "aws_xray_sdk/core/recorder.py",
    "wrapt/__init__.py",
    "jmespath/parser.py",
]


def _zip(path: Path, names: list[str]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i, name in enumerate(names):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 2, 3, 4, 5))
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            z.writestr(info, f"{name}\n".encode() * (i + 1), compress_type=zipfile.ZIP_DEFLATED)


def test_every_rule_is_exercised_here():
    assert {rule.pattern for rule in RULES} == set(REMOVED.values())


@pytest.mark.parametrize("name", sorted(REMOVED))
def test_a_file_a_rule_names_is_removed_by_that_rule(name):
    rule = rule_for(name)
    assert rule is not None and rule.pattern == REMOVED[name]


@pytest.mark.parametrize("name", KEPT)
def test_a_file_the_functions_load_or_the_app_s_own_code_is_kept(name):
    assert rule_for(name) is None


def test_prune_zip_removes_exactly_the_named_entries_and_keeps_the_others_byte_for_byte(tmp_path):
    before = tmp_path / "before.zip"
    names = sorted(REMOVED) + KEPT
    _zip(before, names)
    after = tmp_path / "after.zip"
    after.write_bytes(before.read_bytes())
    removed = prune_zip(after)
    assert {n for entry in removed.values() for n in entry["entries"]} == set(REMOVED)
    for pattern, entry in removed.items():
        assert all(REMOVED[n] == pattern for n in entry["entries"])
    with zipfile.ZipFile(before) as old, zipfile.ZipFile(after) as new:
        assert new.namelist() == [n for n in old.namelist() if n not in REMOVED]
        for info in new.infolist():
            original = old.getinfo(info.filename)
            assert new.read(info) == old.read(original)
            assert (info.date_time, info.external_attr, info.CRC) == (
                original.date_time,
                original.external_attr,
                original.CRC,
            )
        assert sum(e["bytes"] for e in removed.values()) == sum(old.getinfo(n).file_size for n in REMOVED)


def test_prune_zip_leaves_a_pruned_zip_as_it_is(tmp_path):
    path = tmp_path / "pruned.zip"
    _zip(path, KEPT)
    content = path.read_bytes()
    assert prune_zip(path) == {}
    assert path.read_bytes() == content
