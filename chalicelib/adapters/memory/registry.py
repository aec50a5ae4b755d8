"""The model registry in memory, with the DynamoDB adapter's semantics (``tests/adapters`` holds both
to them): one version per candidate, conditional status changes, all-or-nothing promotions and
approvals conditional on the champion (superseding the versions waiting for approval), an
append-only ledger ordered by ``seq``, rollouts whose every change is conditional on the pointer's
revision and refuses the other champion changes while running, their events create-only. One lock makes every write atomic, as DynamoDB's conditional
writes and transactions are, so every change is linearizable."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.memory.documents import stored, value
from chalicelib.registry import rollout as rollouts
from chalicelib.registry import states
from chalicelib.registry.rollout import Event, Rollout
from chalicelib.registry.states import CHAMPION, PENDING_APPROVAL, RETIRED, SUPERSEDED, Champion, Promotion


@dataclass
class _Model:
    last_version: int = 0
    candidates: dict[str, int] = field(default_factory=dict)
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)
    champion: Champion | None = None
    challenger: dict[str, Any] | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    rollout: dict[str, Any] | None = None  # the pointer as stored
    rollout_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # by rollout.event_key


class MemoryRegistry:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._models: dict[str, _Model] = {}
        self._lock = threading.RLock()

    def __deepcopy__(self, memo: dict[int, Any]) -> MemoryRegistry:
        """An independent copy of everything stored (a model checker replays changes on copies)."""
        clone = MemoryRegistry(self._clock)
        with self._lock:
            clone._models = copy.deepcopy(self._models, memo)
        return clone

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="microseconds")

    def _model(self, model: str) -> _Model:
        """The model's state, created on first write."""
        return self._models.setdefault(states.check_model(model), _Model())

    def _peek(self, model: str) -> _Model:
        """The model's state for a read (an unknown model reads as empty, and is not created)."""
        return self._models.get(states.check_model(model)) or _Model()

    # --- registration ---------------------------------------------------------------------------

    def register_version(self, model: str, candidate: dict[str, Any]) -> tuple[int, bool]:
        key = states.candidate_id(candidate)
        with self._lock:
            state = self._model(model)
            if key in state.candidates:
                return state.candidates[key], False
            state.last_version += 1
            version = state.last_version
            state.versions[version] = stored(states.version_record(model, version, candidate, self._now()))
            state.candidates[key] = version
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
        allowed = states.sources(status, expected)
        states.check_version(version)
        with self._lock:
            doc = self._peek(model).versions.get(version)
            if doc is None:
                raise states.not_registered(model, version)
            states.check_source(model, version, status, doc["status"], allowed)
            if gates is not None:
                states.check_finite(gates, "gates")
                doc["gates"] = value(gates)
            at = self._now()
            self._move(doc, status, at, by, reason)
            return copy.deepcopy(doc)

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
        allowed = states.sources(PENDING_APPROVAL, expected)
        states.check_version(version)
        with self._lock:
            pointer = self._peek(model).champion
            current = pointer.version if pointer else None
            if current != expected_champion:
                raise states.PromotionConflict(model, expected_champion, current, version)
            return self.set_status(model, version, PENDING_APPROVAL, by, reason, allowed[0], gates)

    def update_gates(self, model: str, version: int, gates: dict[str, Any], expected: str) -> None:
        states.check_finite(gates, "gates")
        states.check_version(version)
        with self._lock:
            doc = self._peek(model).versions.get(version)
            if doc is None:
                raise states.not_registered(model, version)
            if doc["status"] != expected:
                raise states.StatusConflict(f"{model} v{version} is {doc['status']}, not {expected}")
            doc["gates"] = value(gates)
            doc["updated_at"] = self._now()

    @staticmethod
    def _move(doc: dict[str, Any], new: str, at: str, by: str, reason: str) -> None:
        doc["transitions"].append(value(states.transition(doc["status"], new, at, by, reason)))
        doc["status"] = new
        doc["updated_at"] = at

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
        with self._lock:
            state = self._peek(model)
            states.check_no_rollout(model, state.rollout)  # before "nothing to roll back": abort first
            return self._apply(states.rollback_of(model, state.champion, self.audit(model), by, reason))

    def _apply(self, promotion: Promotion, ending: tuple[Rollout, Event] | None = None) -> dict[str, Any]:
        """A champion change; ``ending``: the rollout it completes (its pointer and event are
        written with it), else no rollout may be running."""
        model, version = promotion.model, promotion.version
        with self._lock:
            state = self._peek(model)
            if ending is None:
                states.check_no_rollout(model, state.rollout)
            else:
                rollouts.check_change(*ending, state.rollout, (rollouts.COMPLETE,))
                self._check_rollout_event(state, *ending)
            promotion.check_pointer(state.champion)
            doc = state.versions.get(version)
            if doc is None:
                raise states.not_registered(model, version)
            states.check_untainted(model, version, doc)
            at = self._now()
            moves = promotion.moves(doc["status"], at)
            superseded = states.to_supersede(state.versions.values(), promotion)
            seq = (state.champion.seq if state.champion else 0) + 1
            entry = promotion.entry(seq, at, [v for v, _ in superseded])
            # Every check passed: from here on nothing fails, so the change is all or nothing.
            doc["transitions"].extend(value(moves))
            doc["status"], doc["updated_at"] = CHAMPION, at
            if promotion.gates is not None:
                doc["gates"] = value(dict(promotion.gates))
            if promotion.expected is not None:
                self._move(state.versions[promotion.expected], RETIRED, at, promotion.by, promotion.reason)
            why = states.superseded_reason(promotion)
            for other, _ in superseded:
                self._move(state.versions[other], SUPERSEDED, at, promotion.by, why)
            state.champion = Champion(version, seq)
            audit_id = states.audit_id(at, seq)
            state.ledger.append(stored({**entry, "id": audit_id, "model": model}))
            if ending is not None:
                self._write_rollout(state, *ending)
            return {**entry, "id": audit_id, "model": model}

    # --- rollouts -------------------------------------------------------------------------------

    def start_rollout(
        self, rollout: Rollout, event: Event, expected_status: str, gates: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if gates is not None:
            states.check_finite(gates, "gates")
        with self._lock:
            state = self._peek(rollout.model)
            doc = state.versions.get(rollout.candidate)
            current = state.champion.version if state.champion else None
            rollouts.check_start(rollout, event, expected_status, state.rollout, current, doc)
            self._check_rollout_event(state, rollout, event)
            assert doc is not None
            moves = rollouts.start_moves(expected_status, event.at, event.by, event.reason)
            # Every check passed: from here on nothing fails, so the change is all or nothing.
            doc["transitions"].extend(value(moves))
            doc["status"], doc["updated_at"] = states.ROLLING_OUT, event.at
            if gates is not None:
                doc["gates"] = value(gates)
            return self._write_rollout(state, rollout, event)

    def change_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        with self._lock:
            state = self._peek(new.model)
            rollouts.check_change(new, event, state.rollout, rollouts.CHANGE_ACTIONS)
            self._check_rollout_event(state, new, event)
            return self._write_rollout(state, new, event)

    def abort_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        with self._lock:
            state = self._peek(new.model)
            rollouts.check_change(new, event, state.rollout, (rollouts.ABORT,))
            self._check_rollout_event(state, new, event)
            doc = state.versions.get(new.candidate)
            if doc is None:
                raise states.not_registered(new.model, new.candidate)
            states.check_source(
                new.model, new.candidate, new.status_after_abort, doc["status"], (states.ROLLING_OUT,)
            )
            self._move(doc, new.status_after_abort, event.at, event.by, event.reason)
            return self._write_rollout(state, new, event)

    def complete_rollout(self, new: Rollout, event: Event) -> dict[str, Any]:
        return self._apply(rollouts.completion(new, event), ending=(new, event))

    def _check_rollout_event(self, state: _Model, new: Rollout, event: Event) -> None:
        """Events are create-only: one already under this key refuses the change."""
        if rollouts.event_key(new.number, event.revision) in state.rollout_events:
            raise rollouts.RolloutConflict(
                f"rollout {new.id} has an event at revision {event.revision} already"
            )

    def _write_rollout(self, state: _Model, new: Rollout, event: Event) -> dict[str, Any]:
        key = rollouts.event_key(new.number, event.revision)
        state.rollout_events[key] = stored(rollouts.event_record(new.model, new.number, event))
        state.rollout = stored(new.to_dict())
        pointer = rollouts.read_pointer(state.rollout)
        assert pointer is not None
        return pointer

    def rollout(self, model: str) -> dict[str, Any] | None:
        with self._lock:
            return rollouts.read_pointer(self._peek(model).rollout)

    def rollout_events(self, model: str, number: int | None = None) -> list[dict[str, Any]]:
        prefix = "" if number is None else rollouts.event_key(number, 0)[:7]
        with self._lock:
            found = self._peek(model).rollout_events
            return [
                rollouts.read_event(copy.deepcopy(found[k])) for k in sorted(found) if k.startswith(prefix)
            ]

    def taint(self, model: str, version: int, upload_id: str, detail: dict[str, Any]) -> bool:
        states.check_version(version)
        with self._lock:
            doc = self._peek(model).versions.get(version)
            if doc is None:
                raise states.not_registered(model, version)
            tainted = doc.setdefault("tainted", {})
            if upload_id in tainted:
                return False
            tainted[upload_id] = value(dict(detail))
            doc["updated_at"] = self._now()
            return True

    # --- shadow challenger ------------------------------------------------------------------------

    def set_challenger(self, model: str, version: int | None, by: str, reason: str) -> dict[str, Any]:
        with self._lock:
            if version is not None:
                states.check_challenger(model, version, self.version(model, version))
            doc = {"version": version, "at": self._now(), "by": by, "reason": reason, "model": model}
            self._model(model).challenger = stored(doc)
            return doc

    def challenger(self, model: str) -> int | None:
        with self._lock:
            pointer = self._peek(model).challenger
            return int(pointer["version"]) if pointer and pointer.get("version") is not None else None

    # --- reads ----------------------------------------------------------------------------------

    def champion(self, model: str) -> int | None:
        with self._lock:
            pointer = self._peek(model).champion
            return pointer.version if pointer else None

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        states.check_version(v)
        with self._lock:
            return copy.deepcopy(self._peek(model).versions.get(v))

    def versions(self, model: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._peek(model)
            return [copy.deepcopy(state.versions[v]) for v in sorted(state.versions)]

    def models(self) -> list[str]:
        with self._lock:
            return sorted(name for name, state in self._models.items() if state.last_version)

    def audit(self, model: str) -> list[dict[str, Any]]:
        with self._lock:
            entries = copy.deepcopy(self._peek(model).ledger)
        for entry in entries:
            entry.setdefault("from_version", None)
            entry.setdefault("undoes", None)
        return sorted(entries, key=lambda e: (int(e.get("seq", 0)), e["id"]))
