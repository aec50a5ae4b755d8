"""The model registry and its audit ledger on DynamoDB: versions, statuses, the champion pointer.

Registry table (``pk``/``sk``), per model ``<name>``:

* ``model#<name>`` / ``counter``: ``last_version``, raised by one (``UpdateItem ADD``) per new version;
* ``model#<name>`` / ``version#<00000001>``: a version (zero-padded, so a query lists them in order):
  ``model``, ``version``, ``candidate_id``, what the candidate brought (``artifacts`` location,
  ``checksums``, ``metrics``, ``lineage``, ``run_id``, ``manifest_key``, any other key), ``status``,
  ``transitions`` (``[{from, to, at, by, reason}]``, oldest first, the first from None to
  ``candidate``), ``gates`` (``{}`` until evaluated), ``created_at``, ``updated_at``;
* ``model#<name>`` / ``candidate#<id>``: ``version``: the candidate index, written create-only in the
  same transaction as the version item, so a candidate (keyed by its run id, else its manifest key)
  registered twice, even concurrently, has exactly one version;
* ``model#<name>`` / ``champion``: the champion pointer: ``version``, ``seq`` (promotions so far),
  ``at``, ``by``;
* ``model#<name>`` / ``challenger``: the version shadowing the champion on /predict (``version``,
  None for none), ``at``, ``by``, ``reason``.

Audit table: ``model#<name>`` / ``<iso time>#<seq, 8 digits>``, one item per promotion or rollback:
``who``, ``action`` (``promote`` or ``rollback``), ``from_version`` (None for the first champion),
``to_version``, ``reason``, ``at``, ``seq`` (1, 2, 3...: the pointer's count, so entries are ordered
even if writers' clocks disagree) and, for a rollback, ``undoes``: the ``seq`` of the promotion it
undid. Every audit item is written create-only (``attribute_not_exists``) and nothing here updates
or deletes one: the ledger is append-only.

Statuses: ``candidate`` (registered) -> ``pending_approval`` / ``approved`` / ``rejected`` (by
``set_status``: the gates' verdict or a person) -> ``champion`` -> ``retired`` (only by ``promote``).
``set_status`` allows exactly the moves in ``ALLOWED``; it never makes or unmakes a champion.

Promotable statuses (``PROMOTABLE``): ``approved`` and ``retired``. A ``candidate`` or
``pending_approval`` version must be approved first (by the evaluator when the gates say
``promote``, by a person otherwise), so every champion has an approval in its transitions; a
``retired`` version is a former champion (only ``promote`` retires), which is what a rollback brings
back. ``rejected`` is final.

A promotion is one ``TransactWriteItems``: the champion pointer (conditional on the champion being
the caller's ``expected_champion``, or there being none), the new version to ``champion``
(conditional on a promotable status), the previous champion to ``retired`` (conditional on it being
champion) and the audit entry (create-only). Of concurrent promotions with the same expectation
exactly one wins; the others raise ``PromotionConflict`` naming the champion they found.

Rollback semantics: the ledger is an undo stack. Reading it oldest first, a ``promote`` entry is
pushed and a ``rollback`` entry pops the promotion it undid; the top of the stack is the promotion
that made the current champion, and a rollback promotes that entry's ``from_version`` back (through
``promote``: conditional and audited, action ``rollback``). So rolling back twice in a row goes back
two promotions (3 -> 2 -> 1), never ping-pongs (3 -> 2 -> 3), and a rollback past the first champion
raises ``NothingToRollBack``. A manual promotion of a retired version is a forward step like any
other (it is pushed, and a rollback undoes it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.errors import RegistryError
from chalicelib.training.runs import _number, _storable

CANDIDATE = "candidate"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
CHAMPION = "champion"
RETIRED = "retired"
REJECTED = "rejected"
STATUSES = (CANDIDATE, PENDING_APPROVAL, APPROVED, CHAMPION, RETIRED, REJECTED)
# set_status's moves: target -> the statuses it may come from. champion and retired only by promote.
ALLOWED: dict[str, tuple[str, ...]] = {
    # approved -> pending_approval: the evaluator re-judged an approved version against a champion
    # that changed before the promotion committed, and now a person must decide.
    PENDING_APPROVAL: (CANDIDATE, APPROVED),
    APPROVED: (CANDIDATE, PENDING_APPROVAL),
    REJECTED: (CANDIDATE, PENDING_APPROVAL, APPROVED, RETIRED),
}
PROMOTABLE = (APPROVED, RETIRED)
# Keys of a version item that a candidate document cannot set.
_RESERVED = {
    "pk", "sk", "model", "version", "candidate_id", "status", "transitions", "gates", "created_at",
    "updated_at",
}  # fmt: skip
_ATTEMPTS = 5  # promotion retries when only the pointer's seq moved (its version is still the expected one)

_ser = TypeSerializer()
_des = TypeDeserializer()


class PromotionConflict(RegistryError):
    """The champion is not the one the caller expected: someone else promoted first."""

    def __init__(self, model: str, expected: int | None, current: int | None, version: int) -> None:
        self.model, self.expected, self.current, self.version = model, expected, current, version
        super().__init__(
            f"cannot promote {model} v{version}: the current champion is {_label(current)}, "
            f"not {_label(expected)} as expected; read the champion again and decide anew"
        )


class StatusConflict(RegistryError):
    """A conditional status change found another status than the one it required."""


class NothingToRollBack(RegistryError):
    """The current champion was the model's first: there is no earlier champion to go back to."""


