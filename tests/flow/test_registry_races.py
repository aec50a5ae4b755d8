"""Approve, reject and rollback racing on one model through the HTTP API of the local cloud (a moto
server, the Chalice app served over HTTP on a threaded server, as `mlops up` runs them): issue 14,
"What failed" 6, third bullet (an approve racing a reject gave 500, and a losing approve left the
version approved with its caller recorded).

Each round, two fresh candidates wait for approval against the current champion, then five calls are
released at once: two people approve the first candidate, a third rejects it (or, every other round,
the second one), someone approves the second one, someone rolls back. What is checked depends on
recorded outcomes only, never on timing:

* no answer is a 5xx (or anything but 200 or 409);
* the round is linearizable: some order of the calls that answered 200, applied one at a time to the
  in-memory registry (the reference: one lock, obviously atomic) from the state before the round,
  succeeds call by call and ends in the same state as the real one: every version's status and
  transitions (who moved it, and why), the champion pointer and the audit ledger. So every 409
  changed nothing;
* every 409 names its reason without a Python repr, and is explained: the call conflicted with a winner (a winner changed what the call is
  conditional on: the champion pointer for an approval or a rollback, the version's status for an
  approval or a rejection), or the call fails anyway wherever it is placed among the winners.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.adapters.memory.notifier import MemoryNotifier
from chalicelib.adapters.memory.registry import MemoryRegistry
from chalicelib.registry import service
from chalicelib.registry.ports import Registry
from tests.support import PYTHON_REPR

MODEL = "races"
ROUNDS = 24
PEOPLE = ("alice", "bob", "carol", "dave")


@pytest.fixture(scope="module")
def cloud() -> Iterator[Any]:
    """The local cloud's API on a moto server, without the event runtime (no queue is used here)."""
    from chalicelib import auth, bootstrap
    from chalicelib.adapters import aws
    from chalicelib.adapters.aws.tokens import SsmTokenRecords
    from chalicelib.auth import TokenStore
    from chalicelib.settings import Settings
    from mlops.localcloud import LocalCloud, free_port

    saved = dict(os.environ)
    bootstrap.reset(), aws.reset_clients(), auth.reset_cache()
    local = LocalCloud(port=free_port(), api_port=free_port(), events=False)
    local.start()
    aws.reset_clients()
    settings = Settings.from_env()
    store = TokenStore(SsmTokenRecords.for_settings(settings))
    # replace: in-process moto servers share one SSM, so another module may have made these names.
    local.tokens = {
        name: store.create(name, "approver", created_by="tests", replace=True)[0] for name in PEOPLE
    }
    local.settings = settings
    yield local
    local.stop()
    os.environ.clear()
    os.environ.update(saved)
    bootstrap.reset(), aws.reset_clients(), auth.reset_cache()


