"""The Lambda package, built for the deploy runtime by `chalice package`, stays within budget.

Lambda accepts at most 50 MiB zipped (direct upload) and 250 MiB unzipped; the budget keeps
headroom under both: zipped <= 40 MiB (45 until issue 19 pruned what the functions never load:
mlops.lambdazip), unzipped <= 150 MiB (MiB, as AWS counts its limits). Figures in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

MIB = 2**20
ZIPPED_BUDGET = 40 * MIB
UNZIPPED_BUDGET = 150 * MIB


@pytest.fixture(scope="module")
def built() -> Path:
    from mlops.package import package

    return package("dev")


def test_lambda_package_for_python312_x86_64_stays_within_budget(built):
    out = built
    sam = json.loads((out / "sam.json").read_text())
    runtimes = {
        r["Properties"]["Runtime"]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert runtimes == {"python3.12"}
    archive = out / "deployment.zip"
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        unzipped = sum(i.file_size for i in z.infolist())
    # Built for Lambda (manylinux x86_64 wheels), with what the functions import.
    assert any(n.startswith("onnxruntime/capi/") and n.endswith("x86_64-linux-gnu.so") for n in names)
    assert "app.py" in names and any(n.startswith("chalicelib/") for n in names)
    stale = [n for n in names if n.startswith("chalicelib/") and "__pycache__" in n]
    assert not stale, f"the package holds the working tree's bytecode: {stale[:3]}"
    zipped = archive.stat().st_size
    print(f"deployment.zip: {zipped / MIB:.1f} MiB zipped, {unzipped / MIB:.1f} MiB unzipped")
    assert zipped <= ZIPPED_BUDGET, f"{zipped / MIB:.1f} MiB zipped > {ZIPPED_BUDGET / MIB:.0f} MiB"
    assert unzipped <= UNZIPPED_BUDGET, f"{unzipped / MIB:.1f} MiB unzipped > {UNZIPPED_BUDGET / MIB:.0f} MiB"


def test_the_console_s_page_and_files_are_in_the_package(built):
    from chalicelib import console

    with zipfile.ZipFile(built / "deployment.zip") as z:
        packaged = {i.filename: i for i in z.infolist() if i.filename.startswith("chalicelib/console/")}
        for name in [console.PAGE.name, *console.ASSETS]:
            entry = packaged.get(f"chalicelib/console/static/{name}")
            assert entry is not None, f"{name} is not in the package: {sorted(packaged)}"
            assert z.read(entry) == (console.STATIC / name).read_bytes()
    zipped = sum(i.compress_size for i in packaged.values())
    print(f"the console's share of deployment.zip: {zipped / 1024:.0f} KiB zipped")
