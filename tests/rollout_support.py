"""Helpers of the rollout tests (predict routing, guards, the evaluator): registered versions of real
models (the training job's code, exported to ONNX) stored in memory, a registry reader that serves
them with a rollout pointer, and the pointer itself (``chalicelib.registry.rollout``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.memory.artifacts import MemoryArtifacts
from chalicelib.registry import rollout as ro
from tests.support import DATASET, built, contract_for

BUCKET = "models"
AT = "2026-12-01T10:00:00+00:00"


def stored_version(
    artifacts: MemoryArtifacts,
    version: int,
    model: str = "forest",
    status: str = "approved",
    schema: Callable[[dict[str, Any]], None] | None = None,
    files: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """A version record of ``model`` (a key of ``tests.support.MODELS``) with its artifacts stored;
    ``schema`` edits the input schema first (a candidate that refuses what the champion takes),
    ``files`` replaces artifacts (a broken one)."""
    made, _ = built(model)
    made = dict(made)
    if schema is not None:
        doc = json.loads(made["input_schema.json"])
        schema(doc)
        made["input_schema.json"] = json.dumps(doc).encode()
    made.update(files or {})
    located = {}
    for name, data in made.items():
        key = f"models/{DATASET}/v{version}/{name}"
        located[name] = {
            "key": key,
            "version_id": artifacts.put(BUCKET, key, data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    metrics = json.loads(made["metrics.json"])
    return {
        "model": DATASET,
        "version": version,
        "status": status,
        "bucket": BUCKET,
        "artifacts": located,
        "primary_metric": metrics["primary_metric"],
        "primary_value": metrics["primary_value"],
        "training_metrics": metrics,
        "task": "classification",
    }


def pointer(
    candidate: int = 2,
    champion: int = 1,
    *,
    percent: float = 10.0,
    strategy: str = ro.CANARY,
    status: str = ro.ACTIVE,
    step: int = 0,
    number: int = 1,
    guards: ro.Guards | None = None,
    bake_s: int = 900,
) -> dict[str, Any]:
    """A rollout pointer as the registry stores it (``Rollout.to_dict``)."""
    state, _ = ro.start(
        DATASET, number, candidate, champion, ro.Schedule(strategy, percent, bake_s), guards or ro.Guards(),
        AT, "alice (approver)", "roll it out", "approved",
    )  # fmt: skip
    from dataclasses import replace

    return replace(state, status=status, step=step).to_dict()


class Versions:
    """A ``RegistryReader`` over stored version records, with champion, challenger and rollout
    pointers a test sets; it counts the registry reads."""

    def __init__(self, artifacts: MemoryArtifacts) -> None:
        self.artifacts = artifacts
        self.docs: dict[int, dict[str, Any]] = {}
        self.champion_version: int | None = None
        self.challenger_version: int | None = None
        self.pointer: dict[str, Any] | None = None
        self.reads: dict[str, int] = {}

    def _read(self, kind: str) -> None:
        self.reads[kind] = self.reads.get(kind, 0) + 1

    def add(self, doc: dict[str, Any]) -> dict[str, Any]:
        self.docs[int(doc["version"])] = doc
        return doc

    def champion(self, model: str) -> int | None:
        self._read("champion")
        return self.champion_version if model == DATASET else None

    def challenger(self, model: str) -> int | None:
        self._read("challenger")
        return self.challenger_version if model == DATASET else None

    def rollout(self, model: str) -> dict[str, Any] | None:
        self._read("rollout")
        return self.pointer if model == DATASET else None

    def version(self, model: str, v: int) -> dict[str, Any] | None:
        self._read("version")
        return self.docs.get(v) if model == DATASET else None

    def versions(self, model: str) -> list[dict[str, Any]]:
        return [self.docs[v] for v in sorted(self.docs)] if model == DATASET else []

    def models(self) -> list[str]:
        return [DATASET] if self.docs else []


def state(
    candidate: int = 2,
    champion: int = 1,
    *,
    guards: ro.Guards | None = None,
    step: int = 0,
    status: str = ro.ACTIVE,
    percent: float = 10.0,
    strategy: str = ro.CANARY,
    bake_s: int = 900,
) -> ro.Rollout:
    """The rollout's state object of ``pointer``."""
    return ro.Rollout.from_dict(
        pointer(
            candidate, champion, guards=guards, step=step, status=status, percent=percent,
            strategy=strategy, bake_s=bake_s,
        )
    )  # fmt: skip


def answer(
    request: int | str,
    version: int,
    role: str,
    prediction: Any = 0,
    *,
    index: int = 0,
    status: str = "ok",
    latency_ms: float = 3.0,
    probabilities: dict[str, float] | None = None,
    time: str = "2026-12-01T10:05:00.000Z",
) -> dict[str, Any]:
    """An inference record as /predict captures it (no inputs: the guards do not read them)."""
    return {
        "request_id": request if isinstance(request, str) else f"{request:032x}",
        "index": index,
        "row_id": None,
        "model": DATASET,
        "version": version,
        "role": role,
        "time": time,
        "latency_ms": latency_ms,
        "status": status,
        "problems": [],
        "inputs": {},
        "prediction": prediction if status == "ok" else None,
        "probabilities": probabilities if status == "ok" else None,
        "job_id": None,
    }


