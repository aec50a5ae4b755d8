"""Flow (issue 19): a large upload on the local cloud, IAM enforced, is split into shards that go
through the ingest queue to the same function, each delivered twice; the last one merges, and the
upload is recorded once with the one-pass report."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.aws.uploads_ledger import DynamoUploadLedger
from chalicelib.ingest import upload_id_for
from chalicelib.validation import Contract, validate_stream
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.support import wait_until

SPLIT_BYTES, SHARD_BYTES = 32 * 1024, 16 * 1024


@pytest.fixture(scope="module")
def small_shards() -> Iterator[None]:
    """The ingest function splits uploads of 32 KiB and more (read when its ports are first built)."""
    import os

    os.environ["MLOPS_VALIDATION_SPLIT_BYTES"] = str(SPLIT_BYTES)
    os.environ["MLOPS_VALIDATION_SHARD_BYTES"] = str(SHARD_BYTES)
    yield
    os.environ.pop("MLOPS_VALIDATION_SPLIT_BYTES", None)
    os.environ.pop("MLOPS_VALIDATION_SHARD_BYTES", None)


@pytest.fixture
def pieces_sent_twice(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every piece message the ingest function sends goes to the queue twice (a redelivery of each)."""
    from chalicelib.adapters.aws.queues import SqsQueue

    sent: list[dict[str, Any]] = []
    send = SqsQueue.send

    def twice(self: SqsQueue, body: dict[str, Any]) -> None:
        send(self, body)
        if "validation_shard" in body:
            sent.append(body)
            send(self, body)

    monkeypatch.setattr(SqsQueue, "send", twice)
    return sent


def deterministic(report: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "status",
        "dataset",
        "contract_version",
        "rows",
        "columns",
        "compression",
        "duplicate_rows",
        "issues",
    )
    statistics = {
        name: {k: v for k, v in stats.items() if k not in ("mean", "std")}
        for name, stats in report["column_statistics"].items()
    }
    return {**{k: report[k] for k in keep}, "column_statistics": statistics}


def test_a_split_upload_with_every_piece_delivered_twice_is_recorded_once_as_one_pass_reports_it(
    small_shards: None, local_cloud: Any, pieces_sent_twice: list[dict[str, Any]]
) -> None:
    from chalicelib.adapters.aws.contracts import S3ContractStore
    from chalicelib.settings import Settings

    settings = Settings.from_env()
    contract = Contract.parse(breast_cancer_contract())
    S3ContractStore(settings.data_bucket).put(contract)
    header, rows = breast_cancer_rows()
    data = to_csv(header, rows)
    assert len(data) >= 3 * SPLIT_BYTES
    s3 = boto3.client("s3")
    ledger = DynamoUploadLedger(settings.uploads_table)
    before = len(ledger.scan())
    key = "incoming/breast_cancer/all-patients.csv"
    put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=data)
    upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
    entry = wait_until(lambda: ledger.get(upload_id))
    assert entry is not None, "the split upload was never recorded"
    assert entry.status == "valid" and entry.rows == len(rows)
    shards = {p["validation_shard"]["index"] for p in pieces_sent_twice}
    assert len(shards) >= 4, "the upload was not split"
    report = json.loads(s3.get_object(Bucket=settings.data_bucket, Key=entry.report_key)["Body"].read())
    assert report["shards"]["count"] == len(shards) - 1  # the last piece hashes the upload
    one = validate_stream(io.BytesIO(data), contract)
    from chalicelib.validation import privacy

    theirs = privacy.mask_report(one.report, contract)
    assert deterministic(report) == deterministic(theirs)
    for name, stats in theirs["column_statistics"].items():
        if stats.get("mean") is not None:
            assert math.isclose(report["column_statistics"][name]["mean"], stats["mean"], rel_tol=1e-12)
    # Every piece's two deliveries were handled, none failed for good; the upload is one entry.
    invocations = lambda: [i for i in local_cloud.runtime.invocations if i.handler_name == "ingest_upload"]  # noqa: E731
    assert wait_until(lambda: len(invocations()) >= 1 + 2 * len(shards))
    assert len(ledger.scan()) == before + 1
    assert entry.sha256 is not None
    validated = s3.get_object(Bucket=settings.data_bucket, Key=entry.output_key)["Body"].read()
    assert validated == data
