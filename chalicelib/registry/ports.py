"""What the registry's services need from outside: the registry store, the dataset's contract, the
stored candidate files, the notifier and a clock.

Adapters: ``chalicelib.adapters.aws`` (DynamoDB, S3, SNS) and ``chalicelib.adapters.memory``; one
contract suite per port (``tests/adapters``) holds both to the same semantics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.notify import Notifier
from chalicelib.registry.rollout import Event, Rollout
from chalicelib.serving.ports import ArtifactReader
from chalicelib.validation.contract import Contract

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Registry(Protocol):
    """Model versions, their statuses, the champion and challenger pointers, the audit ledger.

    The rules are ``chalicelib.registry.states``'; what a store guarantees beyond them:

    * ``register_version``: one version per candidate (keyed by ``states.candidate_id``), even when
      the same candidate is registered concurrently; numbers rise by one per model and are never
      reused (a lost race may skip one).
    * ``set_status``, ``await_approval`` and ``update_gates``: conditional on the status read (and
      ``await_approval`` on the champion); a concurrent change makes them raise ``StatusConflict``
      (``PromotionConflict`` when the champion moved), never stack.
    * ``approve``, ``promote`` and ``rollback``: all or nothing (pointer, the new champion's status
      with its approval, the old champion retired, the versions waiting for approval superseded, the
      audit entry), conditional on the champion the caller expected and on every status read: of
      concurrent conflicting changes exactly one wins, the others raise a ``states.Conflict``
      (``PromotionConflict`` naming the champion they found, ``StatusConflict``) and change nothing.
    * while a rollout is running (its pointer ``active`` or ``paused``), ``approve``, ``promote`` and
      ``rollback`` raise ``states.RolloutRunning`` (a 409, "abort it first") and change nothing;
      they are conditional on the rollout pointer too, so a rollout starting meanwhile wins or loses
      as a whole.
    * rollouts (``chalicelib.registry.rollout``): ``start_rollout``, ``change_rollout``,
      ``abort_rollout`` and ``complete_rollout`` each commit the rollout pointer, what they do to
      versions and the champion, and the event (create-only), all or nothing; each change is
      conditional on the pointer's ``revision`` being the one before the new state's, so of a
      person's abort and the evaluator's step racing exactly one commits and the other raises
      ``RolloutConflict``. The pointer lives in the store (a new adapter, a restarted function,
      reads it back); events list oldest first.
    * an unknown version raises ``states.NotFound`` (``not_registered``) where a change needs one.
    * reads are consistent (what a call wrote, the next read returns); ``versions`` oldest first,
      ``models`` by name, ``audit`` by ``seq``; an unknown version is None.
    """

    def register_version(self, model: str, candidate: dict[str, Any]) -> tuple[int, bool]:
        """The candidate's version and whether this call created it."""
        ...

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
        """Move a version to ``status`` (recording the transition and ``gates``); the new record."""
        ...

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
        """Move a version from ``expected`` to ``pending_approval`` with ``gates``, if the champion is
        still ``expected_champion`` (the one the gates compared with): a version never waits for an
        approval that is stale from the start. The new record."""
        ...

    def update_gates(self, model: str, version: int, gates: dict[str, Any], expected: str) -> None:
        """Replace a version's gate figures if it is still ``expected``."""
        ...

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
        """Approve ``version`` (now ``expected_status``, one of ``states.APPROVABLE``) and make it the
        champion in place of ``expected_champion``, in one change; the audit entry."""
        ...

    def promote(
        self, model: str, version: int, by: str, reason: str, expected_champion: int | None
    ) -> dict[str, Any]:
        """Make ``version`` (approved or retired) the champion in place of ``expected_champion``; the
        audit entry."""
        ...

    def rollback(self, model: str, by: str, reason: str) -> dict[str, Any]:
        """Bring back the champion before the current one (``states.rollback_of``); the audit entry."""
        ...

    def taint(self, model: str, version: int, upload_id: str, detail: dict[str, Any]) -> bool:
        """Mark the version tainted by a revoked upload (``tainted[upload_id] = detail``,
        ``states.taint_detail``), once per upload: True if this call marked it. Its status does not
        change; a tainted version can no longer become the champion (approve, promote and rollback
        raise ``StatusConflict``, atomically with the marking: of a promotion and a taint of the same
        version, whichever commits second sees the first)."""
        ...

    def set_challenger(self, model: str, version: int | None, by: str, reason: str) -> dict[str, Any]:
        """Name the version that shadows the champion (None: none); the pointer."""
        ...

    def start_rollout(
        self, rollout: Rollout, event: Event, expected_status: str, gates: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start ``rollout`` (from ``rollout.start``): the pointer written, if no rollout is running
        and the last one is number ``rollout.number - 1`` (or there was none); the champion checked
        (still ``rollout.champion``); the candidate moved from ``expected_status`` (one of
        ``states.ROLLOUT_SOURCES``; untainted) to ``rolling_out`` through ``approved``
        (``rollout.start_moves``), with ``gates`` when given; the start event. The pointer
        (``Rollout.to_dict``)."""
        ...

    def change_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        """A step, pause or resume: the pointer replaced by ``new`` if its revision is still
        ``new.revision - 1``, and the event. The pointer."""
        ...

    def abort_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        """An abort: the pointer (revision as ``change_rollout``), the candidate from ``rolling_out``
        to ``new.status_after_abort`` (the transition with the abort's reason), the event. The
        pointer."""
        ...

    def complete_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        """A completion: the candidate made champion by the same change as any promotion
        (``rollout.completion``: the old champion retired, the waiting versions superseded, a
        ``promote`` ledger entry naming the rollout), with the pointer (revision as
        ``change_rollout``) and the event. The ledger entry."""
        ...

    def rollout(self, model: str) -> dict[str, Any] | None:
        """The model's running or last rollout pointer (``Rollout.to_dict``); None: never one."""
        ...

    def rollout_events(self, model: str, number: int | None = None) -> list[dict[str, Any]]:
        """The events of the model's rollouts (of rollout ``number`` only, when given), oldest first
        (``rollout.event_record``)."""
        ...

    def challenger(self, model: str) -> int | None: ...

    def champion(self, model: str) -> int | None: ...

    def version(self, model: str, v: int) -> dict[str, Any] | None: ...

    def versions(self, model: str) -> list[dict[str, Any]]: ...

    def models(self) -> list[str]: ...

    def audit(self, model: str) -> list[dict[str, Any]]: ...


class ContractReader(Protocol):
    """The datasets' contracts (the promotion policy is a section of them)."""

    def get(self, dataset: str) -> Contract:
        """The dataset's contract; ``NoContract`` if it has none."""
        ...


class RevokedUpload(Protocol):
    """What the registry reads of a revoked upload's ledger entry (``chalicelib.ingest.Upload``)."""

    @property
    def revoked_at(self) -> str | None: ...

    @property
    def revoked_by(self) -> str | None: ...

    @property
    def revoked_reason(self) -> str | None: ...


class Revocations(Protocol):
    """The uploads ledger, as far as revocations go."""

    def revoked(self, dataset: str) -> frozenset[str]:
        """The ids of the dataset's revoked uploads."""
        ...

    def get(self, upload_id: str) -> RevokedUpload | None:
        """An upload's entry (None: unknown)."""
        ...


class NoRevocations:
    """Nothing revoked (service tests of other concerns)."""

    def revoked(self, dataset: str) -> frozenset[str]:
        return frozenset()

    def get(self, upload_id: str) -> RevokedUpload | None:
        return None


@dataclass(frozen=True)
class EvaluatorPorts:
    """Everything the promotion evaluator touches outside its process."""

    registry: Registry
    artifacts: ArtifactReader
    contracts: ContractReader
    notifier: Notifier
    clock: Clock = field(default=utc_now)
    revocations: Revocations = field(default_factory=NoRevocations)
