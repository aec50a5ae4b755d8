"""The hourly retrain check on the local cloud (moto server, the event runtime, training as a child
process, IAM as deployed): a dataset whose model is past its maximum age and has new rows since is
retrained by the schedule alone, and the run is listed over the API (GET /runs)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from chalicelib.adapters import aws
from chalicelib.adapters.aws.contracts import S3ContractStore
from chalicelib.adapters.aws.runs import DynamoRunsStore
from chalicelib.settings import Settings
from chalicelib.validation import Contract
from mlops.datasets import breast_cancer_contract, breast_cancer_rows, to_csv
from tests.support import wait_until

DATASET = "breast_cancer"
FINISHED = ("succeeded", "failed")


def _get(cloud: Any, path: str) -> Any:
    with urllib.request.urlopen(cloud.api_url + path, timeout=30) as response:
        return json.loads(response.read())


def test_the_hourly_check_retrains_a_dataset_whose_model_is_past_its_maximum_age(local_cloud):
    aws.reset_clients()
    settings = Settings.from_env()
    doc = breast_cancer_contract()
    doc["training"] = {
        "model": {"family": "logistic_regression"},
        # New rows alone are too few to retrain; a model older than 30 days is retrained on them.
        "retrain": {"min_new_rows": 10_000, "max_champion_age_days": 30, "cooldown_minutes": 0},
    }
    S3ContractStore(settings.data_bucket).put(Contract.parse(doc))
    runs = DynamoRunsStore(settings.runs_table)
    header, rows = breast_cancer_rows()
    boto3.client("s3").put_object(
        Bucket=settings.data_bucket, Key=f"incoming/{DATASET}/day-41.csv", Body=to_csv(header, rows[:300])
    )
    # The upload is validated and counted by the kickoff, which does not retrain on 300 rows.
    assert wait_until(lambda: runs.state(DATASET).rows_since_training == 300), "the upload was never counted"
    assert runs.list_runs(DATASET) == []
    # The dataset's model was trained 40 days ago.
    trained = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="seconds")
    boto3.client("dynamodb").update_item(
        TableName=settings.runs_table,
        Key={"pk": {"S": f"dataset#{DATASET}"}, "sk": {"S": "state"}},
        UpdateExpression="SET last_trained_at = :at",
        ExpressionAttributeValues={":at": {"S": trained}},
    )

    outcome = local_cloud.runtime.fire("scheduled_retrain_check")[DATASET]

    assert outcome["action"] == "launch", outcome
    assert any("older than max_champion_age_days 30" in reason for reason in outcome["reasons"]), outcome
    run_id = outcome["run_id"]
    run = wait_until(lambda: (r := runs.get_run(run_id)) and r["status"] in FINISHED and r)
    assert run, f"hang: run {run_id} never finished"
    assert run["status"] == "succeeded", run
    assert run["trigger"]["kind"] == "schedule" and run["data_objects"] == 1, run
    listed = _get(local_cloud, f"/runs?dataset={DATASET}")["runs"]
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "succeeded")]
    assert _get(local_cloud, "/runs?dataset=nothing") == {"runs": []}
