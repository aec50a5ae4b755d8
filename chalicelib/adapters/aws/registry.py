"""The model registry and its audit ledger on DynamoDB (the rules: ``chalicelib.registry.states``).

Registry table (``pk``/``sk``), per model ``<name>``:

* ``model#<name>`` / ``counter``: ``last_version``, raised by one (``UpdateItem ADD``) per new version;
* ``model#<name>`` / ``version#<00000001>``: a version (zero-padded, so a query lists them in order):
  ``states.version_record``: ``model``, ``version``, ``candidate_id``, what the candidate brought,
  ``status``, ``transitions`` (oldest first), ``gates`` (``{}`` until evaluated), ``created_at``,
  ``updated_at``, and ``tainted`` once a revoked upload reached it (a map by upload id: ``taint``);
* ``model#<name>`` / ``candidate#<id>``: ``version``: the candidate index, written create-only in the
  same transaction as the version item, so a candidate registered twice, even concurrently, has
  exactly one version;
* ``model#<name>`` / ``champion``: the champion pointer: ``version`` (absent: no champion yet),
  ``seq`` (promotions so far), ``at``, ``by``, and ``awaiting_seq``: versions sent to wait for
  approval so far (see below);
* ``model#<name>`` / ``challenger``: the version shadowing the champion on /predict (``version``,
  None for none), ``at``, ``by``, ``reason``;
* ``model#<name>`` / ``rollout``: the rollout pointer, the model's running or last rollout
  (``Rollout.to_dict``), replaced whole by each change, conditional on its ``revision``.

Audit table:

* ``model#<name>`` / ``<iso time>#<seq, 8 digits>``: the champion ledger, one item per promotion or
  rollback (``Promotion.entry``); nothing else is in this partition (``audit`` lists it, and
  ``states.rollback_of`` replays it);
* ``rollout#<name>`` / ``<number, 6 digits>#<revision, 6 digits>``: the rollouts' events
  (``rollout.event_record``), one per start, step, pause, resume, completion and abort.

Every audit item is written create-only and nothing here updates or deletes one: the ledger is
append-only.

A champion change (a promotion, an approval, a rollback) is one ``TransactWriteItems``: the champion
pointer (conditional on the champion being the caller's expected one and its ``seq`` unchanged, or
there being none), the new version to ``champion`` with its transitions (an approval records
``approved`` too, and its gates) conditional on the status read, the previous champion to ``retired``
(conditional on it being champion), every version waiting for approval to ``superseded``
(conditional on its status read; up to ``SUPERSEDE_IN_TRANSACTION`` of them, any further ones right
after, each conditional on the pointer still naming the new champion) and the audit entry
(create-only). A cancelled transaction is read again: a new champion raises ``PromotionConflict``, a
status the change cannot start from raises ``StatusConflict``, a moved seq or a moved status of a
version to supersede alone is retried. So concurrent conflicting changes are linearizable: one wins,
the others change nothing. Every champion change also checks the rollout pointer (a
``ConditionCheck``: none, or ended), so it cannot commit beside a rollout starting; a rollout's
completion instead replaces the pointer (conditional on its revision) and writes its event, in the
same transaction.

A rollout's change is one ``TransactWriteItems`` as well: the pointer (the start: conditional on no
pointer, or on the last rollout, ended, being the one before; the others: on the revision before),
what it does to the candidate (the start: its status read, untainted, to ``rolling_out``, and a
``ConditionCheck`` that the champion is the rollout's; the abort: ``rolling_out`` back), and the
event, create-only. A cancelled one is read again and the rule that refuses it raises
(``RolloutConflict``, ``PromotionConflict``, ``StatusConflict``); none: it is tried again.

The versions a champion change supersedes are the ones its reads found waiting. A version sent to
wait (``await_approval``: conditional on the champion the gates compared with) could commit between
those reads and the transaction, and would then wait for an approval the change makes stale. So
``await_approval`` raises the pointer's ``awaiting_seq`` in its own transaction, a champion change
reads the pointer before and after the versions (a difference: read again) and requires the same
``awaiting_seq`` when it commits: the two cannot pass each other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.aws import dynamo
from chalicelib.registry import rollout as rollouts
from chalicelib.registry import states
from chalicelib.registry.rollout import Event, Rollout
from chalicelib.registry.states import (
    CHAMPION,
    PENDING_APPROVAL,
    RETIRED,
    SUPERSEDED,
    Champion,
    Promotion,
    StatusConflict,
)

_ATTEMPTS = 5  # promotion retries when only the pointer's seq or a status moved
# A transaction holds at most 100 items; a champion change writes 4 besides the versions it supersedes,
# and 1 (the rollout pointer's check) or 2 (a completion: the pointer and the event) about rollouts.
SUPERSEDE_IN_TRANSACTION = 90
_ENDED = {":completed": {"S": rollouts.COMPLETED}, ":aborted": {"S": rollouts.ABORTED}}


def _pk(model: str) -> str:
    return f"model#{states.check_model(model)}"


def _rollout_pk(model: str) -> str:
    """The audit table's partition of the model's rollout events (apart from its champion ledger)."""
    return f"rollout#{states.check_model(model)}"


def _version_sk(version: int) -> str:
    return f"version#{states.check_version(version):08d}"


def _without_keys(doc: dict[str, Any]) -> dict[str, Any]:
    doc.pop("pk", None), doc.pop("sk", None)
    return doc


class DynamoRegistry:
    def __init__(
        self,
        registry_table: str,
        audit_table: str,
        clock: Callable[[], datetime] | None = None,
        copies: Any = None,
    ) -> None:
        """``copies``: where each committed audit entry is also kept, create-only
        (``chalicelib.adapters.aws.audit_copies``); None keeps the ledger only."""
        self.registry_table = registry_table
        self.audit_table = audit_table
        self._clock = clock or (lambda: datetime.now(UTC))
        self.copies = copies

    @property
    def _db(self) -> Any:
        return aws.client("dynamodb")

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="microseconds")

    def _key(self, model: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": _pk(model)}, "sk": {"S": sk}}

    def _get(self, model: str, sk: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self.registry_table, Key=self._key(model, sk), ConsistentRead=True
        ).get("Item")
        return dynamo.from_item(item) if item else None

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
            items.extend(dynamo.from_item(item) for item in page.get("Items", []))
        return items

    def _pointer(self, model: str) -> Champion | None:
        return self._pointer_item(model)[0]

    def _pointer_item(self, model: str) -> tuple[Champion | None, int]:
        """The champion (None: none yet) and the pointer's ``awaiting_seq``."""
        item = self._get(model, CHAMPION) or {}
        champion = Champion(int(item["version"]), int(item.get("seq", 0))) if "version" in item else None
        return champion, int(item.get("awaiting_seq", 0))

    # --- registration ---------------------------------------------------------------------------

    def register_version(self, model: str, candidate: dict[str, Any]) -> tuple[int, bool]:
        """The counter is raised before the create-only transaction, so when two registrations of one
        candidate race, the loser's number is never used: versions then skip a number (3, 5)."""
        index_sk = f"candidate#{states.candidate_id(candidate)}"
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
        doc = states.version_record(model, version, candidate, at)
        index = {"version": version, "created_at": at}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    self._create(self.registry_table, model, index_sk, index),
                    self._create(self.registry_table, model, _version_sk(version), doc),
                ]
            )
        except ClientError as exc:
            if dynamo.cancellation_codes(exc) is None:
                raise
            winner = self._get(model, index_sk)
            if not winner:
                raise
            return int(winner["version"]), False
        return version, True

    def _create(self, table: str, model: str, sk: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A transaction item writing ``doc`` only if the key is free."""
        item = {**dynamo.to_item(doc), **self._key(model, sk)}
        return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

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
        allowed = states.sources(status, expected)
        found = self.version(model, version)
        if found is None:
            raise states.not_registered(model, version)
        states.check_source(model, version, status, found["status"], allowed)
        update, values = self._status_update(found["status"], status, by, reason, gates)
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
            if not dynamo.condition_failed(exc):
                raise
            now = self.version(model, version)
            if now is None:
                raise states.not_registered(model, version) from None
            raise StatusConflict(
                f"cannot set {model} v{version} to {status}: it changed to {now['status']} meanwhile"
            ) from None
        return _without_keys(dynamo.from_item(response["Attributes"]))

    def await_approval(
        self,
        model: str,
        version: int,
        by: str,
        reason: str,
        gates: dict[str, Any],
        expected: str,
        expected_champion: int | None,
    ) -> dict[str, Any]:
        """One transaction: the pointer checked (still ``expected_champion``), the version moved."""
        states.sources(PENDING_APPROVAL, expected)
        for _ in range(_ATTEMPTS):
            update, values = self._status_update(expected, PENDING_APPROVAL, by, reason, gates)
            move = {
                "TableName": self.registry_table,
                "Key": self._key(model, _version_sk(version)),
                "UpdateExpression": update,
                "ConditionExpression": "#s = :from",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": values,
            }
            awaiting = self._count_awaiting(model, expected_champion)
            try:
                self._db.transact_write_items(TransactItems=[{"Update": awaiting}, {"Update": move}])
            except ClientError as exc:
                codes = dynamo.cancellation_codes(exc)
                if codes is None:
                    raise
                current = self.champion(model)
                if current != expected_champion:
                    raise states.PromotionConflict(model, expected_champion, current, version) from None
                now = self.version(model, version)
                if now is None:
                    raise states.not_registered(model, version) from None
                states.check_source(model, version, PENDING_APPROVAL, now["status"], (expected,))
                continue  # cancelled by a concurrent transaction on these items: try again
            found = self.version(model, version)
            assert found is not None
            return found
        raise states.Conflict(
            f"cannot set {model} v{version} to {PENDING_APPROVAL}: it kept changing; try again"
        )

    def _count_awaiting(self, model: str, champion: int | None) -> dict[str, Any]:
        """The pointer's ``awaiting_seq`` raised, if the pointer names ``champion`` (None: none yet)."""
        update: dict[str, Any] = {
            "TableName": self.registry_table,
            "Key": self._key(model, CHAMPION),
            "UpdateExpression": "ADD awaiting_seq :one SET model = :model",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":model": {"S": model}},
        }
        if champion is None:
            update["ConditionExpression"] = "attribute_not_exists(version)"
        else:
            update["ConditionExpression"] = "version = :champion"
            update["ExpressionAttributeValues"][":champion"] = {"N": str(champion)}
        return update

    def _status_update(
        self, old: str, new: str, by: str, reason: str, gates: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """The update expression and values of a move from ``old`` to ``new`` (with the gates)."""
        at = self._now()
        values: dict[str, Any] = {
            ":to": {"S": new},
            ":from": {"S": old},
            ":t": dynamo.to_value([states.transition(old, new, at, by, reason)]),
            ":at": {"S": at},
        }
        update = "SET #s = :to, transitions = list_append(transitions, :t), updated_at = :at"
        if gates is not None:
            states.check_finite(gates, "gates")
            update += ", gates = :gates"
            values[":gates"] = dynamo.to_value(gates)
        return update, values

    def update_gates(self, model: str, version: int, gates: dict[str, Any], expected: str) -> None:
        states.check_finite(gates, "gates")
        try:
            self._db.update_item(
                TableName=self.registry_table,
                Key=self._key(model, _version_sk(version)),
                UpdateExpression="SET gates = :gates, updated_at = :at",
                ConditionExpression="#s = :expected",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":gates": dynamo.to_value(gates),
                    ":at": {"S": self._now()},
                    ":expected": {"S": expected},
                },
            )
        except ClientError as exc:
            if not dynamo.condition_failed(exc):
                raise
            now = self.version(model, version)
            if now is None:
                raise states.not_registered(model, version) from None
            raise StatusConflict(f"{model} v{version} is {now['status']}, not {expected}") from None

    # --- promotion ------------------------------------------------------------------------------

    def approve(
        self,
        model: str,
        version: int,
        by: str,
        reason: str,
        expected_champion: int | None,
        expected_status: str,
        gates: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._apply(
            Promotion(model, version, by, reason, expected_champion, approving=expected_status, gates=gates)
        )

    def promote(
        self, model: str, version: int, by: str, reason: str, expected_champion: int | None
    ) -> dict[str, Any]:
        return self._apply(Promotion(model, version, by, reason, expected_champion))

    def rollback(self, model: str, by: str, reason: str) -> dict[str, Any]:
        # Before "nothing to roll back": while a rollout runs, the answer is "abort it first".
        states.check_no_rollout(model, self._get(model, rollouts.POINTER_SK))
        pointer = self._pointer(model)
        ledger = self.audit(model) if pointer else []
        return self._apply(states.rollback_of(model, pointer, ledger, by, reason))

    def _apply(self, promotion: Promotion, ending: tuple[Rollout, Event] | None = None) -> dict[str, Any]:
        """A champion change; ``ending``: the rollout it completes (its pointer and event are written
        in the same transaction), else no rollout may be running (checked in it too)."""
        model, version = promotion.model, promotion.version
        for _ in range(_ATTEMPTS):
            running = self._get(model, rollouts.POINTER_SK)
            if ending is None:
                states.check_no_rollout(model, running)
                rollout_items = [self._no_rollout_running(model)]
            else:
                rollouts.check_change(*ending, running, (rollouts.COMPLETE,))
                rollout_items = self._rollout_change(*ending)
            # The pointer before and after the versions: the reads are not one snapshot, and a change
            # committing between them (a rival promotion, a version sent to wait) must show as a moved
            # pointer (read again), never as a target that "is champion" already or as a waiting
            # version this change would leave stale.
            before = self._pointer_item(model)
            versions = self.versions(model)
            pointer, awaiting = self._pointer_item(model)
            if (pointer, awaiting) != before:
                continue
            promotion.check_pointer(pointer)
            found = next((doc for doc in versions if doc["version"] == version), None)
            if found is None:
                raise states.not_registered(model, version)
            states.check_untainted(model, version, found)
            at = self._now()
            try:
                moves = promotion.moves(found["status"], at)
            except StatusConflict:
                if ending is not None:  # a rival change of the rollout (an abort) moved its candidate
                    rollouts.check_change(
                        *ending, self._get(model, rollouts.POINTER_SK), (rollouts.COMPLETE,)
                    )
                raise
            superseded = states.to_supersede(versions, promotion)
            now, later = superseded[:SUPERSEDE_IN_TRANSACTION], superseded[SUPERSEDE_IN_TRANSACTION:]
            seq = (pointer.seq if pointer else 0) + 1
            entry = promotion.entry(seq, at, [v for v, _ in now])
            audit_sk = states.audit_id(at, seq)
            why = states.superseded_reason(promotion)
            items = [
                self._move_pointer(promotion, seq, at, awaiting),
                self._champion_move(promotion, found["status"], moves, at),
            ]
            if promotion.expected is not None:
                items.append(self._move(model, promotion.expected, CHAMPION, RETIRED, at, promotion))
            items += [self._move(model, v, old, SUPERSEDED, at, promotion, why) for v, old in now]
            items.append(self._create(self.audit_table, model, audit_sk, entry))
            items += rollout_items
            try:
                self._db.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if dynamo.cancellation_codes(exc) is None:
                    raise
                # Read again: a new champion, a moved status or a rollout raises above; a moved seq
                # is retried.
                continue
            for v, old in later:
                self._supersede_after(promotion, seq, v, old, at, why)
            self._keep_copy(model, audit_sk, entry)
            return {**entry, "id": audit_sk, "model": model}
        current = self.champion(model)
        if current != promotion.expected:
            raise states.PromotionConflict(model, promotion.expected, current, version)
        raise states.Conflict(f"cannot promote {model} v{version}: the registry kept changing; try again")

    def _keep_copy(self, model: str, audit_sk: str, entry: dict[str, Any]) -> None:
        """The committed entry's create-only copy. If this fails (the change stands), ``mlops
        audit-verify`` writes it later from the ledger; the failure is logged, not raised."""
        if self.copies is None:
            return
        try:
            self.copies.keep(model, {**entry, "id": audit_sk, "model": model})
        except Exception as exc:  # the promotion committed: the caller's answer must say so
            from chalicelib.observability import logger

            logger.warning(
                "audit copy not written", extra={"model": model, "audit": audit_sk, "error": str(exc)}
            )

    def _champion_move(
        self, promotion: Promotion, old: str, moves: list[dict[str, Any]], at: str
    ) -> dict[str, Any]:
        """The transaction item making the version champion (from ``old``), with its transitions."""
        values: dict[str, Any] = {
            ":new": {"S": CHAMPION},
            ":old": {"S": old},
            ":t": dynamo.to_value(moves),
            ":at": {"S": at},
        }
        update = "SET #s = :new, transitions = list_append(transitions, :t), updated_at = :at"
        if promotion.gates is not None:
            update += ", gates = :gates"
            values[":gates"] = dynamo.to_value(dict(promotion.gates))
        return {
            "Update": {
                "TableName": self.registry_table,
                "Key": self._key(promotion.model, _version_sk(promotion.version)),
                "UpdateExpression": update,
                # Untainted: a revocation marking it meanwhile cancels the change (read again, refused).
                "ConditionExpression": "#s = :old AND attribute_not_exists(tainted)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    def _supersede_after(
        self, promotion: Promotion, seq: int, version: int, old: str, at: str, why: str
    ) -> None:
        """A version beyond what one transaction holds, superseded right after the champion change,
        only while the pointer is still that change's (else the next champion change supersedes it)."""
        check = {
            "TableName": self.registry_table,
            "Key": self._key(promotion.model, CHAMPION),
            "ConditionExpression": "version = :v AND seq = :seq",
            "ExpressionAttributeValues": {":v": {"N": str(promotion.version)}, ":seq": {"N": str(seq)}},
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {"ConditionCheck": check},
                    self._move(promotion.model, version, old, SUPERSEDED, at, promotion, why),
                ]
            )
        except ClientError as exc:
            if dynamo.cancellation_codes(exc) is None:
                raise

    def _move_pointer(self, promotion: Promotion, seq: int, at: str, awaiting: int) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":v": {"N": str(promotion.version)},
            ":seq": {"N": str(seq)},
            ":at": {"S": at},
            ":by": {"S": promotion.by},
            ":model": {"S": promotion.model},
        }
        if promotion.expected is None:
            condition = "attribute_not_exists(version)"
        else:
            # The seq too: an A -> B -> A sequence in between is a change the caller did not see.
            condition = "version = :expected AND seq = :prev"
            values.update({":expected": {"N": str(promotion.expected)}, ":prev": {"N": str(seq - 1)}})
        # No version sent to wait since the reads (their supersession was computed from them).
        if awaiting:
            condition += " AND awaiting_seq = :awaiting"
            values[":awaiting"] = {"N": str(awaiting)}
        else:
            condition += " AND attribute_not_exists(awaiting_seq)"
        return {
            "Update": {
                "TableName": self.registry_table,
                "Key": self._key(promotion.model, CHAMPION),
                "UpdateExpression": "SET version = :v, seq = :seq, #at = :at, #by = :by, model = :model",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#at": "at", "#by": "by"},
                "ExpressionAttributeValues": values,
            }
        }

    def _move(
        self,
        model: str,
        version: int,
        old: str,
        new: str,
        at: str,
        promotion: Promotion,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """A transaction item moving a version from status ``old`` (required) to ``new``."""
        transition = states.transition(old, new, at, promotion.by, reason or promotion.reason)
        return self._move_item(model, version, old, new, at, transition)

    def _move_item(
        self, model: str, version: int, old: str, new: str, at: str, transition: dict[str, Any]
    ) -> dict[str, Any]:
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
                    ":t": dynamo.to_value([transition]),
                    ":at": {"S": at},
                },
            }
        }

    # --- rollouts -------------------------------------------------------------------------------

    def start_rollout(
        self, rollout: Rollout, event: Event, expected_status: str, gates: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        model, version = rollout.model, rollout.candidate
        if gates is not None:
            states.check_finite(gates, "gates")
        for _ in range(_ATTEMPTS):
            pointer = self._get(model, rollouts.POINTER_SK)
            rollouts.check_start(
                rollout, event, expected_status, pointer, self.champion(model), self.version(model, version)
            )
            if pointer is None:
                condition, names, values = "attribute_not_exists(pk)", {}, {}
            else:
                condition = "#n = :last AND #s IN (:completed, :aborted)"
                names = {"#n": "number", "#s": "status"}
                values = {":last": {"N": str(rollout.number - 1)}, **_ENDED}
            moves = rollouts.start_moves(expected_status, event.at, event.by, event.reason)
            update = "SET #s = :new, transitions = list_append(transitions, :t), updated_at = :at"
            move_values: dict[str, Any] = {
                ":new": {"S": states.ROLLING_OUT},
                ":old": {"S": expected_status},
                ":t": dynamo.to_value(moves),
                ":at": {"S": event.at},
            }
            if gates is not None:
                update += ", gates = :gates"
                move_values[":gates"] = dynamo.to_value(gates)
            items = [
                self._put_pointer(rollout, condition, names, values),
                {
                    "ConditionCheck": {
                        "TableName": self.registry_table,
                        "Key": self._key(model, CHAMPION),
                        "ConditionExpression": "version = :champion",
                        "ExpressionAttributeValues": {":champion": {"N": str(rollout.champion)}},
                    }
                },
                {
                    "Update": {
                        "TableName": self.registry_table,
                        "Key": self._key(model, _version_sk(version)),
                        "UpdateExpression": update,
                        # Untainted: a revocation marking it meanwhile cancels the start.
                        "ConditionExpression": "#s = :old AND attribute_not_exists(tainted)",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": move_values,
                    }
                },
                self._put_event(rollout, event),
            ]
            if self._commit(items):
                return self._pointer_dict(rollout)
        raise states.Conflict(f"cannot start rollout {rollout.id}: the registry kept changing; try again")

    def change_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        for _ in range(_ATTEMPTS):
            rollouts.check_change(
                new, event, self._get(new.model, rollouts.POINTER_SK), rollouts.CHANGE_ACTIONS
            )
            if self._commit(self._rollout_change(new, event)):
                return self._pointer_dict(new)
        raise states.Conflict(f"cannot change rollout {new.id}: the registry kept changing; try again")

    def abort_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        model, version, after = new.model, new.candidate, new.status_after_abort
        for _ in range(_ATTEMPTS):
            rollouts.check_change(new, event, self._get(model, rollouts.POINTER_SK), (rollouts.ABORT,))
            doc = self.version(model, version)
            if doc is None:
                raise states.not_registered(model, version)
            if doc["status"] != states.ROLLING_OUT:  # a rival change of the rollout (a completion)?
                rollouts.check_change(new, event, self._get(model, rollouts.POINTER_SK), (rollouts.ABORT,))
            states.check_source(model, version, after, doc["status"], (states.ROLLING_OUT,))
            transition = states.transition(states.ROLLING_OUT, after, event.at, event.by, event.reason)
            move = self._move_item(model, version, states.ROLLING_OUT, after, event.at, transition)
            if self._commit([*self._rollout_change(new, event), move]):
                return self._pointer_dict(new)
        raise states.Conflict(f"cannot abort rollout {new.id}: the registry kept changing; try again")

    def complete_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        return self._apply(rollouts.completion(new, event), ending=(new, event))

    def _commit(self, items: list[dict[str, Any]]) -> bool:
        """One transaction; False if it was cancelled (the caller reads again and decides)."""
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if dynamo.cancellation_codes(exc) is None:
                raise
            return False
        return True

    def _pointer_dict(self, new: Rollout) -> dict[str, Any]:
        pointer = rollouts.read_pointer(dynamo.from_item(dynamo.to_item(new.to_dict())))
        assert pointer is not None
        return pointer

    def _put_pointer(
        self, new: Rollout, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.registry_table,
            "Item": {**dynamo.to_item(new.to_dict()), **self._key(new.model, rollouts.POINTER_SK)},
            "ConditionExpression": condition,
        }
        if names:
            put["ExpressionAttributeNames"] = names
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _put_event(self, new: Rollout, event: Event) -> dict[str, Any]:
        record = rollouts.event_record(new.model, new.number, event)
        key = {
            "pk": {"S": _rollout_pk(new.model)},
            "sk": {"S": rollouts.event_key(new.number, event.revision)},
        }
        return {
            "Put": {
                "TableName": self.audit_table,
                "Item": {**dynamo.to_item(record), **key},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _rollout_change(self, new: Rollout, event: Event) -> list[dict[str, Any]]:
        """The pointer replaced (conditional on the revision before ``new``'s) and the event."""
        condition = "#n = :number AND revision = :prev"
        values = {":number": {"N": str(new.number)}, ":prev": {"N": str(new.revision - 1)}}
        return [self._put_pointer(new, condition, {"#n": "number"}, values), self._put_event(new, event)]

    def _no_rollout_running(self, model: str) -> dict[str, Any]:
        """A champion change's check that no rollout is running (none ever, or the last one ended)."""
        return {
            "ConditionCheck": {
                "TableName": self.registry_table,
                "Key": self._key(model, rollouts.POINTER_SK),
                "ConditionExpression": "attribute_not_exists(pk) OR #s IN (:completed, :aborted)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": _ENDED,
            }
        }

    def rollout(self, model: str) -> dict[str, Any] | None:
        return rollouts.read_pointer(self._get(model, rollouts.POINTER_SK))

    def rollout_events(self, model: str, number: int | None = None) -> list[dict[str, Any]]:
        prefix = None if number is None else rollouts.event_key(number, 0)[:7]
        events = self._query(self.audit_table, _rollout_pk(model), prefix)
        return [rollouts.read_event(doc) for doc in sorted(events, key=lambda doc: str(doc["sk"]))]

    # --- taint ----------------------------------------------------------------------------------

    def taint(self, model: str, version: int, upload_id: str, detail: dict[str, Any]) -> bool:
        """``tainted`` is a map by upload id: created whole by the first taint, then one key per
        upload, each write conditional so that a repeat (or a race) marks once."""
        key = self._key(model, _version_sk(version))
        at = {":at": {"S": self._now()}}
        attempts = [
            ("SET tainted = :map, updated_at = :at", "attribute_exists(pk) AND attribute_not_exists(tainted)",
             {":map": dynamo.to_value({upload_id: detail})}),
            ("SET tainted.#u = :d, updated_at = :at", "attribute_exists(pk) AND attribute_not_exists(tainted.#u)",
             {":d": dynamo.to_value(detail)}),
        ]  # fmt: skip
        for update, condition, values in attempts:
            args: dict[str, Any] = {
                "TableName": self.registry_table,
                "Key": key,
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {**values, **at},
            }
            if "#u" in update:
                args["ExpressionAttributeNames"] = {"#u": upload_id}
            try:
                self._db.update_item(**args)
                return True
            except ClientError as exc:
                if not dynamo.condition_failed(exc):
                    raise
            found = self.version(model, version)
            if found is None:
                raise states.not_registered(model, version)
            if upload_id in (found.get("tainted") or {}):
                return False
        raise states.Conflict(f"could not mark {model} v{version} tainted: it kept changing; try again")

    # --- shadow challenger ------------------------------------------------------------------------

    def set_challenger(self, model: str, version: int | None, by: str, reason: str) -> dict[str, Any]:
        """Not a champion change, so not in the audit ledger; the pointer keeps who set it and why."""
        if version is not None:
            states.check_challenger(model, version, self.version(model, version))
        doc = {"version": version, "at": self._now(), "by": by, "reason": reason, "model": model}
        self._db.put_item(
            TableName=self.registry_table,
            Item={**dynamo.to_item(doc), **self._key(model, "challenger")},
        )
        return doc

    def challenger(self, model: str) -> int | None:
        pointer = self._get(model, "challenger")
        return int(pointer["version"]) if pointer and pointer.get("version") is not None else None

    # --- reads ----------------------------------------------------------------------------------

    def champion(self, model: str) -> int | None:
        pointer = self._pointer(model)
        return pointer.version if pointer else None

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        doc = self._get(model, _version_sk(v))
        return _without_keys(doc) if doc is not None else None

    def versions(self, model: str) -> list[dict[str, Any]]:
        return [_without_keys(doc) for doc in self._query(self.registry_table, _pk(model), "version#")]

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
        """Oldest first, by ``seq`` (the order the promotions took effect, whatever the clocks said)."""
        entries = self._query(self.audit_table, _pk(model))
        for entry in entries:
            entry["id"] = entry.pop("sk")
            entry["model"] = entry.pop("pk").removeprefix("model#")
            entry.setdefault("from_version", None)
            entry.setdefault("undoes", None)
        return sorted(entries, key=lambda e: (int(e.get("seq", 0)), e["id"]))