def _label(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _value(value: Any) -> dict[str, Any]:
    return _ser.serialize(_storable(value))


def _item(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in doc.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _number(_des.deserialize(v)) for k, v in item.items()}


def _cancellation_codes(exc: ClientError) -> list[str] | None:
    """The per-item codes of a cancelled transaction (None if it was not a cancellation)."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    return [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]


def _model_pk(model: str) -> str:
    if not model or not isinstance(model, str):
        raise ValueError("model: a non-empty name is required")
    return f"model#{model}"


def _version_sk(version: int) -> str:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version: a positive integer is required, got {version!r}")
    return f"version#{version:08d}"


def _check_finite(value: Any, path: str) -> None:
    """NaN or infinity would be stored as null by the conversion: refuse them instead of losing them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: {value!r} cannot be stored; use None for an undefined number")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


class Registry:
    def __init__(
        self, registry_table: str, audit_table: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.registry_table = registry_table
        self.audit_table = audit_table
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def _db(self) -> Any:
        return aws.client("dynamodb")

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="microseconds")

    def _key(self, model: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": _model_pk(model)}, "sk": {"S": sk}}

    def _get(self, model: str, sk: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self.registry_table, Key=self._key(model, sk), ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    def _query(self, table: str, pk: str, prefix: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        if prefix is not None:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        items: list[dict[str, Any]] = []
        for page in self._db.get_paginator("query").paginate(**kwargs):
            items.extend(_plain(item) for item in page.get("Items", []))
        return items

    # --- registration ---------------------------------------------------------------------------

    def register_version(self, model: str, candidate: dict[str, Any]) -> tuple[int, bool]:
        """Register a candidate as the model's next version: ``(version, created)``.

        The candidate is keyed by ``run_id`` (else ``manifest_key``); registering it again, even
        concurrently, gives the same version and ``created=False``. The counter is raised before
        the create-only transaction, so when two registrations of one candidate race, the loser's
        number is never used: versions then skip a number (3, 5), they are never reused or doubled.
        """
        candidate_id = candidate.get("run_id") or candidate.get("manifest_key")
        if not isinstance(candidate_id, str) or not candidate_id:
            raise ValueError("candidate: a run_id (or manifest_key) string is required to register it")
        _check_finite(candidate, "candidate")
        index_sk = f"candidate#{candidate_id}"
        known = self._get(model, index_sk)
        if known:
            return int(known["version"]), False
        version = int(
            self._db.update_item(
                TableName=self.registry_table,
                Key=self._key(model, "counter"),
                UpdateExpression="ADD last_version :one SET model = :model",
                ExpressionAttributeValues={":one": {"N": "1"}, ":model": {"S": model}},
                ReturnValues="UPDATED_NEW",
            )["Attributes"]["last_version"]["N"]
        )
        at = self._now()
        extra = {k: v for k, v in candidate.items() if k not in _RESERVED}
        doc = {
            **extra,
            "pk": _model_pk(model),
            "sk": _version_sk(version),
            "model": model,
            "version": version,
            "candidate_id": candidate_id,
            "status": CANDIDATE,
            "transitions": [
                {"from": None, "to": CANDIDATE, "at": at, "by": "registry", "reason": "registered"}
            ],
            "gates": {},
            "created_at": at,
            "updated_at": at,
        }
        index = {"pk": _model_pk(model), "sk": index_sk, "version": version, "created_at": at}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.registry_table,
                            "Item": _item(index),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.registry_table,
                            "Item": _item(doc),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _cancellation_codes(exc) is None:
                raise
            winner = self._get(model, index_sk)
            if not winner:
                raise
            return int(winner["version"]), False
        return version, True

    # --- status ---------------------------------------------------------------------------------

    def set_status(
        self,
        model: str,
        version: int,
        status: str,
        by: str,
        reason: str,
        expected: str | None = None,
        gates: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Move a version to ``status`` (one of ``ALLOWED``), appending a transition; returns the item.

        With ``expected`` the version must be in exactly that status, else it must be in one the move
        allows; otherwise ``StatusConflict`` names the status found. ``gates`` (the evaluation's
        figures) are stored with the move, in the same write.
        """
        if status not in ALLOWED:
            raise ValueError(
                f"status: {status!r} cannot be set here; allowed: {', '.join(ALLOWED)} "
                "(champion and retired are set by promote)"
            )
        if expected is not None and expected not in ALLOWED[status]:
            raise ValueError(f"a version cannot move from {expected!r} to {status!r}")
        found = self.version(model, version)
        if found is None:
            raise RegistryError(f"{model} v{version} is not registered")
        sources = (expected,) if expected is not None else ALLOWED[status]
        if found["status"] not in sources:
            raise StatusConflict(
                f"cannot set {model} v{version} to {status}: it is {found['status']}, "
                f"expected {' or '.join(sources)}"
            )
        at = self._now()
        transition = [{"from": found["status"], "to": status, "at": at, "by": by, "reason": reason}]
        values: dict[str, Any] = {
            ":to": {"S": status},
            ":from": {"S": found["status"]},
            ":t": _value(transition),
            ":at": {"S": at},
        }
        update = "SET #s = :to, transitions = list_append(transitions, :t), updated_at = :at"
        if gates is not None:
            _check_finite(gates, "gates")
            update += ", gates = :gates"
            values[":gates"] = _value(gates)
        try:
            # Conditional on the status just read: a concurrent move makes this one fail, not stack.
            response = self._db.update_item(
                TableName=self.registry_table,
                Key=self._key(model, _version_sk(version)),
                UpdateExpression=update,
                ConditionExpression="#s = :from",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            now = self.version(model, version) or {}
            raise StatusConflict(
                f"cannot set {model} v{version} to {status}: it changed to {now.get('status')} meanwhile"
            ) from None
        doc = _plain(response["Attributes"])
        doc.pop("pk"), doc.pop("sk")
        return doc

    def update_gates(self, model: str, version: int, gates: dict[str, Any], expected: str) -> None:
        """Replace a version's gate figures (a re-evaluation), conditional on its status."""
        _check_finite(gates, "gates")
        try:
            self._db.update_item(
                TableName=self.registry_table,
                Key=self._key(model, _version_sk(version)),
                UpdateExpression="SET gates = :gates, updated_at = :at",
                ConditionExpression="#s = :expected",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":gates": _value(gates),
                    ":at": {"S": self._now()},
                    ":expected": {"S": expected},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            now = self.version(model, version) or {}
            raise StatusConflict(f"{model} v{version} is {now.get('status')}, not {expected}") from None

    # --- promotion ------------------------------------------------------------------------------

    def promote(
        self, model: str, version: int, by: str, reason: str, expected_champion: int | None
    ) -> dict[str, Any]:
        """Make ``version`` the champion if the champion is still ``expected_champion``; returns the
        audit entry. Raises ``PromotionConflict`` (someone else promoted) or ``RegistryError`` (the
        version is unknown or not promotable: see ``PROMOTABLE``)."""
        return self._promote(model, version, by, reason, expected_champion, "promote", None, None)

    def _promote(
        self,
        model: str,
        version: int,
        by: str,
        reason: str,
        expected: int | None,
        action: str,
        undoes: int | None,
        expected_seq: int | None,
    ) -> dict[str, Any]:
        pk = _model_pk(model)
        _version_sk(version)
        if expected is not None:
            _version_sk(expected)
        if version == expected:
            raise RegistryError(f"{model} v{version} is already the expected champion")
        for _ in range(_ATTEMPTS):
            pointer = self._get(model, CHAMPION)
            current = int(pointer["version"]) if pointer else None
            seq_now = int(pointer["seq"]) if pointer else 0
            if current != expected or (expected_seq is not None and seq_now != expected_seq):
                raise PromotionConflict(model, expected, current, version)
            found = self.version(model, version)
            if found is None:
                raise RegistryError(f"{model} v{version} is not registered")
            if found["status"] not in PROMOTABLE:
                raise RegistryError(
                    f"cannot promote {model} v{version}: it is {found['status']}; "
                    f"only {' or '.join(PROMOTABLE)} versions can be promoted"
                )
            seq = seq_now + 1
            at = self._now()
            audit_sk = f"{at}#{seq:08d}"
            entry = {
                "who": by,
                "action": action,
                "from_version": expected,
                "to_version": version,
                "reason": reason,
                "at": at,
                "seq": seq,
                "undoes": undoes,
            }
            pointer_values: dict[str, Any] = {
                ":v": {"N": str(version)},
                ":seq": {"N": str(seq)},
                ":at": {"S": at},
                ":by": {"S": by},
                ":model": {"S": model},
            }
            if expected is None:
                pointer_condition = "attribute_not_exists(pk)"
            else:
                # The seq too: an A -> B -> A sequence in between is a change the caller did not see.
                pointer_condition = "version = :expected AND seq = :prev"
                pointer_values.update({":expected": {"N": str(expected)}, ":prev": {"N": str(seq - 1)}})
            items: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": self.registry_table,
                        "Key": self._key(model, CHAMPION),
                        "UpdateExpression": "SET version = :v, seq = :seq, #at = :at, #by = :by, model = :model",
                        "ConditionExpression": pointer_condition,
                        "ExpressionAttributeNames": {"#at": "at", "#by": "by"},
                        "ExpressionAttributeValues": pointer_values,
                    }
                },
                self._move(model, version, found["status"], CHAMPION, at, by, reason),
            ]
            if expected is not None:
                items.append(self._move(model, expected, CHAMPION, RETIRED, at, by, reason))
            items.append(
                {
                    "Put": {
                        "TableName": self.audit_table,
                        "Item": _item({"pk": pk, "sk": audit_sk, **entry}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            try:
                self._db.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if _cancellation_codes(exc) is None:
                    raise
                continue  # read again: a new champion raises above; a moved seq or status is retried
            return {**entry, "id": audit_sk, "model": model}
        current = self.champion(model)
        if current != expected:
            raise PromotionConflict(model, expected, current, version)
        raise RegistryError(f"cannot promote {model} v{version}: the registry kept changing; try again")

    def _move(
        self, model: str, version: int, old: str, new: str, at: str, by: str, reason: str
    ) -> dict[str, Any]:
        """A transaction item moving a version from status ``old`` (required) to ``new``."""
        transition = [{"from": old, "to": new, "at": at, "by": by, "reason": reason}]
        return {
            "Update": {
                "TableName": self.registry_table,
                "Key": self._key(model, _version_sk(version)),
                "UpdateExpression": "SET #s = :new, transitions = list_append(transitions, :t), updated_at = :at",
                "ConditionExpression": "#s = :old",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":new": {"S": new},
                    ":old": {"S": old},
                    ":t": _value(transition),
                    ":at": {"S": at},
                },
            }
        }

    def rollback(self, model: str, by: str, reason: str) -> dict[str, Any]:
        """Bring back the champion before the current one (see the module docstring); returns the
        audit entry. Raises ``NothingToRollBack`` for a first champion, ``PromotionConflict`` if a
        promotion happened meanwhile."""
        pointer = self._get(model, CHAMPION)
        if not pointer:
            raise NothingToRollBack(f"{model} has no champion to roll back")
        current, seq = int(pointer["version"]), int(pointer.get("seq", 0))
        ledger = [e for e in self.audit(model) if int(e["seq"]) <= seq]
        if [int(e["seq"]) for e in ledger] != list(range(1, seq + 1)):
            # A promotion committing while the ledger was read: the caller may simply try again.
            raise RegistryError(f"{model}'s audit ledger is behind its champion pointer; try again")
        stack: list[dict[str, Any]] = []
        for entry in ledger:
            if entry["action"] == "rollback":
                if stack and int(stack[-1]["seq"]) == int(entry.get("undoes") or -1):
                    stack.pop()
                else:
                    raise RegistryError(f"{model}'s audit ledger is inconsistent at seq {entry['seq']}")
            else:
                stack.append(entry)
        if not stack or int(stack[-1]["to_version"]) != current:
            raise RegistryError(f"{model}'s audit ledger does not end with its champion v{current}")
        top = stack[-1]
        if top.get("from_version") is None:
            raise NothingToRollBack(f"{model} v{current} was the first champion: nothing to roll back to")
        return self._promote(
            model, int(top["from_version"]), by, reason, current, "rollback", int(top["seq"]), seq
        )

    # --- shadow challenger ------------------------------------------------------------------------

    def set_challenger(self, model: str, version: int | None, by: str, reason: str) -> dict[str, Any]:
        """Name the version that shadows the champion on /predict (None: no challenger).

        Not a champion change, so not in the audit ledger; the pointer keeps who set it and why."""
        if version is not None:
            found = self.version(model, version)
            if found is None:
                raise RegistryError(f"{model} v{version} is not registered")
            if found["status"] == REJECTED:
                raise StatusConflict(f"{model} v{version} was rejected; it cannot shadow the champion")
        doc = {"version": version, "at": self._now(), "by": by, "reason": reason, "model": model}
        self._db.put_item(
            TableName=self.registry_table, Item={**self._key(model, "challenger"), **_item(doc)}
        )
        return doc

    def challenger(self, model: str) -> int | None:
        pointer = self._get(model, "challenger")
        return int(pointer["version"]) if pointer and pointer.get("version") is not None else None

    # --- reads ----------------------------------------------------------------------------------

    def champion(self, model: str) -> int | None:
        pointer = self._get(model, CHAMPION)
        return int(pointer["version"]) if pointer else None

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        doc = self._get(model, _version_sk(v))
        if doc is None:
            return None
        doc.pop("pk"), doc.pop("sk")
        return doc

    def versions(self, model: str) -> list[dict[str, Any]]:
        docs = self._query(self.registry_table, _model_pk(model), "version#")
        for doc in docs:
            doc.pop("pk"), doc.pop("sk")
        return docs

    def models(self) -> list[str]:
        names: list[str] = []
        for page in self._db.get_paginator("scan").paginate(
            TableName=self.registry_table,
            ConsistentRead=True,
            FilterExpression="sk = :counter",
            ExpressionAttributeValues={":counter": {"S": "counter"}},
            ProjectionExpression="pk",
        ):
            names.extend(item["pk"]["S"].removeprefix("model#") for item in page.get("Items", []))
        return sorted(names)

    def audit(self, model: str) -> list[dict[str, Any]]:
        """The model's audit entries, oldest first (by ``seq``, the order the promotions took effect)."""
        entries = self._query(self.audit_table, _model_pk(model))
        for entry in entries:
            entry["id"] = entry.pop("sk")
            entry["model"] = entry.pop("pk").removeprefix("model#")
            entry.setdefault("from_version", None)
            entry.setdefault("undoes", None)
        return sorted(entries, key=lambda e: (int(e.get("seq", 0)), e["id"]))
