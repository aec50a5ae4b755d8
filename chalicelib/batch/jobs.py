"""The batch jobs table: one job item, one item per finished shard, worker heartbeats.

Items (pk = job id):

* ``sk = "job"``: request, pinned model version, engine, status, ``total_shards`` and the counters
  the workers ``ADD`` to: ``shards_done``, ``shards_failed``, ``rows``, ``worker_seconds``,
  ``interruptions``, ``failures`` (attempts that failed), ``worker_starts``.
* ``sk = "shard#NNNNN"``: written once, when the shard is done (part key, rows, bytes, sha256) or
  failed (the reason), in the same transaction that adds to the job's counter, conditional on the
  item not existing. So a shard is counted once however many workers finish it, and the counters
  reach ``total_shards`` exactly once the last shard is settled.
* ``sk = "error#NNNNN"``: the last error of a shard's failed attempt (the DLQ handler names it).
* ``sk = "worker#ID"``: heartbeats (state, last seen) for ``mlops batch status``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.training.runs import _number, _storable

SUBMITTED = "SUBMITTED"
PLANNING = "PLANNING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
PARTIAL = "PARTIAL"
FAILED = "FAILED"
FINAL = (SUCCEEDED, PARTIAL, FAILED)
COUNTERS = (
    "shards_done",
    "shards_failed",
    "rows",
    "worker_seconds",
    "interruptions",
    "failures",
    "worker_starts",
)
WORKER_ALIVE_S = 30.0  # a worker not heard from for this long is not counted as running

_ser = TypeSerializer()
_des = TypeDeserializer()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _item(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_storable(v)) for k, v in doc.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _number(_des.deserialize(v)) for k, v in item.items()}


def _conditional_failed(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def shard_sk(index: int) -> str:
    return f"shard#{index:05d}"


class JobStore:
    def __init__(self, table: str) -> None:
        self.table = table

    @property
    def _db(self) -> Any:
        return aws.client("dynamodb")

    def _key(self, job_id: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": job_id}, "sk": {"S": sk}}

    # --- the job ----------------------------------------------------------------------------------

    def create(self, job: dict[str, Any]) -> bool:
        """Create the job item; False if a job with that id exists."""
        doc = {**{c: 0 for c in COUNTERS}, **job, "pk": job["job_id"], "sk": "job"}
        doc.setdefault("created_at", now_iso())
        try:
            self._db.put_item(
                TableName=self.table, Item=_item(doc), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get(self, job_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(TableName=self.table, Key=self._key(job_id, "job"), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        doc = _plain(item)
        doc.pop("pk", None)
        doc.pop("sk", None)
        return doc

    def update(self, job_id: str, expected: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Set fields on the job; with ``expected``, only if its status is one of them (True if set)."""
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": _ser.serialize(_storable(v)) for i, v in enumerate(fields.values())}
        args: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(job_id, "job"),
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        condition = "attribute_exists(pk)"
        if expected:
            names["#status"] = "status"
            condition += " AND #status IN (" + ", ".join(f":e{i}" for i in range(len(expected))) + ")"
            values.update({f":e{i}": {"S": s} for i, s in enumerate(expected)})
        args["ConditionExpression"] = condition
        try:
            self._db.update_item(**args)
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def claim(self, job_id: str, flag: str) -> bool:
        """Set a once-only flag on the job (``workers_started``...): True for the one caller that set it."""
        try:
            self._db.update_item(
                TableName=self.table,
                Key=self._key(job_id, "job"),
                UpdateExpression="SET #flag = :at",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#flag)",
                ExpressionAttributeNames={"#flag": flag},
                ExpressionAttributeValues={":at": {"S": now_iso()}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def add(self, job_id: str, **deltas: float) -> None:
        """Add to the job's counters (atomic ``ADD``)."""
        deltas = {k: v for k, v in deltas.items() if v}
        if not deltas:
            return
        self._db.update_item(
            TableName=self.table,
            Key=self._key(job_id, "job"),
            UpdateExpression="ADD " + ", ".join(f"#c{i} :d{i}" for i in range(len(deltas))),
            ExpressionAttributeNames={f"#c{i}": k for i, k in enumerate(deltas)},
            ExpressionAttributeValues={
                f":d{i}": _ser.serialize(_storable(v)) for i, v in enumerate(deltas.values())
            },
        )

    # --- shards -----------------------------------------------------------------------------------

    def _settle(self, job_id: str, index: int, doc: dict[str, Any], counters: dict[str, float]) -> bool:
        item = {**doc, "pk": job_id, "sk": shard_sk(index), "index": index, "at": now_iso()}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._key(job_id, "job"),
                            "UpdateExpression": "ADD "
                            + ", ".join(f"#c{i} :d{i}" for i in range(len(counters))),
                            "ExpressionAttributeNames": {f"#c{i}": k for i, k in enumerate(counters)},
                            "ExpressionAttributeValues": {
                                f":d{i}": _ser.serialize(_storable(v))
                                for i, v in enumerate(counters.values())
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def mark_done(self, job_id: str, index: int, part: dict[str, Any]) -> bool:
        """Record a shard's part and count it: True if this call counted it (False: already settled)."""
        return self._settle(
            job_id, index, {**part, "status": "done"}, {"shards_done": 1, "rows": int(part["rows"])}
        )

    def mark_failed(self, job_id: str, index: int, reason: str, **extra: Any) -> bool:
        """Record that a shard will not be scored, and why: True if this call counted it."""
        return self._settle(
            job_id, index, {**extra, "status": "failed", "reason": reason[:2000]}, {"shards_failed": 1}
        )

    def record_error(self, job_id: str, index: int, error: str, worker: str) -> None:
        self._db.put_item(
            TableName=self.table,
            Item=_item(
                {
                    "pk": job_id,
                    "sk": f"error#{index:05d}",
                    "error": error[:2000],
                    "worker": worker,
                    "at": now_iso(),
                }
            ),
        )

    def last_error(self, job_id: str, index: int) -> str | None:
        item = self._db.get_item(TableName=self.table, Key=self._key(job_id, f"error#{index:05d}")).get(
            "Item"
        )
        return None if not item else str(_plain(item).get("error"))

    def _query(self, job_id: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": job_id}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**args)
            items += [_plain(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return items
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def shards(self, job_id: str) -> list[dict[str, Any]]:
        """The settled shards (done or failed), in index order."""
        return sorted(self._query(job_id, "shard#"), key=lambda s: int(s["index"]))

    # --- workers ----------------------------------------------------------------------------------

    def heartbeat(self, job_id: str, worker: str, state: str, seconds: float = 0.0) -> None:
        """A worker's sign of life; ``seconds`` of its time since the last beat go to the job's total."""
        self._db.put_item(
            TableName=self.table,
            Item=_item(
                {
                    "pk": job_id,
                    "sk": f"worker#{worker}",
                    "worker": worker,
                    "state": state,
                    "seen": time.time(),
                }
            ),
        )
        if seconds > 0:
            self.add(job_id, worker_seconds=round(seconds, 3))

    def workers(self, job_id: str) -> list[dict[str, Any]]:
        return self._query(job_id, "worker#")

    def running_workers(self, job_id: str) -> int:
        now = time.time()
        return sum(
            1
            for w in self.workers(job_id)
            if w.get("state") not in ("exited", "released") and now - float(w.get("seen", 0)) < WORKER_ALIVE_S
        )