def _call(cloud: Any, who: str, path: str) -> tuple[int, str]:
    body = json.dumps({"reason": f"{who} decided"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {cloud.tokens[who]}"}
    request = urllib.request.Request(cloud.api_url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _at_once(
    cloud: Any, ops: list[tuple[str, int | None, str]], model: str = MODEL
) -> dict[int, tuple[int, str]]:
    """Every call sent on its own thread, all released together; each one's answer."""
    answers: dict[int, tuple[int, str]] = {}
    barrier = threading.Barrier(len(ops))

    def send(i: int) -> None:
        barrier.wait()
        answers[i] = _call(cloud, ops[i][2], _path(ops[i], model))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(ops))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def _apply(reg: Registry, op: tuple[str, int | None, str], model: str = MODEL) -> int:
    """One call on the reference registry, as the API's service runs it: its HTTP answer."""
    action, version, who = op
    caller, reason, notifier = f"{who} (approver)", f"{who} decided", MemoryNotifier()
    try:
        if action == "approve":
            assert version is not None
            service.approve(reg, notifier, model, version, caller, reason)
        elif action == "reject":
            assert version is not None
            service.reject(reg, notifier, model, version, caller, reason)
        else:
            service.rollback(reg, notifier, model, caller, reason)
    except errors.Conflict:
        return 409
    return 200


def _path(op: tuple[str, int | None, str], model: str = MODEL) -> str:
    action, version, _ = op
    return (
        f"/models/{model}/rollback"
        if action == "rollback"
        else f"/models/{model}/versions/{version}/{action}"
    )


def _state(reg: Registry, model: str = MODEL) -> Any:
    """What must agree: statuses and transitions (without times), the pointer, the ledger."""
    versions = [
        (d["version"], d["status"], [(t["from"], t["to"], t["by"], t["reason"]) for t in d["transitions"]])
        for d in reg.versions(model)
    ]
    ledger = [
        (
            e["seq"],
            e["action"],
            e["from_version"],
            e["to_version"],
            e["who"],
            e["undoes"],
            e.get("superseded", []),
        )
        for e in reg.audit(model)
    ]
    return versions, reg.champion(model), ledger


def _reads(op: tuple[str, int | None, str]) -> set[Any]:
    """What a call is conditional on: the pointer (approve, rollback), the version's status."""
    action, version, _ = op
    return (
        {"champion"} if action == "rollback" else {version} | ({"champion"} if action == "approve" else set())
    )


def _changed(before: Any, after: Any) -> set[Any]:
    versions = {v: (status, moves) for v, status, moves in before[0]}
    out: set[Any] = {v for v, status, moves in after[0] if versions.get(v) != (status, moves)}
    return out | ({"champion"} if before[1] != after[1] else set())


def _linearization(
    reference: MemoryRegistry,
    ops: list[Any],
    won: list[int],
    lost: list[int],
    observed: Any,
    model: str = MODEL,
) -> MemoryRegistry | None:
    """The reference after the winners in an order that explains the round (module docstring)."""
    for order in itertools.permutations(won):
        replay = copy.deepcopy(reference)
        prefixes = [copy.deepcopy(replay)]
        touched: set[Any] = set()
        for i in order:
            before = _state(replay, model)
            if _apply(replay, ops[i], model) != 200:
                break
            touched |= _changed(before, _state(replay, model))
            prefixes.append(copy.deepcopy(replay))
        else:
            if _state(replay, model) != observed:
                continue
            explained = all(
                _reads(ops[i]) & touched
                or any(_apply(copy.deepcopy(p), ops[i], model) == 409 for p in prefixes)
                for i in lost
            )
            if explained:
                return replay
    return None


def _name(op: tuple[str, int | None, str], first: int) -> str:
    action, version, _ = op
    return action if version is None else f"{action} {'first' if version == first else 'second'}"


def _waiting(reg: Registry, run_id: str, model: str = MODEL) -> int:
    """A new candidate judged against the current champion and waiting for approval (as the evaluator
    leaves one; set up one call at a time, before the round)."""
    version, _ = reg.register_version(model, {"run_id": run_id})
    champion = reg.champion(model)
    gates = {"decision": "pending_approval", "reason": "manual mode", "evaluated_against": champion}
    reg.set_status(model, version, "pending_approval", "evaluator", "manual mode", "candidate", gates)
    return version


def _seed(reg: Registry) -> None:
    """v1: the first champion, approved and promoted by the evaluator."""
    reg.register_version(MODEL, {"run_id": "seed"})
    reg.set_status(MODEL, 1, "approved", "evaluator", "first model", "candidate", {"evaluated_against": None})
    reg.promote(MODEL, 1, "evaluator", "first model", None)


def test_concurrent_approve_reject_and_rollback_rounds_are_linearizable(cloud):
    from chalicelib.adapters.aws.registry import DynamoRegistry

    real = DynamoRegistry(cloud.settings.registry_table, cloud.settings.audit_table)
    reference = MemoryRegistry()
    for reg in (real, reference):
        _seed(reg)
    winners: Counter[str] = Counter()
    for r in range(ROUNDS):
        first_real, first_ref = (_waiting(reg, f"round-{r}-a") for reg in (real, reference))
        second_real, second_ref = (_waiting(reg, f"round-{r}-b") for reg in (real, reference))
        assert (first_real, second_real) == (first_ref, second_ref)
        assert _state(real) == _state(reference)
        ops = [
            ("approve", first_real, "alice"),
            ("approve", first_real, "bob"),
            ("reject", first_real if r % 2 == 0 else second_real, "carol"),
            ("approve", second_real, "dave"),
            ("rollback", None, "alice"),
        ]
        answers = _at_once(cloud, ops)
        codes = [answers[i][0] for i in range(len(ops))]
        assert set(codes) <= {200, 409}, [answers[i] for i in range(len(ops))]
        refusals = [json.loads(answers[i][1])["Message"] for i in range(len(ops)) if codes[i] == 409]
        assert not [m for m in refusals if PYTHON_REPR.search(m)], refusals
        observed = _state(real)
        won = [i for i in range(len(ops)) if codes[i] == 200]
        lost = [i for i in range(len(ops)) if codes[i] == 409]
        found = _linearization(reference, ops, won, lost, observed)
        assert found is not None, json.dumps(
            {"round": r, "ops": ops, "answers": [answers[i] for i in range(len(ops))], "observed": observed},
            indent=1,
        )
        reference = found
        winners.update(_name(ops[i], first_real) for i in won)
    print("winning calls over", ROUNDS, "rounds:", dict(winners))
