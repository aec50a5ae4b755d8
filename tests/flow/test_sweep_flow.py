"""The hourly sweep on the local cloud (moto server, the event runtime, IAM as deployed): a file put
outside incoming/, which no notification announces, is recorded by ``sweep_uploads`` (run as the
app's scheduled handler, as its own role) as ``ignored`` with the reason, and shows over the API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3

from chalicelib.adapters import aws
from chalicelib.ingest import upload_id_for
from chalicelib.settings import Settings
from tests.support import GOOD


def _get(cloud: Any, path: str) -> Any:
    with urllib.request.urlopen(cloud.api_url + path, timeout=30) as response:
        return json.loads(response.read())


def test_a_file_put_outside_incoming_is_recorded_ignored_by_the_sweep_and_shown_over_the_api(local_cloud):
    aws.reset_clients()
    settings = Settings.from_env()
    s3 = boto3.client("s3")
    put = s3.put_object(Bucket=settings.data_bucket, Key="sales/day1.csv", Body=GOOD)
    upload_id = upload_id_for(settings.data_bucket, "sales/day1.csv", put["ETag"].strip('"'))

    first = local_cloud.runtime.fire("sweep_uploads")
    again = local_cloud.runtime.fire("sweep_uploads")

    assert upload_id in first["upload_ids"], first
    assert (again["recorded"], again["upload_ids"]) == (0, []), again  # a second sweep records nothing new
    entry = _get(local_cloud, f"/uploads/{upload_id}")
    assert (entry["status"], entry["key"], entry["size"]) == ("ignored", "sales/day1.csv", len(GOOD))
    assert entry["problem"].startswith("not under incoming/<dataset>/: ")
    assert "dataset" not in entry  # it names none
    recent = _get(local_cloud, "/overview")["uploads"]
    assert any(u["upload_id"] == upload_id and u["status"] == "ignored" for u in recent), recent
    # The object was not moved, copied or deleted: still one version, the same bytes.
    versions = s3.list_object_versions(Bucket=settings.data_bucket, Prefix="sales/")
    assert [v["VersionId"] for v in versions.get("Versions", [])] == [put["VersionId"]]
    assert "DeleteMarkers" not in versions
    assert s3.get_object(Bucket=settings.data_bucket, Key="sales/day1.csv")["Body"].read() == GOOD
