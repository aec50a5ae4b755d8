"""The registry's rules, apart from any store: statuses and their moves, what a new version record
holds, what may be promoted, and which champion a rollback goes back to.

Statuses: ``candidate`` (registered) -> ``pending_approval`` / ``rejected`` (by a status change: the
gates' verdict or a person) -> ``champion`` -> ``retired``, and ``superseded`` (only by a champion
change). A status change allows exactly the moves in ``ALLOWED``; it never makes or unmakes a champion.

An **approval** is a promotion: the version moves from ``candidate`` (the evaluator, when the gates
say ``promote``) or ``pending_approval`` (a person) through ``approved`` to ``champion`` in one
all-or-nothing change (``Promotion.approving``), so every champion has an approval in its
transitions, and an approval that loses a race leaves nothing behind. ``approved`` remains a status
of records written before that (an approval, then a separate promotion); such a version is still
approvable and promotable. Promotable without an approval (``PROMOTABLE``): ``approved`` and
``retired`` (a former champion, which is what a rollback brings back).

Every champion change (a promotion, an approval, a rollback) **supersedes** the versions waiting for
approval (``pending_approval``, or ``approved`` and never promoted): they were judged against a
champion that is no longer the champion, so their approval would be stale. ``superseded`` can only
be rejected; ``rejected`` is final.

**Rollouts** (``chalicelib.registry.rollout``): a promotion can also go by steps. At a rollout's start
the version moves to ``rolling_out`` (from ``pending_approval``, ``approved`` or ``candidate``
through ``approved``, so the approval is in its transitions; or straight from ``retired``, a former
champion), and serves a growing share of the traffic beside the champion. Its completion is a
champion change like any other (``Promotion`` with ``rollout`` set: ``rolling_out`` -> ``champion``,
the old champion retired, the waiting versions superseded, a ``promote`` ledger entry); its abort
moves it back (``pending_approval``, or ``retired`` for a former champion). While a rollout is
running (its pointer ``active`` or ``paused``), no other champion change commits: an approval, a
promotion or a rollback is refused (``RolloutRunning``, a 409: "abort it first"), so the champion a
rollout compares with and falls back to stays the champion until the rollout ends.

Rollback: the audit ledger is an undo stack. Reading it oldest first, a ``promote`` entry is pushed
and a ``rollback`` entry pops the promotion it undid; the top of the stack is the promotion that made
the current champion, and a rollback promotes that entry's ``from_version`` back. So rolling back
twice in a row goes back two promotions (3 -> 2 -> 1), never ping-pongs (3 -> 2 -> 3), and a rollback
past the first champion raises ``NothingToRollBack``. A manual promotion of a retired version is a
forward step like any other (it is pushed, and a rollback undoes it).

Every store (``chalicelib.registry.ports.Registry``) applies these rules; the records it returns are
the dicts the API shows (``version_record``, ``transition`` and ``Promotion.entry`` build them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import errors
from chalicelib.errors import RegistryError
from chalicelib.serving.servable import tainted_reason

CANDIDATE = "candidate"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
CHAMPION = "champion"
RETIRED = "retired"
REJECTED = "rejected"
SUPERSEDED = "superseded"
ROLLING_OUT = "rolling_out"
STATUSES = (CANDIDATE, PENDING_APPROVAL, APPROVED, CHAMPION, RETIRED, REJECTED, SUPERSEDED, ROLLING_OUT)
# Status changes: target -> the statuses it may come from. champion, retired and superseded only by a
# champion change.
ALLOWED: dict[str, tuple[str, ...]] = {
    # approved -> pending_approval: the evaluator re-judged an approved version (a record from before
    # approvals were promotions) against a champion that had changed, and now a person must decide.
    PENDING_APPROVAL: (CANDIDATE, APPROVED),
    APPROVED: (CANDIDATE, PENDING_APPROVAL),
    REJECTED: (CANDIDATE, PENDING_APPROVAL, APPROVED, RETIRED, SUPERSEDED),
}
PROMOTABLE = (APPROVED, RETIRED)
# What an approval (approve and promote at once) may start from.
APPROVABLE = (CANDIDATE, PENDING_APPROVAL, APPROVED)
# What a champion change supersedes: versions judged against the champion it replaces.
SUPERSEDABLE = (PENDING_APPROVAL, APPROVED)
# What a rollout may start from: what an approval starts from, and a former champion.
ROLLOUT_SOURCES = (CANDIDATE, PENDING_APPROVAL, APPROVED, RETIRED)
# A rollout pointer's statuses while it routes traffic (``rollout.RUNNING``; not imported from there:
# that module builds on this one).
ROLLOUT_RUNNING = ("active", "paused")
PROMOTE = "promote"
ROLLBACK = "rollback"
REGISTERED_BY = "registry"
# Keys of a version record that a candidate document cannot set (pk and sk: a store's keys).
RESERVED = frozenset(
    {"model", "version", "candidate_id", "status", "transitions", "gates", "created_at", "updated_at"}
    | {"pk", "sk"}
)


class Conflict(RegistryError, errors.Conflict):
    """A change the registry's current state does not allow (a 409): nothing was changed."""


