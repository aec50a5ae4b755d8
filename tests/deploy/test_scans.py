"""The scans a security team runs before letting this in: cfn-lint, checkov, parliament.

checkov and parliament run from their own virtual environment (``.venv-scan``, ``make scan-venv``;
checkov pins an old boto3). The packaged SAM template comes from ``mlops.package`` (cached in
build/package while its inputs are unchanged). checkov can exit 0 with a parsing error and nothing
scanned, so the gates are: 0 failed, 0 parsing errors, at least the expected resources scanned,
and every skip attached to a resource with a written reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops import PROJECT_DIR, TEMPLATE
from mlops.cfn import COST_PROFILES, for_parameters, load_template
from mlops.policies import rendered

SCAN_BIN = PROJECT_DIR / ".venv-scan" / "bin"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def scanners() -> Path:
    if not (SCAN_BIN / "checkov").exists() or not (SCAN_BIN / "parliament").exists():
        subprocess.run(["make", "-s", "scan-venv"], cwd=PROJECT_DIR, check=True)
    return SCAN_BIN


@pytest.fixture(scope="module")
def packaged() -> Path:
    from mlops.package import package

    return package("dev")


def _checkov(scanners: Path, template: Path) -> dict:
    out = subprocess.run(
        [str(scanners / "checkov"), "-f", str(template), "--framework", "cloudformation", "--quiet",
         "--compact", "--skip-download", "-o", "json"],
        capture_output=True, text=True, cwd=PROJECT_DIR,
    )  # fmt: skip
    report = json.loads(out.stdout)
    return report[0] if isinstance(report, list) else report


def _skips_have_reasons(template: dict) -> list[tuple[str, str]]:
    skips = []
    for logical, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) >= 30, f"{logical}: skip {skip['id']} needs a reason"
            skips.append((logical, skip["id"]))
    return skips


def test_cfn_lint_passes_on_every_template(packaged):
    templates = [
        TEMPLATE,
        *(packaged / n for n in ("sam.json", "monitoring.json", "apigateway-account.json")),
    ]
    result = subprocess.run([str(CFN_LINT), *map(str, templates)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_passes_on_the_data_plane(scanners):
    summary = _checkov(scanners, TEMPLATE)["summary"]
    template = load_template()
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, _checkov(scanners, TEMPLATE)["results"]["failed_checks"]
    assert summary["resource_count"] >= len(template["Resources"]) - 5  # checkov skips a few types
    assert summary["skipped"] == len(_skips_have_reasons(template))


@pytest.mark.parametrize("profile", COST_PROFILES)
def test_cfn_lint_and_checkov_pass_on_the_data_plane_of_each_cost_profile(scanners, tmp_path, profile):
    """The scans above read the template with both branches of every condition; this is what each
    cost profile creates (the dev one: no interface endpoints, public IPs, an internet route)."""
    template = for_parameters(load_template(), {"Stage": "dev", "CostProfile": profile})
    path = tmp_path / f"data-plane-{profile}.json"
    path.write_text(json.dumps(template))
    # W2001: CostProfile, used by the conditions this resolution took away.
    lint = subprocess.run(
        [str(CFN_LINT), str(path), "--ignore-checks", "W2001"], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    report = _checkov(scanners, path)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["failed"] == 0, report["results"]["failed_checks"]
    assert report["summary"]["resource_count"] >= len(template["Resources"]) - 5
    assert report["summary"]["skipped"] == len(_skips_have_reasons(template))


def test_checkov_passes_on_the_packaged_sam_template(scanners, packaged):
    report = _checkov(scanners, packaged / "sam.json")
    summary = report["summary"]
    template = json.loads((packaged / "sam.json").read_text())
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, report["results"]["failed_checks"]
    functions = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    assert summary["resource_count"] >= 3 * len(functions)  # function, role, log group each
    assert summary["skipped"] == len(_skips_have_reasons(template))


def test_checkov_passes_on_the_api_gateway_account_template(scanners, packaged):
    report = _checkov(scanners, packaged / "apigateway-account.json")
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= 1
    assert summary["failed"] == 0, report["results"]["failed_checks"]


def test_parliament_finds_nothing_in_any_policy_file(scanners):
    files = sorted(rendered())
    assert files and all(f.exists() for f in files)
    out = subprocess.run(
        [str(scanners / "parliament"), "--files", ",".join(map(str, files))], capture_output=True, text=True
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout


def test_parliament_finds_nothing_in_the_policies_as_make_deploy_scopes_them(scanners, tmp_path):
    """What `make deploy` hands `chalice deploy`: every ARN in the account and region deployed to."""
    from mlops import policies

    files = []
    for stage in policies.DEPLOYED_STAGES:
        for function in policies.FUNCTIONS:
            document = policies.render(
                stage, function, tracing=policies.tracing(stage), account="111122223333", region="eu-west-1"
            )
            path = tmp_path / policies.policy_file(stage, function)
            path.write_text(json.dumps(document))
            files.append(path)
    out = subprocess.run(
        [str(scanners / "parliament"), "--files", ",".join(map(str, files))], capture_output=True, text=True
    )
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout
