"""The batch jobs store on DynamoDB (``chalicelib.batch.ports.JobStore``).

One table, ``pk`` = the job id, ``sk`` = ``job`` for the job, and the sort keys of
``chalicelib.batch.jobs`` for settled shards, errors of attempts and workers' heartbeats. Settling a
shard is one ``TransactWriteItems``: the shard item, conditional on its absence, and an ``ADD`` to
the job's counters; so it counts once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.aws.dynamo import condition_failed, from_item, to_item, to_value
from chalicelib.batch import jobs
from chalicelib.timeutil import now_iso

JOB = "job"
_ABSENT = "attribute_not_exists(pk)"


class DynamoJobStore:
    def __init__(self, table: str) -> None:
        self.table = table

    @property
    def _db(self) -> Any:
        return aws.client("dynamodb")

    def _key(self, job_id: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": job_id}, "sk": {"S": sk}}

    @staticmethod
    def _conditional(write: Callable[..., Any], **args: Any) -> bool:
        """False if the write's condition (or one of a transaction's) refused it."""
        try:
            write(**args)
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    # --- the job ----------------------------------------------------------------------------------

    def create(self, job: dict[str, Any]) -> bool:
        item = to_item({**jobs.new_job(job), "pk": job["job_id"], "sk": JOB})
        return self._conditional(
            self._db.put_item, TableName=self.table, Item=item, ConditionExpression=_ABSENT
        )

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._get(job_id, JOB, consistent=True)

    def _get(self, job_id: str, sk: str, consistent: bool) -> dict[str, Any] | None:
        response = self._db.get_item(
            TableName=self.table, Key=self._key(job_id, sk), ConsistentRead=consistent
        )
        return _record(response["Item"]) if "Item" in response else None

    def update(self, job_id: str, expected: tuple[str, ...] | None = None, **fields: Any) -> bool:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": to_value(v) for i, v in enumerate(fields.values())}
        condition = "attribute_exists(pk)"
        if expected:
            names["#status"] = "status"
            condition += " AND #status IN (" + ", ".join(f":e{i}" for i in range(len(expected))) + ")"
            values.update({f":e{i}": {"S": s} for i, s in enumerate(expected)})
        return self._conditional(
            self._db.update_item,
            TableName=self.table,
            Key=self._key(job_id, JOB),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def claim(self, job_id: str, flag: str) -> bool:
        return self._conditional(
            self._db.update_item,
            TableName=self.table,
            Key=self._key(job_id, JOB),
            UpdateExpression="SET #flag = :at",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#flag)",
            ExpressionAttributeNames={"#flag": flag},
            ExpressionAttributeValues={":at": {"S": now_iso()}},
        )

    def add(self, job_id: str, **deltas: float) -> None:
        deltas = {k: v for k, v in deltas.items() if v}
        if deltas:
            self._db.update_item(TableName=self.table, Key=self._key(job_id, JOB), **_adding(deltas))

    # --- shards -----------------------------------------------------------------------------------

    def _settle(self, job_id: str, record: dict[str, Any], counters: dict[str, float]) -> bool:
        item = to_item({**record, "pk": job_id, "sk": jobs.shard_sk(int(record["index"]))})
        return self._conditional(
            self._db.transact_write_items,
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": _ABSENT}},
                {"Update": {"TableName": self.table, "Key": self._key(job_id, JOB), **_adding(counters)}},
            ],
        )

    def mark_done(self, job_id: str, index: int, part: dict[str, Any]) -> bool:
        return self._settle(job_id, *jobs.shard_done(index, part))

    def mark_failed(self, job_id: str, index: int, reason: str, **extra: Any) -> bool:
        return self._settle(job_id, *jobs.shard_failed(index, reason, extra))

    def record_error(self, job_id: str, index: int, error: str, worker: str) -> None:
        record = jobs.attempt_error(error, worker)
        item = to_item({**record, "pk": job_id, "sk": jobs.error_sk(index)})
        self._db.put_item(TableName=self.table, Item=item)

    def last_error(self, job_id: str, index: int) -> str | None:
        record = self._get(job_id, jobs.error_sk(index), consistent=False)
        return None if record is None else str(record.get("error"))

    def _query(self, job_id: str, prefix: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": job_id}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**args)
            records += [_record(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def shards(self, job_id: str) -> list[dict[str, Any]]:
        return sorted(self._query(job_id, jobs.SHARD), key=lambda s: int(s["index"]))

    # --- workers ----------------------------------------------------------------------------------

    def heartbeat(self, job_id: str, worker: str, state: str, started: float) -> None:
        record = {"worker": worker, "state": state, "started": started, "seen": time.time()}
        item = to_item({**record, "pk": job_id, "sk": jobs.worker_sk(worker)})
        self._db.put_item(TableName=self.table, Item=item)

    def workers(self, job_id: str) -> list[dict[str, Any]]:
        return self._query(job_id, jobs.WORKER)


def _record(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the store's record: its keys left out."""
    doc = from_item(item)
    doc.pop("pk", None)
    doc.pop("sk", None)
    return doc


def _adding(deltas: dict[str, float]) -> dict[str, Any]:
    """An ``ADD`` of each delta to its counter."""
    return {
        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :d{i}" for i in range(len(deltas))),
        "ExpressionAttributeNames": {f"#c{i}": k for i, k in enumerate(deltas)},
        "ExpressionAttributeValues": {f":d{i}": to_value(v) for i, v in enumerate(deltas.values())},
    }
