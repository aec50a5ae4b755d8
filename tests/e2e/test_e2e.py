"""End to end, as a newcomer runs it: `mlops up` in one process, the AWS CLI and `mlops status` in
others, and `mlops demo`. Slow (they start processes), and part of `make test` all the same."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import MlopsUp, clean_env, up_env

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mlops_up_accepts_an_aws_cli_upload_and_records_it(tmp_path):
    up = MlopsUp(up_env(tmp_path / "state"))
    env, port = up.env, up.port
    try:
        banner = up.wait_banner()
        assert "local cloud (stage local) is up" in banner, banner
        assert f"--endpoint-url http://127.0.0.1:{port} s3 cp" in banner

        # Another shell: the exports `mlops env` prints, then the AWS CLI.
        exports = subprocess.run(
            [str(BIN / "mlops"), "env"], cwd=PROJECT, env=env, capture_output=True, text=True, check=True
        )
        cli_env = dict(env)
        for line in exports.stdout.splitlines():
            key, value = line.removeprefix("export ").split("=", 1)
            cli_env[key] = value
        contract = tmp_path / "contract.json"
        contract.write_text(
            json.dumps(
                {
                    "dataset": "e2e",
                    "columns": [
                        {"name": "x", "type": "float", "classification": "public"},
                        {"name": "y", "type": "integer", "classification": "public", "allowed": [0, 1]},
                    ],
                    "target": "y",
                    "task": "classification",
                }
            )
        )
        put = subprocess.run(
            [str(BIN / "mlops"), "contract", "put", str(contract)],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert put.returncode == 0 and "stored the contract of 'e2e'" in put.stdout, put.stdout + put.stderr
        data = tmp_path / "day1.csv"
        data.write_text("x,y\n1.5,1\n2.5,0\n")
        subprocess.run(
            [
                str(BIN / "aws"),
                "s3",
                "cp",
                str(data),
                "s3://serverless-mlops-local-data/incoming/e2e/day1.csv",
            ],
            env=cli_env,
            check=True,
            capture_output=True,
        )
        status = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = subprocess.run(
                [str(BIN / "mlops"), "status"], cwd=PROJECT, env=env, capture_output=True, text=True
            ).stdout
            if "incoming/e2e/day1.csv" in status:
                break
            time.sleep(0.3)
        assert " valid " in status and "s3://serverless-mlops-local-data/incoming/e2e/day1.csv" in status, (
            status
        )

        # A token, then the registry over the HTTP API as a person uses it.
        created = subprocess.run(
            [str(BIN / "mlops"), "tokens", "create", "alice", "--role", "approver"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert created.returncode == 0 and "cannot be shown again" in created.stderr, created.stderr
        token = created.stdout.strip()
        models = subprocess.run(
            [str(BIN / "mlops"), "models", "list"], cwd=PROJECT, env=env, capture_output=True, text=True
        )
        assert models.returncode == 0 and "pending approval" in models.stdout, models.stderr
        rollback = [str(BIN / "mlops"), "models", "rollback", "e2e", "--reason", "test"]
        anonymous = subprocess.run(rollback, cwd=PROJECT, env=env, capture_output=True, text=True)
        assert anonymous.returncode == 1 and "401" in anonymous.stderr, anonymous.stderr
        authed = subprocess.run(
            rollback, cwd=PROJECT, env={**env, "MLOPS_TOKEN": token}, capture_output=True, text=True
        )
        assert authed.returncode == 1 and "404" in authed.stderr and "no model" in authed.stderr, (
            authed.stderr
        )
    finally:
        code, _ = up.ctrl_c()
        if code is None:
            up.kill()
    assert code == 0, up.output
    assert "stopping the local cloud" in up.output


@pytest.mark.slow
def test_demo_runs_every_step_and_exits_zero():
    result = subprocess.run(
        [str(BIN / "mlops"), "demo"],
        cwd=PROJECT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard only: the demo's steps wait on records, and a busy machine is slow
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DEMO OK" in result.stdout
    assert "[FAIL]" not in result.stdout
    # The demo walks every path of the system under enforced IAM: its record joins the suite's,
    # which `make test` checks statement by statement (mlops iam-report).
    import shutil

    from tests.conftest import IAM_RECORD

    shutil.copytree(PROJECT / ".mlops" / "demo-iam", IAM_RECORD / "demo", dirs_exist_ok=True)
