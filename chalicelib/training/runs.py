"""The runs table: each dataset's retrain state and lock, and the record of every training run.

Items (one table, ``pk``/``sk``):

* ``dataset#<name>`` / ``state``: rows since the last training, drift pending, last run times, the
  single-flight lock (``lock_run_id`` with an expiry) and the triggers coalesced while it is held;
* ``dataset#<name>`` / ``upload#<id>``: an announced upload, counted once however often it is
  announced;
* ``run#<id>`` / ``run``: a run: status, reasons, triggers, data manifest, backend, attempts, result.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.training.policy import DatasetState, Trigger

LOCK_SECONDS = 4 * 3600  # longer than a job's 3 attempts of one hour: a dead run frees the lock later

_ser = TypeSerializer()
_des = TypeDeserializer()


def _item(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_storable(v)) for k, v in doc.items() if v is not None}


def _storable(value: Any) -> Any:
    """DynamoDB takes Decimal, not float, and no NaN: convert on the way in."""
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    return value


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _number(_des.deserialize(v)) for k, v in item.items()}


def _number(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: plain int/float for JSON and arithmetic."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    return value


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    }


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunsStore:
    def __init__(self, table: str) -> None:
        self.table = table

    @property
    def _db(self) -> Any:
        return aws.client("dynamodb")

    def _state_key(self, dataset: str) -> dict[str, Any]:
        return {"pk": {"S": f"dataset#{dataset}"}, "sk": {"S": "state"}}

    # --- dataset state --------------------------------------------------------------------------

    def count_upload(self, trigger: Trigger) -> bool:
        """Add an announced upload's rows to the dataset's count, once per upload. True if new."""
        try:
            self._db.put_item(
                TableName=self.table,
                Item=_item(
                    {
                        "pk": f"dataset#{trigger.dataset}",
                        "sk": f"upload#{trigger.upload_id}",
                        "rows": trigger.rows,
                        "at": now_iso(),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        update = "ADD rows_since_training :rows"
        values: dict[str, Any] = {":rows": {"N": str(trigger.rows)}}
        if trigger.drift:
            update += " SET drift_pending = :true"
            values[":true"] = {"BOOL": True}
        self._db.update_item(
            TableName=self.table,
            Key=self._state_key(trigger.dataset),
            UpdateExpression=update,
            ExpressionAttributeValues=values,
        )
        return True

    def state(self, dataset: str, now: datetime | None = None) -> DatasetState:
        item = self._db.get_item(TableName=self.table, Key=self._state_key(dataset), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return DatasetState()
        doc = _plain(item)
        moment = (now or datetime.now(UTC)).timestamp()
        locked = doc.get("lock_run_id") if float(doc.get("lock_expires_at", 0)) > moment else None
        return DatasetState(
            rows_since_training=int(doc.get("rows_since_training", 0)),
            drift_pending=bool(doc.get("drift_pending", False)),
            last_trained_at=_time(doc.get("last_trained_at")),
            last_run_started_at=_time(doc.get("last_run_started_at")),
            run_in_flight=locked,
        )

    def coalesced(self, dataset: str) -> list[dict[str, Any]]:
        item = self._db.get_item(TableName=self.table, Key=self._state_key(dataset), ConsistentRead=True).get(
            "Item"
        )
        return list(_plain(item).get("coalesced", [])) if item else []

    def try_lock(self, dataset: str, run_id: str, now: datetime) -> bool:
        """Take the dataset's single-flight lock for a run. Exactly one of concurrent callers wins."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=self._state_key(dataset),
                UpdateExpression=(
                    "SET lock_run_id = :run, lock_expires_at = :expires, last_run_started_at = :now, "
                    "rows_since_training = :zero, drift_pending = :false, coalesced = :empty"
                ),
                ConditionExpression="attribute_not_exists(lock_run_id) OR lock_expires_at < :epoch",
                ExpressionAttributeValues={
                    ":run": {"S": run_id},
                    ":expires": {"N": str(int(now.timestamp()) + LOCK_SECONDS)},
                    ":now": {"S": now.isoformat(timespec="seconds")},
                    ":zero": {"N": "0"},
                    ":false": {"BOOL": False},
                    ":empty": {"L": []},
                    ":epoch": {"N": str(int(now.timestamp()))},
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def coalesce(self, dataset: str, trigger: Trigger, run_id: str | None) -> None:
        """Record a trigger that arrived while a run was in flight: it is not lost."""
        entry = {
            "kind": trigger.kind,
            "reason": trigger.reason,
            "upload_id": trigger.upload_id,
            "at": now_iso(),
            "during_run": run_id,
        }
        self._db.update_item(
            TableName=self.table,
            Key=self._state_key(dataset),
            UpdateExpression="SET coalesced = list_append(if_not_exists(coalesced, :empty), :entry)",
            ExpressionAttributeValues={":entry": _ser.serialize([entry]), ":empty": {"L": []}},
        )

    def release(self, dataset: str, run_id: str, succeeded: bool, now: datetime) -> list[dict[str, Any]]:
        """Free the lock if this run holds it; returns the triggers coalesced meanwhile."""
        coalesced = self.coalesced(dataset)
        update = "REMOVE lock_run_id, lock_expires_at"
        values: dict[str, Any] = {":run": {"S": run_id}}
        if succeeded:
            update += " SET last_trained_at = :now"
            values[":now"] = {"S": now.isoformat(timespec="seconds")}
        try:
            self._db.update_item(
                TableName=self.table,
                Key=self._state_key(dataset),
                UpdateExpression=update,
                ConditionExpression="lock_run_id = :run",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
        return coalesced

    # --- runs -----------------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        self._db.put_item(
            TableName=self.table,
            Item=_item({"pk": f"run#{run['run_id']}", "sk": "run", **run}),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def update_run(self, run_id: str, **fields: Any) -> None:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": _ser.serialize(_storable(v)) for i, v in enumerate(fields.values())}
        self._db.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "run"}},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ConditionExpression="attribute_exists(pk)",
        )

    def add_attempt(self, run_id: str) -> int:
        response = self._db.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "run"}},
            UpdateExpression="ADD attempts :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ConditionExpression="attribute_exists(pk)",
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["attempts"]["N"])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self.table, Key={"pk": {"S": f"run#{run_id}"}, "sk": {"S": "run"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        doc = _plain(item)
        doc.pop("pk"), doc.pop("sk")
        return doc

    def list_runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        runs = []
        for page in self._db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                if item["pk"]["S"].startswith("run#"):
                    doc = _plain(item)
                    doc.pop("pk"), doc.pop("sk")
                    if dataset is None or doc.get("dataset") == dataset:
                        runs.append(doc)
        return sorted(runs, key=lambda r: str(r.get("created_at", "")))


def run_id_for(dataset: str, now: datetime, data_hash: str) -> str:
    return f"{dataset}-{now:%Y%m%dT%H%M%SZ}-{data_hash[:8]}"
