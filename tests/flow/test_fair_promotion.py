"""Issue 14's promotion story on the local cloud (moto server, the API over HTTP, the event runtime,
training as a child process): generated store sales, uploaded as a user would.

1. Two clean days train a weak first champion (a one-split forest).
2. The contract drops ``region`` as a feature and moves to a linear model: the retrain is better and
   waits for approval, the reason naming the removed feature (it used to be rejected for good as
   "undefined": the champion could not score a holdout without that column). Approved.
3. A third day arrives with ads scaled by three, within the contract. The retrain on it is better on
   the whole holdout but worse on the rows of the days the champion was trained on: it waits for a
   person, with both slices on the version record. Approved all the same, then rolled back.
4. The next retrain rebuilds the same model from the same data and settings: rejected, the reason
   naming the rollback (version, who, when).
"""

from __future__ import annotations

from typing import Any

import boto3

from chalicelib.adapters import aws
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.aws.runs import DynamoRunsStore
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore
from chalicelib.ingest import upload_id_for
from chalicelib.settings import Settings
from mlops.datasets import sales_contract, sales_rows, to_csv
from mlops.demo import http
from tests.support import wait_until

SALES = "store_sales"
STUMP = {"family": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}


def test_feature_removal_corrupted_upload_and_a_rollback_that_sticks(local_cloud):
    aws.reset_clients()
    settings = Settings.from_env()
    api = str(local_cloud.api_url)
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    token = {role: store.create(name, role, created_by="tests")[0] for name, role in
             (("alice", "approver"), ("ops", "admin"))}  # fmt: skip
    registry = DynamoRegistry(settings.registry_table, settings.audit_table)
    runs = DynamoRunsStore(settings.runs_table)
    s3 = boto3.client("s3")

    def contract(model: dict[str, Any], version: int, **column: Any) -> None:
        doc = sales_contract(model)
        doc["version"] = version
        doc["training"]["retrain"] = {"min_new_rows": 400, "cooldown_minutes": 0, "on_drift": False}
        doc["columns"] = [{**c, **column} if c["name"] == "region" else c for c in doc["columns"]]
        status, body = http("PUT", f"{api}/datasets/{SALES}/contract", doc, token["admin"])
        assert status == 200, body

    def upload(day: int, **corruption: Any) -> str:
        key = f"incoming/{SALES}/day{day}.csv"
        data = to_csv(*sales_rows(240, start=240 * day, seed=day, **corruption))
        put = s3.put_object(Bucket=settings.data_bucket, Key=key, Body=data)
        return upload_id_for(settings.data_bucket, key, put["VersionId"])

    def judged(version: int) -> dict[str, Any]:
        """The version once judged and its run's lock released (so a new retrain may start)."""
        doc = wait_until(
            lambda: (
                (registry.version(SALES, version) or {}).get("status") not in (None, "candidate", "approved")
                and runs.state(SALES).run_in_flight is None
                and registry.version(SALES, version)
            )
        )
        assert doc, f"v{version} was never judged"
        return dict(doc)

    def retrain(reason: str) -> None:
        status, body = http("POST", f"{api}/datasets/{SALES}/retrain", {"reason": reason}, token["admin"])
        assert status == 202, body

    def change(path: str, reason: str, role: str) -> dict[str, Any]:
        status, body = http("POST", f"{api}/models/{SALES}/{path}", {"reason": reason}, token[role])
        assert status == 200, body
        return dict(body)

    # 1. Two clean days (480 rows >= min_new_rows 400): the first champion.
    contract(STUMP, 1)
    days = [upload(0), upload(1)]
    assert judged(1)["status"] == "champion"
    assert sorted(registry.version(SALES, 1)["trained_on"]) == sorted(days)

    # 2. region is no feature any more, and the model linear: better, waits, the removal named.
    contract({"family": "linear_regression"}, 2, feature=False)
    retrain("drop region, go linear")
    v2 = judged(2)
    assert v2["status"] == "pending_approval", v2["gates"]["reason"]
    assert "feature region removed" in v2["gates"]["reason"] and "undefined" not in v2["gates"]["reason"]
    change("versions/2/approve", "told the callers", "approver")

    # 3. A corrupted day within the contract: not auto-promoted; both slices on the record.
    corrupted = upload(2, ads_factor=3.0)
    wait_until(lambda: runs.state(SALES).rows_since_training >= 240)  # validated and counted
    retrain("new day")
    v3 = judged(3)
    gates = v3["gates"]
    assert v3["status"] == "pending_approval" and "earlier_slice" in gates["reason"], gates["reason"]
    assert {u["upload"] for u in gates["slices"]["new"]["uploads"]} == {corrupted}
    assert {u["upload"] for u in gates["slices"]["earlier"]["uploads"]} == set(days)
    earlier = gates["slices"]["earlier"]["metrics"]
    assert earlier["candidate"]["rmse"] > earlier["champion"]["rmse"]
    assert gates["metrics"]["candidate"]["rmse"] < gates["metrics"]["champion"]["rmse"]
    change("versions/3/approve", "the ads team says it is fine", "approver")
    rolled = change("rollback", "units forecasts went wrong", "admin")
    assert rolled["champion"] == 2

    # 4. The same data and settings again: the rebuild is rejected, naming the rollback.
    retrain("try again")
    v4 = judged(4)
    reason = v4["gates"]["reason"]
    assert v4["status"] == "rejected" and registry.champion(SALES) == 2
    assert "v3" in reason and "rolled back" in reason and "ops (admin)" in reason
    assert v4["fingerprint"] == registry.version(SALES, 3)["fingerprint"]