def canary_pair(
    request: int,
    ours: Any,
    theirs: Any,
    *,
    index: int = 0,
    status: tuple[str, str] = ("ok", "ok"),
    latency_ms: tuple[float, float] = (3.0, 3.0),
    probabilities: tuple[dict[str, float] | None, dict[str, float] | None] = (None, None),
    time: str = "2026-12-01T10:05:00.000Z",
) -> list[dict[str, Any]]:
    """A request the candidate (v2) answered and the champion (v1) scored beside it; when the
    candidate failed, the champion answered (role champion)."""
    champion_role = "shadow" if status[0] == "ok" else "champion"
    return [
        answer(request, 2, "canary", ours, index=index, status=status[0], latency_ms=latency_ms[0],
               probabilities=probabilities[0], time=time),
        answer(request, 1, champion_role, theirs, index=index, status=status[1], latency_ms=latency_ms[1],
               probabilities=probabilities[1], time=time),
    ]  # fmt: skip


# --- the evaluator's world: the registry, capture, outcomes, contracts and notifications in memory ---

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
Behaviour = Callable[[int], dict[str, Any]]


def good(i: int) -> dict[str, Any]:
    """Both models answer alike (labels alternating), at the same speed."""
    return {"ours": i % 2, "theirs": i % 2}


class Evaluated:
    """A model with champion v1 and a rollout of v2 (started at ``T0`` by a person), every store in
    memory; ``traffic`` captures requests as /predict would during the rollout, ``run`` is one run of
    the evaluator with ports built afresh (nothing of a run survives but what the stores hold)."""

    def __init__(self, schedule: ro.Schedule | None = None, guards: ro.Guards | None = None) -> None:
        from chalicelib.adapters.memory.capture import MemoryCapture
        from chalicelib.adapters.memory.contracts import MemoryContractStore
        from chalicelib.adapters.memory.notifier import MemoryNotifier
        from chalicelib.adapters.memory.outcomes import MemoryOutcomeStore
        from chalicelib.adapters.memory.registry import MemoryRegistry

        self.registry = MemoryRegistry(clock=lambda: T0)
        self.capture = MemoryCapture()
        self.outcomes = MemoryOutcomeStore()
        self.contracts = MemoryContractStore()
        self.contracts.put(contract_for("forest"))
        self.notifier = MemoryNotifier()
        self.requests = 0
        for n in (1, 2):
            version, _ = self.registry.register_version(
                DATASET,
                {"run_id": f"run-{n}", "family": "random_forest", "primary_metric": "accuracy",
                 "primary_value": 0.95, "training_metrics": {"greater_is_better": True}, "task": "classification"},
            )  # fmt: skip
            if n == 1:
                self.registry.set_status(DATASET, version, "approved", "evaluator", "every gate passed")
                self.registry.promote(DATASET, 1, "evaluator", "every gate passed", expected_champion=None)
            else:
                self.registry.set_status(DATASET, version, "pending_approval", "evaluator", "manual mode")
        started, event = ro.start(
            DATASET, 1, 2, 1, schedule or ro.Schedule(ro.CANARY, 10.0, 900), guards or ro.Guards(),
            T0.isoformat(), "alice (approver)", "roll it out", "pending_approval",
        )  # fmt: skip
        self.registry.start_rollout(started, event, "pending_approval")

    def ports(self, registry: Any = None) -> Any:
        from chalicelib.rollout.service import RolloutPorts

        return RolloutPorts(
            registry=registry or self.registry,
            capture=self.capture,
            contracts=self.contracts,
            notifier=self.notifier,
            outcomes=self.outcomes,
        )

    def run(self, at: datetime, registry: Any = None) -> dict[str, Any]:
        from chalicelib.rollout.service import advance_rollouts

        return advance_rollouts(self.ports(registry), at).get(DATASET, {})

    def traffic(self, at: datetime, n: int, behaviour: Behaviour = good) -> list[int]:
        """``n`` requests routed to the candidate, one a second from ``at``; their numbers."""
        from chalicelib.capture import records as rec

        numbers = list(range(self.requests, self.requests + n))
        self.requests += n
        records = []
        for k, i in enumerate(numbers):
            moment = (at + timedelta(seconds=k)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            records += canary_pair(i, time=moment, **behaviour(i))
        self.capture.write(rec.encode_lines(records))
        return numbers

    def label(self, at: datetime, truth: dict[int, Any]) -> None:
        """Outcomes received at ``at`` for the requests numbered in ``truth``."""
        from chalicelib.monitoring.outcomes import Outcome

        outcomes = [Outcome(DATASET, label, at, "api", request_id=f"{i:032x}") for i, label in truth.items()]
        self.outcomes.add(DATASET, outcomes, f"api:{at.isoformat()}")

    def pointer(self) -> dict[str, Any]:
        found = self.registry.rollout(DATASET)
        assert found is not None
        return found

    def events(self) -> list[dict[str, Any]]:
        return self.registry.rollout_events(DATASET)
