"""The registry's state machine as a property (hypothesis ``RuleBasedStateMachine``), run against both
stores, the in-memory one and DynamoDB (moto), built as in ``test_registry_contract.py``.

Rules are what happens to one model: candidates registered; the evaluator's verdicts (promote,
wait for approval, reject), also against a champion that is no longer the champion (the race it
loses); people approving, rejecting and rolling back through the API's service; a direct promotion;
an approved-but-never-promoted record as older code left them; calls about unknown versions; rollouts
started, paused, resumed and aborted by people, stepped and completed by the rollout evaluator. After
every step the invariants hold:

* at most one champion, and the champion pointer names exactly the version whose status says so;
* every version that was ever champion has an approval in its transitions before it first was;
* ``rejected`` is final, and every version's transitions chain up to its status;
* the audit ledger (seq 1, 2, 3...) replays, promotions pushed and rollbacks popping the entry they
  undo, to the champion pointer;
* no version waits for an approval that is stale: a ``pending_approval`` version was judged against
  the current champion (champion changes supersede the others);
* a running rollout has exactly one ``rolling_out`` version, its candidate, against the current
  champion; without one no version is ``rolling_out``; its events number 1..revision;
* a refused call is a 409 or 404 kind (never anything that would be a 5xx), changes nothing, and its
  message shows no Python repr (``None``, ``{}``, ``[]``...): issue 14, "What failed" 4.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from chalicelib import errors
from chalicelib.adapters.aws.registry import DynamoRegistry
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import rollout, rollouts, service
from chalicelib.registry.ports import Registry
from chalicelib.validation import Contract, NoContract
from tests.support import PYTHON_REPR

EVALUATOR = "evaluator"


class NoContracts:
    """No contract: rollouts get the default schedule and guards, approvals switch."""

    def get(self, dataset: str) -> Contract:
        raise NoContract(dataset)


PEOPLE = ("alice (approver)", "bob (approver)", "ops (admin)")


class RegistryMachine(RuleBasedStateMachine):
    """One model's life on one store; ``make`` builds the store (set by each test)."""

    make: Callable[[], Registry] = MemoryRegistry

    def __init__(self) -> None:
        super().__init__()
        self.reg = self.make()
        self.model = f"m{uuid.uuid4().hex[:10]}"
        self.notifier = MemoryNotifier()
        self.runs = 0
        self.rejected: set[int] = set()
        self.messages: list[str] = []
        self.known: tuple[Any, ...] | None = None  # the store as the last invariant check read it

    versions = Bundle("versions")

    # --- helpers ------------------------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        return (
            self.reg.versions(self.model),
            self.reg.champion(self.model),
            self.reg.audit(self.model),
            self.reg.rollout(self.model),
            self.reg.rollout_events(self.model),
        )

    @contextmanager
    def refusable(self) -> Iterator[None]:
        """A call that may be refused: then with a 409 or 404 kind, a clean message, nothing changed."""
        before = self.known if self.known is not None else self.snapshot()
        self.known = None
        try:
            yield
        except errors.MlopsError as exc:
            assert isinstance(exc, errors.Conflict | errors.NotFound), f"{type(exc).__name__}: {exc}"
            self.messages.append(str(exc))
            assert not PYTHON_REPR.search(str(exc)), str(exc)
            after = self.snapshot()
            assert after == before, f"refused, yet changed: {exc}"
            self.known = after

    def judged(self, decision: str, champion: int | None) -> dict[str, Any]:
        return {"decision": decision, "reason": f"the gates say {decision}", "evaluated_against": champion}

    # --- rules ----------------------------------------------------------------------------------------

    @rule(target=versions)
    def register(self) -> int:
        self.known = None
        self.runs += 1
        version, created = self.reg.register_version(self.model, {"run_id": f"run-{self.runs}"})
        assert created
        return version

    @rule(
        target=versions,
        decision=st.sampled_from(["promote", "pending_approval", "reject"]),
        stale=st.booleans(),
    )
    def candidate_arrives_and_is_judged(self, decision: str, stale: bool) -> int:
        version = self.register()
        self.evaluator_decides(version, decision, stale)
        return version

    @rule(
        version=versions,
        decision=st.sampled_from(["promote", "pending_approval", "reject"]),
        stale=st.booleans(),
    )
    def evaluator_decides(self, version: int, decision: str, stale: bool) -> None:
        """evaluate_candidate's verdict on a candidate, against the champion it scored: the current
        one, or (``stale``) one that has changed since (the race the evaluator loses: refused)."""
        doc = self.reg.version(self.model, version)
        assert doc is not None
        if doc["status"] != "candidate":
            return  # judged already: a duplicate delivery does nothing
        champion = self.reg.champion(self.model)
        against = (champion or 0) + 1 if stale else champion
        gates = self.judged(decision, against)
        with self.refusable():
            if decision == "promote":
                self.reg.approve(self.model, version, EVALUATOR, gates["reason"], against, "candidate", gates)
            elif decision == "pending_approval":
                self.reg.await_approval(
                    self.model, version, EVALUATOR, gates["reason"], gates, "candidate", against
                )
            else:
                self.reg.set_status(
                    self.model,
                    version,
                    "rejected",
                    EVALUATOR,
                    gates["reason"],
                    expected="candidate",
                    gates=gates,
                )

    @rule(version=versions)
    def older_code_approves_without_promoting(self, version: int) -> None:
        """A record as the evaluator left them before approvals were promotions (or crashed between)."""
        with self.refusable():
            self.reg.set_status(
                self.model, version, "approved", EVALUATOR, "every gate passed", expected="candidate"
            )

    @rule(version=versions, who=st.sampled_from(PEOPLE), states_champion=st.booleans())
    def person_approves(self, version: int, who: str, states_champion: bool) -> None:
        expected = self.reg.champion(self.model) if states_champion else None
        with self.refusable():
            service.approve(self.reg, self.notifier, self.model, version, who, "looked at it", expected)

    @rule(version=versions, who=st.sampled_from(PEOPLE))
    def person_rejects(self, version: int, who: str) -> None:
        with self.refusable():
            service.reject(self.reg, self.notifier, self.model, version, who, "not this one")

    @rule(who=st.sampled_from(PEOPLE))
    def person_rolls_back(self, who: str) -> None:
        with self.refusable():
            service.rollback(self.reg, self.notifier, self.model, who, "the champion misbehaves")

    @rule(version=versions)
    def direct_promotion(self, version: int) -> None:
        """A promotion of an approved or retired version (the port's plain promote)."""
        with self.refusable():
            self.reg.promote(self.model, version, "ops (admin)", "by hand", self.reg.champion(self.model))

    @rule(version=versions)
    def challenger(self, version: int) -> None:
        with self.refusable():
            service.set_challenger(self.reg, self.model, version, "alice (approver)", "shadow it")

    @rule(version=versions, who=st.sampled_from(PEOPLE))
    def person_starts_a_rollout(self, version: int, who: str) -> None:
        with self.refusable():
            rollouts.start_rollout(self.reg, NoContracts(), self.notifier, self.model, version, who, "try it")

    @rule(who=st.sampled_from(PEOPLE), action=st.sampled_from(["pause", "resume", "abort"]))
    def person_changes_the_rollout(self, who: str, action: str) -> None:
        with self.refusable():
            if action == "abort":
                rollouts.abort(self.reg, self.notifier, self.model, who, "stop it")
            else:
                getattr(rollouts, action)(self.reg, self.model, who, f"{action} it")

    @rule(breach=st.booleans())
    def the_rollout_evaluator_decides(self, breach: bool) -> None:
        """A step (or, at the last step, the completion) when the guards held, else an abort."""
        pointer = self.reg.rollout(self.model)
        if pointer is None:
            return
        current = rollout.Rollout.from_dict(pointer)
        at = rollouts.now(rollouts.utc_now)
        with self.refusable():
            if breach:
                self.reg.abort_rollout(
                    *current.abort(at, rollout.EVALUATOR, "disagreement 0.5 > 0.2", "disagreement")
                )
            elif current.last_step:
                self.reg.complete_rollout(*current.complete(at, "the last step baked", {}))
            else:
                self.reg.change_rollout(*current.advance(at, "every guard held", {}))

    @rule(unknown=st.integers(min_value=50, max_value=60), who=st.sampled_from(PEOPLE))
    def calls_about_an_unknown_version(self, unknown: int, who: str) -> None:
        for call in (
            lambda: service.approve(self.reg, self.notifier, self.model, unknown, who, "x"),
            lambda: service.reject(self.reg, self.notifier, self.model, unknown, who, "x"),
            lambda: service.show_version(self.reg, self.model, unknown),
            lambda: self.reg.promote(self.model, unknown, who, "x", self.reg.champion(self.model)),
        ):
            with self.refusable():
                call()
                raise AssertionError("an unknown version was accepted")

    # --- invariants (one read of the store per step: the checks below share it) -------------------------

    @invariant()
    def invariants_hold(self) -> None:
        self.known = self.snapshot()
        docs, pointer, ledger, running, events = self.known
        at_most_one_champion_and_the_pointer_names_it(docs, pointer)
        every_champion_was_approved_first(docs)
        transitions_chain_to_the_status_and_rejected_is_final(docs, self.rejected)
        the_audit_ledger_replays_to_the_pointer(ledger, pointer)
        no_version_waits_for_a_stale_approval(docs, pointer)
        a_running_rollout_has_its_one_candidate_rolling_out(docs, pointer, running, events)