class NotFound(RegistryError, errors.NotFound):
    """No such model, or no such version of it (a 404)."""


class PromotionConflict(Conflict):
    """The champion is not the one the caller expected: someone else promoted first."""

    def __init__(self, model: str, expected: int | None, current: int | None, version: int) -> None:
        self.model, self.expected, self.current, self.version = model, expected, current, version
        super().__init__(
            f"cannot promote {model} v{version}: the current champion is {label(current)}, "
            f"not {label(expected)} as expected; read the champion again and decide anew"
        )


class StatusConflict(Conflict):
    """A conditional status change found another status than the one it required."""


class RolloutConflict(Conflict):
    """A rollout is not in a state that allows the change, or it changed since it was read (a 409;
    ``chalicelib.registry.rollout`` raises it, and re-exports it)."""


class RolloutRunning(RolloutConflict):
    """A champion change (or another rollout) while a rollout is running: the rollout must end
    (complete or abort) first."""

    def __init__(self, model: str, pointer: Mapping[str, Any]) -> None:
        self.model, self.candidate = model, int(pointer["candidate"])
        super().__init__(
            f"a rollout of v{self.candidate} is in progress ({model} rollout {pointer.get('number')}, "
            f"{pointer.get('status')}); abort it first"
        )


def check_no_rollout(model: str, pointer: Mapping[str, Any] | None) -> None:
    """``RolloutRunning`` if the model's rollout pointer (None: never one) says a rollout is running."""
    if pointer is not None and pointer.get("status") in ROLLOUT_RUNNING:
        raise RolloutRunning(model, pointer)


class NothingToRollBack(Conflict):
    """The current champion was the model's first: there is no earlier champion to go back to."""


def label(version: int | None) -> str:
    """A champion for a message: ``v3``, or ``none`` (never a Python ``None``)."""
    return "none" if version is None else f"v{version}"


def not_registered(model: str, version: int) -> NotFound:
    return NotFound(f"{model} v{version} is not registered")


# --- names and values --------------------------------------------------------------------------------


def check_model(model: str) -> str:
    if not model or not isinstance(model, str):
        raise ValueError("model: a non-empty name is required")
    return model


def check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        got = "nothing" if version is None else repr(version)
        raise ValueError(f"version: a positive integer is required, got {got}")
    return version


