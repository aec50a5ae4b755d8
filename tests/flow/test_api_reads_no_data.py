"""The API function reads no validated data (PII included), under the local cloud's enforced IAM.

Issue 15 (item 5): the API role had ``s3:GetObject`` on ``validated/*`` because a retrain request
(``POST /datasets/{name}/retrain``, and the retrain a revocation asks for) pinned the data snapshot
by reading each validated object's metadata (a HEAD is authorised as ``s3:GetObject``). The API now
pins it from the listing and the uploads ledger; only the functions that must read validated data
(the kickoff, the batch planner) and the jobs may.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.aws.snapshots import S3SnapshotStore
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore
from chalicelib.ingest import upload_id_for
from chalicelib.training.snapshot import build_manifest
from mlops import localiam
from mlops.datasets import sales_contract, sales_rows, to_csv
from mlops.demo import http
from tests.support import wait_until

DATASET = "no_reads_sales"  # the local cloud's state outlives a module: a dataset of its own
STUMP = {"family": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}


@pytest.fixture(scope="module")
def validated(local_cloud) -> dict[str, Any]:
    """A contract (no run starts by itself) and one valid upload, recorded: its validated copy."""
    aws.reset_clients()
    settings = bootstrap.settings()
    token, _ = TokenStore(SsmTokenRecords.for_settings(settings)).create(
        "ops", "admin", created_by="tests", replace=True
    )
    api = str(local_cloud.api_url)
    contract = sales_contract(STUMP)
    contract["dataset"] = DATASET
    contract["training"]["retrain"] = {"min_new_rows": 100_000, "cooldown_minutes": 0}
    status, body = http("PUT", f"{api}/datasets/{DATASET}/contract", contract, token)
    assert status == 200, body
    key = f"incoming/{DATASET}/day0.csv"
    put = aws.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=to_csv(*sales_rows(60)))
    upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
    entry = wait_until(
        lambda: (lambda s, b: b if s == 200 else None)(*http("GET", f"{api}/uploads/{upload_id}"))
    )
    assert entry and entry["status"] == "valid", entry
    return {"api": api, "token": token, "upload_id": upload_id, "key": entry["output_key"]}


def _api_calls_on_validated_objects(local_cloud) -> list[str]:
    prefix = f"arn:aws:s3:::{bootstrap.settings().data_bucket}/validated/"
    return sorted(
        f"{c['operation']} {c['action']} {c['resource']}"
        for c in local_cloud.iam.export()
        if c["principal"] == "api_handler" and c["resource"].startswith(prefix) and not c["expected_refusal"]
    )


def test_the_api_role_is_refused_reading_a_validated_object(local_cloud, validated):
    settings = bootstrap.settings()
    s3 = aws.client("s3")
    version = s3.head_object(Bucket=settings.data_bucket, Key=validated["key"])["VersionId"]
    reads = {
        "get": {"op": "get_object"},
        "get the version": {"op": "get_object", "VersionId": version},
        "head": {"op": "head_object"},
        "head the version": {"op": "head_object", "VersionId": version},
    }
    for what, call in reads.items():
        args = {"Bucket": settings.data_bucket, "Key": validated["key"], **call}
        op = str(args.pop("op"))
        with (
            localiam.acting_as("api_handler"),
            localiam.expect_refusal(),
            pytest.raises(ClientError) as refused,
        ):
            getattr(aws.client("s3"), op)(**args)
        assert refused.value.response["Error"]["Code"] in {"AccessDenied", "403"}, what
    # The kickoff, which pins the data of the runs it starts itself, may.
    with localiam.acting_as("kickoff_retraining"):
        assert s3.head_object(Bucket=settings.data_bucket, Key=validated["key"])["VersionId"] == version


def test_a_retrain_request_over_the_api_pins_the_same_data_as_the_kickoff_without_reading_it(
    local_cloud, validated
):
    status, outcome = http(
        "POST",
        f"{validated['api']}/datasets/{DATASET}/retrain",
        {"reason": "relabelled"},
        validated["token"],
    )
    assert status == 202 and outcome["action"] == "launch", outcome
    run = bootstrap.runs_store().get_run(outcome["run_id"])
    assert run is not None
    settings = bootstrap.settings()
    # What the kickoff (reading each object's metadata) pins for the same data.
    expected = build_manifest(DATASET, S3SnapshotStore(settings.data_bucket).validated_objects(DATASET))
    assert expected is not None
    pinned = S3SnapshotStore(settings.data_bucket).get_manifest(run["data_manifest_key"])
    assert pinned is not None and pinned["objects"] == expected["objects"], (pinned, expected)
    assert run["data_hash"] == expected["data_hash"]
    assert [o["upload_id"] for o in pinned["objects"]] == [validated["upload_id"]]
    # ...and the API touched no validated object to do it (a listing is no read).
    assert _api_calls_on_validated_objects(local_cloud) == []
