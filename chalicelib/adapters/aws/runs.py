"""The runs store on DynamoDB: one table (``pk``/``sk``) holding

* ``dataset#<name>`` / ``state``: the dataset's retrain state and single-flight lock
  (``chalicelib.training.runs`` describes the document);
* ``dataset#<name>`` / ``upload#<id>``: an announced upload, counted once however often it is
  announced;
* ``run#<id>`` / ``run``: a run: status, reasons, trigger, data manifest, job, attempts, result.

Every write is one conditional DynamoDB request, so concurrent kickoffs need no other coordination.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.aws.dynamo import condition_failed, from_item, to_item, to_value
from chalicelib.timeutil import now_iso
from chalicelib.training.exceptions import NoRun, RunExists
from chalicelib.training.policy import DatasetState, Trigger
from chalicelib.training.runs import coalesced_entry, dataset_state, lock_expiry


def _state_key(dataset: str) -> dict[str, Any]:
    return {"pk": {"S": f"dataset#{dataset}"}, "sk": {"S": "state"}}


def _run_key(run_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"run#{run_id}"}, "sk": {"S": "run"}}


def _run(item: dict[str, Any]) -> dict[str, Any]:
    doc = from_item(item)
    doc.pop("pk"), doc.pop("sk")
    return doc


class DynamoRunsStore:
    def __init__(self, table: str) -> None:
        self.table = table

    @property
    def _db(self) -> Any:
        return aws.client("dynamodb")

    def _state_doc(self, dataset: str) -> dict[str, Any] | None:
        item = self._db.get_item(TableName=self.table, Key=_state_key(dataset), ConsistentRead=True).get(
            "Item"
        )
        return from_item(item) if item else None

    # --- dataset state --------------------------------------------------------------------------

    def count_upload(self, trigger: Trigger) -> bool:
        upload = {
            "pk": f"dataset#{trigger.dataset}",
            "sk": f"upload#{trigger.upload_id}",
            "rows": trigger.rows,
            "at": now_iso("seconds"),
        }
        try:
            self._db.put_item(
                TableName=self.table, Item=to_item(upload), ConditionExpression="attribute_not_exists(pk)"
            )
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise
        update = "ADD rows_since_training :rows"
        values: dict[str, Any] = {":rows": {"N": str(trigger.rows)}}
        if trigger.drift:
            update += " SET drift_pending = :true"
            values[":true"] = {"BOOL": True}
        self._db.update_item(
            TableName=self.table,
            Key=_state_key(trigger.dataset),
            UpdateExpression=update,
            ExpressionAttributeValues=values,
        )
        return True

    def state(self, dataset: str, now: datetime | None = None) -> DatasetState:
        return dataset_state(self._state_doc(dataset), now or datetime.now(UTC))

    def coalesced(self, dataset: str) -> list[dict[str, Any]]:
        return list((self._state_doc(dataset) or {}).get("coalesced", []))

    def try_lock(self, dataset: str, run_id: str, now: datetime, seen: DatasetState | None = None) -> bool:
        # The condition is chalicelib.training.runs.lock_is_free, evaluated atomically by DynamoDB,
        # and, given what the decision read, that no upload was counted since.
        condition = "(attribute_not_exists(lock_run_id) OR lock_expires_at < :epoch)"
        values: dict[str, Any] = {
            ":run": {"S": run_id},
            ":expires": {"N": str(lock_expiry(now))},
            ":now": {"S": now.isoformat(timespec="seconds")},
            ":zero": {"N": "0"},
            ":false": {"BOOL": False},
            ":empty": {"L": []},
            ":epoch": {"N": str(int(now.timestamp()))},
        }
        if seen is not None:
            if seen.rows_since_training:
                condition += " AND rows_since_training = :seen_rows"
                values[":seen_rows"] = {"N": str(seen.rows_since_training)}
            else:
                condition += " AND (attribute_not_exists(rows_since_training) OR rows_since_training = :zero)"
            if seen.drift_pending:
                condition += " AND drift_pending = :true"
                values[":true"] = {"BOOL": True}
            else:
                condition += " AND (attribute_not_exists(drift_pending) OR drift_pending = :false)"
        try:
            self._db.update_item(
                TableName=self.table,
                Key=_state_key(dataset),
                UpdateExpression=(
                    "SET lock_run_id = :run, lock_expires_at = :expires, last_run_started_at = :now, "
                    "rows_since_training = :zero, drift_pending = :false, coalesced = :empty"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def coalesce(self, dataset: str, trigger: Trigger, run_id: str | None) -> None:
        entry = coalesced_entry(trigger, run_id, now_iso("seconds"))
        self._db.update_item(
            TableName=self.table,
            Key=_state_key(dataset),
            UpdateExpression="SET coalesced = list_append(if_not_exists(coalesced, :empty), :entry)",
            ExpressionAttributeValues={":entry": to_value([entry]), ":empty": {"L": []}},
        )

    def release(self, dataset: str, run_id: str, succeeded: bool, now: datetime) -> list[dict[str, Any]]:
        coalesced = self.coalesced(dataset)
        update = "REMOVE lock_run_id, lock_expires_at"
        values: dict[str, Any] = {":run": {"S": run_id}}
        if succeeded:
            update += " SET last_trained_at = :now"
            values[":now"] = {"S": now.isoformat(timespec="seconds")}
        try:
            self._db.update_item(
                TableName=self.table,
                Key=_state_key(dataset),
                UpdateExpression=update,
                ConditionExpression="lock_run_id = :run",
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not condition_failed(exc):
                raise
        return coalesced

    # --- runs -----------------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item({"pk": f"run#{run['run_id']}", "sk": "run", **run}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if condition_failed(exc):
                raise RunExists(f"run {run['run_id']!r} is already recorded") from exc
            raise

    def update_run(self, run_id: str, **fields: Any) -> None:
        try:
            self._db.update_item(
                TableName=self.table,
                Key=_run_key(run_id),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ExpressionAttributeNames={f"#f{i}": k for i, k in enumerate(fields)},
                ExpressionAttributeValues={f":v{i}": to_value(v) for i, v in enumerate(fields.values())},
                ConditionExpression="attribute_exists(pk)",
            )
        except Exception as exc:
            if condition_failed(exc):
                raise NoRun(f"no run with id {run_id!r}") from exc
            raise

    def add_attempt(self, run_id: str) -> int:
        try:
            response = self._db.update_item(
                TableName=self.table,
                Key=_run_key(run_id),
                UpdateExpression="ADD attempts :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="UPDATED_NEW",
            )
        except Exception as exc:
            if condition_failed(exc):
                raise NoRun(f"no run with id {run_id!r}") from exc
            raise
        return int(response["Attributes"]["attempts"]["N"])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(TableName=self.table, Key=_run_key(run_id), ConsistentRead=True).get("Item")
        return _run(item) if item else None

    def list_runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        runs = []
        for page in self._db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                if item["pk"]["S"].startswith("run#"):
                    run = _run(item)
                    if dataset is None or run.get("dataset") == dataset:
                        runs.append(run)
        return sorted(runs, key=lambda r: str(r.get("created_at", "")))