def check_finite(value: Any, path: str) -> None:
    """NaN or infinity cannot be stored (DynamoDB has no NaN): refuse them instead of losing them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: {value!r} cannot be stored; record an undefined number as null")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_finite(v, f"{path}[{i}]")


# --- registration --------------------------------------------------------------------------------------


def candidate_id(candidate: Mapping[str, Any]) -> str:
    """What identifies a candidate (its run id, else its manifest key): one version per candidate."""
    found = candidate.get("run_id") or candidate.get("manifest_key")
    if not isinstance(found, str) or not found:
        raise ValueError("candidate: a run_id (or manifest_key) string is required to register it")
    check_finite(dict(candidate), "candidate")
    return found


def transition(old: str | None, new: str, at: str, by: str, reason: str) -> dict[str, Any]:
    return {"from": old, "to": new, "at": at, "by": by, "reason": reason}


def version_record(model: str, version: int, candidate: Mapping[str, Any], at: str) -> dict[str, Any]:
    """A newly registered version: what the candidate brought, status ``candidate``, no gates yet."""
    extra = {k: v for k, v in candidate.items() if k not in RESERVED}
    return {
        **extra,
        "model": model,
        "version": version,
        "candidate_id": candidate_id(candidate),
        "status": CANDIDATE,
        "transitions": [transition(None, CANDIDATE, at, REGISTERED_BY, "registered")],
        "gates": {},
        "created_at": at,
        "updated_at": at,
    }


# --- status changes --------------------------------------------------------------------------------


def sources(status: str, expected: str | None) -> tuple[str, ...]:
    """The statuses a version may be in to move to ``status`` (just ``expected`` when given)."""
    if status not in ALLOWED:
        raise ValueError(
            f"status: {status!r} cannot be set here; allowed: {', '.join(ALLOWED)} "
            "(champion and retired are set by promote)"
        )
    if expected is not None and expected not in ALLOWED[status]:
        raise ValueError(f"a version cannot move from {expected!r} to {status!r}")
    return (expected,) if expected is not None else ALLOWED[status]


def check_source(model: str, version: int, status: str, found: str, allowed: tuple[str, ...]) -> None:
    if found not in allowed:
        raise StatusConflict(
            f"cannot set {model} v{version} to {status}: it is {found}, expected {' or '.join(allowed)}"
        )


def check_promotable(model: str, version: int, status: str) -> None:
    if status not in PROMOTABLE:
        raise StatusConflict(
            f"cannot promote {model} v{version}: it is {status}; "
            f"only {' or '.join(PROMOTABLE)} versions can be promoted"
        )


def superseded_reason(promotion: Promotion) -> str:
    """Why a champion change supersedes the versions waiting for approval (names the new champion)."""
    how = (
        "approved"
        if promotion.approving
        else f"rollout {promotion.rollout} completed"
        if promotion.rollout
        else {PROMOTE: "promoted"}.get(promotion.action, promotion.action)
    )
    return (
        f"v{promotion.version} became the champion ({how} by {promotion.by}) after this "
        f"version was judged; a new candidate is judged against v{promotion.version}"
    )


def to_supersede(versions: Iterable[Mapping[str, Any]], promotion: Promotion) -> list[tuple[int, str]]:
    """The versions (and their statuses) that ``promotion`` supersedes, oldest first."""
    return sorted(
        (int(doc["version"]), str(doc["status"]))
        for doc in versions
        if doc["status"] in SUPERSEDABLE and int(doc["version"]) != promotion.version
    )


# --- promotion and rollback ------------------------------------------------------------------------


@dataclass(frozen=True)
class Champion:
    """The champion pointer: the version, and ``seq``, the number of promotions so far."""

    version: int
    seq: int


@dataclass(frozen=True)
class Promotion:
    """One champion change to make: ``version`` replaces ``expected`` (None: the first champion).

    ``expected_seq`` (a rollback) also requires the pointer's count, so that a promotion and its
    undo in between (A -> B -> A) is a change the rollback notices.

    ``approving`` (an approval) is the status the version must be in (one of ``APPROVABLE``): the
    approval is recorded with the promotion, all or nothing, and ``gates`` (when given) replace the
    version's gate record in the same change.

    ``rollout`` (a rollout's completion: its id, ``<model>/r<number>``): the version must be
    ``rolling_out`` (its approval was recorded when the rollout started), and the ledger entry names
    the rollout. Nothing else promotes a ``rolling_out`` version: ``PROMOTABLE`` stays as it is."""

    model: str
    version: int
    by: str
    reason: str
    expected: int | None
    action: str = PROMOTE
    undoes: int | None = None
    expected_seq: int | None = None
    approving: str | None = None
    gates: Mapping[str, Any] | None = None
    rollout: str | None = None

    def __post_init__(self) -> None:
        check_model(self.model)
        check_version(self.version)
        if self.expected is not None:
            check_version(self.expected)
        if self.version == self.expected:
            raise StatusConflict(f"{self.model} v{self.version} is already the champion")
        if self.approving is not None and self.approving not in APPROVABLE:
            raise ValueError(f"an approval starts from {' or '.join(APPROVABLE)}, not from {self.approving}")
        if self.rollout is not None and (self.approving is not None or self.action != PROMOTE):
            raise ValueError(
                "a rollout's completion is a promotion of its own: not an approval, not a rollback"
            )
        if self.gates is not None:
            check_finite(dict(self.gates), "gates")

    def moves(self, status: str, at: str) -> list[dict[str, Any]]:
        """The transitions this promotion appends to the version, now ``status``; ``StatusConflict``
        if it cannot start from there (an approval: only from the status it expects; a rollout's
        completion: only from ``rolling_out``)."""
        if self.rollout is not None:
            if status != ROLLING_OUT:
                raise StatusConflict(
                    f"cannot complete rollout {self.rollout}: {self.model} v{self.version} is {status}, "
                    f"expected {ROLLING_OUT}"
                )
            return [transition(ROLLING_OUT, CHAMPION, at, self.by, self.reason)]
        if self.approving is None:
            check_promotable(self.model, self.version, status)
            return [transition(status, CHAMPION, at, self.by, self.reason)]
        if status != self.approving:
            raise StatusConflict(
                f"cannot approve {self.model} v{self.version}: it is {status}, expected {self.approving}"
            )
        approval = [] if status == APPROVED else [transition(status, APPROVED, at, self.by, self.reason)]
        return [*approval, transition(APPROVED, CHAMPION, at, self.by, self.reason)]

    def check_pointer(self, pointer: Champion | None) -> None:
        """PromotionConflict unless the champion is still the one this promotion replaces."""
        current = pointer.version if pointer else None
        seq = pointer.seq if pointer else 0
        if current != self.expected or (self.expected_seq is not None and seq != self.expected_seq):
            raise PromotionConflict(self.model, self.expected, current, self.version)

    def entry(self, seq: int, at: str, superseded: Iterable[int] = ()) -> dict[str, Any]:
        """The audit entry this promotion writes as the pointer's ``seq``-th change (a rollout's
        completion: with ``rollout``, the rollout's id)."""
        entry: dict[str, Any] = {
            "who": self.by,
            "action": self.action,
            "from_version": self.expected,
            "to_version": self.version,
            "reason": self.reason,
            "at": at,
            "seq": seq,
            "undoes": self.undoes,
            "approved": self.approving is not None,
            "superseded": list(superseded),
        }
        if self.rollout is not None:
            entry["rollout"] = self.rollout
        return entry


def audit_id(at: str, seq: int) -> str:
    """An audit entry's id (its sort key): the time, then the seq, so ids sort in order of writing."""
    return f"{at}#{seq:08d}"


def rollback_of(
    model: str, pointer: Champion | None, ledger: Iterable[Mapping[str, Any]], by: str, reason: str
) -> Promotion:
    """The promotion that undoes the one that made the current champion (see the module docstring).

    ``ledger`` is the model's audit entries, oldest first. Raises ``NothingToRollBack`` when there is
    no champion or it was the first, ``Conflict`` when the ledger does not lead to the pointer (a
    promotion committing while it was read: the caller may try again)."""
    if pointer is None:
        raise NothingToRollBack(f"{model} has no champion to roll back")
    entries = [e for e in ledger if int(e["seq"]) <= pointer.seq]
    if [int(e["seq"]) for e in entries] != list(range(1, pointer.seq + 1)):
        raise Conflict(f"{model}'s audit ledger is behind its champion pointer; try again")
    stack: list[Mapping[str, Any]] = []
    for entry in entries:
        if entry["action"] != ROLLBACK:
            stack.append(entry)
        elif stack and int(stack[-1]["seq"]) == int(entry.get("undoes") or -1):
            stack.pop()
        else:
            raise RegistryError(f"{model}'s audit ledger is inconsistent at seq {entry['seq']}")
    if not stack or int(stack[-1]["to_version"]) != pointer.version:
        raise Conflict(f"{model}'s audit ledger does not end with its champion v{pointer.version}; try again")
    top = stack[-1]
    if top.get("from_version") is None:
        raise NothingToRollBack(f"{model} v{pointer.version} was the first champion: nothing to roll back to")
    return Promotion(
        model,
        int(top["from_version"]),
        by,
        reason,
        expected=pointer.version,
        action=ROLLBACK,
        undoes=int(top["seq"]),
        expected_seq=pointer.seq,
    )


# --- taint: versions trained or evaluated on a revoked upload -------------------------------------------


def taint_detail(trained: bool, evaluated: bool, by: str, reason: str, at: str) -> dict[str, Any]:
    """What a version's record keeps under ``tainted[<upload id>]``: how the upload reached it, and
    the revocation (who, why, when)."""
    return {"trained": trained, "evaluated": evaluated, "by": by, "reason": reason, "at": at}


def check_untainted(model: str, version: int, doc: Mapping[str, Any]) -> None:
    """StatusConflict if the version is tainted: it cannot become the champion."""
    why = tainted_reason(doc)
    if why:
        raise StatusConflict(f"cannot make {model} v{version} the champion: it is {why}")


def check_challenger(model: str, version: int, doc: Mapping[str, Any] | None) -> None:
    """A challenger must be registered and not rejected."""
    if doc is None:
        raise not_registered(model, version)
    if doc["status"] == REJECTED:
        raise StatusConflict(f"{model} v{version} was rejected; it cannot shadow the champion")
    why = tainted_reason(doc)
    if why:
        raise StatusConflict(f"{model} v{version} is {why}; it cannot shadow the champion")
