"""The capture pipeline on the local cloud, as on AWS: what the API function prints to stdout reaches
its log group, the subscription filter the post-deploy step put sends the capture lines to the
stage's Firehose stream, and the stream writes them under ``capture/live/`` in the data bucket (moto:
gzip CloudWatch Logs envelopes, decoded here). Only capture lines travel; other printed lines stay
in the function's output, and what no function printed goes nowhere. Runs under the local IAM: delivery is Lambda's work, and none of it is
refused."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections import Counter
from typing import Any

import boto3

from chalicelib.settings import Settings
from mlops import policies
from mlops.postdeploy import CAPTURE_FILTER, CAPTURE_PATTERN
from tests.support import wait_until

LIVE = "capture/live/"


def _capture_line(model: str, request_id: str, records: int = 2) -> str:
    """A capture line as the API function prints it (design16.md, "The capture line")."""
    line = {
        "mlops_capture": 1,
        "records": [
            {
                "request_id": request_id,
                "index": i,
                "row_id": None,
                "model": model,
                "version": 3,
                "role": "champion",
                "time": "2026-12-01T10:00:00.123Z",
                "latency_ms": 3.2,
                "status": "ok",
                "problems": [],
                "inputs": {"mean_radius": 14.1 + i, "city": "h:9f0c"},
                "prediction": "benign",
                "probabilities": {"benign": 0.9, "malignant": 0.1},
                "job_id": None,
            }
            for i in range(records)
        ],
    }
    return json.dumps(line, separators=(",", ":"))


def _print_as_api_function(cloud: Any, lines: list[str]) -> None:
    """Print on a thread of its own running as the API function, as the local API runs a request."""

    def run() -> None:
        with cloud.function_context("api_handler"):
            for line in lines:
                print(line)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def _delivered(s3: Any, bucket: str) -> Counter[tuple[str, str]]:
    """Every (log group, message) in the CloudWatch Logs envelopes under capture/live/."""
    messages: Counter[tuple[str, str]] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LIVE):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            # One object per delivery; a delivery is one gzip member (an envelope) or several.
            for envelope in gzip.decompress(body).decode().replace("}{", "}\n{").splitlines():
                data = json.loads(envelope)
                assert data["messageType"] == "DATA_MESSAGE", data
                messages.update((data["logGroup"], e["message"]) for e in data["logEvents"])
    return messages


def test_printed_capture_lines_reach_s3_through_logs_and_firehose_and_nothing_else_does(local_cloud):
    settings = Settings.from_env()
    s3 = boto3.client("s3")
    logs = boto3.client("logs")
    api_function = policies.function_name(settings, "api_handler")
    (subscription,) = logs.describe_subscription_filters(logGroupName=f"/aws/lambda/{api_function}")[
        "subscriptionFilters"
    ]
    assert (subscription["filterName"], subscription["filterPattern"]) == (CAPTURE_FILTER, CAPTURE_PATTERN)
    assert subscription["destinationArn"].endswith(
        f":deliverystream/{settings.prefix}-{settings.stage}-capture"
    )

    run = uuid.uuid4().hex
    captured = [_capture_line("churn", f"{run}{i:02d}", records=1 + i % 3) for i in range(12)]
    others = [
        json.dumps({"level": "INFO", "message": "scored", "run": run}),  # a log line, no marker
        json.dumps({"mlops_capture": 0, "run": run}),  # the marker, not set: the filter drops it
        f"plain text naming mlops_capture {run}",
    ]
    print(_capture_line("churn", f"{run}-not-a-function"))  # the test prints it: no function did
    _print_as_api_function(local_cloud, captured[:6] + others)
    _print_as_api_function(local_cloud, captured[6:])

    def arrived() -> Counter[tuple[str, str]]:
        found = _delivered(s3, settings.data_bucket)
        return Counter({m: n for m, n in found.items() if run in m[1]})

    # Each line once, from the API function's log group; none of the others.
    wanted = Counter((f"/aws/lambda/{api_function}", line) for line in captured)
    assert wait_until(lambda: arrived() == wanted, timeout_s=60), arrived()
    assert not local_cloud.log_shipper.errors, local_cloud.log_shipper.errors
    refused = [c for c in local_cloud.iam_calls() if not c["allowed"] and not c["expected_refusal"]]
    assert refused == [], refused