def a_running_rollout_has_its_one_candidate_rolling_out(
    docs: list[dict[str, Any]],
    champion: int | None,
    pointer: dict[str, Any] | None,
    events: list[dict[str, Any]],
) -> None:
    rolling = [d["version"] for d in docs if d["status"] == "rolling_out"]
    if pointer is None or pointer["status"] not in rollout.RUNNING:
        assert rolling == [], rolling
    else:
        assert rolling == [pointer["candidate"]] and pointer["champion"] == champion, (
            rolling,
            pointer,
            champion,
        )
    if pointer is not None:
        mine = [e["revision"] for e in events if e["number"] == pointer["number"]]
        assert mine == list(range(1, pointer["revision"] + 1)), (mine, pointer["revision"])


def at_most_one_champion_and_the_pointer_names_it(docs: list[dict[str, Any]], pointer: int | None) -> None:
    champions = [d["version"] for d in docs if d["status"] == "champion"]
    assert champions == ([] if pointer is None else [pointer]), (champions, pointer)


def every_champion_was_approved_first(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        moves = [t["to"] for t in doc["transitions"]]
        if "champion" in moves:
            assert "approved" in moves[: moves.index("champion")], (doc["version"], moves)


def transitions_chain_to_the_status_and_rejected_is_final(
    docs: list[dict[str, Any]], rejected: set[int]
) -> None:
    for doc in docs:
        chain = doc["transitions"]
        assert chain[0]["from"] is None and chain[-1]["to"] == doc["status"]
        assert all(a["to"] == b["from"] for a, b in itertools.pairwise(chain))
        if doc["version"] in rejected:
            assert doc["status"] == "rejected" and [t["to"] for t in chain].count("rejected") == 1
        if doc["status"] == "rejected":
            rejected.add(doc["version"])


def the_audit_ledger_replays_to_the_pointer(ledger: list[dict[str, Any]], pointer: int | None) -> None:
    assert [e["seq"] for e in ledger] == list(range(1, len(ledger) + 1))
    stack: list[dict[str, Any]] = []
    current = None
    for entry in ledger:
        assert entry["from_version"] == current, entry
        if entry["action"] == "rollback":
            undone = stack.pop()
            assert entry["undoes"] == undone["seq"] and entry["to_version"] == undone["from_version"]
        else:
            stack.append(entry)
        current = entry["to_version"]
    assert current == pointer


def no_version_waits_for_a_stale_approval(docs: list[dict[str, Any]], pointer: int | None) -> None:
    for doc in docs:
        if doc["status"] == "pending_approval" and "evaluated_against" in doc["gates"]:
            assert doc["gates"]["evaluated_against"] == pointer, (doc["version"], pointer)
        elif doc["status"] == "pending_approval":
            # No gates (an approval from older code): it waits again after its rollout was aborted,
            # and the champion that rollout compared it with is still the champion.
            assert doc["transitions"][-1]["from"] == "rolling_out", doc["transitions"]
        if doc["status"] == "superseded":
            assert "became the champion" in doc["transitions"][-1]["reason"]


def _run(make: Callable[[], Registry], examples: int, steps: int) -> None:
    machine = type("Machine", (RegistryMachine,), {"make": staticmethod(make)})
    run_state_machine_as_test(machine, settings=settings(max_examples=examples, stateful_step_count=steps))


def test_the_registry_state_machine_keeps_its_invariants_in_memory() -> None:
    _run(MemoryRegistry, examples=150, steps=40)


@pytest.mark.usefixtures("aws")
def test_the_registry_state_machine_keeps_its_invariants_on_dynamodb(aws) -> None:
    _run(lambda: DynamoRegistry(aws.registry_table, aws.audit_table), examples=10, steps=25)
